#!/usr/bin/env bash
# --read-only: reads work (nbdcopy, qemu-io), every kind of write fails
# with EPERM and leaves the connection usable, and the file is untouched.
. "$(dirname "$0")/lib.sh"
require_nbdsh
require_cmd nbdcopy

make_random "$T/disk.img" 16
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" --read-only || finish

check "nbdcopy reads the read-only export" nbdcopy "$SRV_URI" "$T/out"
check "read data equals the file" cmp "$T/out" "$T/ref.img"
cat >"$T/ro.py" <<'PYEOF'
import errno, nbd
M = 1 << 20
print(("ok - " if h.is_read_only() else "FAIL - ") + "READ_ONLY flag advertised")
h.set_strict_mode(0)
for desc, fn, args in (
    ("WRITE", h.pwrite, (b"\xee" * 4096, 0)),
    ("WRITE with FUA", h.pwrite, (b"\xee" * 4096, M, nbd.CMD_FLAG_FUA)),
    ("TRIM", h.trim, (M, 0)),
    ("WRITE_ZEROES", h.zero, (M, 2 * M)),
    ("WRITE_ZEROES with NO_HOLE", h.zero, (M, 2 * M, nbd.CMD_FLAG_NO_HOLE)),
):
    try:
        fn(*args)
        print("FAIL - read-only %s succeeded" % desc)
    except nbd.Error as e:
        print(("ok - " if e.errnum == errno.EPERM else "FAIL - ")
              + "read-only %s -> %s (want EPERM)" % (desc, errno.errorcode.get(e.errnum, e.errnum)))
    try:
        h.pread(4096, 0)
        print("ok - after read-only %s the handle still reads" % desc)
    except nbd.Error as e:
        print("FAIL - after read-only %s: %s" % (desc, e))
h.flush()
print("ok - FLUSH on a read-only export")
h.cache(M, 0) if h.can_cache() else None
h.shutdown()
PYEOF
nbdsh_checks "read-only writes" "$SRV_URI" "$T/ro.py"
if command -v qemu-io >/dev/null; then
	check "qemu-io -r reads" qemu-io -r -f raw "$SRV_URI" -c 'read 0 1M'
	check_fails "qemu-io write to the read-only export fails" \
		qemu-io -f raw "$SRV_URI" -c 'write -P 0x11 0 64k'
fi
check_fails "nbdcopy into the read-only export fails" nbdcopy "$T/out" "$SRV_URI"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file untouched" cmp "$T/ref.img" "$T/disk.img"

# A file the server may not write: --read-only serves it, plain serve may
# refuse or serve it read-only (not both write and fail).
chmod 0444 "$T/disk.img"
start_server "$T/disk.img" --read-only || finish
check "0444 file served --read-only" nbdcopy "$SRV_URI" "$T/out2"
check "0444 file content" cmp "$T/out2" "$T/ref.img"
stop_server && pass "server exits 0 on SIGTERM"
finish
