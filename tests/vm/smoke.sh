#!/bin/bash
# Guest scenario for tests/vm/run.sh: proves the harness with the real kernel
# NBD client, independent of blkrep's own attach code.
#
#   tests/vm/run.sh tests/vm/smoke.sh
#
# In the guest: `blkrep serve /tmp/disk.img` on a unix socket and on
# 127.0.0.1:10809; Debian's nbd-client attaches /dev/nbd0 to it (netlink);
# mkfs.ext4, mount, write a file, sync, umount, mount again and read it back,
# umount, fsck.ext4 -fn clean, a second attach over TCP (/dev/nbd1) sees the
# same filesystem, disconnect both, blkrep exits 0 on SIGTERM and its image
# file holds a clean ext4. Then the harness's network extras: a veth pair into
# a network namespace with netem delay (and tbf) on it.
# Exits 0 only if every step worked; prints "STEP n: ..." and "ok"/"FAIL" lines.
set -u

IMG=/tmp/disk.img
SOCK=/tmp/s.sock
SERVE_LOG=/tmp/serve.log
MNT=/mnt/smoke
n=0
serve_pid=

step() { n=$((n + 1)); echo "STEP $n: $*"; }
ok() { echo "  ok: $*"; }
fail() {
	echo "  FAIL: $*"
	echo "--- blkrep serve log:"
	tail -n 30 "$SERVE_LOG" 2>/dev/null
	cleanup
	echo "SMOKE FAILED at step $n"
	exit 1
}
cleanup() {
	umount "$MNT" 2>/dev/null
	nbd-client -d /dev/nbd1 >/dev/null 2>&1
	nbd-client -d /dev/nbd0 >/dev/null 2>&1
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
	ip netns del smoke 2>/dev/null
}
# Waits up to $1 tenths of a second for command "$2..." to succeed.
wait_for() {
	local i=0 limit=$1
	shift
	until "$@" 2>/dev/null; do
		i=$((i + 1))
		[ $i -ge "$limit" ] && return 1
		sleep 0.1
	done
}
nbd_size() { cat "/sys/block/$1/size" 2>/dev/null || echo 0; }
attached() { [ "$(nbd_size "$1")" -gt 0 ]; }
detached() { [ "$(nbd_size "$1")" -eq 0 ]; }

step "nbd module loaded"
grep -q '^nbd ' /proc/modules || fail "nbd is not in /proc/modules"
[ -b /dev/nbd0 ] && [ -b /dev/nbd1 ] || fail "no /dev/nbd0 and /dev/nbd1"
set -- /sys/block/nbd*
ok "$# nbd devices, kernel $(uname -r)"

step "blkrep serve a 256 MiB file"
truncate -s 256M "$IMG" || fail "truncate"
blkrep serve "$IMG" --name smoke --listen "unix:$SOCK" --listen 127.0.0.1:10809 >"$SERVE_LOG" 2>&1 &
serve_pid=$!
wait_for 100 test -S "$SOCK" || fail "no socket $SOCK after 10 s"
kill -0 "$serve_pid" || fail "blkrep serve exited"
ok "pid $serve_pid listening on unix:$SOCK and 127.0.0.1:10809"

step "nbd-client attaches /dev/nbd0 over the unix socket"
nbd-client -unix "$SOCK" /dev/nbd0 -name smoke -timeout 30 || fail "nbd-client -unix exited $?"
wait_for 50 attached nbd0 || fail "/dev/nbd0 has no size"
bytes=$(($(nbd_size nbd0) * 512))
[ "$bytes" -eq $((256 << 20)) ] || fail "/dev/nbd0 has $bytes bytes, not 256 MiB"
# nbd-client 3.24 configures the device by netlink and exits.
pidof nbd-client >/dev/null && fail "nbd-client still runs: ioctl mode, not netlink"
ok "/dev/nbd0: $bytes bytes, logical block $(cat /sys/block/nbd0/queue/logical_block_size)," \
	"configured by netlink"

step "mkfs.ext4 /dev/nbd0"
mkfs.ext4 -q -F /dev/nbd0 || fail "mkfs.ext4 exited $?"
blkid -p /dev/nbd0 | grep -q 'TYPE="ext4"' || fail "blkid does not see ext4: $(blkid -p /dev/nbd0)"
ok "$(blkid -p /dev/nbd0)"

step "mount, write 8 MiB, sync, umount"
mkdir -p "$MNT"
mount -t ext4 /dev/nbd0 "$MNT" || fail "mount exited $?"
dd if=/dev/urandom of=/tmp/payload bs=1M count=8 2>/dev/null || fail "dd urandom"
sum=$(md5sum </tmp/payload | cut -d' ' -f1)
cp /tmp/payload "$MNT/payload" || fail "cp to the filesystem"
echo "hello from the guest" >"$MNT/hello.txt" || fail "write hello.txt"
sync || fail "sync"
umount "$MNT" || fail "umount exited $?"
ok "wrote payload (md5 $sum) and hello.txt"

step "mount again and read the file back"
mount -t ext4 -o ro /dev/nbd0 "$MNT" || fail "second mount exited $?"
got=$(md5sum <"$MNT/payload" | cut -d' ' -f1)
[ "$got" = "$sum" ] || fail "payload md5 $got, wrote $sum"
[ "$(cat "$MNT/hello.txt")" = "hello from the guest" ] || fail "hello.txt differs"
umount "$MNT" || fail "umount exited $?"
ok "payload md5 matches"

step "fsck.ext4 -fn /dev/nbd0"
out=$(fsck.ext4 -fn /dev/nbd0 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] || fail "fsck.ext4 exited $rc"
ok "clean"

step "a second client over TCP: /dev/nbd1 sees the same filesystem"
nbd-client 127.0.0.1 10809 /dev/nbd1 -name smoke -timeout 30 || fail "nbd-client over TCP exited $?"
wait_for 50 attached nbd1 || fail "/dev/nbd1 has no size"
cmp -n 1048576 /dev/nbd0 /dev/nbd1 || fail "first MiB of nbd0 and nbd1 differ"
blkid -p /dev/nbd1 | grep -q 'TYPE="ext4"' || fail "nbd1: $(blkid -p /dev/nbd1)"
ok "/dev/nbd1 reads the same ext4"

step "disconnect both"
nbd-client -d /dev/nbd1 || fail "nbd-client -d /dev/nbd1 exited $?"
nbd-client -d /dev/nbd0 || fail "nbd-client -d /dev/nbd0 exited $?"
wait_for 50 detached nbd0 || fail "/dev/nbd0 still has a size after disconnect"
wait_for 50 detached nbd1 || fail "/dev/nbd1 still has a size after disconnect"
ok "both detached"

step "blkrep serve stops on SIGTERM with status 0"
kill -TERM "$serve_pid"
wait "$serve_pid"
rc=$?
serve_pid=
[ $rc -eq 0 ] || fail "blkrep serve exited $rc"
ok "exit 0"

step "the image file itself holds the clean filesystem"
out=$(fsck.ext4 -fn "$IMG" 2>&1) || fail "fsck.ext4 $IMG: $out"
ok "fsck.ext4 -fn $IMG clean"

step "network extras: veth into a namespace, netem delay, tbf"
ip netns add smoke || fail "ip netns add"
ip link add sm0 type veth peer name sm1 || fail "veth pair"
ip link set sm1 netns smoke || fail "move sm1"
ip addr add 192.0.2.1/24 dev sm0 && ip link set sm0 up || fail "sm0 up"
ip netns exec smoke ip addr add 192.0.2.2/24 dev sm1 || fail "sm1 address"
ip netns exec smoke ip link set sm1 up || fail "sm1 up"
ip netns exec smoke ip link set lo up
tc qdisc add dev sm0 root netem delay 50ms || fail "netem qdisc"
ip netns exec smoke tc qdisc add dev sm1 root tbf rate 10mbit burst 32kb latency 400ms ||
	fail "tbf qdisc"
wait_for 30 ping -c 1 -W 1 192.0.2.2 >/dev/null || fail "no ping through the veth"
out=$(ping -c 3 192.0.2.2) || fail "ping: $out"
avg=$(echo "$out" | sed -n 's|.*min/avg/max = [0-9.]*/\([0-9]*\).*|\1|p')
[ -n "$avg" ] && [ "$avg" -ge 50 ] || fail "average RTT '$avg' ms, netem should add 50: $out"
ip netns del smoke
ok "ping RTT avg ${avg} ms with netem delay 50ms"

echo "SMOKE PASSED ($n steps)"
exit 0
