#!/usr/bin/env bash
# Power loss of both nodes.  Both backing files (data and internal
# metadata) are under faultfs in crash mode (tests/torture/faultfs.c):
# a write reaches the real file only once an fsync/fdatasync covers it.
# A deterministic writer (nbdpattern.py: one write at a time to distinct
# 4 KiB blocks, a FLUSH after every 16, each acknowledged FLUSH logged)
# runs through alpha; both daemons are killed with kill -9, then both
# faultfs (what they held is lost).  Then:
#  - on both real files, every write acknowledged before the last
#    acknowledged FLUSH is there, and no block is torn;
#  - faultfs and both daemons come back: the metadata loads, alpha says it
#    had crashed and is primary again, its activity log's extents are
#    resynced, both end uptodate with byte-identical data areas, and the
#    flushed writes are still there.
#  (1) default al-extents, writes spread over 64 MiB;
#  (2) al-extents = 16 and writes spread over 240 MiB (60 extents), so the
#      activity log is rewritten all the time and the crash lands in the
#      middle of its updates.
. "$(dirname "$0")/lib.sh"
require_nbdsh
. "$(dirname "$0")/pair.sh"
pair_init 256M 256M
. "$(dirname "$0")/faultfs.sh"
require_faultfs
trap 'pair_stop; faultfs_cleanup; _cleanup' EXIT
MIB=1048576
W="$PY $TESTS_DIR/nbdpattern.py"

# powerloss TAG SPAN BLOCKS SEED: one run, on fresh images.
powerloss() {
	local tag=$1 span=$2 blocks=$3 seed=$4 wpid n end apid bpid size st sent
	local args=(--blocks "$blocks" --span "$span" --seed "$seed")
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

	(exec timeout -k 5 60 $W write "$URI" "$T/w$tag.log" "${args[@]}" --secs 50) \
		>"$T/w$tag.out" 2>&1 &
	wpid=$!
	BG_PIDS+=("$wpid")
	# Let it run until 30 FLUSHes (480 writes) are acknowledged.
	end=$((SECONDS + 40))
	n=0
	while [ $SECONDS -lt $end ] && kill -0 "$wpid" 2>/dev/null; do
		n=$(grep -c '^flushed' "$T/w$tag.log" 2>/dev/null)
		[ "${n:-0}" -ge 30 ] && break
		sleep 0.1
	done
	check_eq "($tag) the writer is running with 30 FLUSHes acknowledged" \
		"$([ "${n:-0}" -ge 30 ] && kill -0 "$wpid" 2>/dev/null && echo yes)" yes
	apid=$(daemon_pid alpha)
	bpid=$(daemon_pid beta)
	check "($tag) power loss: kill -9 both daemons ($apid, $bpid)" kill -9 "$apid" "$bpid"
	msg "($tag) held at the loss: a: $(faultfs_stat a); b: $(faultfs_stat b)"
	faultfs_powerloss a && faultfs_powerloss b && pass "($tag) ... then both faultfs" ||
		fail "($tag) faultfs was not running"
	wait "$wpid"
	msg "($tag) writer: $(cat "$T/w$tag.out")"
	check "($tag) on both real files every flushed write is there, nothing torn" \
		$W check "$T/w$tag.log" "$T/a.real" "$T/b.real" "${args[@]}"
	sed "s/^/    /" "$T/last.out"

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
	check "($tag) every flushed write is on both after the resync" \
		$W check "$T/w$tag.log" "$T/a.img" "$T/b.img" "${args[@]}"
	sed "s/^/    /" "$T/last.out"
	check "($tag) writes replicate after the recovery" \
		$W write "$URI" "$T/w$tag-after.log" --blocks 64 --span 4M --seed 99 --must-finish
	check "($tag) ... and the data areas stay equal" cmp -n "$size" "$T/a.img" "$T/b.img"
}

powerloss 1 64M 16000 11
pair_conf_extra "al-extents = 16"
powerloss 2 240M 20000 12
check "(2) dump-md: 16 activity-log slots" $A dump-md
grep -qE '^al_slots: +16$' "$T/last.out" && pass "(2) ... al_slots: 16" ||
	fail "(2) al_slots: $(grep al_slots "$T/last.out")"
finish
