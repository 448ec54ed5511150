#!/usr/bin/env python3
"""A fake alpha for the replication link: connects to beta's port, completes
an authenticated handshake as alpha (the role it is told), then does one
thing beta must answer, and reports what beta did.

    fake_peer.py HOST PORT SECRET-FILE LOG ROLE MODE [N]

ROLE: primary | secondary (what the fake claims in HELLO and STATE).
MODE:
  write        one 4 KiB WRITE (to a primary, which must not take it);
  trim-burst   N TRIMs of 4 KiB in one send, without reading meanwhile.
Prints "connected", then "acks K", then "closed after S s" or "still open
after S s" (it waits 3 s, and never answers beta's PINGs, so a link kept
open would be dropped only by beta's 5 s silence timeout), then beta's log
lines written meanwhile, each as "log: LINE".
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = 0x424C4B52
HELLO, AUTH, REFUSE, STATE, WRITE, TRIM, ACK, BITMAP = 1, 2, 3, 4, 5, 6, 9, 13
HDR = ">IHHIIQQ"  # 32 bytes
HEL = ">HH64s64sQIBBBBQQ4Q32s"  # 228 bytes
ZEROED = 2
GEN_CREATED = 4
WAIT_S = 3

host, port, secret_file, log, role, mode = sys.argv[1:7]
count = int(sys.argv[7]) if len(sys.argv) > 7 else 1
role_byte = 1 if role == "primary" else 0


def hdr(typ, length=0, count=0, seq=0, offset=0, flags=0):
    return struct.pack(HDR, MAGIC, typ, flags, length, count, seq, offset)


def hello(size, extent, nonce):
    return struct.pack(HEL, 1, 1, b"r0", b"alpha", size, extent, role_byte, 3, ZEROED, 0,
                       GEN_CREATED, 0, 0, 0, 0, 0, nonce)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return buf


def recv_msg(s):
    h = recv_exact(s, 32)
    if h is None:
        return None
    magic, typ, flags, length, cnt, seq, offset = struct.unpack(HDR, h)
    if magic != MAGIC:
        sys.exit("beta sent a bad magic %#x" % magic)
    p = recv_exact(s, length) if length else b""
    return None if p is None else (typ, p)


def expect(s, typ, what):
    while True:
        m = recv_msg(s)
        if m is None:
            sys.exit("beta closed the connection while we waited for %s" % what)
        if m[0] == REFUSE:
            sys.exit("beta refused while we waited for %s: %s" %
                     (what, m[1].decode(errors="replace")))
        if m[0] == typ:
            return m[1]


def connect():
    deadline = time.monotonic() + 5
    while True:
        try:
            s = socket.create_connection((host, int(port)), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError as e:
            if time.monotonic() > deadline:
                sys.exit("cannot connect to beta: %s" % e)
            time.sleep(0.1)


def handshake(s):
    """As alpha, with the secret; returns beta's data size."""
    nonce = os.urandom(32)
    f = struct.unpack(HEL, expect(s, HELLO, "HELLO")[:228])
    size, extent, their_nonce = f[4], f[5], f[16]
    p = hello(size, extent, nonce)
    s.sendall(hdr(HELLO, len(p)) + p)
    key = open(secret_file, "rb").read().rstrip(b"\r\n")
    mac = hmac.new(key, b"blkrep-auth-v1" + their_nonce + nonce + b"r0\0alpha\0",
                   hashlib.sha256).digest()
    s.sendall(hdr(AUTH, 32) + mac)
    want = hmac.new(key, b"blkrep-auth-v1" + nonce + their_nonce + b"r0\0beta\0",
                    hashlib.sha256).digest()
    if expect(s, AUTH, "AUTH") != want:
        sys.exit("beta's AUTH does not verify")
    st = hello(size, extent, b"\0" * 32)
    s.sendall(hdr(STATE, len(st)) + st)
    expect(s, STATE, "STATE")
    expect(s, BITMAP, "the first BITMAP (beta is up)")
    return size


def until_closed(s, t0):
    """Reads (counting ACKs) until beta closes or WAIT_S pass."""
    acks = 0
    s.settimeout(0.2)
    while time.monotonic() - t0 < WAIT_S:
        try:
            m = recv_msg(s)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            m = None
        if m is None:
            return acks, "closed after %.1f s" % (time.monotonic() - t0)
        acks += m[0] == ACK
    return acks, "still open after %.1f s" % (time.monotonic() - t0)


def log_size():
    try:
        return os.path.getsize(log)
    except OSError:
        return 0


s = connect()
size = handshake(s)
print("connected", flush=True)
time.sleep(0.3)  # beta's "connected" lines are out
before = log_size()
t0 = time.monotonic()
try:
    if mode == "write":
        s.sendall(hdr(WRITE, 4096, count=4096, seq=1) + b"\xaa" * 4096)
    elif mode == "trim-burst":
        blocks = size // 4096
        s.sendall(b"".join(hdr(TRIM, count=4096, seq=i + 1, offset=(i % blocks) * 4096)
                           for i in range(count)))
    else:
        sys.exit("unknown mode " + mode)
except (ConnectionResetError, BrokenPipeError):
    pass
acks, how = until_closed(s, t0)
print("acks %d" % acks)
print(how)
s.close()
time.sleep(0.5)  # lines logged once the connection is finished
with open(log, "rb") as fh:
    fh.seek(before)
    for line in fh.read().decode(errors="replace").splitlines():
        print("log: " + line)
