#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/crash.sh): kill -9 of the
# primary's daemon under a mounted file system while fio writes and
# verifies, then `blkrep up`.
#
# alpha (root network namespace) and beta (namespace b) replicate over a
# veth pair (see lib.sh); alpha is primary, its volume /dev/nbdN carries an
# ext4 with files of known md5.  fio runs two verifying writers on it
# (O_DIRECT random 4k..64k, buffered sequential with fsync; crc32c; writes
# rate-limited so that the job outlasts the restart on any machine).  Then
# kill -9 of alpha's daemon, `up` again: the device is reattached
# (NBD_CMD_RECONFIGURE) and
#  - fio ran through the restart (alive before the kill and after `up`),
#    exits 0 with err= 0 in every job and no verify failure;
#  - the kernel log has no new "I/O error", "Buffer I/O error" or
#    "EXT4-fs error";
#  - the files written before are intact (read from the device);
#  - alpha comes back primary on the same device, the pair resyncs the
#    crashed primary's activity log and ends synced; after umount the data
#    areas of both replicas are equal and fsck.ext4 -fn is clean.
# A request the kernel had sent to the dead daemon waits for the NBD
# `timeout` before the kernel resends it: the scenario prints the longest
# write latency fio saw (that wait), it does not fail on it.
NAME=CRASH
. /test/lib.sh

fio_on_fs crash

step "kill -9 alpha's daemon, then blkrep up: reattached"
pid=$(daemon_pid alpha)
kill -9 "$pid" || fail "kill -9 $pid"
wait_for 50 eval '! kill -0 "$pid"' || fail "alpha's daemon $pid still alive after kill -9"
fio_running || fail "fio ended with the daemon gone: $(tail -5 "$W/fio-crash.out")"
sleep 1
t_up=$EPOCHREALTIME
$A up >"$W/up.out" 2>&1 || fail "up after kill -9: $(cat "$W/up.out")"
up_ms=$(ms_since "$t_up")
reattached_check crash
ok "up in ${up_ms} ms, $DEV reattached, fio still running"

fio_finished crash

step "the pair resyncs; umount; the replicas' data areas are equal; fsck clean"
grep -q 'without a clean shutdown' "$W/up.out" "$W/run/r0-alpha.log" ||
	fail "alpha did not notice its crash: $(cat "$W/up.out")"
finish_pair wait
ok "synced, $SIZE bytes equal, fsck clean, detached ($FINISH_TIMES)"

echo "$NAME PASSED ($n steps, $(elapsed) s)"
