"""Raw-socket NBD client for blkrep's integration tests.

Speaks just enough of the protocol (fixed newstyle handshake, options,
simple and structured replies) to send what well-behaved clients never
send: malformed options, oversized payloads, garbage magic, half requests.
Every socket has a timeout, so a server that stops answering fails a check
instead of hanging the suite.
"""

import socket
import struct
import sys

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10
OPT_EXTENDED_HEADERS = 11

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR = 1 << 31
REP_ERR_UNSUP = REP_ERR + 1
REP_ERR_POLICY = REP_ERR + 2
REP_ERR_INVALID = REP_ERR + 3
REP_ERR_UNKNOWN = REP_ERR + 6

INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4

EPERM = 1
EIO = 5
EINVAL = 22
ENOSPC = 28
ENOTSUP = 95

MIB = 1 << 20

_results = {"fail": 0}


def ok(desc):
    print("ok - " + desc, flush=True)


def fail(desc):
    _results["fail"] += 1
    print("FAIL - " + desc, flush=True)


def check(cond, desc, detail=""):
    if cond:
        ok(desc)
    else:
        fail(desc + (": " + detail if detail else ""))
    return cond


def failures():
    return _results["fail"]


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


def connect(addr, timeout=20.0):
    """addr: ('127.0.0.1', port) or a unix socket path."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX)
    else:
        s = socket.socket()
    s.settimeout(timeout)
    s.connect(addr)
    return s


def addr_from_argv(argv):
    """'tcp HOST PORT' or 'unix PATH' at argv[1:]; returns (addr, rest)."""
    if argv[1] == "unix":
        return argv[2], argv[3:]
    return (argv[2], int(argv[3])), argv[4:]


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            d = s.recv(min(n - len(buf), 1 << 20))
        except ConnectionResetError:
            raise Closed("reset")
        if not d:
            raise Closed("EOF after %d of %d bytes" % (len(buf), n))
        buf += d
    return bytes(buf)


def is_closed(s, timeout=10.0):
    """True if the server closes the connection within timeout (any bytes
    it sends first are read and dropped)."""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Conn:
    def __init__(self, addr, timeout=20.0):
        self.s = connect(addr, timeout)
        self.structured = False
        self.size = None
        self.tflags = None
        self.cookie = 1

    # --- handshake -----------------------------------------------------
    def greet(self, client_flags=FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
        magic, opt = struct.unpack(">QQ", recv_exact(self.s, 16))
        assert magic == NBDMAGIC, hex(magic)
        assert opt == IHAVEOPT, hex(opt)
        (self.hflags,) = struct.unpack(">H", recv_exact(self.s, 2))
        self.s.sendall(struct.pack(">I", client_flags))
        return self.hflags

    def send_opt(self, opt, data=b"", length=None):
        if length is None:
            length = len(data)
        self.s.sendall(struct.pack(">QII", IHAVEOPT, opt, length) + data)

    def recv_opt_reply(self):
        """Returns (option, reply type, data)."""
        magic, opt, rtype, length = struct.unpack(">QIII", recv_exact(self.s, 20))
        if magic != OPT_REPLY_MAGIC:
            raise AssertionError("bad option reply magic %x" % magic)
        data = recv_exact(self.s, length) if length else b""
        return opt, rtype, data

    def opt_simple(self, opt, data=b"", length=None):
        """Send an option, read replies until a final one; returns the list
        of (type, data)."""
        self.send_opt(opt, data, length)
        out = []
        while True:
            o, t, d = self.recv_opt_reply()
            if o != opt:
                raise AssertionError("reply for option %d, sent %d" % (o, opt))
            out.append((t, d))
            if t == REP_ACK or t & REP_ERR:
                return out

    def structured_reply(self):
        r = self.opt_simple(OPT_STRUCTURED_REPLY)
        self.structured = r[-1][0] == REP_ACK
        return r

    def go(self, name=b"", infos=(INFO_BLOCK_SIZE,)):
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos))
        data += b"".join(struct.pack(">H", i) for i in infos)
        r = self.opt_simple(OPT_GO, data)
        for t, d in r:
            if t == REP_INFO and len(d) >= 2:
                (itype,) = struct.unpack(">H", d[:2])
                if itype == INFO_EXPORT:
                    self.size, self.tflags = struct.unpack(">QH", d[2:12])
                elif itype == INFO_BLOCK_SIZE:
                    self.block_sizes = struct.unpack(">III", d[2:14])
        return r

    def handshake(self, name=b"", structured=False):
        self.greet()
        if structured:
            self.structured_reply()
        r = self.go(name)
        if r[-1][0] != REP_ACK:
            raise AssertionError("GO failed: %r" % (r,))
        return self

    # --- transmission --------------------------------------------------
    def next_cookie(self):
        self.cookie += 1
        return self.cookie

    def send_request(self, cmd, offset, length, flags=0, payload=b"", cookie=None):
        if cookie is None:
            cookie = self.next_cookie()
        self.s.sendall(
            struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, cookie, offset, length)
            + payload
        )
        return cookie

    def recv_reply(self, read_len=0, expect_structured=None):
        """Reads one complete reply.  Returns (cookie, error, data).  A
        simple reply is accepted for anything but a READ once structured
        replies are negotiated (the spec allows it); structured chunks are
        read until DONE, data is assembled for reads (holes as zeros) and
        error is the first error chunk's errno."""
        if expect_structured is None:
            expect_structured = self.structured and read_len > 0
        (magic,) = struct.unpack(">I", recv_exact(self.s, 4))
        if magic == SIMPLE_REPLY_MAGIC:
            if expect_structured:
                raise AssertionError("simple reply to a READ after structured "
                                     "replies were negotiated")
            err, cookie = struct.unpack(">IQ", recv_exact(self.s, 12))
            data = b""
            if err == 0 and read_len:
                data = recv_exact(self.s, read_len)
            return cookie, err, data
        if magic != STRUCTURED_REPLY_MAGIC or not self.structured:
            raise AssertionError("bad reply magic %x" % magic)
        buf = None
        err = 0
        cookie0 = None
        while True:
            if magic is None:
                (magic,) = struct.unpack(">I", recv_exact(self.s, 4))
            if magic != STRUCTURED_REPLY_MAGIC:
                raise AssertionError("bad structured reply magic %x" % magic)
            magic = None
            flags, ctype, cookie, length = struct.unpack(">HHQI", recv_exact(self.s, 16))
            if cookie0 is None:
                cookie0 = cookie
            elif cookie != cookie0:
                raise AssertionError("chunk for cookie %d inside reply %d" % (cookie, cookie0))
            payload = recv_exact(self.s, length) if length else b""
            if ctype == 1:  # OFFSET_DATA
                (off,) = struct.unpack(">Q", payload[:8])
                if buf is None:
                    buf = {}
                buf[off] = payload[8:]
            elif ctype == 2:  # OFFSET_HOLE
                off, hl = struct.unpack(">QI", payload[:12])
                if buf is None:
                    buf = {}
                buf[off] = b"\0" * hl
            elif ctype & 0x8000:  # error
                (e,) = struct.unpack(">I", payload[:4])
                if not err:
                    err = e
            if flags & 1:
                break
        data = b""
        if buf is not None and not err:
            base = min(buf)
            out = bytearray(read_len)
            for off, d in buf.items():
                out[off - base : off - base + len(d)] = d
            data = bytes(out)
        return cookie0, err, data

    def request(self, cmd, offset, length, flags=0, payload=b""):
        c = self.send_request(cmd, offset, length, flags, payload)
        rc, err, data = self.recv_reply(length if cmd == CMD_READ else 0)
        if rc != c:
            raise AssertionError("reply cookie %d, sent %d" % (rc, c))
        return err, data

    def read(self, offset, length, flags=0):
        return self.request(CMD_READ, offset, length, flags)

    def write(self, offset, data, flags=0):
        return self.request(CMD_WRITE, offset, len(data), flags, data)[0]

    def disconnect(self):
        try:
            self.send_request(CMD_DISC, 0, 0)
        except OSError:
            pass
        self.s.close()


def main_guard(fn):
    """Run fn(); an exception is a failed check; exit 1 on any failure."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        import traceback

        traceback.print_exc(file=sys.stdout)
        fail("unexpected exception: %r" % (e,))
    sys.exit(1 if failures() else 0)
