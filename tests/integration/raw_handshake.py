"""Handshake-phase abuse over a raw socket.  Run by t_raw_handshake.sh.
argv: tcp HOST PORT NAME SIZE SERVER   (NAME is the --name given)"""
import struct
import sys

from nbdraw import *  # noqa: F401,F403

addr, rest = addr_from_argv(sys.argv)
NAME = rest[0].encode()
SIZE = int(rest[1])
SERVER = rest[2]


def errname(t):
    names = {REP_ACK: "ACK", REP_SERVER: "SERVER", REP_INFO: "INFO",
             REP_ERR_UNSUP: "ERR_UNSUP", REP_ERR_POLICY: "ERR_POLICY",
             REP_ERR_INVALID: "ERR_INVALID", REP_ERR_UNKNOWN: "ERR_UNKNOWN"}
    return names.get(t, hex(t))


def expect_reply(c, desc, opt, data, want, length=None):
    r = c.opt_simple(opt, data, length)
    t = r[-1][0]
    check(len(r) == 1 and t == want, "%s -> %s" % (desc, errname(want)),
          "got %s" % [errname(x[0]) for x in r])


def main():
    # A client that negotiated normally and must keep being served.
    bystander = Conn(addr).handshake()
    _, bystander_data = bystander.read(0, 4096)

    c = Conn(addr)
    hflags = c.greet()
    check(hflags & FLAG_FIXED_NEWSTYLE, "greeting has FIXED_NEWSTYLE")
    check(hflags & FLAG_NO_ZEROES, "greeting has NO_ZEROES")

    expect_reply(c, "unknown option 0x1234", 0x1234, b"", REP_ERR_UNSUP)
    expect_reply(c, "unknown option 0x7fff with 300 bytes of data", 0x7FFF,
                 bytes(range(256)) + b"x" * 44, REP_ERR_UNSUP)
    expect_reply(c, "STARTTLS without TLS", OPT_STARTTLS, b"", REP_ERR_POLICY)
    expect_reply(c, "EXTENDED_HEADERS", OPT_EXTENDED_HEADERS, b"", REP_ERR_UNSUP)
    expect_reply(c, "LIST with data", OPT_LIST, b"abcd", REP_ERR_INVALID)
    expect_reply(c, "STRUCTURED_REPLY with data", OPT_STRUCTURED_REPLY, b"ab", REP_ERR_INVALID)
    expect_reply(c, "GO of length 2 (shorter than its name length field)",
                 OPT_GO, b"\0\0", REP_ERR_INVALID)
    expect_reply(c, "GO whose name length exceeds the option",
                 OPT_GO, struct.pack(">I", 100) + b"abc" + struct.pack(">H", 0),
                 REP_ERR_INVALID)
    expect_reply(c, "GO whose info count exceeds the option",
                 OPT_GO, struct.pack(">I", 0) + struct.pack(">H", 5) + b"\0\3",
                 REP_ERR_INVALID)
    expect_reply(c, "INFO with trailing garbage",
                 OPT_INFO, struct.pack(">IH", 0, 0) + b"junk", REP_ERR_INVALID)
    expect_reply(c, "SET_META_CONTEXT of length 3", OPT_SET_META_CONTEXT, b"abc",
                 REP_ERR_INVALID)

    # Negotiation goes on: LIST, INFO, meta contexts, then GO.
    r = c.opt_simple(OPT_LIST)
    names = []
    for t, d in r:
        if t == REP_SERVER:
            (n,) = struct.unpack(">I", d[:4])
            names.append(d[4:4 + n])
    check(r[-1][0] == REP_ACK and names, "LIST after the errors lists exports %r" % names)
    if SERVER == "blkrep":
        check(NAME in names, "LIST names %r" % NAME, repr(names))

    r = c.opt_simple(OPT_INFO, struct.pack(">I", 0) + struct.pack(">H", 1) + b"\0\3")
    sizes = [struct.unpack(">QH", d[2:12]) for t, d in r
             if t == REP_INFO and d[:2] == b"\0\0"]
    check(r[-1][0] == REP_ACK and sizes and sizes[0][0] == SIZE,
          "INFO for the empty name gives INFO_EXPORT with the size", repr(r))
    if SERVER == "blkrep":
        bs = [struct.unpack(">III", d[2:14]) for t, d in r
              if t == REP_INFO and d[:2] == b"\0\3"]
        check(bs and bs[0][2] == 32 << 20, "INFO_BLOCK_SIZE maximum is 32 MiB", repr(bs))

    r = c.opt_simple(OPT_INFO, struct.pack(">I", len(NAME)) + NAME + struct.pack(">H", 0))
    check(r[-1][0] == REP_ACK, "INFO for %r succeeds" % NAME, repr(r))
    if SERVER == "blkrep":
        r = c.opt_simple(OPT_INFO, struct.pack(">I", 6) + b"nosuch" + struct.pack(">H", 0))
        check(r[-1][0] == REP_ERR_UNKNOWN, "INFO for an unknown name -> ERR_UNKNOWN",
              errname(r[-1][0]))

    r = c.structured_reply()
    check(r[-1][0] == REP_ACK, "STRUCTURED_REPLY -> ACK")
    q = b"base:allocation"
    r = c.opt_simple(OPT_LIST_META_CONTEXT,
                     struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(q)) + q)
    ctx = [d[4:] for t, d in r if t == REP_META_CONTEXT]
    check(r[-1][0] == REP_ACK and ctx == [q], "LIST_META_CONTEXT base:allocation", repr(r))
    r = c.opt_simple(OPT_SET_META_CONTEXT,
                     struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(q)) + q)
    ctx = [d for t, d in r if t == REP_META_CONTEXT]
    check(r[-1][0] == REP_ACK and len(ctx) == 1 and ctx[0][4:] == q,
          "SET_META_CONTEXT base:allocation", repr(r))
    r = c.go(b"", infos=())
    check(r[-1][0] == REP_ACK and c.size == SIZE, "GO after all the errors succeeds")
    check(any(t == REP_INFO and d[:2] == b"\0\0" for t, d in r),
          "GO sends INFO_EXPORT before the ACK")
    err, data = c.read(0, 4096)
    check(err == 0 and len(data) == 4096, "READ right after GO (no padding after ACK)")
    if ctx:
        (ctx_id,) = struct.unpack(">I", ctx[0][:4])
        cookie = c.send_request(CMD_BLOCK_STATUS, 0, SIZE)
        magic, flags, ctype, ck, length = struct.unpack(">IHHQI", recv_exact(c.s, 20))
        payload = recv_exact(c.s, length)
        okk = ctype == 5 and ck == cookie and struct.unpack(">I", payload[:4])[0] == ctx_id
        while not flags & 1:
            magic, flags, ctype, ck, length = struct.unpack(">IHHQI", recv_exact(c.s, 20))
            recv_exact(c.s, length)
        check(okk, "BLOCK_STATUS answers with a type-5 chunk for the negotiated context")
    c.disconnect()

    # GO for a name nobody serves.
    if SERVER == "blkrep":
        c = Conn(addr)
        c.greet()
        r = c.go(b"nosuch")
        check(r[-1][0] == REP_ERR_UNKNOWN, "GO for an unknown name -> ERR_UNKNOWN",
              errname(r[-1][0]))
        r = c.go(NAME)
        check(r[-1][0] == REP_ACK, "then GO for %r succeeds" % NAME)
        c.disconnect()

    # EXPORT_NAME, with and without NO_ZEROES.
    for flags, pad in ((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 0), (FLAG_FIXED_NEWSTYLE, 124)):
        c = Conn(addr)
        c.greet(flags)
        c.send_opt(OPT_EXPORT_NAME, NAME)
        size, tflags = struct.unpack(">QH", recv_exact(c.s, 10))
        zeros = recv_exact(c.s, pad) if pad else b""
        err, data = c.read(0, 4096)
        check(size == SIZE and zeros == bytes(pad) and err == 0,
              "EXPORT_NAME %s: size, flags, %d bytes of padding, then READ works"
              % ("with NO_ZEROES" if pad == 0 else "without NO_ZEROES", pad))
        c.disconnect()

    # ABORT: the server may ACK, then it closes.
    c = Conn(addr)
    c.greet()
    c.send_opt(OPT_ABORT)
    check(is_closed(c.s), "ABORT: the server closes the connection")

    # Things that end the connection.
    c = Conn(addr)
    c.greet(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES | (1 << 7))
    check(is_closed(c.s), "unknown client flag: the server drops the connection")

    c = Conn(addr)
    c.greet()
    c.s.sendall(struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    check(is_closed(c.s), "bad option magic: the server drops the connection")

    c = Conn(addr)
    c.greet()
    try:
        c.send_opt(OPT_GO, b"\0\0\0\0", length=0xFFFFFFF0)
        c.s.sendall(b"\0" * 4096)
        closed = is_closed(c.s, timeout=10)
    except OSError:
        closed = True
    check(closed, "option claiming 4 GiB of data: error or drop, no hang")
    c.s.close()

    c = Conn(addr)
    c.s.close()  # vanishes before reading the greeting
    c = Conn(addr)
    c.greet()
    c.s.sendall(struct.pack(">QI", IHAVEOPT, OPT_GO)[:10])
    c.s.close()  # vanishes mid-option header
    c = Conn(addr)
    c.greet()
    c.send_opt(OPT_GO, b"\0\0", length=200)
    c.s.close()  # vanishes mid-option data

    err, data = bystander.read(0, 4096)
    check(err == 0 and data == bystander_data,
          "a client connected throughout is still served, same data",
          "err %d, %d bytes" % (err, len(data)))
    c = Conn(addr).handshake(NAME)
    err, data = c.read(0, 4096)
    check(err == 0 and data == bystander_data, "a new client is served after all that",
          "err %d, %d bytes" % (err, len(data)))
    c.disconnect()
    bystander.disconnect()


main_guard(main)
