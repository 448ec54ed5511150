#!/usr/bin/env bash
# A backing store without O_DIRECT and without fallocate (ramfs has
# neither; so does tmpfs on some kernels): --direct falls back to buffered
# I/O, TRIM and WRITE_ZEROES fall back to writing zeros, each said once in
# the log, and no client request fails.  FAST_ZERO is refused with ENOTSUP
# rather than done slowly.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io nbdcopy
require_nbdsh
[ "$(id -u)" -eq 0 ] || skip "mounting ramfs needs root"
mkdir -p "$T/ramfs"
mount -t ramfs ramfs "$T/ramfs" 2>/dev/null || skip "cannot mount ramfs here"
trap 'umount "$T/ramfs" 2>/dev/null; _cleanup' EXIT

make_random "$T/src" 16
cp "$T/src" "$T/ramfs/disk.img"
start_server "$T/ramfs/disk.img" --direct || finish
check "writes, TRIM, WRITE_ZEROES (with and without NO_HOLE) all succeed" qemu-io -f raw "$SRV_URI" \
	-c 'write -P 0x41 0 64k' -c 'read -P 0x41 0 64k' \
	-c 'discard 1M 3M' -c 'read -P 0 1M 3M' \
	-c 'write -z 5M 1M' -c 'read -P 0 5M 1M' \
	-c 'write -z -u 7M 2M' -c 'read -P 0 7M 2M' \
	-c 'write -f -z 10M 64k' -c 'read -P 0 10M 64k' \
	-c 'write -P 0x42 12345 4000' -c 'read -P 0x42 12345 4000' -c flush
qemu-io -f raw "$T/src" -c 'write -P 0x41 0 64k' -c 'write -z 1M 3M' -c 'write -z 5M 1M' \
	-c 'write -z 7M 2M' -c 'write -z 10M 64k' -c 'write -P 0x42 12345 4000' >/dev/null
check "export equals the expected content" qemu-img compare -f raw -F raw "$SRV_URI" "$T/src"
cat >"$T/fast.py" <<'PYEOF'
import errno, nbd
h = nbd.NBD()
h.connect_uri(URI)
try:
    h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)
    print("FAIL - FAST_ZERO without a fast way to zero: accepted")
except nbd.Error as e:
    # libnbd reports the errno as a number or by name, depending on version
    ok = e.errno in (errno.ENOTSUP, "ENOTSUP", "EOPNOTSUPP")
    print(("ok" if ok else "FAIL") + " - FAST_ZERO without a fast way to zero: errno %s" % e.errno)
print(("ok" if h.pread(4096, 0) == b"\x41" * 4096 else "FAIL") + " - connection still serves after the refusal")
PYEOF
run_checks "fast zero" nbdsh -u "$SRV_URI" -c "URI='$SRV_URI'" -c "exec(open('$T/fast.py').read())"
stop_server && pass "server exits 0 on SIGTERM"
log=$(grep -v '^+' "$SRV_LOG")
check_eq "log says O_DIRECT is not supported, once" "$(grep -c 'O_DIRECT not supported' <<<"$log")" 1
check_eq "log says punch hole is not supported, once" "$(grep -c 'does not support fallocate punch hole' <<<"$log")" 1
check_eq "log says zero range is not supported, once" "$(grep -c 'does not support fallocate zero range' <<<"$log")" 1
finish
