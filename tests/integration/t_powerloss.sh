#!/usr/bin/env bash
# Power loss of both nodes.  Both backing files (data and internal
# metadata) are under faultfs in crash mode (tests/torture/faultfs.c):
# a write reaches the real file only once an fsync/fdatasync covers it.
# nbdtorture's writer (tests/torture/: 4 connections, QD 8, writes of 1 to
# 8 blocks of 4 KiB at random places of its area, a FLUSH after about
# every 16 writes, 5% of the writes FUA, every issue and reply logged)
# runs through alpha until alpha has taken 1000 writes; both daemons are
# killed with kill -9, then both faultfs (what they held is lost).  The
# writer must stop on the lost connection with at least 30 FLUSHes
# acknowledged.  Then:
#  - on both real files, `nbdtorture check --mode durable` passes: every
#    acknowledged FUA write and every write acknowledged before the last
#    acknowledged FLUSH is there, and no block is torn (nor garbage, nor
#    stale);
#  - faultfs and both daemons come back: the metadata loads, alpha says it
#    had crashed and is primary again, its activity log's extents are
#    resynced, both end uptodate with byte-identical data areas, and the
#    durable writes are still there (the same check on both);
#  - 64 more writes through alpha are all acknowledged, the areas stay equal.
#  (1) default al-extents, writes spread over 64 MiB;
#  (2) al-extents = 16 and writes spread over 240 MiB (60 extents), so the
#      activity log is rewritten all the time and the crash lands in the
#      middle of its updates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pair.sh"
pair_init 256M 256M
. "$(dirname "$0")/faultfs.sh"
require_faultfs
NT=${NBDTORTURE:-$REPO/build/nbdtorture}
[ -x "$NT" ] || skip "$NT is not built (run make)"
trap 'pair_stop; faultfs_cleanup; _cleanup' EXIT
MIB=1048576
# the writer on alpha's export; add --log, a limit, --area-blocks, --seed
NTW=("$NT" write --socket "$T/alpha.nbd" --export r0 --conns 4 --qd 8 --max-blocks 8
	--flush-prob 0.0625 --fua-prob 0.05)

# wsum FILE: the numbers of the writer's summary line in FILE, as
# "ISSUED ACKED FAILED FLUSHES FLUSHES-ACKED FLUSHES-FAILED STOPPED".
wsum() {
	sed -n 's/^nbdtorture write: writes issued \([0-9]*\) acked \([0-9]*\) failed \([0-9]*\), flushes \([0-9]*\) acked \([0-9]*\) failed \([0-9]*\),.*, stopped: \(.*\)$/\1 \2 \3 \4 \5 \6 \7/p' "$1"
}

# durable_check DESC LOG IMAGE: nbdtorture check --mode durable of IMAGE
# (a replica's data area starts at its offset 0), its summary shown.
durable_check() {
	check "$1" "$NT" check --image "$3" --log "$2" --mode durable
	sed "s/^/    /" "$T/last.out"
}

# powerloss TAG SPAN-MIB SEED: one run, on fresh images.
powerloss() {
	local tag=$1 span=$2 seed=$3 wpid wrc n end apid bpid size st sent i a f ff stop
	local wargs=(--area-blocks $((span * MIB / 4096)) --seed "$seed")
	pair_stop
	faultfs_cleanup
	FFS_PIDS=()
	rm -f "$T/a.real" "$T/b.real"
	truncate -s 256M "$T/a.img" "$T/b.img"
	faultfs_under a --crash || return 1
	faultfs_under b --crash || return 1
	check "($tag) create both --zeroed, on faultfs --crash" \
		sh -c "$A create --force --zeroed && $Bn create --force --zeroed"
	check "($tag) up both" sh -c "$A up && $Bn up"
	check_eq "($tag) connected" "$(wait_field "$A" "d['peer']['connection']" connected 20)" \
		connected
	check "($tag) alpha primary" $A primary
	size=$(field "$A" "d['size_bytes']")

	(exec timeout -k 5 60 "${NTW[@]}" --log "$T/w$tag.log" "${wargs[@]}" --seconds 50) \
		>"$T/w$tag.out" 2>&1 &
	wpid=$!
	BG_PIDS+=("$wpid")
	# Let it run until alpha has taken 1000 writes (about 60 FLUSHes).
	end=$((SECONDS + 40))
	n=0
	while [ $SECONDS -lt $end ] && kill -0 "$wpid" 2>/dev/null; do
		n=$(field "$A" "d['stats']['writes']" 2>/dev/null)
		[ "${n:-0}" -ge 1000 ] && break
		sleep 0.2
	done
	check_eq "($tag) the writer is running and alpha has taken 1000 writes ($n)" \
		"$([ "${n:-0}" -ge 1000 ] && kill -0 "$wpid" 2>/dev/null && echo yes)" yes
	apid=$(daemon_pid alpha)
	bpid=$(daemon_pid beta)
	check "($tag) power loss: kill -9 both daemons ($apid, $bpid)" kill -9 "$apid" "$bpid"
	msg "($tag) held at the loss: a: $(faultfs_stat a); b: $(faultfs_stat b)"
	faultfs_powerloss a && faultfs_powerloss b && pass "($tag) ... then both faultfs" ||
		fail "($tag) faultfs was not running"
	wait "$wpid"
	wrc=$?
	msg "($tag) $(cat "$T/w$tag.out")"
	read -r _ _ _ _ n _ stop <<<"$(wsum "$T/w$tag.out")"
	check_eq "($tag) the writer stopped on the lost connection (exit $wrc)" \
		"$wrc ${stop:-}" "0 connection lost"
	check_eq "($tag) ... with at least 30 FLUSHes acknowledged (${n:-none})" \
		"$([ "${n:-0}" -ge 30 ] && echo yes)" yes
	durable_check "($tag) on alpha's real file every durable write is there, nothing torn" \
		"$T/w$tag.log" "$T/a.real"
	durable_check "($tag) on beta's real file every durable write is there, nothing torn" \
		"$T/w$tag.log" "$T/b.real"

	faultfs_under a --crash || return 1
	faultfs_under b --crash || return 1
	check "($tag) up alpha after the power loss (its metadata loads)" $A up
	grep -q "without a clean shutdown" "$T/last.err" "$T/last.out" &&
		pass "($tag) alpha says it had crashed" || fail "($tag) no crash noted: $(cat "$T/last.err")"
	check "($tag) up beta (its metadata loads)" $Bn up
	check_eq "($tag) alpha is primary again" "$(field "$A" "d['role']")" primary
	if st=$(wait_synced 90); then
		pass "($tag) the activity-log resync finishes"
	else
		fail "($tag) no resync: $st"
		show_logs
	fi
	sent=$(field "$A" "d['stats']['resynced_bytes']")
	msg "($tag) alpha resynced $sent bytes"
	check "($tag) the data areas are equal" cmp -n "$size" "$T/a.img" "$T/b.img"
	durable_check "($tag) every durable write is on alpha after the resync" \
		"$T/w$tag.log" "$T/a.img"
	durable_check "($tag) every durable write is on beta after the resync" \
		"$T/w$tag.log" "$T/b.img"
	check "($tag) 64 writes through alpha after the recovery" \
		"${NTW[@]}" --log "$T/w$tag-after.log" --area-blocks 1024 --writes 64 --seed 99
	read -r i a f _ _ ff stop <<<"$(wsum "$T/last.out")"
	check_eq "($tag) ... every one acknowledged, no FLUSH failed ($(cat "$T/last.out"))" \
		"${i:-} ${a:-} ${f:-} ${ff:-} ${stop:-}" "64 64 0 0 writes"
	check "($tag) ... and the data areas stay equal" cmp -n "$size" "$T/a.img" "$T/b.img"
}

powerloss 1 64 11
pair_conf_extra "al-extents = 16"
powerloss 2 240 12
check "(2) dump-md: 16 activity-log slots" $A dump-md
grep -qE '^al_slots: +16$' "$T/last.out" && pass "(2) ... al_slots: 16" ||
	fail "(2) al_slots: $(grep al_slots "$T/last.out")"
finish
