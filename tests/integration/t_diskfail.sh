#!/usr/bin/env bash
# The secondary's disk failing replicated writes.  beta's backing file
# (data and internal metadata) is under faultfs (tests/torture/faultfs.c).
#  (E) The whole disk fails with EIO while a client writes through alpha
#      (2000 writes, a FLUSH every 16): no client request fails; beta stops
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
trap 'pair_stop; faultfs_cleanup; _cleanup' EXIT
MIB=1048576
W="$PY $TESTS_DIR/nbdpattern.py"

faultfs_under b || exit 1
check "create both --zeroed (beta's on faultfs)" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up both" sh -c "$A up && $Bn up"
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary" $A primary
size=$(field "$A" "d['size_bytes']")
SAME="cmp -n $size $T/a.img $T/b.real"
check "writes before the fault replicate" $W write "$URI" "$T/w0.log" --blocks 256 --span 16M \
	--seed 1 --must-finish
if st=$(wait_synced 30); then pass "synced before the fault"; else fail "not synced: $st"; fi
check "... the data areas are equal" $SAME

# fault_phase TAG SEED: the checks while beta's disk fails (the fault is set).
fault_phase() {
	local tag=$1 seed=$2 err
	check "($tag) 2000 writes through alpha while beta's disk fails: every one acknowledged" \
		$W write "$URI" "$T/w-$tag.log" --blocks 2000 --span 48M --seed "$seed" --must-finish
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
	check "($tag) every write is on beta's real file" \
		$W check "$T/w-$tag.log" "$T/b.real" --blocks 2000 --span 48M --seed "$2"
}

# --- (E) the whole disk fails with EIO ----------------------------------
faultfs_ctl b "fail eio" && pass "(E) beta's disk fails every write with EIO" || fail "(E) faultfs ctl"
fault_phase E 2 "Input/output error"
oos=$(field "$A" "d['out_of_sync_bytes']")
check_eq "(E) alpha records out-of-sync data ($oos bytes)" "$([ "${oos:-0}" -gt 0 ] && echo yes)" yes
heal_phase E 2

# --- (N) ENOSPC in the data area, metadata fine ---------------------------
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
heal_phase N 3

# --- (F) freeze: a failed write is held, not acknowledged ---------------
pair_stop
pair_conf_extra "on-peer-loss = freeze"
check "(F) up both with on-peer-loss = freeze" sh -c "$A up && $Bn up"
check_eq "(F) connected" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
if st=$(wait_synced 30); then pass "(F) synced"; else fail "(F) not synced: $st"; fi
faultfs_ctl b "fail eio" && pass "(F) beta's disk fails every write with EIO" || fail "(F) faultfs ctl"
(exec timeout -k 5 60 $W write "$URI" "$T/w-F.log" --blocks 200 --span 48M --seed 4 \
	--must-finish) >"$T/wF.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
check_eq "(F) beta's disk is outdated" "$(wait_field "$Bn" "d['disk']" outdated 20)" outdated
check_eq "(F) alpha holds writes (frozen) while beta is away" \
	"$(wait_field "$A" "d['frozen']" True 20)" True
faultfs_ctl b heal && pass "(F) heal beta's disk" || fail "(F) cannot heal beta's disk"
wait "$wpid"
rc=$?
check_eq "(F) the writer finished without an error ($(tail -n 1 "$T/wF.out"))" "$rc" 0
if st=$(wait_synced 60); then pass "(F) the pair resyncs"; else fail "(F) no resync: $st"; fi
check "(F) the data areas are equal" $SAME
check "(F) every write is on beta's real file" \
	$W check "$T/w-F.log" "$T/b.real" --blocks 200 --span 48M --seed 4
finish
