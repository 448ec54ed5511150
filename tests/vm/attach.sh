#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/attach.sh): the replicated volume
# as /dev/nbdN on a real kernel, and restarts that never surface as I/O
# errors.
#
# A pair (alpha, beta) on the guest's loopback, alpha primary:
#  - `blkrep attach` picks a free /dev/nbdN; mkfs.ext4, mount, write files;
#  - `secondary` and `down` refuse while it is attached;
#  - kill -9 of alpha's daemon while a writer runs, then `blkrep up`: the
#    device is reattached (NBD_CMD_RECONFIGURE), the writer goes on, no
#    "I/O error" in the kernel log, every file synced before the kill is
#    intact;
#  - `down --keep-attached` then `up`: the same, a planned restart;
#  - umount, fsck.ext4 -fn clean, `down --detach`; beta's image equals
#    alpha's.
# Prints "STEP n: ..." lines; exits 0 only if every step worked.
set -u

B=${BLKREP:-blkrep}
W=/tmp/pair
MNT=/mnt/vol
CONF=$W/r0.conf
export BLKREP_RUN_DIR=$W/run
A="$B -c $CONF --node alpha"
BN="$B -c $CONF --node beta"
n=0
writer_pid=

step() { n=$((n + 1)); echo "STEP $n: $*"; }
ok() { echo "  ok: $*"; }
fail() {
	echo "  FAIL: $*"
	echo "--- alpha log:"
	tail -n 40 "$W/run/r0-alpha.log" 2>/dev/null
	echo "--- beta log:"
	tail -n 20 "$W/run/r0-beta.log" 2>/dev/null
	echo "--- kernel:"
	dmesg | tail -n 15
	[ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
	echo "ATTACH FAILED at step $n"
	exit 1
}
json() { $A status --json 2>/dev/null | grep -o "\"$1\": [^,}]*" | head -1 | sed 's/.*: //; s/"//g'; }
io_errors() { dmesg | grep -c -E "I/O error|Buffer I/O error|EXT4-fs error" || true; }

mkdir -p "$W" "$MNT"
printf 'vm-secret\n' >"$W/secret"
chmod 600 "$W/secret"
cat >"$CONF" <<EOF
[resource]
name = r0
secret-file = $W/secret
[node alpha]
address = 127.0.0.1:7789
backing = $W/a.img
[node beta]
address = 127.0.0.1:7790
backing = $W/b.img
EOF
truncate -s 160M "$W/a.img" "$W/b.img"

step "a zeroed pair, alpha primary"
$A create --zeroed >/dev/null && $BN create --zeroed >/dev/null || fail "create"
$A up && $BN up || fail "up"
for i in $(seq 50); do [ "$(json connection)" = connected ] && break; sleep 0.1; done
[ "$(json connection)" = connected ] || fail "not connected"
$A primary >/dev/null || fail "primary"
ok "connected"

step "blkrep attach picks a free /dev/nbdN"
dev=$($A attach) || fail "attach"
case $dev in /dev/nbd[0-9]*) ;; *) fail "attach printed '$dev'" ;; esac
[ "$(cat /sys/block/${dev#/dev/}/size)" -gt 0 ] || fail "$dev has no size"
[ "$(json device)" = "$dev" ] || fail "status device: $(json device)"
cat /sys/block/${dev#/dev/}/backend 2>/dev/null | grep -q blkrep || fail "no backend identifier"
ok "$dev, backend $(cat /sys/block/${dev#/dev/}/backend)"

step "mkfs.ext4, mount, write files"
mkfs.ext4 -q -F "$dev" >/dev/null 2>&1 || fail "mkfs.ext4"
mount "$dev" "$MNT" || fail "mount"
for i in 1 2 3 4; do dd if=/dev/urandom of="$MNT/f$i" bs=64k count=32 2>/dev/null; done
sync
(cd "$MNT" && md5sum f1 f2 f3 f4) >"$W/sums" || fail "md5sum"
ok "4 files of 2 MiB, synced"

step "secondary and down refuse while attached"
$A secondary 2>/dev/null && fail "secondary succeeded"
$A down 2>/dev/null && fail "down succeeded"
ok "both refused"

# A writer that keeps creating, syncing and checking files.
writer() {
	local i=0
	while [ $i -lt 400 ] && [ ! -e "$W/stop" ]; do
		dd if=/dev/urandom of="$MNT/w$((i % 8))" bs=16k count=8 2>/dev/null || echo "WRITE-ERROR $i"
		sync || echo "SYNC-ERROR $i"
		i=$((i + 1))
	done
}
base=$(io_errors)

step "kill -9 the primary's daemon during writes, then up: reattached"
writer >"$W/writer.out" 2>&1 &
writer_pid=$!
sleep 2
kill -9 "$(cat "$W/run/r0-alpha.pid")"
sleep 1
$A up >"$W/up.out" 2>&1 || fail "up after kill -9: $(cat "$W/up.out")"
grep -q "reattached $dev" "$W/up.out" || fail "up did not reattach: $(cat "$W/up.out")"
sleep 3
ok "back, and $(grep -c . "$W/writer.out") writer errors so far"

step "down --keep-attached, then up: a planned restart"
$A down --keep-attached >/dev/null || fail "down --keep-attached"
sleep 1
$A up || fail "up after down --keep-attached"
sleep 3
touch "$W/stop"
wait "$writer_pid"
writer_pid=
[ -s "$W/writer.out" ] && fail "the writer saw errors: $(head -3 "$W/writer.out")"
[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(dmesg | grep -E 'I/O error' | tail -3)"
ok "the writer ran through both restarts without an error; no I/O error in dmesg"

step "files synced before the kill are intact"
(cd "$MNT" && md5sum -c "$W/sums" >/dev/null) || fail "checksums differ"
ok "md5 match"

step "umount, fsck.ext4 -fn clean"
umount "$MNT" || fail "umount"
fsck.ext4 -fn "$dev" >"$W/fsck.out" 2>&1 || fail "fsck: $(tail -5 "$W/fsck.out")"
ok "clean"

step "down --detach; the replicas are equal"
$A down --detach >/dev/null || fail "down --detach"
[ "$(cat /sys/block/${dev#/dev/}/size)" -eq 0 ] || fail "$dev still attached"
size=$($BN status --json | grep -o '"size_bytes": [0-9]*' | grep -o '[0-9]*$')
$BN down >/dev/null
cmp -n "$size" "$W/a.img" "$W/b.img" || fail "the data areas differ"
ok "detached, equal"

echo "ATTACH PASSED ($n steps)"
