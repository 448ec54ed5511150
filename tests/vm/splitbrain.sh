#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/splitbrain.sh): split brain is
# detected, nothing is overwritten, and `resolve --discard-local --save-to`
# keeps what it discards.
#
# alpha (root namespace) primary with ext4 on its /dev/nbdN, files synced
# to both.  The veth goes down; once both nodes have noticed, beta's image
# is copied (the last data both shared).  alpha writes files of its own;
# beta is promoted (`primary --force`), attached (ioctls: it lives in netns
# b), mounts and writes other files.  Both unmount, alpha detaches and
# steps back to secondary, the link comes back:
#  - both nodes' status shows peer connection splitbrain, last_error says
#    split brain, and neither data area changed;
#  - `resolve --discard-local --save-to FILE` on alpha: the pair connects
#    and beta resends a bitmap-sized amount (stats.resynced_bytes at most
#    both nodes' out_of_sync_bytes, under a quarter of the volume); the
#    data areas end equal; beta's file system has its files and the shared
#    ones, and not alpha's;
#  - FILE is a BLKRSAVE file from node alpha holding alpha's out-of-sync
#    bytes, and writing its records over the copy of the shared data gives
#    alpha's discarded data area byte for byte; served and mounted, that
#    copy has alpha's files with their checksums, and fsck is clean.
NAME=SPLITBRAIN
. /test/lib.sh

step "a pair over a veth, alpha primary, ext4 with files on both"
net_up
pair_up 96M
attach_mount
write_files 2
size=$(json size_bytes)
# data_copy IMG COPY: the data area of IMG.
data_copy() { dd if="$1" of="$2" bs=1M count="$size" iflag=count_bytes 2>/dev/null || fail "copy the data area of $1"; }
ok "$DEV, 2 files synced to both, data area $size bytes"

step "the link goes down; both nodes notice; the shared data is copied"
ip link set va down || fail "va down"
wait_secs 20 eval '[ "$(json connection)" != connected ] && [ "$(json connection "$BN")" != connected ]' ||
	fail "still connected 20 s after the link went: alpha $(json connection), beta $(json connection "$BN")"
data_copy "$W/b.img" "$W/base.img"
ok "alpha $(status_fields "$A" role disk connection), beta $(status_fields "$BN" role disk connection)"

step "alpha writes files of its own"
mkdir -p "$MNT/alpha" || fail "mkdir on alpha"
head -c 1500000 /dev/urandom >"$MNT/alpha/a1" && head -c 300000 /dev/urandom >"$MNT/alpha/a2" && sync ||
	fail "write on alpha"
(cd "$MNT/alpha" && md5sum a1 a2) >"$W/sums.alpha" || fail "md5sum on alpha"
ok "alpha: out_of_sync_bytes $(json out_of_sync_bytes)"

step "beta is promoted (primary --force), attached, and writes other files"
$BN primary --force >"$W/primary.out" 2>&1 || fail "primary --force on beta: $(cat "$W/primary.out")"
DEV2=$($BN attach /dev/nbd1) || fail "attach on beta"
mkdir -p /mnt/b
mount -t ext4 "$DEV2" /mnt/b || fail "mount $DEV2"
(cd /mnt/b/files && md5sum -c "$W/sums" >/dev/null 2>&1) || fail "beta lacks the shared files"
[ -e /mnt/b/alpha ] && fail "beta has alpha's files"
mkdir -p /mnt/b/beta && head -c 1000000 /dev/urandom >/mnt/b/beta/b1 && sync || fail "write on beta"
(cd /mnt/b/beta && md5sum b1) >"$W/sums.beta" || fail "md5sum on beta"
umount /mnt/b || fail "umount on beta"
ok "beta primary, $DEV2; out_of_sync_bytes $(json out_of_sync_bytes "$BN")"

step "alpha unmounts, detaches and steps back; the link comes back: split brain on both"
umount "$MNT" || fail "umount on alpha"
$A detach >/dev/null || fail "detach on alpha"
$A secondary >/dev/null || fail "secondary on alpha"
oos_a=$(json out_of_sync_bytes)
oos_b=$(json out_of_sync_bytes "$BN")
data_copy "$W/a.img" "$W/a.pre"
data_copy "$W/b.img" "$W/b.pre"
cmp -s -n "$size" "$W/a.pre" "$W/b.pre" && fail "the two sides did not diverge"
ip link set va up || fail "va up"
wait_secs 30 eval '[ "$(json connection)" = splitbrain ] && [ "$(json connection "$BN")" = splitbrain ]' ||
	fail "no split brain on both within 30 s: alpha $(status_fields "$A" role connection last_error), beta $(status_fields "$BN" role connection last_error)"
ea=$($A status --json | grep -o '"last_error": "[^"]*"')
eb=$($BN status --json | grep -o '"last_error": "[^"]*"')
grep -q 'split brain' <<<"$ea" || fail "alpha's last_error: $ea"
grep -q 'split brain' <<<"$eb" || fail "beta's last_error: $eb"
# Give a wrong resync its chance to do harm before looking.
sleep 2
[ "$(json connection)" = splitbrain ] && [ "$(json connection "$BN")" = splitbrain ] ||
	fail "split brain did not last: alpha $(json connection), beta $(json connection "$BN")"
cmp -n "$size" "$W/a.img" "$W/a.pre" >"$W/cmp.out" 2>&1 || fail "alpha's data changed: $(cat "$W/cmp.out")"
cmp -n "$size" "$W/b.img" "$W/b.pre" >"$W/cmp.out" 2>&1 || fail "beta's data changed: $(cat "$W/cmp.out")"
rm -f "$W/b.pre"
ok "splitbrain on both, nothing overwritten; out of sync: alpha $oos_a, beta $oos_b bytes"
ok "alpha: $ea"

step "resolve --discard-local --save-to on alpha: a bitmap-sized resync from beta"
rs0=$(json resynced_bytes "$BN")
t0=$EPOCHREALTIME
$A resolve --discard-local --save-to "$W/alpha.saved" >"$W/resolve.out" 2>&1 ||
	fail "resolve: $(cat "$W/resolve.out")"
ok "$(cat "$W/resolve.out")"
wait_synced
ms=$(ms_since "$t0")
rs=$(($(json resynced_bytes "$BN") - rs0))
[ "$(json role)" = secondary ] && [ "$(json role "$BN")" = primary ] ||
	fail "roles after the resolve: alpha $(json role), beta $(json role "$BN")"
[ "$rs" -gt 0 ] && [ "$rs" -le $((oos_a + oos_b)) ] && [ $((rs * 4)) -lt "$size" ] ||
	fail "beta resynced $rs bytes (out of sync: alpha $oos_a + beta $oos_b; data area $size)"
synced_equal
cmp -s -n "$size" "$W/a.img" "$W/a.pre" && fail "alpha's data area is still its own"
ok "in sync after $ms ms; beta resent $rs bytes (alpha $oos_a + beta $oos_b out of sync) of $size; equal"

step "the save file holds alpha's discarded data"
save_parse "$W/alpha.saved"
[ "$SAVE_NODE" = alpha ] || fail "the save file is from node '$SAVE_NODE'"
[ "$SAVE_BYTES" = "$oos_a" ] || fail "the save file holds $SAVE_BYTES bytes; alpha had $oos_a out of sync"
save_apply "$W/alpha.saved" "$W/base.img"
cmp -n "$size" "$W/base.img" "$W/a.pre" >"$W/cmp.out" 2>&1 ||
	fail "the shared data plus the save file is not alpha's data: $(cat "$W/cmp.out")"
rm -f "$W/a.pre"
scratch_mount "$W/base.img" /mnt/r
(cd /mnt/r/alpha && md5sum -c "$W/sums.alpha" >"$W/md5.out" 2>&1) || fail "alpha's files: $(cat "$W/md5.out")"
(cd /mnt/r/files && md5sum -c "$W/sums" >"$W/md5.out" 2>&1) || fail "the shared files: $(cat "$W/md5.out")"
[ -e /mnt/r/beta ] && fail "beta's files in alpha's data"
scratch_umount
ok "$SAVE_RECORDS records, $SAVE_BYTES bytes; shared data + records = alpha's data area; its files intact, fsck clean"

step "beta's file system: its files and the shared ones, not alpha's"
beta_fs_final "$DEV2" beta "$W/sums.beta" alpha
ok "intact, fsck clean, both down"

echo "$NAME PASSED ($n steps)"
