#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/restart.sh): a planned restart
# of the primary's daemon (`blkrep down --keep-attached`, then `up`) under a
# mounted file system while fio writes and verifies.
#
# alpha (root network namespace) and beta (namespace b) replicate over a
# veth pair (see lib.sh); alpha is primary, its volume /dev/nbdN carries an
# ext4 with files of known md5.  fio runs two verifying writers on it
# (O_DIRECT random 4k..64k, buffered sequential with fsync; crc32c; writes
# rate-limited so that the job outlasts the restart on any machine).  Then
# `down --keep-attached` (the daemon exits, the device stays, its I/O
# waits) and `up`: the device is reattached (NBD_CMD_RECONFIGURE) and
#  - fio ran through the restart (alive while the daemon was away and
#    after `up`), exits 0 with err= 0 in every job and no verify failure;
#  - the kernel log has no new "I/O error", "Buffer I/O error" or
#    "EXT4-fs error";
#  - the files written before are intact (read from the device);
#  - alpha comes back primary on the same device, does not take the
#    restart for a crash (no activity-log resync); the pair ends synced,
#    and after umount the data areas of both replicas are equal and
#    fsck.ext4 -fn is clean.
# A request the kernel had sent that the stopping daemon did not read waits
# for the NBD `timeout` before the kernel resends it: the scenario prints
# the longest write latency fio saw (that wait), it does not fail on it.
NAME=RESTART
. /test/lib.sh

fio_on_fs restart

step "down --keep-attached, then blkrep up: reattached"
pid=$(daemon_pid alpha)
$A down --keep-attached >"$W/down.out" 2>&1 || fail "down --keep-attached: $(cat "$W/down.out")"
wait_for 150 eval '! kill -0 "$pid"' || fail "alpha's daemon $pid still running 15 s after down --keep-attached"
[ "$(cat "/sys/block/${DEV#/dev/}/size")" -gt 0 ] || fail "$DEV lost its size while the daemon was away"
fio_running || fail "fio ended with the daemon gone: $(tail -5 "$W/fio-restart.out")"
sleep 1
t_up=$EPOCHREALTIME
$A up >"$W/up.out" 2>&1 || fail "up after down --keep-attached: $(cat "$W/up.out")"
up_ms=$(ms_since "$t_up")
grep -q 'without a clean shutdown' "$W/up.out" && fail "a planned restart taken for a crash: $(cat "$W/up.out")"
reattached_check restart
ok "up in ${up_ms} ms, $DEV reattached, fio still running"

fio_finished restart

step "umount; the replicas' data areas are equal; fsck clean"
grep -q 'activity-log-resync' "$W/run/r0-alpha.log" &&
	fail "a planned restart resynced the activity log: $(grep 'activity-log-resync' "$W/run/r0-alpha.log")"
finish_pair wait
ok "synced, $SIZE bytes equal, fsck clean, detached ($FINISH_TIMES)"

echo "$NAME PASSED ($n steps, $(elapsed) s)"
