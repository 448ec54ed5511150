#!/usr/bin/env bash
# The main job, on a sensible default: build blkrep, start a replicated
# pair on this machine (nodes alpha and beta, 1 GiB file-backed each, on
# loopback, sync mode), attach the volume as a block device (/dev/nbdN where
# the kernel has nbd.ko, else a loop device over FUSE: attach --loop), make
# an ext4 file system on it, mount it, write a file, and print `status` of
# both nodes and the proof that the replicas are equal.  Then it takes it
# all down again, unless run with --keep (which leaves the pair running and
# mounted, and prints how to stop it).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = --keep ] && keep=true
. tests/ensure-make.sh
make -s deps
make -s -j2

D=$PWD/.cache/demo
MNT=$D/mnt
export BLKREP_RUN_DIR=$D/run
B="$PWD/blkrep -c $D/r0.conf"
A="$B --node alpha"
BN="$B --node beta"
t0=$(date +%s.%N)
say() { printf '\n== %s\n' "$*"; }

# Says why when alpha cannot be taken down (its device still in use, say),
# instead of leaving it running without a word.
stop_all() {
	local err
	mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
	if ! err=$($A down --detach 2>&1 >/dev/null) && ! $A down >/dev/null 2>&1; then
		case $err in
		*"no blkrep daemon"*) ;;
		*) echo "demo: alpha is still up: $err" >&2 ;;
		esac
	fi
	$BN down >/dev/null 2>&1 || true
}
if ! $keep; then trap stop_all EXIT; fi
stop_all	# a previous --keep run

mkdir -p "$D" "$MNT"
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$D/secret"
chmod 600 "$D/secret"
cat >"$D/r0.conf" <<EOF
[resource]
name = r0
secret-file = $D/secret
mode = sync
[node alpha]
address = 127.0.0.1:7789
backing = $D/alpha.img
nbd = unix:$D/alpha.nbd
[node beta]
address = 127.0.0.1:7790
backing = $D/beta.img
EOF
rm -f "$D/alpha.img" "$D/beta.img"
truncate -s 1G "$D/alpha.img" "$D/beta.img"

say "a pair: create (both blank, so --zeroed), up, alpha primary"
$A create --zeroed && $BN create --zeroed
$A up && $BN up
for _ in $(seq 100); do
	$A status --json | grep -q '"connection": "connected"' && break
	sleep 0.1
done
$A primary

say "attach the volume as a block device"
if dev=$($A attach 2>"$D/attach.err"); then
	echo "$dev (the kernel's NBD client)"
else
	echo "no /dev/nbdN here ($(cat "$D/attach.err")); using a loop device"
	dev=$($A attach --loop)
	echo "$dev (a loop device over FUSE)"
fi

say "mkfs.ext4 $dev && mount $dev $MNT"
mkfs.ext4 -q "$dev"
mount "$dev" "$MNT"
head -c 16M /dev/urandom >"$MNT/hello.bin"
sync
df -h "$MNT" | tail -1
md5sum "$MNT/hello.bin"

say "status"
$A status
echo
$BN status
size=$($A status --json | sed -n 's/.*"size_bytes": \([0-9]*\).*/\1/p')
if cmp -n "$size" "$D/alpha.img" "$D/beta.img"; then
	echo "the two replicas' data areas are byte-identical"
fi
printf '\n(%.1f s)\n' "$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo 0)"

if $keep; then
	cat <<MSG

The pair is running and $dev is mounted on $MNT.  Try:
  BLKREP_RUN_DIR=$BLKREP_RUN_DIR $A status
  BLKREP_RUN_DIR=$BLKREP_RUN_DIR $A mode async
Stop it all with:  umount $MNT && BLKREP_RUN_DIR=$BLKREP_RUN_DIR $A down --detach && BLKREP_RUN_DIR=$BLKREP_RUN_DIR $BN down
MSG
else
	say "taking it all down (run with --keep to leave it running)"
fi
