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

step "a zeroed pair over a veth: alpha in the root namespace, beta in netns b"
net_up
pair_up 160M
[ "$(ip netns identify "$(daemon_pid beta)")" = b ] || fail "beta's daemon is not in netns b"
[ -z "$(ip netns identify "$(daemon_pid alpha)")" ] || fail "alpha's daemon is not in the root namespace"
ok "connected over 10.0.0.1 <-> 10.0.0.2, alpha primary"

step "attach, mkfs.ext4, mount, files with known sums"
attach_mount
write_files 4
ok "$DEV mounted, 4 files synced"

step "fio starts: two verifying writers on the file system"
base=$(io_errors)
# shellcheck disable=SC2046
start_fio crash 90 $(fio_jobs "$MNT" 24M --rate=,3m)
sleep 2.5
fio_running || fail "fio ended before the kill: $(tail -5 "$W/fio-crash.out")"
ok "fio pid $FIO_PID running"

step "kill -9 alpha's daemon, then blkrep up: reattached"
pid=$(daemon_pid alpha)
kill -9 "$pid" || fail "kill -9 $pid"
wait_for 50 eval '! kill -0 "$pid"' || fail "alpha's daemon $pid still alive after kill -9"
fio_running || fail "fio ended with the daemon gone: $(tail -5 "$W/fio-crash.out")"
sleep 1
t_up=$EPOCHREALTIME
$A up >"$W/up.out" 2>&1 || fail "up after kill -9: $(cat "$W/up.out")"
up_ms=$(ms_since "$t_up")
grep -q "reattached $DEV" "$W/up.out" || fail "up did not reattach $DEV: $(cat "$W/up.out")"
fio_running || fail "fio did not outlast the restart: $(tail -5 "$W/fio-crash.out")"
[ "$(json role)" = primary ] || fail "alpha came back as $(json role)"
[ "$(json device)" = "$DEV" ] || fail "status device after up: '$(json device)'"
ok "up in ${up_ms} ms, $DEV reattached, fio still running"

step "fio finishes: err= 0, verified; no I/O error in the kernel log"
wait_fio crash
[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(io_error_lines)"
ok "fio passed; longest write: direct $(fio_max_lat_ms crash direct) ms," \
	"buffered $(fio_max_lat_ms crash buffered) ms;" \
	"$(dmesg | grep -c 'Connection timed out') kernel request timeout(s)"

step "the files written before the kill are intact"
files_intact
ok "md5 match (read from $DEV)"

step "the pair resyncs; umount; the replicas' data areas are equal; fsck clean"
grep -q 'without a clean shutdown' "$W/up.out" "$W/run/r0-alpha.log" ||
	fail "alpha did not notice its crash: $(cat "$W/up.out")"
finish_pair wait
ok "synced, $SIZE bytes equal, fsck clean, detached ($FINISH_TIMES)"

echo "$NAME PASSED ($n steps, $(elapsed) s)"
