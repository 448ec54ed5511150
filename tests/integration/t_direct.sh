#!/usr/bin/env bash
# --direct (O_DIRECT): round trips of aligned and unaligned I/O.  If the
# file system refuses O_DIRECT the server must fall back and say so; either
# way the data must come back.
. "$(dirname "$0")/lib.sh"
require_cmd nbdcopy qemu-io

# O_DIRECT on the disk under $T (ext4 here), not on a tmpfs.
make_random "$T/src" 32
truncate -s 32M "$T/disk.img"
start_server "$T/disk.img" --direct || finish
msg "log: $(grep -v '^+' "$SRV_LOG" | grep -iE -m2 'direct|fall' | tr '\n' ' ')"
check "--direct: nbdcopy in" nbdcopy --flush "$T/src" "$SRV_URI"
check "--direct: nbdcopy out" nbdcopy "$SRV_URI" "$T/out"
check "--direct: round trip equal" cmp "$T/src" "$T/out"
check "--direct: backing file equal" cmp "$T/src" "$T/disk.img"
check "--direct: unaligned writes and reads (512 B, odd offsets)" qemu-io -f raw "$SRV_URI" \
	-c 'write -P 0x31 512 512' -c 'read -P 0x31 512 512' \
	-c 'write -P 0x32 1000 3000' -c 'read -P 0x32 1000 3000' \
	-c 'write -P 0x33 4095 2' -c 'read -P 0x33 4095 2' \
	-c 'write -z 12345 100000' -c 'read -P 0 12345 100000' \
	-c 'discard 2M 1M' -c 'read -P 0 2M 1M' \
	-c 'write -f -P 0x34 5M 65536' -c 'flush' -c 'read -P 0x34 5M 65536'
qemu-io -f raw "$T/src" \
	-c 'write -P 0x31 512 512' -c 'write -P 0x32 1000 3000' -c 'write -P 0x33 4095 2' \
	-c 'write -z 12345 100000' -c 'write -z 2M 1M' -c 'write -P 0x34 5M 65536' >/dev/null
check "--direct: export equals the expected content" qemu-img compare -f raw -F raw "$SRV_URI" "$T/src"
if command -v fio >/dev/null && fio --enghelp=nbd >/dev/null 2>&1; then
	check "--direct: fio randwrite 4k iodepth 16 verify" fio --name=d --ioengine=nbd \
		--uri="$SRV_URI" --rw=randwrite --bs=4k --iodepth=16 --size=16M \
		--verify=crc32c --verify_fatal=1 --runtime=60
fi
stop_server && pass "server exits 0 on SIGTERM"

# On tmpfs a 6.1 kernel has no O_DIRECT: the server must fall back.
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
	shm=$(mktemp -d /dev/shm/blkrep-it.XXXXXX)
	truncate -s 8M "$shm/disk.img"
	start_server "$shm/disk.img" --direct || { rm -rf "$shm"; finish; }
	head -c 8M "$T/src" >"$T/src8"
	check "--direct on tmpfs: nbdcopy in" nbdcopy "$T/src8" "$SRV_URI"
	check "--direct on tmpfs: nbdcopy out" nbdcopy "$SRV_URI" "$T/out8"
	check "--direct on tmpfs: round trip equal" cmp "$T/src8" "$T/out8"
	stop_server && pass "server exits 0 on SIGTERM"
	msg "tmpfs log: $(grep -v '^+' "$SRV_LOG" | tr '\n' ' ' | cut -c1-300)"
	rm -rf "$shm"
else
	msg "no tmpfs at /dev/shm: fallback not exercised"
fi
finish
