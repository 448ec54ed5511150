#!/usr/bin/env bash
# Bad input through libnbd with strict mode off (nbdsh): out-of-range
# requests, writes past the end, unknown and misplaced flags, zero-length
# requests.  Each gets the errno the spec names, the same handle keeps
# working, and the backing file changes only where writes were legitimate.
. "$(dirname "$0")/lib.sh"
require_nbdsh

make_pattern "$T/disk.img" 64
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" || finish
nbdsh_checks "nbdsh bad input" "$SRV_URI" "$TESTS_DIR/nbdsh_badinput.py" "$T/ref.img"
# A second round over a unix socket without structured replies: errors
# then come as simple replies.
stop_server && pass "server exits 0 on SIGTERM"
check "backing file equals the reference (only legitimate writes landed)" cmp "$T/ref.img" "$T/disk.img"

start_server "$T/disk.img" --unix || finish
cat >"$T/simple.py" <<'PYEOF'
import errno, nbd
h = nbd.NBD()
h.set_request_structured_replies(False)
h.connect_uri(URI)
h.set_strict_mode(0)
assert not h.get_structured_replies_negotiated()
for desc, want, fn, args in (
    ("simple replies: READ past the end", errno.EINVAL, h.pread, (4096, h.get_size())),
    ("simple replies: WRITE past the end", errno.ENOSPC, h.pwrite, (b"\xee" * 4096, h.get_size())),
    ("simple replies: READ with unknown flag", errno.EINVAL, h.pread, (4096, 0, 1 << 10)),
):
    try:
        fn(*args)
        print("FAIL - %s: success" % desc)
    except nbd.Error as e:
        print(("ok - " if e.errnum == want else "FAIL - ") + "%s -> %s" % (desc, e))
    h.pread(4096, 0)
print("ok - simple replies: handle works after the errors")
h.shutdown()
PYEOF
sed -i "1i URI = '$SRV_URI'" "$T/simple.py"
py_checks "simple-reply bad input" "$T/simple.py"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file still equals the reference" cmp "$T/ref.img" "$T/disk.img"
finish
