#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/linkdead.sh): a live but stalled
# server.  With `timeout = 3`, the primary's daemon is stopped (SIGSTOP) for
# 8 s under a mounted file system with a writer running: the kernel times
# the request out, declares the socket dead (LINK_DEAD) and holds the I/O
# (dead-conn-timeout).  Once the daemon runs again it hears LINK_DEAD and
# gives the device a new socket (NBD_CMD_RECONFIGURE): the writer carries
# on, no I/O error reaches the file system, the files are intact.
# (Hosts and helpers as in lib.sh: alpha in the root namespace, beta in b.)
# Prints "STEP n: ..." lines; exits 0 only if every step worked.
NAME=LINKDEAD
. /test/lib.sh

step "a pair, alpha primary, attached, ext4 mounted"
net_up
pair_up 128M "timeout = 3" "dead-conn-timeout = 60"
attach_mount
dev=$DEV
dd if=/dev/urandom of="$MNT/before" bs=64k count=16 2>/dev/null
sync
sum=$(md5sum <"$MNT/before")
ok "$dev"

writer() {
	local i=0
	while [ $i -lt 300 ] && [ ! -e "$W/stop" ]; do
		dd if=/dev/urandom of="$MNT/w$((i % 4))" bs=16k count=4 2>/dev/null || echo "WRITE-ERROR $i"
		sync || echo "SYNC-ERROR $i"
		i=$((i + 1))
	done
}
base=$(io_errors)

step "the daemon stalls for 8 s (SIGSTOP) under a writer"
writer >"$W/writer.out" 2>&1 &
writer_pid=$!
BG_PIDS+=("$writer_pid")
sleep 1
pid=$(daemon_pid alpha)
kill -STOP "$pid"
sleep 8
kill -CONT "$pid"
# The kernel gives up on the socket either as a request times out or as a
# send times out; both requeue the I/O and announce LINK_DEAD.
dmesg | grep -qE "timed out|Request send failed" || fail "the kernel did not give up on the socket"
ok "the kernel gave up on the socket: $(dmesg | grep -E 'timed out|Request send failed' | tail -1)"

step "LINK_DEAD heard, the device reconnected, the writer goes on"
for i in $(seq 100); do grep -q "reconnecting it" "$W/run/r0-alpha.log" && break; sleep 0.1; done
grep -q "reconnecting it" "$W/run/r0-alpha.log" || fail "no LINK_DEAD handling in the log"
sleep 3
touch "$W/stop"
wait "$writer_pid"
writer_pid=
[ -s "$W/writer.out" ] && fail "the writer saw errors: $(head -3 "$W/writer.out")"
[ "$(io_errors)" -eq "$base" ] || fail "I/O errors: $(dmesg | grep -E 'I/O error' | tail -3)"
ok "no error in the writer or in dmesg"

step "files intact; the pair in sync with equal data areas; fsck clean, down --detach"
[ "$(md5sum <"$MNT/before")" = "$sum" ] || fail "checksum changed"
umount "$MNT" || fail "umount"
synced_equal 600
fsck.ext4 -fn "$dev" >/dev/null 2>&1 || fail "fsck"
$A down --detach >/dev/null || fail "down --detach"
$BN down >/dev/null
ok "clean"

echo "LINKDEAD PASSED ($n steps)"
