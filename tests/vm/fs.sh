#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/fs.sh): a file system on the
# replicated volume, and both replicas byte-identical afterwards.
#
# alpha (root network namespace) and beta (namespace b) replicate over a
# veth pair (see lib.sh: why alpha is not in a namespace of its own):
#  - beta's daemon runs in netns b and listens on 10.0.0.2 only;
#  - `blkrep attach` on alpha prints the /dev/nbdN the kernel picked;
#    mkfs.ext4, mount, files of known md5 (1..6 MiB and 200 small ones),
#    sync; the statistics count replicated bytes;
#  - umount: at once, the data areas (size_bytes from status --json) of
#    a.img and b.img are equal; the pair is synced (nothing out of sync);
#    fsck.ext4 -fn is clean on the device and on beta's image;
#  - mount again: the files read back from the device (caches dropped)
#    have their sums; umount, `down --detach`, the device goes away.
NAME=FS
. /test/lib.sh

step "a zeroed pair over a veth: alpha in the root namespace, beta in netns b"
net_up
pair_up 160M
[ "$(ip netns identify "$(daemon_pid beta)")" = b ] || fail "beta's daemon is not in netns b"
[ -z "$(ip netns identify "$(daemon_pid alpha)")" ] || fail "alpha's daemon is not in the root namespace"
$IN_B ip -o addr show vb | grep -q ' 10.0.0.2/24' || fail "vb has no 10.0.0.2"
ok "alpha $(daemon_pid alpha) (root), beta $(daemon_pid beta) (netns b), connected, alpha primary"

step "blkrep attach prints the device; mkfs.ext4; mount"
attach_mount
ok "$DEV ($(cat "/sys/block/${DEV#/dev/}/backend")), ext4 mounted"

step "secondary, down and a second attach refuse while it is attached"
$A secondary >/dev/null 2>&1 && fail "secondary succeeded while attached"
$A down >/dev/null 2>&1 && fail "down succeeded while attached"
$A attach >/dev/null 2>&1 && fail "a second attach succeeded"
[ "$(json role)" = primary ] || fail "alpha is $(json role)"
ok "all three refused; alpha still primary with $DEV"

step "files with known checksums, synced"
write_files 6
for i in $(seq 200); do echo "small file $i" >"$MNT/files/s$i"; done
sync
(cd "$MNT/files" && md5sum f* s*) >"$W/sums" || fail "md5sum"
rep=$(json replicated_bytes)
[ "${rep:-0}" -gt $((21 << 20)) ] || fail "replicated_bytes $rep: less than the files"
ok "206 files, $rep bytes replicated"

step "umount: the replicas' data areas are equal at once"
umount "$MNT" || fail "umount"
data_areas_equal
synced_equal
ok "$SIZE bytes equal; synced, out of sync 0 on both, and still equal"

step "fsck.ext4 -fn clean on the device and on beta's image"
fsck.ext4 -fn "$DEV" >"$W/fsck.out" 2>&1 || fail "fsck $DEV: $(tail -5 "$W/fsck.out")"
fsck.ext4 -fn "$W/b.img" >"$W/fsck-b.out" 2>&1 || fail "fsck b.img: $(tail -5 "$W/fsck-b.out")"
ok "both clean"

step "mount again: the files read back with their sums"
mount -t ext4 "$DEV" "$MNT" || fail "mount again"
files_intact
ok "md5 match"

step "umount, down --detach; the replicas are still equal"
umount "$MNT" || fail "umount"
data_areas_equal
pids="$(daemon_pid alpha) $(daemon_pid beta)"
$A down --detach >/dev/null || fail "down --detach"
[ "$(cat "/sys/block/${DEV#/dev/}/size")" -eq 0 ] || fail "$DEV still attached"
$BN down >/dev/null || fail "beta down"
daemons_exit $pids
cmp -n "$SIZE" "$W/a.img" "$W/b.img" >/dev/null || fail "the data areas differ after down"
ok "detached, both daemons exited, $SIZE bytes equal"

echo "$NAME PASSED ($n steps, $(elapsed) s)"
