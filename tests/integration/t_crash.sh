#!/usr/bin/env bash
# A primary killed mid-load resyncs only what its activity log covers.
# With al-extents = 16 (16 x 4 MiB) on a ~512 MiB volume, fio writes to the
# first 16 MiB through alpha, alpha's daemon is killed with kill -9, and
# `up` brings alpha back as primary (it went down as primary).  It must then
# resync to beta only the extents its activity log names (more than 0,
# at most 64 MiB, far less than the data area) instead of the whole area,
# beta must end uptodate and the data areas byte-identical, including
# blocks (written into the images directly, in the extents fio was
# writing) that only one side held after the crash.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

. "$(dirname "$0")/pair.sh"
pair_init 512M 512M
trap 'pair_stop; _cleanup' EXIT
MIB=1048576
AL_BYTES=$((16 * 4 * MIB))

pair_conf_extra "al-extents = 16"
check "create both --zeroed (al-extents = 16)" sh -c "$A create --zeroed && $Bn create --zeroed"
check "dump-md shows 16 activity-log slots" $A dump-md
grep -qE '^al_slots: +16$' "$T/last.out" && pass "... al_slots: 16" ||
	fail "al_slots: $(grep al_slots "$T/last.out")"
check "up both" sh -c "$A up && $Bn up"
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary" $A primary
size=$(field "$A" "d['size_bytes']")
SAME="$TESTS_DIR/cmp_areas.sh $size $T/a.img $T/b.img"
check "a first write, flushed" qemu-io -f raw "$URI" -c 'write -P 0x3c 100M 1M' -c flush
check_eq "nothing out of sync before the crash" "$(field "$A" "d['out_of_sync_bytes']")" 0

# fio writes to the first 16 MiB only (4 activity-log extents); alpha is
# killed in the middle, so fio fails: its status does not matter.
(cd "$T" && exec timeout -k 5 30 fio --name=crash --ioengine=nbd --uri="$URI" \
	--rw=randwrite --bs=4k --iodepth=16 --offset=0 --size=16M \
	--time_based --runtime=4) >"$T/fio.out" 2>&1 &
fpid=$!
BG_PIDS+=("$fpid")
sleep 2
apid=$(daemon_pid alpha)
check "kill -9 alpha's daemon mid-load (pid '$apid')" kill -9 "$apid"
wait "$fpid"
msg "fio exited $? (expected to fail: its server was killed)"
check_eq "beta lost its primary" "$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True)" True
# Writes in flight at a crash may have reached one side and not the other.
# Make that certain, inside extents fio was writing (so in the activity
# log): 4 KiB only alpha has, and 4 KiB only beta has.
check "a write that only reached alpha's disk (4 KiB at 5 MiB)" \
	dd if=/dev/urandom of="$T/a.img" bs=4k seek=$((5 * 256)) count=1 conv=notrunc status=none
check "a write that only reached beta's disk (4 KiB at 13 MiB)" \
	dd if=/dev/urandom of="$T/b.img" bs=4k seek=$((13 * 256)) count=1 conv=notrunc status=none
check_fails "so the data areas differ" $SAME

check "up alpha again" $A up
grep -q "without a clean shutdown" "$T/last.err" && pass "up says alpha had crashed" ||
	fail "crash not noted: $(cat "$T/last.err")"
check_eq "alpha is back as primary" "$(field "$A" "d['role']")" primary
oos=$(field "$A" "d['out_of_sync_bytes']")
# The resync may already be under way or done; either way what is out of
# sync can never exceed what the activity log covers.
check_eq "out of sync after the crash ($oos) <= 16 AL extents (64 MiB), not the whole area ($size)" \
	"$([ "${oos:-$size}" -le "$AL_BYTES" ] && echo yes)" yes
if st=$(wait_synced 60); then
	pass "the resync after the crash finishes"
else
	fail "the resync after the crash did not finish: $st"
fi
sent=$(field "$A" "d['stats']['resynced_bytes']")
check_eq "alpha resynced something: resynced_bytes ($sent) > 0" \
	"$([ "${sent:-0}" -gt 0 ] && echo yes)" yes
check_eq "... at most the activity log's 64 MiB (+ 1 MiB)" \
	"$([ "${sent:-0}" -le $((AL_BYTES + MIB)) ] && echo yes)" yes
check_eq "... far less than the data area (< 1/4 of $size)" \
	"$([ "${sent:-0}" -lt $((size / 4)) ] && echo yes)" yes
check_eq "beta's disk ends uptodate" "$(field "$Bn" "d['disk']")" uptodate
check_eq "nothing out of sync on alpha" "$(field "$A" "d['out_of_sync_bytes']")" 0
check "the data areas are equal after the resync" $SAME
check "the write from before the crash is there" qemu-io -f raw "$URI" -c 'read -P 0x3c 100M 1M'
check "writes after the recovery replicate" qemu-io -f raw "$URI" -c 'write -P 0x3d 8M 1M' -c flush
check "... and the replicas stay equal" $SAME
check_synced "the pair still reports in sync"
finish
