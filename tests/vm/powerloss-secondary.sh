#!/bin/bash
# Guest scenario, the secondary's half of the two-guest power loss (see
# powerloss-primary.sh; run2.sh exits with this half's status):
#
#   tests/vm/run2.sh tests/vm/powerloss-primary.sh tests/vm/powerloss-secondary.sh
#
# beta, alone in this guest, is alpha's secondary over eth0 (sync mode,
# on-peer-loss = freeze).  The host kills alpha's guest while alpha has ext4
# mounted and fio writing.  beta notices its peer gone (status), and, its
# disk still uptodate (README, "What sync mode promises": under freeze a
# sync primary acknowledges nothing its secondary lacks), is promoted with
# a plain `blkrep primary`, no --force.  It prints the time from that command
# to the first write that completed on the attached device (attach, then a
# block read and written back unchanged with O_DIRECT; printed, not
# asserted).  Then: mount (the journal replays), umount, `fsck.ext4 -fn`
# clean, mount again, and every file of alpha's MANIFEST is there with its
# size and md5.
NAME=POWERLOSS-SECONDARY
. /test/lib.sh

step "beta up on eth0, alpha's secondary across the guests"
guest_node beta 256M "on-peer-loss = freeze"
wait_for 900 peer_connected || fail "alpha did not connect in 90 s: $(status_fields "$BN" connection)"
wait_for 300 eval '[ "$(status_fields "$BN" role disk)" = "secondary uptodate" ]' ||
	fail "beta: $(status_fields "$BN" role disk connection)"
ok "beta $(status_fields "$BN" role disk), connected"

step "alpha's power goes (the host kills its qemu while fio writes)"
wait_for 1200 eval '! peer_connected' || fail "alpha still connected after 120 s"
t_gone=$EPOCHREALTIME
ok "alpha gone: beta $(status_fields "$BN" role disk connection mode on_peer_loss)"

step "promote beta with plain primary; its first write on the device"
[ "$(json disk "$BN")" = uptodate ] || fail "beta's disk is $(json disk "$BN") after the loss of a sync, freeze primary"
t0=$EPOCHREALTIME
$BN primary >"$W/primary.out" 2>&1 || fail "primary: $(cat "$W/primary.out")"
ms_primary=$(ms_since "$t0")
DEV=$($BN attach) || fail "attach on beta"
ms_attach=$(ms_since "$t0")
case $DEV in /dev/nbd[0-9]*) ;; *) fail "attach printed '$DEV'" ;; esac
# The first 4 KiB (ext4 leaves its first 1 KiB unused; its superblock
# follows), read and written back as they are: a write through the new
# primary that changes nothing before the journal replay.
dd if="$DEV" of="$W/blk0" bs=4096 count=1 iflag=direct 2>"$W/dd.out" &&
	dd if="$W/blk0" of="$DEV" bs=4096 count=1 oflag=direct conv=notrunc 2>>"$W/dd.out" ||
	fail "the first write on $DEV: $(cat "$W/dd.out")"
ms=$(ms_since "$t0")
# (The daemon's first attach also mlockall()s it: some 180 MiB of buffer
# pools faulted in, most of the attach time in a TCG guest.)
echo "PROMOTION: primary to the first completed write on $DEV: $ms ms (primary returned at $ms_primary ms, attach at $ms_attach ms; the peer was seen gone $(ms_since "$t_gone") ms before)"
ok "beta $(status_fields "$BN" role disk), $DEV"

step "the file system: journal replay, fsck -fn clean, the MANIFEST's files intact"
# Mounted at the power loss: the superblock says its journal needs a replay.
dumpe2fs -h "$DEV" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery' ||
	fail "no needs_recovery on $DEV: was it mounted at the power loss? $(dumpe2fs -h "$DEV" 2>&1 | grep -i features)"
mount -t ext4 "$DEV" "$MNT" || fail "mount $DEV (journal replay)"
umount "$MNT" || fail "umount"
fsck.ext4 -fn "$DEV" >"$W/fsck.out" 2>&1 || fail "fsck.ext4 -fn: $(tail -8 "$W/fsck.out")"
mount -t ext4 "$DEV" "$MNT" || fail "mount again"
manifest_intact 4
ok "journal replayed, fsck clean; f1..f4 match the MANIFEST; fio's files: $(ls "$MNT/fio" 2>/dev/null | tr '\n' ' ')"

step "umount, down --detach"
umount "$MNT" || fail "umount"
$BN down --detach >/dev/null || fail "down --detach"
ok "down"

echo "$NAME PASSED ($n steps)"
