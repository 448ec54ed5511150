#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/failover.sh): the primary host
# dies under a mounted file system and writes; the secondary takes over.
#
# alpha (root namespace) primary with ext4 on its /dev/nbdN and a writer
# running; kill -9 of alpha's daemon and the kernel side of its device gone
# too (nbd-client -d: as when the host dies).  Then on beta:
#  - `primary --force` (on-peer-loss = continue: beta is consistent, it
#    cannot know what alpha wrote alone) serves within 1 s, printed;
#  - `attach` gives a second /dev/nbdN; the file system mounts (journal
#    replay), every file synced before the kill has its checksum, and after
#    umount `fsck.ext4 -fn` is clean;
#  - new files on beta; alpha comes back (`up`): it steps back to secondary
#    (its device is gone), and receives only what changed: beta's
#    stats.resynced_bytes is far below the data area; the replicas end equal.
NAME=FAILOVER
. /test/lib.sh

step "a pair over a veth, alpha primary, ext4 with files, a writer running"
net_up
pair_up 512M "al-extents = 16"
attach_mount
write_files 4
size=$(json size_bytes)
writer() {
	local i=0
	while [ $i -lt 400 ] && [ ! -e "$W/stop" ]; do
		dd if=/dev/urandom of="$MNT/w$((i % 6))" bs=16k count=8 2>/dev/null
		sync
		i=$((i + 1))
	done
}
writer >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 2
ok "$DEV, 4 files synced, writer pid $!"

step "alpha's host dies: kill -9 its daemon, its kernel device goes"
kill -9 "$(daemon_pid alpha)" || fail "kill -9"
touch "$W/stop"
nbd-client -d "$DEV" >/dev/null 2>&1
umount -l "$MNT" 2>/dev/null
wait_for 80 eval '[ "$(json connection "$BN")" != connected ]' || fail "beta still sees alpha"
ok "alpha gone; beta: disk $(json disk "$BN")"

step "promote beta (the time to serve is printed; the target is < 1 s)"
$BN primary >/dev/null 2>&1 && fail "plain primary on a consistent disk was accepted"
t0=$EPOCHREALTIME
$BN primary --force >/dev/null || fail "primary --force"
DEV2=$($BN attach) || fail "attach on beta"
ms=$(ms_since "$t0")
ok "beta primary and attached as $DEV2 in $ms ms (a figure, not checked: TCG and a noisy host)"

step "the file system on beta: journal replayed, files intact, fsck clean"
mount -t ext4 "$DEV2" "$MNT" || fail "mount $DEV2"
files_intact
umount "$MNT" || fail "umount"
fsck.ext4 -fn "$DEV2" >"$W/fsck.out" 2>&1 || fail "fsck: $(tail -5 "$W/fsck.out")"
mount -t ext4 "$DEV2" "$MNT" || fail "mount again"
head -c 3000000 /dev/urandom >"$MNT/after" && sync || fail "write on beta"
ok "every synced file has its checksum, fsck -fn clean, new file written"

step "alpha comes back: steps back, receives only what changed"
$A up >"$W/up.out" 2>&1 || fail "alpha up: $(cat "$W/up.out")"
wait_for 300 synced || fail "not synced: alpha $(status_fields "$A" role disk connection out_of_sync_bytes), beta $(status_fields "$BN" role disk connection out_of_sync_bytes)"
[ "$(json role)" = secondary ] || fail "alpha is $(json role)"
grep -q "became primary while this node was down" "$W/run/r0-alpha.log" || fail "alpha's log does not say why"
rs=$(json resynced_bytes "$BN")
[ "$rs" -gt 0 ] && [ "$rs" -lt $((size / 4)) ] || fail "beta resynced $rs bytes of $size"
ok "alpha secondary and in sync; beta resent $rs of $size bytes"

step "umount; the replicas are equal"
umount "$MNT" || fail "umount"
synced_equal
$BN down --detach >/dev/null || fail "down --detach"
$A down >/dev/null || fail "alpha down"
cmp -n "$size" "$W/a.img" "$W/b.img" >"$W/cmp.out" 2>&1 ||
	fail "the data areas differ after down: $(head -1 "$W/cmp.out"); $(extents_differ "$size" "$W/a.img" "$W/b.img")"
ok "equal"

echo "$NAME PASSED ($n steps)"
