#!/usr/bin/env bash
# A block device as the backing store: a loop device over a file.  Size
# comes from BLKGETSIZE64; round trip through NBD lands in the file.
. "$(dirname "$0")/lib.sh"
require_cmd losetup nbdcopy nbdinfo

make_pattern "$T/backing.img" 48
losetup_file "$T/backing.img" || skip "losetup failed: $(cat "$T/losetup.err")"
dev=$LOOP_DEV
[ -b "$dev" ] || skip "$dev is not a block device"
msg "using $dev"
start_server "$dev" || finish
check "nbdinfo --size on the loop device export" nbdinfo --size "$SRV_URI"
check_eq "export size equals the file size" "$(cat "$T/last.out")" "$(file_size "$T/backing.img")"
check "read the device export" nbdcopy "$SRV_URI" "$T/before"
check "device export reads the file's content" cmp "$T/before" "$T/backing.img"
make_random "$T/src" 48
check "nbdcopy src -> device export" nbdcopy --flush "$T/src" "$SRV_URI"
check "nbdcopy device export -> out" nbdcopy "$SRV_URI" "$T/out"
check "round trip equal" cmp "$T/src" "$T/out"
if command -v qemu-io >/dev/null; then
	check "qemu-io zero, discard, FUA, flush on the device" qemu-io -f raw "$SRV_URI" \
		-c 'write -z 1M 1M' -c 'read -P 0 1M 1M' \
		-c 'discard 4M 2M' -c 'read -P 0 4M 2M' \
		-c 'write -f -P 0x44 8M 64k' -c 'flush' -c 'read -P 0x44 8M 64k'
	qemu-io -f raw "$T/src" -c 'write -z 1M 1M' -c 'write -z 4M 2M' -c 'write -P 0x44 8M 64k' >/dev/null
fi
if command -v nbdinfo >/dev/null; then
	check "nbdinfo --map on the device" nbdinfo --map "$SRV_URI"
fi
stop_server && pass "server exits 0 on SIGTERM"
sync
check "the loop device's file holds what was written" cmp "$T/src" "$T/backing.img"

start_server "$dev" --direct || finish
check "--direct on the device: read" nbdcopy "$SRV_URI" "$T/out2"
check "--direct on the device: content" cmp "$T/src" "$T/out2"
stop_server && pass "server exits 0 on SIGTERM"
finish
