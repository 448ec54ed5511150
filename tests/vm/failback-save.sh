#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/failback-save.sh): the failback
# save file holds the async writes that never reached the new primary.
#
# alpha (root namespace) primary in async mode, ext4 on its /dev/nbdN, files
# synced to both.  The veth goes down and alpha at once writes more files
# and syncs (acknowledged in async mode, never sent), then its daemon is
# killed (kill -9) and its kernel device goes (nbd-client -d: as when the
# host dies).  Once beta has noticed, both data areas are copied: beta's is
# the data alpha's writes never reached.  beta is promoted (`primary
# --force`), attached (ioctls: it lives in netns b), and writes files of its
# own; it lacks alpha's last files.  The link comes back and alpha comes
# back (`up`, BLKREP_SAVE_DIR unset):
#  - it steps back to secondary and the pair syncs, with beta's data;
#  - before the resync overwrote them, alpha saved its own writes to one
#    file in /var/lib/blkrep (the default save directory), named in its log;
#  - that file is a BLKRSAVE file from node alpha, and its records written
#    over beta's copy give alpha's data area byte for byte: served and
#    mounted, that copy has the files only alpha wrote, with their
#    checksums, and fsck is clean after the journal replay;
#  - the data areas end equal; beta's file system has its own files and the
#    shared ones, and not alpha's lost ones.
# The volume is 96 MiB with al-extents = 16 and bitmap-granularity = 1M: a
# crashed primary saves its whole activity log too, and with the default
# log (512 extents) that is all of a volume mkfs touched, which would make
# the check empty; 1 MiB records keep the shell's parsing short.  max-lag =
# 32M: an attached daemon mlockall()s its lag buffer, with two of them and
# two data-area copies in tmpfs the 1 GiB guest would run short.
NAME=FAILBACK-SAVE
. /test/lib.sh
unset BLKREP_SAVE_DIR
SAVE_DIR=/var/lib/blkrep

step "a pair over a veth, alpha primary in async mode, ext4 with files on both"
net_up
pair_up 96M "al-extents = 16" "bitmap-granularity = 1M" "max-lag = 32M"
attach_mount
write_files 2
$A mode async >"$W/mode.out" 2>&1 || fail "mode async: $(cat "$W/mode.out")"
size=$(json size_bytes)
# data_copy IMG COPY: the data area of IMG.
data_copy() { dd if="$1" of="$2" bs=1M count="$size" iflag=count_bytes 2>/dev/null || fail "copy the data area of $1"; }
wait_synced
[ "$(json mode)" = async ] || fail "alpha's mode is $(json mode)"
ok "$DEV, 2 files synced to both, mode async, data area $size bytes"

step "the link goes down; alpha writes and syncs more files; its daemon is killed"
ip link set va down || fail "va down"
mkdir -p "$MNT/lost" && head -c 1200000 /dev/urandom >"$MNT/lost/l1" &&
	head -c 200000 /dev/urandom >"$MNT/lost/l2" && sync || fail "write on alpha"
(cd "$MNT/lost" && md5sum l1 l2) >"$W/sums.lost" || fail "md5sum on alpha"
st=$(status_fields "$A" role connection lag_bytes out_of_sync_bytes)
read -r role conn lag oos <<<"$st"
[ "$role" = primary ] || fail "alpha is $role"
[ $((lag + oos)) -gt 0 ] || fail "alpha's writes are neither lagging nor out of sync: $st"
kill -9 "$(daemon_pid alpha)" || fail "kill -9"
nbd-client -d "$DEV" >/dev/null 2>&1
umount -l "$MNT" 2>/dev/null
ok "alpha (role connection lag_bytes out_of_sync_bytes): $st; killed"

step "beta notices; both data areas are copied"
wait_secs 20 eval '[ "$(json connection "$BN")" != connected ]' || fail "beta still sees alpha after 20 s"
[ "$(json disk "$BN")" = consistent ] || fail "beta's disk is $(json disk "$BN")"
data_copy "$W/a.img" "$W/a.pre"
data_copy "$W/b.img" "$W/base.img"
cmp -s -n "$size" "$W/a.pre" "$W/base.img" && fail "beta has every write of alpha's"
ok "beta $(status_fields "$BN" role disk connection); the data areas differ"

step "beta is promoted (primary --force), attached; alpha's last files are not there; beta writes"
$BN primary --force >"$W/primary.out" 2>&1 || fail "primary --force on beta: $(cat "$W/primary.out")"
DEV2=$($BN attach /dev/nbd1) || fail "attach on beta"
mkdir -p /mnt/b
mount -t ext4 "$DEV2" /mnt/b || fail "mount $DEV2"
(cd /mnt/b/files && md5sum -c "$W/sums" >/dev/null 2>&1) || fail "beta lacks the shared files"
[ -e /mnt/b/lost/l1 ] && [ "$(md5sum </mnt/b/lost/l1)" = "$(grep ' l1$' "$W/sums.lost" | cut -d' ' -f1)  -" ] &&
	fail "alpha's lost file reached beta"
mkdir -p /mnt/b/new && head -c 1000000 /dev/urandom >/mnt/b/new/n1 && sync || fail "write on beta"
(cd /mnt/b/new && md5sum n1) >"$W/sums.beta" || fail "md5sum on beta"
umount /mnt/b || fail "umount on beta"
ok "beta primary, $DEV2; alpha's lost files absent; beta out_of_sync_bytes $(json out_of_sync_bytes "$BN")"

step "the link comes back, alpha comes back: it steps back, saves its own writes, syncs"
ip link set va up || fail "va up"
nsaved=$(ls "$SAVE_DIR" 2>/dev/null | wc -l)
rs0=$(json resynced_bytes "$BN")
$A up >"$W/up.out" 2>&1 || fail "alpha up: $(cat "$W/up.out")"
wait_synced
[ "$(json role)" = secondary ] && [ "$(json role "$BN")" = primary ] ||
	fail "roles: alpha $(json role), beta $(json role "$BN")"
rs=$(($(json resynced_bytes "$BN") - rs0))
line=$(grep -m1 "saved [0-9]* bytes of this node's own writes" "$W/run/r0-alpha.log") ||
	fail "alpha's log names no save file"
sfile=$(sed -n 's/.* to \([^ ]*\) (blkrep restore-saved.*/\1/p' <<<"$line")
[ -n "$sfile" ] && [ -f "$sfile" ] || fail "the file named in the log ('$sfile') does not exist: $line"
[ "$(dirname "$sfile")" = "$SAVE_DIR" ] || fail "$sfile is not in $SAVE_DIR"
[ "$(ls "$SAVE_DIR" | wc -l)" = $((nsaved + 1)) ] || fail "$SAVE_DIR holds: $(ls "$SAVE_DIR")"
ok "alpha's log: $line"
[ "$rs" -gt 0 ] && [ "$rs" -lt "$size" ] || fail "beta resent $rs bytes of $size"
ok "beta resent $rs bytes of $size; guest memory available: $(free -m | awk '/^Mem:/ { print $7 }') MiB"

step "the save file holds alpha's writes that beta lacked"
save_parse "$sfile"
[ "$SAVE_NODE" = alpha ] || fail "the save file is from node '$SAVE_NODE'"
[ "$SAVE_BYTES" -lt "$size" ] || fail "alpha saved all of its data area ($SAVE_BYTES bytes)"
save_apply "$sfile" "$W/base.img"
cmp -n "$size" "$W/base.img" "$W/a.pre" >"$W/cmp.out" 2>&1 ||
	fail "beta's data plus the save file is not alpha's data: $(cat "$W/cmp.out")"
scratch_mount "$W/base.img" /mnt/r
(cd /mnt/r/lost && md5sum -c "$W/sums.lost" >"$W/md5.out" 2>&1) || fail "alpha's lost files: $(cat "$W/md5.out")"
(cd /mnt/r/files && md5sum -c "$W/sums" >"$W/md5.out" 2>&1) || fail "the shared files: $(cat "$W/md5.out")"
[ -e /mnt/r/new ] && fail "beta's files in alpha's data"
scratch_umount
ok "$SAVE_RECORDS records, $SAVE_BYTES bytes; beta's data + records = alpha's data area; its files intact, fsck clean"

step "the replicas are equal and hold beta's data"
synced_equal
cmp -s -n "$size" "$W/a.img" "$W/a.pre" && fail "alpha's data area is still its own"
rm -f "$W/a.pre" "$W/base.img"
beta_fs_final "$DEV2" new "$W/sums.beta" lost/l1
ok "equal; beta's files and the shared ones intact, fsck clean, both down"

echo "$NAME PASSED ($n steps)"
