#!/usr/bin/env bash
# `blkrep attach --loop` on a host without nbd.ko: the replicated volume as
# a loop device over the daemon's FUSE file, with a file system on it.
#
# A zeroed pair (alpha primary, beta) on loopback:
#  - `attach /dev/nbd0` fails with one line pointing to --loop (this kernel
#    has no nbd module);
#  - `attach --loop` prints /dev/loopN, bound to the FUSE file
#    $BLKREP_RUN_DIR/r0-alpha.fuse/volume, of size_bytes;
#  - while it is attached, `secondary`, `down` and `down --keep-attached`
#    are refused and the node stays primary with the device bound;
#  - mkfs.ext4, mount, files of known md5, sync;
#  - sync -> async -> sync switches (>= 3 rounds, ~0.5 s apart) while fio
#    writes and verifies (crc32c) through the file system: every mode
#    command succeeds, lag_bytes is 0 when `mode sync` returns, fio exits 0
#    with err= 0, no new "I/O error"/"EXT4-fs error" line for the device in
#    dmesg (skipped, saying so, if dmesg cannot be read);
#  - the files read back (after a remount) with their sums;
#  - umount, `detach` succeeds and unbinds the device and the FUSE file;
#    the pair is synced and the data areas of a.img and b.img are equal;
#  - attached again and mounted: `detach` must refuse while the file system
#    is mounted (the device is in use), and the file system keeps working.
. "$(dirname "$0")/lib.sh"
require_cmd fio mkfs.ext4 losetup blockdev mountpoint cmp
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no /dev/loop-control (no loop devices)"
losetup -f >/dev/null 2>&1 || skip "no free loop device: $(losetup -f 2>&1)"

. "$(dirname "$0")/pair.sh"
pair_init 160M 160M
MNT=$T/mnt
mkdir -p "$MNT"
LOOPDEV=
FIO_PID=
# Every blkrep command is bounded: a daemon that stops answering fails a
# check instead of hanging the test.
A="timeout -k 2 30 $A"
Bn="timeout -k 2 30 $Bn"

loop_cleanup() {
	[ -n "$FIO_PID" ] && kill -KILL "$FIO_PID" 2>/dev/null && wait "$FIO_PID" 2>/dev/null
	mountpoint -q "$MNT" && umount "$MNT"
	[ -n "$LOOPDEV" ] && $A detach >/dev/null 2>&1
	return 0
}
trap '[ $FAILS -gt 0 ] && show_logs 25; loop_cleanup; pair_stop; _cleanup' EXIT

# dmesg: lines that appeared since dmesg_mark, about our device only (other
# tests on this host may have loop devices of their own).
DMESG=1
dmesg >/dev/null 2>&1 || DMESG=0
dmesg_mark() { [ $DMESG = 1 ] && dmesg >"$T/dmesg.mark"; }
dmesg_new_errors() {
	dmesg | grep -vxF -f "$T/dmesg.mark" | grep -E 'I/O error|EXT4-fs error|EXT4-fs warning' |
		grep -w "${LOOPDEV#/dev/}"
}
# check_no_io_errors DESC: no new error line for LOOPDEV since dmesg_mark.
check_no_io_errors() {
	if [ $DMESG = 0 ]; then
		msg "dmesg is not readable here: not checking the kernel log ($1)"
		return
	fi
	local e
	e=$(dmesg_new_errors)
	if [ -z "$e" ]; then
		pass "$1: no I/O error for $LOOPDEV in dmesg"
	else
		fail "$1: I/O errors for $LOOPDEV in dmesg"
		printf '%s\n' "$e" | head -n 8 | sed 's/^/    | /'
	fi
}
in_t() { (cd "$T" && exec "$@"); }

check "create alpha --zeroed" $A create --zeroed
check "create beta --zeroed" $Bn create --zeroed
check "up alpha" $A up
check "up beta" $Bn up
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary" $A primary

# --- no nbd.ko: attach /dev/nbd0 points to --loop ------------------------------
if [ -e /sys/module/nbd ]; then
	msg "this kernel has nbd.ko: not checking the --loop hint of attach /dev/nbd0"
else
	check_fails "attach /dev/nbd0 fails without nbd.ko" $A attach /dev/nbd0
	check_eq "... with one line" "$(grep -c . "$T/last.err")" 1
	grep -q -- '--loop' "$T/last.err" && pass "... which points to --loop" ||
		fail "attach /dev/nbd0: $(cat "$T/last.err")"
	check_eq "... and nothing is attached" "$(field "$A" "d['device']")" None
fi

# --- attach --loop ---------------------------------------------------------------
check "attach --loop" $A attach --loop
LOOPDEV=$(cat "$T/last.out")
case $LOOPDEV in
/dev/loop[0-9]*) pass "attach --loop printed $LOOPDEV" ;;
*) fail "attach --loop printed '$LOOPDEV'"; LOOPDEV=; finish ;;
esac
[ -b "$LOOPDEV" ] && pass "$LOOPDEV is a block device" || fail "$LOOPDEV is not a block device"
check_eq "$LOOPDEV is bound to the FUSE file" "$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | sed 's/ *$//')" \
	"$T/run/r0-alpha.fuse/volume"
size=$(field "$A" "d['size_bytes']")
check_eq "$LOOPDEV has the size of the data area" "$(blockdev --getsize64 "$LOOPDEV")" "$size"

# --- refusals while attached -------------------------------------------------------
check_fails "secondary is refused while the loop device is attached" $A secondary
grep -qi 'attached' "$T/last.err" && pass "... saying a device is attached" ||
	fail "secondary: $(cat "$T/last.err")"
check_fails "down is refused while the loop device is attached" $A down
grep -q "${LOOPDEV}" "$T/last.err" && pass "... naming $LOOPDEV" || fail "down: $(cat "$T/last.err")"
check_fails "down --keep-attached is refused for a loop device" $A down --keep-attached
grep -q 'outlive' "$T/last.err" && pass "... since it cannot outlive the daemon" ||
	fail "down --keep-attached: $(cat "$T/last.err")"
check_eq "alpha is still primary" "$(field "$A" "d['role']")" primary
check_eq "$LOOPDEV is still bound" "$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | sed 's/ *$//')" \
	"$T/run/r0-alpha.fuse/volume"

# --- a file system ---------------------------------------------------------------------
dmesg_mark
check "mkfs.ext4 $LOOPDEV" mkfs.ext4 -q -F "$LOOPDEV"
check "mount $LOOPDEV" mount -t ext4 "$LOOPDEV" "$MNT" || finish
mkdir -p "$MNT/files"
for i in 1 2 3 4; do head -c $((i * 1048576 + i * 4099)) /dev/urandom >"$MNT/files/f$i"; done
check "sync" sync
(cd "$MNT/files" && md5sum f*) >"$T/sums"

# --- mode switches under fio -----------------------------------------------------------
# Two verifying writers: O_DIRECT random 4k..64k (verify_backlog on the
# way) and buffered sequential 64k with an fsync every 8; writes rate
# limited, so that fio outlasts the switching however fast the host is.
in_t timeout -k 5 90 fio --directory="$MNT" --ioengine=psync --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --exitall_on_error=1 --rate=,4m \
	--name=direct --rw=randwrite --direct=1 --bsrange=4k-64k --size=32M --verify_backlog=256 \
	--name=buffered --rw=write --bs=64k --size=32M --fsync=8 >"$T/fio.out" 2>&1 &
FIO_PID=$!
sleep 1
rounds=0 bad_mode=
while [ $rounds -lt 6 ] && kill -0 "$FIO_PID" 2>/dev/null; do
	$A mode async >"$T/mode.out" 2>&1 || { bad_mode="mode async: $(cat "$T/mode.out")"; break; }
	v=$(field "$A" "d['mode']")
	[ "$v" = async ] || { bad_mode="after mode async, status says $v"; break; }
	sleep 0.5
	$A mode sync >"$T/mode.out" 2>&1 || { bad_mode="mode sync: $(cat "$T/mode.out")"; break; }
	v=$(field "$A" "d['mode']") l=$(field "$A" "d['lag_bytes']")
	[ "$v" = sync ] && [ "$l" = 0 ] || { bad_mode="after mode sync: mode $v, lag_bytes $l"; break; }
	kill -0 "$FIO_PID" 2>/dev/null && rounds=$((rounds + 1))
	sleep 0.5
done
check_eq "every mode switch worked (status at once, lag 0 when mode sync returns)" "$bad_mode" ""
[ $rounds -ge 3 ] && pass "$rounds sync -> async -> sync rounds while fio ran" ||
	fail "only $rounds switching rounds while fio ran (want 3)"
wait "$FIO_PID"
rc=$?
FIO_PID=
check_eq "fio (2 jobs, crc32c verify) exits 0" "$rc" 0
jobs=$(grep -c '(groupid=' "$T/fio.out")
good=$(grep '(groupid=' "$T/fio.out" | grep -c 'err= 0:')
if [ "$jobs" = 2 ] && [ "$good" = 2 ]; then
	pass "fio: err= 0 in both jobs"
else
	fail "fio: $good of $jobs jobs with err= 0"
	tail -n 20 "$T/fio.out" | sed 's/^/    | /'
fi
check_no_io_errors "mkfs, files and fio under mode switches"
check "a final mode sync" $A mode sync

# --- read back, umount, detach, replicas equal -------------------------------------
check "umount" umount "$MNT"
check "mount again" mount -t ext4 "$LOOPDEV" "$MNT"
check "the files read back with their sums" sh -c "cd '$MNT/files' && md5sum -c '$T/sums'"
check "umount again" umount "$MNT"
check "detach" $A detach
grep -q "$LOOPDEV detached" "$T/last.out" && pass "... says $LOOPDEV detached" ||
	fail "detach: $(cat "$T/last.out" "$T/last.err")"
# (Another test may bind the freed device at once: only ours must be gone.)
[ "$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | sed 's/ *$//')" != "$T/run/r0-alpha.fuse/volume" ] &&
	pass "$LOOPDEV is no longer bound to the FUSE file" || fail "$LOOPDEV is still bound to the FUSE file"
grep -q " $T/run/r0-alpha.fuse " /proc/mounts && fail "the FUSE file system is still mounted" ||
	pass "the FUSE file system is gone"
check_eq "status names no device" "$(field "$A" "d['device']")" None
LOOPDEV_WAS=$LOOPDEV
LOOPDEV=
check_eq "the pair is synced" "$(wait_synced 30 | cut -d' ' -f1)" synced
check "the data areas of both replicas are equal" cmp -n "$size" "$T/a.img" "$T/b.img"

# --- detach while mounted ----------------------------------------------------------------
# The device is in use: detach must refuse (the daemon's own message says
# "in use (unmount it first)").  A kernel that only marks a busy loop
# device for autoclear answers LOOP_CLR_FD with success, though.
check "attach --loop again" $A attach --loop
LOOPDEV=$(cat "$T/last.out")
dmesg_mark
check "mount it" mount -t ext4 "$LOOPDEV" "$MNT" || finish
check_fails "detach while the file system is mounted is refused" $A detach
check_eq "... and $LOOPDEV stays bound to the FUSE file" \
	"$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | sed 's/ *$//')" "$T/run/r0-alpha.fuse/volume"
echo after >"$MNT/after" 2>/dev/null
check "... and the file system keeps working (write, sync)" sync -f "$MNT/after"
check_no_io_errors "detach attempted while mounted"
msg "first loop device $LOOPDEV_WAS, second $LOOPDEV"

# --- kill -9 while attached (issue 15) --------------------------------------------
# The loop device and the FUSE mount outlive the daemon; the next `up`
# cleans them up and says so: unbound once nothing uses it, and the dead
# mount removed; then attach --loop works again.
umount "$MNT"
pid=$(daemon_pid alpha)
check "kill -9 alpha's daemon while attached (pid $pid)" kill -KILL "$pid"
for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check_eq "... which leaves $LOOPDEV bound to the dead FUSE file" \
	"$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | sed 's/ *$//')" "$T/run/r0-alpha.fuse/volume"
check "up alpha again" $A up
check_eq "up says it unbound the left-over $LOOPDEV" \
	"$(grep -c "$LOOPDEV was left over a dead FUSE file.*unbound" "$T/last.err")" 1
check_eq "... and removed the dead FUSE mount" \
	"$(grep -c "removed the dead FUSE mount" "$T/last.err")" 1
check_eq "$LOOPDEV is free again" "$(losetup -n -O BACK-FILE "$LOOPDEV" 2>/dev/null | grep -c .)" 0
check_fails "nothing is mounted at the run directory's FUSE path" mountpoint -q "$T/run/r0-alpha.fuse"
check_eq "alpha comes back primary (it was killed)" "$(wait_field "$A" "d['role']" primary 10)" primary
check "attach --loop works again" $A attach --loop
LOOPDEV=$(cat "$T/last.out")
check "the file system is intact (fsck -fn)" fsck.ext4 -fn "$LOOPDEV"
check_eq "beta is connected and up to date" \
	"$(wait_field "$Bn" "d['peer']['connection'] + ' ' + d['disk']" "connected uptodate" 30)" \
	"connected uptodate"
check "down --detach unbinds the loop device and stops alpha" $A down --detach
LOOPDEV=
check_eq "... handing over: beta stays up to date" "$(field "$Bn" "d['disk']")" uptodate
check "... so plain primary promotes beta" $Bn primary
finish
