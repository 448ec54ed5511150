# Run inside nbdsh (handle h connected) by t_nbdsh_badinput.sh.
# argv: [script, REFERENCE_FILE]
# Sends requests a strict client never sends and checks the errno of each,
# then that the same handle still works.  Every legitimate write is
# mirrored into REFERENCE_FILE so the shell can compare the backing file.
import errno
import sys

import nbd

ref_path = sys.argv[1]
ref = open(ref_path, "r+b")
failures = 0


def ok(d):
    print("ok - " + d, flush=True)


def bad(d):
    global failures
    failures += 1
    print("FAIL - " + d, flush=True)


def mirror(off, data):
    ref.seek(off)
    ref.write(data)


size = h.get_size()
M = 1 << 20
ok("export size %d" % size) if size == 64 * M else bad("export size %d, want 64 MiB" % size)
if h.can_meta_context("base:allocation"):
    ok("base:allocation negotiated")
else:
    bad("base:allocation not negotiated: BLOCK_STATUS checks are meaningless")
h.set_strict_mode(0)

# A known block the handle must keep reading after every error.
probe = bytes([0x5A]) * 4096
h.pwrite(probe, 8 * M)
mirror(8 * M, probe)


def still_works(after):
    try:
        if h.pread(4096, 8 * M) != probe:
            bad("after %s: probe read returned wrong data" % after)
            return
        h.flush()
    except nbd.Error as e:
        bad("after %s: handle no longer works: %s" % (after, e))
        return
    ok("after %s: same handle still reads and flushes" % after)


def expect(desc, want_errnos, fn, *args, **kw):
    """Run fn; pass if it raises nbd.Error with an errno in want_errnos."""
    if isinstance(want_errnos, int):
        want_errnos = (want_errnos,)
    names = "/".join(errno.errorcode[e] for e in want_errnos)
    try:
        fn(*args, **kw)
    except nbd.Error as e:
        if e.errnum in want_errnos:
            ok("%s -> %s" % (desc, names))
        else:
            bad("%s: want %s, got errno %s (%s)"
                % (desc, names, errno.errorcode.get(e.errnum, e.errnum), e.string))
    else:
        bad("%s: want %s, got success" % (desc, names))
    still_works(desc)


def bs_cb(meta, offset, entries, err):
    return 0


# Out of range: READ, TRIM, BLOCK_STATUS, CACHE -> EINVAL.
expect("READ wholly past the end", errno.EINVAL, h.pread, 4096, size)
expect("READ straddling the end", errno.EINVAL, h.pread, 8192, size - 4096)
expect("READ at offset 2^63", errno.EINVAL, h.pread, 512, 1 << 63)
expect("TRIM wholly past the end", errno.EINVAL, h.trim, 4096, size)
expect("TRIM straddling the end", errno.EINVAL, h.trim, 8192, size - 4096)
expect("BLOCK_STATUS past the end", errno.EINVAL, h.block_status, 4096, size, bs_cb)
expect("BLOCK_STATUS straddling the end", errno.EINVAL, h.block_status, 8192, size - 4096, bs_cb)
expect("CACHE past the end", errno.EINVAL, h.cache, 4096, size)

# WRITE and WRITE_ZEROES past the end -> ENOSPC.
expect("WRITE wholly past the end", errno.ENOSPC, h.pwrite, b"\xee" * 4096, size)
expect("WRITE straddling the end", errno.ENOSPC, h.pwrite, b"\xee" * 8192, size - 4096)
expect("WRITE 1 MiB past the end", errno.ENOSPC, h.pwrite, b"\xee" * M, size + M)
expect("WRITE_ZEROES past the end", errno.ENOSPC, h.zero, 4096, size)
expect("WRITE_ZEROES straddling the end", errno.ENOSPC, h.zero, 8192, size - 4096)

# Unknown flags and flags not valid for the command -> EINVAL.
expect("READ with unknown flag 1<<10", errno.EINVAL, h.pread, 4096, 0, 1 << 10)
expect("WRITE with unknown flag 1<<12", errno.EINVAL, h.pwrite, b"\xee" * 4096, 0, 1 << 12)
expect("FLUSH with unknown flag 1<<9", errno.EINVAL, h.flush, 1 << 9)
expect("TRIM with unknown flag 1<<15", errno.EINVAL, h.trim, 4096, 0, 1 << 15)
expect("READ with NO_HOLE (WRITE_ZEROES only)", errno.EINVAL, h.pread, 4096, 0, nbd.CMD_FLAG_NO_HOLE)
expect("WRITE with DF (READ only)", errno.EINVAL, h.pwrite, b"\xee" * 4096, 0, nbd.CMD_FLAG_DF)
expect("TRIM with FAST_ZERO (WRITE_ZEROES only)", errno.EINVAL, h.trim, 4096, 0, nbd.CMD_FLAG_FAST_ZERO)

# Zero-length requests: any answer, but no disconnect.
for desc, fn, args in (
    ("zero-length READ", h.pread, (0, 0)),
    ("zero-length WRITE", h.pwrite, (b"", 0)),
    ("zero-length TRIM", h.trim, (0, 0)),
    ("zero-length WRITE_ZEROES", h.zero, (0, 0)),
    ("zero-length CACHE", h.cache, (0, 0)),
    ("zero-length BLOCK_STATUS", h.block_status, (0, 0, bs_cb)),
    ("zero-length READ at the end", h.pread, (0, size)),
    ("zero-length WRITE at the end", h.pwrite, (b"", size)),
):
    try:
        fn(*args)
        print("    %s: success" % desc)
    except nbd.Error as e:
        print("    %s: %s" % (desc, e))
    if h.aio_is_closed() or h.aio_is_dead():
        bad("%s closed the connection" % desc)
        break
    still_works(desc)

# Legitimate requests at the edges, and every flag where it is valid.
last = b"\x77" * 4096
try:
    h.pwrite(last, size - 4096, nbd.CMD_FLAG_FUA)
    mirror(size - 4096, last)
    assert h.pread(4096, size - 4096) == last
    ok("FUA WRITE of the last 4 KiB, read back")
except Exception as e:
    bad("FUA WRITE of the last 4 KiB: %s" % e)
try:
    h.pwrite(b"\x42" * (2 * M), 20 * M)
    h.zero(M, 20 * M + 4096, nbd.CMD_FLAG_NO_HOLE)
    mirror(20 * M, b"\x42" * 4096 + bytes(M) + b"\x42" * (M - 4096))
    assert h.pread(2 * M, 20 * M) == b"\x42" * 4096 + bytes(M) + b"\x42" * (M - 4096)
    ok("WRITE_ZEROES with NO_HOLE zeroes exactly its range")
except Exception as e:
    bad("WRITE_ZEROES with NO_HOLE: %s" % e)
try:
    h.pwrite(b"\x43" * M, 24 * M)
    mirror(24 * M, b"\x43" * M)
    if not h.can_fast_zero():
        # t_nbdinfo fails a server that should and does not.
        print("SKIP - FAST_ZERO: the server does not advertise it")
        raise StopIteration
    try:
        h.zero(M, 24 * M, nbd.CMD_FLAG_FAST_ZERO)
        mirror(24 * M, bytes(M))
        print("    FAST_ZERO: done fast")
    except nbd.Error as e:
        if e.errnum != errno.ENOTSUP:
            raise
        print("    FAST_ZERO: ENOTSUP (allowed: not fast here)")
    ref.flush()
    ref.seek(24 * M)
    assert h.pread(M, 24 * M) == ref.read(M)
    ok("WRITE_ZEROES with FAST_ZERO: zeroed, or ENOTSUP with data intact")
except StopIteration:
    pass
except Exception as e:
    bad("WRITE_ZEROES with FAST_ZERO: %s" % e)
try:
    h.pwrite(b"\x44" * M, 28 * M)
    h.trim(M, 28 * M, nbd.CMD_FLAG_FUA)
    mirror(28 * M, bytes(M))
    assert h.pread(M, 28 * M) == bytes(M)
    ok("TRIM with FUA, then reads return zeros")
except Exception as e:
    bad("TRIM with FUA: %s" % e)
try:
    h.cache(4 * M, 0)
    h.pread(4096, 0, nbd.CMD_FLAG_DF)
    seen = []
    h.block_status(size, 0, lambda m, o, e, err: seen.append((m, list(e))) or 0,
                   nbd.CMD_FLAG_REQ_ONE)
    assert seen and seen[0][0] == "base:allocation", seen
    assert len(seen[0][1]) == 2, "REQ_ONE must give one extent, got %r" % (seen[0][1],)
    ok("CACHE, READ with DF, BLOCK_STATUS with REQ_ONE (one extent)")
except Exception as e:
    bad("CACHE / DF / REQ_ONE: %s" % e)
still_works("the valid edge requests")
h.flush()
h.shutdown()
ref.close()
sys.exit(1 if failures else 0)
