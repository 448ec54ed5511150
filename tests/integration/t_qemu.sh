#!/usr/bin/env bash
# qemu-io and qemu-img (qemu's NBD client): write -P / read -P, write -z,
# discard then read zeros, write -f (FUA), flush, several aio_write +
# aio_flush; the same commands run on a local reference copy, and
# qemu-img compare finds the export, the backing file and the reference
# identical.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io qemu-img

make_pattern "$T/disk.img" 64
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" || finish
uri=$SRV_URI

ops=(
	-c 'write -P 0x5a 0 1M' -c 'read -P 0x5a 0 1M'
	-c 'write -z 1M 1M' -c 'read -P 0 1M 1M'
	-c 'write -P 0x66 3M 1M' -c 'discard 3M 1M' -c 'read -P 0 3M 1M'
	-c 'write -f -P 0x33 4M 64k' -c 'read -P 0x33 4M 64k'
	-c 'write -P 0x34 5M 4k' -c 'flush' -c 'read -P 0x34 5M 4k'
	-c 'aio_write -P 0x11 8M 64k' -c 'aio_write -P 0x12 9M 64k'
	-c 'aio_write -P 0x13 10M 1M' -c 'aio_write -P 0x14 12M 256k'
	-c 'aio_write -P 0x15 13M 512' -c 'aio_write -f -P 0x16 14M 128k'
	-c 'aio_flush'
	-c 'read -P 0x11 8M 64k' -c 'read -P 0x12 9M 64k' -c 'read -P 0x13 10M 1M'
	-c 'read -P 0x14 12M 256k' -c 'read -P 0x15 13M 512' -c 'read -P 0x16 14M 128k'
	-c 'write -z -u 16M 2M' -c 'read -P 0 16M 2M'
	-c 'write -P 0x77 63M 1M' -c 'read -P 0x77 63M 1M'
	-c 'writev -P 0x21 20M 4k 8k 64k' -c 'readv -P 0x21 20M 4k 8k 64k'
	-c 'write -P 0x22 24M 33M' -c 'read -P 0x22 24M 33M'
	-c 'flush'
)
check "qemu-io on the local reference copy" qemu-io -f raw "$T/ref.img" "${ops[@]}"
check "qemu-io write/read/zero/discard/FUA/flush/aio on the export" \
	qemu-io -f raw "$uri" "${ops[@]}"
if grep -qiE 'fail|error' "$T/last.out" "$T/last.err"; then
	fail "qemu-io reported a failure"; show_last
else
	pass "qemu-io output has no failures"
fi
check "qemu-io -r reads the export read-only" qemu-io -r -f raw "$uri" -c 'read -P 0x5a 0 1M' -c 'read -P 0x77 63M 1M'
check "qemu-img compare: export vs reference" qemu-img compare -f raw -F raw "$uri" "$T/ref.img"
check "qemu-img compare: export vs backing file" qemu-img compare -f raw -F raw "$uri" "$T/disk.img"
check "qemu-img info on the export" qemu-img info -f raw --output=json "$uri"
grep -q '"virtual-size": 67108864' "$T/last.out" && pass "qemu-img info: size 64 MiB" ||
	fail "qemu-img info: size is not 64 MiB"
check "qemu-img map on the export" qemu-img map -f raw --output=json "$uri"
check "qemu-img bench, 4k writes, 2000 requests, depth 16" \
	qemu-img bench -f raw -w -c 2000 -d 16 -s 4k -o 32M -S 4k "$uri"
check "qemu-io: after bench, the unrelated regions are intact" \
	qemu-io -r -f raw "$uri" -c 'read -P 0x5a 0 1M' -c 'read -P 0x77 63M 1M'
stop_server && pass "server exits 0 on SIGTERM"
# bench wrote zeros (its default pattern), 2000 x 4k from 32M: the same.
qemu-io -f raw "$T/ref.img" -c 'write -P 0 32M 8000k' >/dev/null
check "backing file equals the reference" cmp "$T/ref.img" "$T/disk.img"
finish
