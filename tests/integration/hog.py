#!/usr/bin/env python3
"""A peer-port hog: a client without the secret that keeps connecting to
the listening node's peer port, to keep the real peer out.

    hog.py --to HOST:PORT --seconds S [--parallel N] [--bind ADDR] [--log FILE]

N threads (default 4) each connect, hold the connection idle (sending
nothing, reading what the node sends) until the node closes it, and
reconnect at once (from source address ADDR with --bind, e.g. 127.0.0.2
on loopback: another host than the configured peer); a connection the node closed within 50 ms is followed by
a 20 ms pause, so that a node refusing at once costs no busy loop.  Every
wait is bounded: the whole hog stops after --seconds.

At the end it prints one summary line:
    hog: connects C, refused R, longest hold H s, bytes received B, hello SEEN
where SEEN is "none", or what a plaintext blkrep HELLO received before any
authentication gave away ("node beta resource r0 size N role R ...").
"""

import argparse
import socket
import struct
import sys
import threading
import time

MAGIC = 0x424C4B52
HDR = ">IHHIIQQ"
HEL = ">HH64s64sQIBBBBQQ4Q32s"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connects = 0
        self.refused = 0
        self.longest = 0.0
        self.bytes = 0
        self.hello = None


def parse_hello(b):
    if len(b) < 32 + 228:
        return None
    magic, typ, flags, length = struct.unpack(HDR, b[:32])[:4]
    if magic != MAGIC or typ != 1 or length < 228:
        return None
    f = struct.unpack(HEL, b[32:32 + 228])
    return "node %s resource %s size %d role %d disk %d generation %016x" % (
        f[3].rstrip(b"\0").decode(errors="replace"), f[2].rstrip(b"\0").decode(errors="replace"),
        f[4], f[6], f[7], f[10])


def worker(host, port, deadline, st, log, bind):
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            s = socket.create_connection((host, port), timeout=min(2, deadline - t0 + 0.01),
                                         source_address=(bind, 0) if bind else None)
        except OSError:
            with st.lock:
                st.refused += 1
            time.sleep(0.02)
            continue
        with st.lock:
            st.connects += 1
        got = bytearray()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(min(left, 1))
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    break
                if len(got) < 4096:
                    got += d
                with st.lock:
                    st.bytes += len(d)
        except OSError:
            pass
        s.close()
        held = time.monotonic() - t0
        with st.lock:
            st.longest = max(st.longest, held)
            if st.hello is None and got:
                st.hello = parse_hello(bytes(got))
                if st.hello and log:
                    log.write("%.3f hello before authentication: %s\n" % (t0, st.hello))
        if log:
            log.write("%.3f held %.3f s, %d bytes\n" % (t0, held, len(got)))
        if held < 0.05:
            time.sleep(0.02)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--to", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--log")
    p.add_argument("--bind")
    a = p.parse_args()
    host, _, port = a.to.rpartition(":")
    if not 0 < a.seconds <= 600 or not 0 < a.parallel <= 64:
        p.error("--seconds in (0, 600], --parallel in 1..64")
    log = open(a.log, "a", buffering=1) if a.log else None
    st = Stats()
    deadline = time.monotonic() + a.seconds
    ts = [threading.Thread(target=worker, args=(host, int(port), deadline, st, log, a.bind), daemon=True)
          for _ in range(a.parallel)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(a.seconds + 5)
    print("hog: connects %d, refused %d, longest hold %.1f s, bytes received %d, hello %s" % (
        st.connects, st.refused, st.longest, st.bytes, st.hello or "none"), flush=True)


if __name__ == "__main__":
    main()
