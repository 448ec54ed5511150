#!/usr/bin/env bash
# The secondary's disk failing replicated writes.  beta's backing file
# (data and internal metadata) is under faultfs (tests/torture/faultfs.c).
#  The client is nbdtorture's writer (tests/torture/: 4 connections, QD 8,
#  writes of 1 to 8 blocks of 4 KiB at random places of the first 48 MiB, a
#  FLUSH after about every 16 writes, 5% FUA); its summary line counts the
#  failed writes and FLUSHes, and `nbdtorture check --mode sync` finds every
#  acknowledged write on beta's real file.  Before each phase the first 48
#  MiB are zeroed through alpha, so that the check finds no block of an
#  earlier phase.
#  (E) The whole disk fails with EIO while the client writes through alpha
#      (2000 writes): no client request fails; beta stops
#      claiming uptodate (disk outdated, disk_error in status and a
#      "disk error" line in the text status), plain and --force `primary`
#      on beta are refused with a message naming the disk error; alpha
#      records out-of-sync data.  The disk heals: the pair resyncs by
#      itself and the data areas end byte-identical.
#  (N) Only the data area fails, with ENOSPC after 50 more writes (a bad
#      region; the metadata at the end still writes): the same, and the
#      outdated state is persistent: dump-md says so, and beta killed with
#      kill -9 and brought up again while the disk still fails comes back
#      outdated and still refuses `primary`.  Healed: resync, equal.
#  (F) on-peer-loss = freeze, EIO again: a write beta failed is held, not
#      acknowledged as replicated, until the pair is back; no client error,
#      and after healing the replicas are equal.
. "$(dirname "$0")/lib.sh"
require_nbdsh
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
. "$(dirname "$0")/faultfs.sh"
require_faultfs
NT=${NBDTORTURE:-$REPO/build/nbdtorture}
[ -x "$NT" ] || skip "$NT is not built (run make)"
trap 'pair_stop; faultfs_cleanup; _cleanup' EXIT
MIB=1048576
AREA=$((48 * MIB / 4096)) # the writer's area: the first 48 MiB
# the writer on alpha's export; add --log, --writes, --area-blocks, --seed
NTW=("$NT" write --socket "$T/alpha.nbd" --export r0 --conns 4 --qd 8 --max-blocks 8
	--flush-prob 0.0625 --fua-prob 0.05)

# writer_clean FILE N: "yes" when the writer's summary line in FILE says
# that it issued N writes, every one and every FLUSH acknowledged, none
# failed, and it stopped at the count; else that line.
writer_clean() {
	local line fl fa
	line=$(grep '^nbdtorture write: ' "$1")
	case $line in
	"nbdtorture write: writes issued $2 acked $2 failed 0, flushes "*" failed 0, "*"stopped: writes")
		read -r fl _ fa _ <<<"${line#*, flushes }" # "F acked F failed 0, ..."
		[ "$fl" = "$fa" ] && echo yes && return
		;;
	esac
	echo "${line:-no summary: $(tail -n 2 "$1")}"
}

# zero_area: zeroes the writer's area through alpha.
zero_area() {
	check "$1 zero the first 48 MiB through alpha" nbdsh -u "$URI" \
		-c "for o in range(0, 48 * $MIB, 4 * $MIB): h.zero(4 * $MIB, o)" -c "h.flush()"
}

# sync_check DESC LOG: every acknowledged write of LOG is on beta's real
# file, nothing torn, stale or garbage.
sync_check() {
	check "$1" "$NT" check --image "$T/b.real" --log "$2" --mode sync
	sed "s/^/    /" "$T/last.out"
}

faultfs_under b || exit 1
pair_start
check "writes before the fault" "${NTW[@]}" --log "$T/w0.log" --writes 256 \
	--area-blocks $((16 * MIB / 4096)) --seed 1
check_eq "... replicate, every one acknowledged" "$(writer_clean "$T/last.out" 256)" yes
if st=$(wait_synced 30); then pass "synced before the fault"; else fail "not synced: $st"; fi
check "... the data areas are equal" $SAME

# fault_phase TAG SEED: the checks while beta's disk fails (the fault is set).
fault_phase() {
	local tag=$1 seed=$2 err
	check "($tag) 2000 writes through alpha while beta's disk fails" \
		"${NTW[@]}" --log "$T/w-$tag.log" --writes 2000 --area-blocks "$AREA" --seed "$seed"
	check_eq "($tag) ... every write and FLUSH acknowledged, none failed" \
		"$(writer_clean "$T/last.out" 2000)" yes
	msg "($tag) $(cat "$T/last.out")"
	msg "($tag) faultfs: $(faultfs_stat b)"
	check_eq "($tag) beta's disk is outdated" "$(wait_field "$Bn" "d['disk']" outdated)" outdated
	err=$(field "$Bn" "d['disk_error']")
	check_eq "($tag) status shows the disk error ('$err')" \
		"$(case $err in *"$3"*) echo yes ;; esac)" yes
	check "($tag) text status" $Bn status
	grep -q "disk error: .*$3" "$T/last.out" && pass "($tag) ... has a 'disk error' line" ||
		fail "($tag) no disk error line: $(cat "$T/last.out")"
	check_fails "($tag) plain primary on beta is refused" $Bn primary
	grep -q "outdated.*$3" "$T/last.err" && pass "($tag) ... saying outdated and why" ||
		fail "($tag) refusal: $(cat "$T/last.out" "$T/last.err")"
	check_fails "($tag) primary --force on beta is refused too" $Bn primary --force
	check_eq "($tag) beta is still secondary" "$(field "$Bn" "d['role']")" secondary
	check_eq "($tag) alpha is primary and its disk uptodate" \
		"$(field "$A" "d['role'] + ' ' + d['disk']")" "primary uptodate"
	grep -q "disk failed a replicated" "$T/run/r0-beta.log" &&
		pass "($tag) beta's log says the disk failed" || fail "($tag) nothing in beta's log"
}

# heal_phase TAG: heal, then the pair must recover by itself.
heal_phase() {
	local tag=$1
	faultfs_ctl b heal && pass "($tag) heal beta's disk" || fail "($tag) cannot heal beta's disk"
	if st=$(wait_synced 60); then
		pass "($tag) the pair resyncs by itself"
	else
		fail "($tag) no resync after healing: $st"
		show_logs
	fi
	check_eq "($tag) beta uptodate, no disk error" \
		"$(field "$Bn" "d['disk'] + ' [' + d['disk_error'] + ']'")" "uptodate []"
	check "($tag) the data areas are equal" $SAME
	sync_check "($tag) every acknowledged write is on beta's real file" "$T/w-$tag.log"
}

# --- (E) the whole disk fails with EIO ----------------------------------
zero_area "(E)"
faultfs_ctl b "fail eio" && pass "(E) beta's disk fails every write with EIO" || fail "(E) faultfs ctl"
fault_phase E 2 "Input/output error"
oos=$(field "$A" "d['out_of_sync_bytes']")
check_eq "(E) alpha records out-of-sync data ($oos bytes)" "$([ "${oos:-0}" -gt 0 ] && echo yes)" yes
heal_phase E

# --- (N) ENOSPC in the data area, metadata fine ---------------------------
zero_area "(N)"
faultfs_ctl b "fail enospc after 50 below $size" &&
	pass "(N) beta's data area fails with ENOSPC after 50 more writes" || fail "(N) faultfs ctl"
fault_phase N 3 "No space left on device"
check "(N) dump-md on beta" $Bn dump-md
grep -qE '^disk: +outdated' "$T/last.out" && pass "(N) the metadata says outdated" ||
	fail "(N) dump-md: $(grep -i disk "$T/last.out")"
bpid=$(daemon_pid beta)
check "(N) kill -9 beta (pid '$bpid') while its disk fails" kill -9 "$bpid"
check "(N) up beta again" $Bn up
grep -q "up as secondary, disk outdated" "$T/last.out" "$T/last.err" &&
	pass "(N) beta comes back outdated" ||
	fail "(N) beta came back: $(cat "$T/last.out" "$T/last.err")"
check_fails "(N) primary on beta is refused after the restart" $Bn primary
heal_phase N

# --- (F) freeze: a failed write is held, not acknowledged ---------------
pair_stop
pair_conf_extra "on-peer-loss = freeze"
check "(F) up both with on-peer-loss = freeze" sh -c "$A up && $Bn up"
check_eq "(F) connected" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
if st=$(wait_synced 30); then pass "(F) synced"; else fail "(F) not synced: $st"; fi
zero_area "(F)"
faultfs_ctl b "fail eio" && pass "(F) beta's disk fails every write with EIO" || fail "(F) faultfs ctl"
(exec timeout -k 5 60 "${NTW[@]}" --log "$T/w-F.log" --writes 200 --area-blocks "$AREA" \
	--seed 4) >"$T/wF.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
check_eq "(F) beta's disk is outdated" "$(wait_field "$Bn" "d['disk']" outdated 20)" outdated
check_eq "(F) alpha holds writes (frozen) while beta is away" \
	"$(wait_field "$A" "d['frozen']" True 20)" True
faultfs_ctl b heal && pass "(F) heal beta's disk" || fail "(F) cannot heal beta's disk"
wait "$wpid"
rc=$?
check_eq "(F) the writer finished ($(tail -n 1 "$T/wF.out"))" "$rc" 0
check_eq "(F) ... every write and FLUSH acknowledged, none failed" "$(writer_clean "$T/wF.out" 200)" yes
if st=$(wait_synced 60); then pass "(F) the pair resyncs"; else fail "(F) no resync: $st"; fi
check "(F) the data areas are equal" $SAME
sync_check "(F) every acknowledged write is on beta's real file" "$T/w-F.log"
finish
