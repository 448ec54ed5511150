#!/usr/bin/env bash
# Memory stays bounded under any client behaviour: clients that queue
# hundreds of 1 MiB READs and never read the replies, and clients that
# start 32 MiB WRITEs and stall mid-payload, must not grow the server's
# RSS without bound, and other clients are still served meanwhile.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || skip "$PY is missing"
[ "$SERVER" = blkrep ] || skip "RSS bound is specific to blkrep's buffer pool"

make_pattern "$T/disk.img" 64
start_server "$T/disk.img" || finish
limit_mib=192
if ldd "$BLKREP" 2>/dev/null | grep -q libasan; then
	limit_mib=512 # shadow memory and quarantine
fi
py_checks "memory bound" - 127.0.0.1 "$SRV_PORT" "$SRV_PID" "$limit_mib" <<'PYEOF'
import socket, struct, sys, time
from nbdraw import *

addr = (sys.argv[1], int(sys.argv[2]))
pid = int(sys.argv[3])
limit = int(sys.argv[4]) << 20


def rss():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def reader_hog():
    h = Conn(addr).handshake()
    h.s.setblocking(False)
    n = 0
    try:
        for n in range(1024):
            h.send_request(CMD_READ, (n % 60) * MIB, MIB)
    except (BlockingIOError, socket.timeout):
        pass
    return h, "queued %d 1 MiB READs, reads no reply" % n


def writer_hog():
    h = Conn(addr).handshake()
    h.send_request(CMD_WRITE, 0, 32 * MIB)
    h.s.setblocking(False)
    sent = 0
    try:
        while sent < 8 * MIB:
            sent += h.s.send(b"\xee" * (8 * MIB - sent))
    except (BlockingIOError, socket.timeout):
        pass
    return h, "sent %d KiB of a 32 MiB WRITE payload, then stalls" % (sent >> 10)


def drop(hogs):
    for h in hogs:
        h.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.s.close()
    time.sleep(0.5)


def served(desc, base):
    """A fresh client does a READ and a WRITE within 5 s."""
    t0 = time.time()
    try:
        b = Conn(addr, timeout=5).handshake()
        err, data = b.read(MIB, MIB)
        werr = b.write(2 * MIB, b"\x22" * 4096)
        good = err == 0 and data == b"\x11" * MIB and werr == 0
        b.disconnect()
    except (socket.timeout, OSError, Closed) as e:
        good = False
        print("    %s: %r" % (desc, e))
    dt = time.time() - t0
    check(good and dt < 5, "%s: another client is served (%.2f s)" % (desc, dt))
    grow = rss() - base
    check(grow < limit, "%s: RSS grew by %d MiB (limit %d MiB)" % (desc, grow >> 20, limit >> 20))


def main():
    b = Conn(addr).handshake()
    b.read(0, MIB)
    check(b.write(MIB, b"\x11" * MIB) == 0, "setup write")
    b.disconnect()
    base = rss()
    print("    baseline RSS %d MiB" % (base >> 20))
    for desc, makers in (
        ("1 reader hog", [reader_hog]),
        ("4 reader hogs", [reader_hog] * 4),
        ("4 stalled 32 MiB writers", [writer_hog] * 4),
        ("4 reader hogs + 4 stalled writers", [reader_hog] * 4 + [writer_hog] * 4),
    ):
        hogs = []
        for mk in makers:
            h, what = mk()
            hogs.append(h)
        print("    %s: e.g. %s" % (desc, what))
        time.sleep(1)
        served(desc, base)
        drop(hogs)
        served("after the %s vanish" % desc, base)


main_guard(main)
PYEOF
kill -0 "$SRV_PID" 2>/dev/null && pass "server still running" || fail "server died"
stop_server && pass "server exits 0 on SIGTERM"
finish
