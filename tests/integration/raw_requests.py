"""Transmission-phase abuse over raw sockets.  Run by t_raw_requests.sh.
argv: tcp HOST PORT REF_FILE   or   unix PATH REF_FILE
REF_FILE starts as a copy of the backing file; every legitimate write is
applied to it too, so the shell can compare the two at the end."""
import os
import random
import socket
import struct
import sys
import time

from nbdraw import *  # noqa: F401,F403

addr, rest = addr_from_argv(sys.argv)
ref = open(rest[0], "r+b")
SIZE = os.fstat(ref.fileno()).st_size


def mirror(off, data):
    ref.seek(off)
    ref.write(data)
    ref.flush()


def ref_read(off, n):
    ref.seek(off)
    return ref.read(n)


def check_conn(c, desc):
    """The connection still answers, with the right data."""
    try:
        err, data = c.read(8 * MIB, 4096)
    except Exception as e:  # noqa: BLE001
        fail("%s: connection no longer works: %r" % (desc, e))
        return False
    return check(err == 0 and data == ref_read(8 * MIB, 4096),
                 "%s: the connection still reads correct data" % desc,
                 "err %d" % err)


def bystander_ok(b, desc):
    off = random.randrange(0, SIZE // 4096) * 4096
    payload = os.urandom(4096)
    try:
        werr = b.write(off, payload)
        rerr, data = b.read(off, 4096)
    except Exception as e:  # noqa: BLE001
        fail("after %s: other client broken: %r" % (desc, e))
        return
    if werr == 0:
        mirror(off, payload)
    check(werr == 0 and rerr == 0 and data == payload,
          "after %s: another client still writes and reads" % desc)


def expect_err(c, desc, want, cmd, off, length, flags=0, payload=b""):
    try:
        err, _ = c.request(cmd, off, length, flags, payload)
    except Exception as e:  # noqa: BLE001
        fail("%s: want errno %d, connection failed: %r" % (desc, want, e))
        return
    check(err == want, "%s -> errno %d" % (desc, want), "got %d" % err)
    if err == 0 and cmd == CMD_WRITE:
        mirror(off, payload)  # wrongly accepted: keep the reference true
    check_conn(c, desc)


def main():
    b = Conn(addr).handshake()
    check(b.size == SIZE, "export size matches the file (%d)" % SIZE)

    # --- errors that keep the connection -------------------------------
    c = Conn(addr).handshake()
    big = b"\xee" * (33 * MIB)
    expect_err(c, "WRITE of 33 MiB (above the 32 MiB maximum)", EINVAL,
               CMD_WRITE, 0, len(big), 0, big)
    check(c.read(0, 4096)[1] == ref_read(0, 4096),
          "the rejected 33 MiB WRITE changed nothing at offset 0")
    big = None
    expect_err(c, "WRITE of 1 MiB straddling the end", ENOSPC,
               CMD_WRITE, SIZE - 4096, MIB, 0, b"\xee" * MIB)
    expect_err(c, "WRITE_ZEROES past the end", ENOSPC, CMD_WRITE_ZEROES, SIZE, 4096)
    expect_err(c, "READ past the end", EINVAL, CMD_READ, SIZE, 4096)
    expect_err(c, "TRIM past the end", EINVAL, CMD_TRIM, SIZE - 4096, 8192)
    expect_err(c, "unknown command 99", EINVAL, 99, 0, 4096)
    expect_err(c, "unknown command 99 with 'length' 40 MiB", EINVAL, 99, 0, 40 * MIB)
    expect_err(c, "READ with unknown flag 1<<9", EINVAL, CMD_READ, 0, 4096, 1 << 9)
    expect_err(c, "WRITE with unknown flag 1<<13", EINVAL, CMD_WRITE, 0, 4096, 1 << 13,
               b"\xee" * 4096)
    expect_err(c, "BLOCK_STATUS with no meta context negotiated", EINVAL,
               CMD_BLOCK_STATUS, 0, 4096)
    for cmd, name in ((CMD_READ, "READ"), (CMD_WRITE, "WRITE"), (CMD_TRIM, "TRIM"),
                      (CMD_WRITE_ZEROES, "WRITE_ZEROES"), (CMD_CACHE, "CACHE")):
        try:
            err, _ = c.request(cmd, 4096, 0)
            print("    zero-length %s: errno %d" % (name, err))
        except Exception as e:  # noqa: BLE001
            fail("zero-length %s broke the connection: %r" % (name, e))
            c = Conn(addr).handshake()
            continue
        check_conn(c, "zero-length %s" % name)

    # --- legitimate requests, big ranges, FUA, flush, cache -------------
    p = os.urandom(MIB)
    check(c.write(2 * MIB, p, CMD_FLAG_FUA) == 0, "WRITE with FUA")
    mirror(2 * MIB, p)
    check(c.request(CMD_FLUSH, 0, 0)[0] == 0, "FLUSH")
    check(c.request(CMD_CACHE, 0, 16 * MIB)[0] == 0, "CACHE of 16 MiB")
    check(c.request(CMD_TRIM, 16 * MIB, 48 * MIB)[0] == 0,
          "one TRIM of 48 MiB (above the payload maximum; the kernel does this)")
    mirror(16 * MIB, bytes(48 * MIB))
    check(c.read(40 * MIB, MIB)[1] == bytes(MIB), "reads after TRIM return zeros")
    p = os.urandom(4 * MIB)
    check(c.write(20 * MIB, p) == 0, "WRITE of 4 MiB")
    check(c.request(CMD_WRITE_ZEROES, 18 * MIB, 40 * MIB, CMD_FLAG_NO_HOLE)[0] == 0,
          "one WRITE_ZEROES of 40 MiB with NO_HOLE")
    mirror(20 * MIB, p)
    mirror(18 * MIB, bytes(40 * MIB))
    check(c.read(20 * MIB, 4 * MIB)[1] == bytes(4 * MIB), "reads after WRITE_ZEROES return zeros")
    p = os.urandom(32 * MIB)
    check(c.write(16 * MIB, p) == 0, "WRITE of exactly 32 MiB")
    mirror(16 * MIB, p)
    err, data = c.read(16 * MIB, 32 * MIB)
    check(err == 0 and data == p, "READ of exactly 32 MiB returns it")
    p = None

    # A request header dribbled a byte at a time, and a payload in pieces.
    p = os.urandom(256 * 1024)
    hdr = struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_WRITE, 4242, 4 * MIB, len(p))
    for i in range(len(hdr)):
        c.s.sendall(hdr[i:i + 1])
        time.sleep(0.002)
    for i in range(0, len(p), 10007):
        c.s.sendall(p[i:i + 10007])
        time.sleep(0.001)
    ck, err, _ = c.recv_reply()
    check(ck == 4242 and err == 0, "WRITE sent in dribbles completes")
    mirror(4 * MIB, p)
    check(c.read(4 * MIB, len(p))[1] == p, "dribbled WRITE reads back")

    # Many requests in flight, replies matched by cookie.
    sent = {}
    writes = {}
    for i in range(64):
        off = random.randrange(0, 8 * MIB // 4096) * 4096
        ln = random.choice((512, 4096, 65536, 131072))
        ck = c.send_request(CMD_READ, off, ln)
        sent[ck] = (off, ln)
    for i in range(16):
        off = (48 + i) * MIB
        data = os.urandom(65536)
        ck = c.send_request(CMD_WRITE, off, len(data), 0, data)
        writes[ck] = (off, data)
    order = []
    good = True
    for i in range(len(sent) + len(writes)):
        # Simple replies: read the header first, then the data if a read.
        magic, err, ck = struct.unpack(">IIQ", recv_exact(c.s, 16))
        order.append(ck)
        if ck in sent:
            off, ln = sent.pop(ck)
            data = recv_exact(c.s, ln) if err == 0 else b""
            good &= err == 0 and data == ref_read(off, ln)
        elif ck in writes:
            off, data = writes.pop(ck)
            good &= err == 0
            mirror(off, data)
        else:
            good = False
    check(good and not sent and not writes,
          "80 pipelined READs and WRITEs all answered correctly by cookie")
    print("    replies in order: %s" % (order == sorted(order)))

    # Structured replies: errors come as error chunks, reads as data chunks.
    s = Conn(addr).handshake(structured=True)
    check(s.structured, "structured replies negotiated")
    err, data = s.read(8 * MIB, 65536)
    check(err == 0 and data == ref_read(8 * MIB, 65536), "structured READ returns the data")
    expect_err(s, "structured READ past the end", EINVAL, CMD_READ, SIZE, 4096)
    expect_err(s, "structured WRITE past the end", ENOSPC, CMD_WRITE, SIZE, 4096, 0,
               b"\xee" * 4096)
    expect_err(s, "structured unknown command", EINVAL, 42, 0, 0)
    s.disconnect()

    # --- things that end a connection ------------------------------------
    d = Conn(addr).handshake()
    try:
        d.send_request(CMD_WRITE, 0, 65 * MIB)
        d.s.sendall(b"\xee" * MIB)
        closed = is_closed(d.s, timeout=10)
    except OSError:
        closed = True
    check(closed, "WRITE header claiming 65 MiB: the server disconnects")
    bystander_ok(b, "the 65 MiB WRITE header")

    d = Conn(addr).handshake()
    try:
        d.s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 7, 0, 4096))
        closed = is_closed(d.s)
    except OSError:
        closed = True
    check(closed, "garbage request magic: the server disconnects")
    bystander_ok(b, "garbage magic")

    d = Conn(addr).handshake()
    d.s.sendall(b"\x00" * 5000)
    check(is_closed(d.s), "a stream of zero bytes: the server disconnects")

    d = Conn(addr).handshake()
    d.send_request(CMD_DISC, 0, 0)
    check(is_closed(d.s), "DISC: the server closes the connection")

    d = Conn(addr).handshake()
    d.s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_WRITE, 9, 40 * MIB, MIB)[:11])
    d.s.close()
    bystander_ok(b, "a client vanishing mid-header")

    d = Conn(addr).handshake()
    d.send_request(CMD_WRITE, 40 * MIB, MIB)
    d.s.sendall(b"\xee" * (512 * 1024))
    d.s.close()
    bystander_ok(b, "a client vanishing mid-payload (FIN)")

    d = Conn(addr).handshake()
    d.send_request(CMD_WRITE, 41 * MIB, 8 * MIB)
    d.s.sendall(b"\xee" * (3 * MIB))
    d.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    d.s.close()
    bystander_ok(b, "a client vanishing mid-payload (RST)")

    d = Conn(addr).handshake()
    d.send_request(CMD_WRITE, 50 * MIB, 4096, CMD_FLAG_FUA, b"\xee" * 4000)
    d.s.shutdown(socket.SHUT_WR)
    closed = is_closed(d.s)
    check(closed, "half-closed mid-payload: the server ends the connection")
    d.s.close()

    # A client that sends many large READs and never reads the replies.
    hog = Conn(addr).handshake()
    hog.s.setblocking(False)
    n = 0
    try:
        for n in range(512):
            hog.send_request(CMD_READ, (n % 32) * MIB, MIB)
    except (BlockingIOError, socket.timeout):
        pass
    hog.s.settimeout(20)
    print("    hog queued %d 1 MiB READs before its socket filled" % n)
    time.sleep(1)
    t0 = time.time()
    bystander_ok(b, "a client that never reads its replies (still connected)")
    check(time.time() - t0 < 5, "the other client was served promptly meanwhile")
    n2 = Conn(addr).handshake()
    check_conn(n2, "a new client while the hog is connected")
    n2.disconnect()
    hog.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    hog.s.close()
    bystander_ok(b, "the hog vanishing with replies unread")

    # Many connections opened and dropped at once.
    conns = [Conn(addr) for _ in range(50)]
    for x in conns:
        x.s.close()
    bystander_ok(b, "50 connections opened and dropped")

    check(b.request(CMD_FLUSH, 0, 0)[0] == 0, "final FLUSH on the long-lived client")
    b.disconnect()
    c.disconnect()


main_guard(main)
ref.close()
