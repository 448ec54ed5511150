#!/usr/bin/env python3
"""The test suite's own man in the middle of a blkrep replication link.

    mitm.py --listen PORT --to HOST:PORT --seconds S [options] MODE

It listens on 127.0.0.1:PORT; alpha's config names that port as beta's
address, so alpha (the node whose name sorts first connects) connects to
the relay, and the relay connects to beta's real address and forwards both
directions.  Python 3.11 stdlib only; one thread per direction; the whole
relay exits after --seconds whatever happens (every wait is bounded).

The protocol of each direction is recognised from its first bytes:
  plain  today's link: 32-byte headers (magic "BLKR", proto/msg.h) and
         payloads; the relay forwards whole messages, so that it can act
         between two of them.  The handshake is over once both directions
         sent their STATE.
  tls    TLS records (5-byte header: type, version, length); the relay
         forwards whole records.  The handshake counts as over once each
         direction sent --after application_data records (type 23; in TLS
         1.3 the encrypted handshake travels in such records too).
  raw    anything else: forwarded as it comes, no action possible.

MODE (each acts once, on the first connection where the handshake is over
and, with --arm FILE, FILE exists; later connections are passed through):
  pass       forward only (see --capture).
  inject     send beta a WRITE of --length bytes of --marker at --offset.
             plain: a well-formed WRITE (seq --seq), and beta's ACK of it is
             swallowed; tls: a forged application_data record carrying that
             WRITE (plaintext bytes and 16 bytes of tag; no key).
  forge-ack  plain: from then on drop alpha's WRITE/TRIM/ZERO/FLUSH to beta
             and answer each with a forged ACK/FLUSH_ACK of its seq (up to
             --count, 0 = no limit); tls: drop alpha's next record and send
             alpha a copy of beta's last application_data record instead.
  replay     record the alpha->beta bytes of the first connection whose
             handshake was over when it ended (its first 64 MiB); on the first
             new connection from alpha once armed, send the recording to
             beta on a connection of the relay's own (alpha's connection is
             closed unforwarded), read what beta answers for --replay-wait
             seconds, then close; later connections are passed.
             With --splice, the recording's post-handshake part goes into a
             later live connection instead, once armed and its handshake is
             over: plain: the recorded WRITEs, renumbered (--seq on), their
             ACKs swallowed; tls: the recorded application_data records
             after the first --after.
  flip       flip one byte (xor 0xff) in alpha's next record to beta.  plain:
             in the payload of alpha's next WRITE (the header stays valid);
             tls: in the middle of the next application_data record.
  truncate   forward only the first half of alpha's next message/record to
             beta, then --then close (close both sides) or stall (forward
             nothing more from alpha; beta->alpha still flows).

Every action is logged as one line beginning "ACTION " (to --log, default
stderr), so that a test can insist that the attack really fired; other
lines describe connections ("conn N: ..."), the protocol seen and beta's
answers.

Options:
  --capture FILE   append every byte seen, both directions, to FILE
  --arm FILE       act only once FILE exists
  --after N        tls: application_data records per direction before the
                   handshake counts as over (default 2)
  --marker S --offset N --length N --seq N   for inject
  --count N        forge-ack (plain): how many requests to forge (0: all)
  --then close|stall   for truncate (default close)
  --replay-wait S  for replay (default 3)
  --splice         for replay: splice into a live connection (above)
  --keep-ack       plain inject/splice: pass beta's ACK of what we sent on to
                   alpha (an ACK of a request alpha never sent)
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time

MAGIC = 0x424C4B52
HDR = ">IHHIIQQ"
HELLO, AUTH, REFUSE, STATE, WRITE, TRIM, ZERO, FLUSH, ACK, FLUSH_ACK = range(1, 11)
PING, PONG, BITMAP, RESYNC_REQ, RESYNC_DATA = range(11, 16)
NAMES = {1: "HELLO", 2: "AUTH", 3: "REFUSE", 4: "STATE", 5: "WRITE", 6: "TRIM",
         7: "ZERO", 8: "FLUSH", 9: "ACK", 10: "FLUSH_ACK", 11: "PING", 12: "PONG",
         13: "BITMAP", 14: "RESYNC_REQ", 15: "RESYNC_DATA", 16: "RESYNC_DONE",
         17: "VERIFY_REQ", 18: "VERIFY_REPLY"}
REQUESTS = (WRITE, TRIM, ZERO, FLUSH)
TLS_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
TLS_APPDATA = 23
MAX_PLAIN_LEN = (32 << 20) + 4096   # a WRITE's payload at most (MSG_MAX_DATA)
MAX_TLS_LEN = (1 << 14) + 2048      # a TLS record's body at most (RFC 8446 5.2)
MAX_RECORDING = 64 << 20            # replay: bytes recorded per connection


def hdr(typ, length=0, count=0, seq=0, offset=0, flags=0):
    return struct.pack(HDR, MAGIC, typ, flags, length, count, seq, offset)


class Relay:
    def __init__(self, args):
        self.a = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.seconds
        self.lock = threading.RLock()
        self.log_f = open(args.log, "a", buffering=1) if args.log else sys.stderr
        self.cap_f = open(args.capture, "ab") if args.capture else None
        self.acted = False          # the one action happened
        self.nconn = 0
        self.recording = None       # replay: the recorded alpha->beta bytes
        self.recorded_conn = 0
        self.conns = []

    def log(self, line):
        with self.lock:
            self.log_f.write("%.3f %s\n" % (time.monotonic() - self.t0, line))
            self.log_f.flush()

    def capture(self, data):
        if self.cap_f:
            with self.lock:
                self.cap_f.write(data)
                self.cap_f.flush()

    def armed(self):
        return self.a.arm is None or os.path.exists(self.a.arm)

    def left(self):
        return self.deadline - time.monotonic()

    def run(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.a.listen))
        ls.listen(16)
        ls.settimeout(0.2)
        self.log("listening on 127.0.0.1:%d, relaying to %s:%d, mode %s, for %s s" % (
            self.a.listen, self.a.host, self.a.port, self.a.mode, self.a.seconds))
        while self.left() > 0:
            try:
                s, peer = ls.accept()
            except socket.timeout:
                continue
            except OSError as e:
                self.log("accept: %s" % e)
                time.sleep(0.1)
                continue
            self.nconn += 1
            n = self.nconn
            self.log("conn %d: from %s:%d" % (n, peer[0], peer[1]))
            if (self.a.mode == "replay" and not self.a.splice and self.recording is not None
                    and not self.acted and self.armed()):
                self.acted = True
                threading.Thread(target=self.replay, args=(n, s), daemon=True).start()
                continue
            try:
                b = socket.create_connection((self.a.host, self.a.port),
                                             timeout=min(5, max(0.1, self.left())))
            except OSError as e:
                self.log("conn %d: cannot connect to beta: %s" % (n, e))
                s.close()
                continue
            c = Conn(self, n, s, b)
            self.conns.append(c)
            c.start()
        self.log("time is up after %.1f s; %d connection(s); %s" % (
            time.monotonic() - self.t0, self.nconn,
            "acted" if self.acted else "NO ACTION"))
        for c in self.conns:
            c.close()
        ls.close()

    def replay(self, n, alpha_sock):
        """The recording to beta, on a connection of our own."""
        rec = self.recording
        alpha_sock.close()
        try:
            b = socket.create_connection((self.a.host, self.a.port), timeout=5)
        except OSError as e:
            self.log("conn %d: replay: cannot connect to beta: %s" % (n, e))
            return
        self.log("ACTION replay conn=%d: sending beta the %d bytes alpha sent on conn %d" % (
            n, len(rec), self.recorded_conn))
        got = bytearray()
        sent = 0
        b.settimeout(0.05)
        end = time.monotonic() + min(self.a.replay_wait, max(0.1, self.left()))
        closed = "still open"
        while time.monotonic() < end:
            if sent < len(rec):
                try:
                    sent += b.send(rec[sent:sent + 65536])
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError as e:
                    closed = "send failed after %d bytes: %s" % (sent, e)
                    break
            try:
                d = b.recv(65536)
                if not d:
                    closed = "beta closed the connection"
                    break
                got += d
                self.capture(d)
            except socket.timeout:
                pass
            except OSError as e:
                closed = "recv: %s" % e
                break
        b.close()
        self.log("conn %d: replay: sent %d of %d bytes, beta answered %d bytes (%s), %s" % (
            n, sent, len(rec), len(got), describe(bytes(got)), closed))


def describe(data):
    """What a stream of bytes from beta holds: message types or TLS records."""
    out = []
    if data[:4] == struct.pack(">I", MAGIC):
        i = 0
        while i + 32 <= len(data) and len(out) < 12:
            magic, typ, flags, length, count, seq, off = struct.unpack(HDR, data[i:i + 32])
            if magic != MAGIC:
                break
            p = data[i + 32:i + 32 + length]
            out.append(NAMES.get(typ, str(typ)) +
                       ("(%s)" % p.decode(errors="replace") if typ == REFUSE else ""))
            i += 32 + length
    elif data[:1] in (b"\x15", b"\x16", b"\x14", b"\x17"):
        i = 0
        while i + 5 <= len(data) and len(out) < 12:
            t, v, ln = struct.unpack(">BHH", data[i:i + 5])
            out.append(TLS_TYPES.get(t, str(t)) + (
                "(%s)" % data[i + 5:i + 7].hex() if t == 21 and ln == 2 else ""))
            i += 5 + ln
    return ",".join(out) or "nothing recognised"


class Conn:
    """One connection from alpha and ours to beta."""

    def __init__(self, relay, n, a_sock, b_sock):
        self.r, self.n = relay, n
        self.sa, self.sb = a_sock, b_sock
        for s in (a_sock, b_sock):
            s.settimeout(0.2)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_lock = {id(a_sock): threading.Lock(), id(b_sock): threading.Lock()}
        self.closed = False
        self.proto = {"a2b": None, "b2a": None}
        self.state_seen = {"a2b": False, "b2a": False}
        self.appdata = {"a2b": 0, "b2a": 0}
        self.last_b2a_record = None     # tls forge-ack: what we replay to alpha
        self.swallow = set()            # plain inject: beta's ACK seqs not to pass
        self.forged = 0
        self.stalled = False
        self.pumps_done = 0
        # replay: every connection records until one whose handshake was
        # over ends: that one is the recording
        self.record = relay.a.mode == "replay"
        self.rec = bytearray()
        # This connection may act: the first one where the conditions hold.
        self.may_act = True

    def start(self):
        for src, dst, d in ((self.sa, self.sb, "a2b"), (self.sb, self.sa, "b2a")):
            threading.Thread(target=self.pump, args=(src, dst, d), daemon=True).start()

    def log(self, s):
        self.r.log("conn %d: %s" % (self.n, s))

    def send(self, sock, data):
        if self.closed:
            return
        with self.send_lock[id(sock)]:
            try:
                sock.settimeout(max(0.1, self.r.left()))
                sock.sendall(data)
            except OSError as e:
                self.log("send to %s: %s" % ("alpha" if sock is self.sa else "beta", e))
                self.close()

    def close(self, why=None):
        with self.r.lock:
            if self.closed:
                return
            self.closed = True
        if why:
            self.log(why)
        for s in (self.sa, self.sb):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if self.record and self.handshake_over():
            with self.r.lock:
                if self.r.recording is None:
                    self.r.recording = bytes(self.rec)
                    self.r.recorded_conn = self.n
                    self.log("recorded %d bytes from alpha" % len(self.rec))
        self.rec = bytearray()

    def handshake_over(self):
        pa, pb = self.proto["a2b"], self.proto["b2a"]
        if pa == "plain" and pb == "plain":
            return self.state_seen["a2b"] and self.state_seen["b2a"]
        if pa == "tls" and pb == "tls":
            after = self.r.a.after
            return self.appdata["a2b"] >= after and self.appdata["b2a"] >= after
        return False

    def claim(self):
        """True (once per relay) if this connection acts now."""
        r = self.r
        if r.a.mode == "pass" or not self.may_act:
            return False
        if r.a.mode == "replay" and (not r.a.splice or r.recording is None
                                     or r.recorded_conn == self.n):
            return False
        if not self.handshake_over() or not r.armed():
            return False
        with r.lock:
            if r.acted:
                self.may_act = False
                return False
            r.acted = True
        return True

    def pump(self, src, dst, d):
        buf = bytearray()
        name = "alpha->beta" if d == "a2b" else "beta->alpha"
        try:
            while not self.closed and self.r.left() > 0:
                # inject and splice act without alpha sending anything
                if d == "a2b" and self.r.a.mode in ("inject", "replay") and self.claim():
                    if self.r.a.mode == "inject":
                        self.inject()
                    else:
                        self.splice()
                try:
                    data = src.recv(262144)
                except socket.timeout:
                    continue
                except OSError as e:
                    self.close("%s: %s" % (name, e))
                    break
                if not data:
                    self.log("%s: end of stream (%d bytes unforwarded)" % (name, len(buf)))
                    if buf:
                        self.forward(dst, d, bytes(buf), None)
                        buf.clear()
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    break
                self.r.capture(data)
                if self.record and d == "a2b" and len(self.rec) < MAX_RECORDING:
                    self.rec += data
                buf += data
                if self.proto[d] is None:
                    if len(buf) < 4:
                        continue
                    if bytes(buf[:4]) == struct.pack(">I", MAGIC):
                        self.proto[d] = "plain"
                    elif buf[0] == 22 and buf[1] == 3:
                        self.proto[d] = "tls"
                    else:
                        self.proto[d] = "raw"
                    self.log("%s speaks %s" % (name, self.proto[d]))
                if self.proto[d] == "raw":
                    self.forward(dst, d, bytes(buf), None)
                    buf.clear()
                    continue
                while True:
                    unit = self.next_unit(buf, d)
                    if unit is None:
                        break
                    self.forward(dst, d, unit[0], unit[1])
                    if self.closed:
                        break
        finally:
            with self.r.lock:
                self.pumps_done += 1
                both = self.pumps_done == 2
            if both or (not self.closed and self.r.left() <= 0):
                self.close()

    def next_unit(self, buf, d):
        """A whole message/record from the front of buf: (bytes, parsed)."""
        if self.proto[d] == "plain":
            if len(buf) < 32:
                return None
            h = struct.unpack(HDR, bytes(buf[:32]))
            if h[0] != MAGIC or h[3] > MAX_PLAIN_LEN:
                self.log("%s: cannot frame (magic %#x length %d): raw from here" % (
                    d, h[0], h[3]))
                self.proto[d] = "raw"
                u = bytes(buf)
                buf.clear()
                return u, None
            n = 32 + h[3]
        else:
            if len(buf) < 5:
                return None
            t, v, ln = struct.unpack(">BHH", bytes(buf[:5]))
            if ln > MAX_TLS_LEN:
                self.log("%s: record of %d bytes: raw from here" % (d, ln))
                self.proto[d] = "raw"
                u = bytes(buf)
                buf.clear()
                return u, None
            h = (t, v, ln)
            n = 5 + ln
        if len(buf) < n:
            return None
        u = bytes(buf[:n])
        del buf[:n]
        return u, h

    def forward(self, dst, d, unit, h):
        """Forward one message/record (h: its parsed header), acting on it."""
        if h is None:
            self.send(dst, unit)
            return
        plain = self.proto[d] == "plain"
        if plain and h[1] == STATE:
            self.state_seen[d] = True
        if not plain and h[0] == TLS_APPDATA:
            self.appdata[d] += 1
            if d == "b2a":
                self.last_b2a_record = unit
        mode = self.r.a.mode
        if d == "b2a":
            if plain and h[1] == ACK and h[5] in self.swallow and not self.r.a.keep_ack:
                self.swallow.discard(h[5])
                self.r.log("ACTION swallow conn=%d: beta's ACK of the injected WRITE seq=%d "
                           "not passed to alpha" % (self.n, h[5]))
                return
            self.send(dst, unit)
            return
        # alpha -> beta
        if self.stalled:
            return
        acting = self.forging or (
            mode in ("forge-ack", "flip", "truncate") and self.is_target(plain, h) and
            self.claim())
        if not acting:
            self.send(dst, unit)
            return
        if mode == "forge-ack":
            self.forge(unit, h, plain)
        elif mode == "flip":
            self.flip(dst, unit, h, plain)
        elif mode == "truncate":
            self.truncate(dst, unit, h, plain)

    forging = False

    def is_target(self, plain, h):
        mode = self.r.a.mode
        if plain:
            if mode == "flip":
                return h[1] == WRITE and h[3] > 0
            if mode == "forge-ack":
                return h[1] in REQUESTS
            return True
        return h[0] == TLS_APPDATA

    def forge(self, unit, h, plain):
        if plain:
            if h[1] not in REQUESTS:
                self.send(self.sb, unit)
                return
            self.forging = True
            typ, seq = h[1], h[5]
            ack = FLUSH_ACK if typ == FLUSH else ACK
            self.send(self.sa, hdr(ack, seq=seq))
            self.forged += 1
            self.r.log("ACTION forge-ack conn=%d: dropped alpha's %s seq=%d offset=%d count=%d "
                       "flags=%#x, sent alpha a forged %s" % (
                           self.n, NAMES[typ], seq, h[6], h[4], h[2], NAMES[ack]))
            if self.r.a.count and self.forged >= self.r.a.count:
                self.forging = False
                self.may_act = False
            return
        if self.last_b2a_record is None:
            self.r.log("conn %d: forge-ack: no record from beta to replay" % self.n)
            self.send(self.sb, unit)
            return
        self.send(self.sa, self.last_b2a_record)
        self.r.log("ACTION forge-ack conn=%d: dropped alpha's application_data record of %d "
                   "bytes, sent alpha a copy of beta's last application_data record (%d bytes)"
                   % (self.n, len(unit), len(self.last_b2a_record)))

    def flip(self, dst, unit, h, plain):
        u = bytearray(unit)
        if plain:
            i = 32 + h[3] // 2
        else:
            i = 5 + h[2] // 2
        u[i] ^= 0xFF
        self.send(dst, bytes(u))
        self.r.log("ACTION flip conn=%d: flipped byte %d of alpha's %s (%d bytes) to beta" % (
            self.n, i, ("%s seq=%d offset=%d" % (NAMES.get(h[1], h[1]), h[5], h[6]))
            if plain else TLS_TYPES.get(h[0], h[0]) + " record", len(unit)))

    def truncate(self, dst, unit, h, plain):
        k = max(1, len(unit) // 2)
        self.send(dst, unit[:k])
        what = ("%s seq=%d" % (NAMES.get(h[1], h[1]), h[5])) if plain else \
            TLS_TYPES.get(h[0], h[0]) + " record"
        self.r.log("ACTION truncate conn=%d: forwarded %d of %d bytes of alpha's %s, then %s" % (
            self.n, k, len(unit), what, self.r.a.then))
        if self.r.a.then == "close":
            self.close("closed both sides after the truncated record")
        else:
            self.stalled = True

    def splice(self):
        """The recorded connection's post-handshake requests into this one."""
        rec, a = self.r.recording, self.r.a
        out, what = [], []
        i = 0
        if rec[:4] == struct.pack(">I", MAGIC):
            # plain: its WRITEs, renumbered (nothing authenticates a seq)
            while i + 32 <= len(rec) and len(out) < 64:
                h = struct.unpack(HDR, rec[i:i + 32])
                if h[0] != MAGIC or i + 32 + h[3] > len(rec):
                    break
                if h[1] == WRITE:
                    seq = a.seq + len(out)
                    self.swallow.add(seq)
                    out.append(hdr(WRITE, h[3], h[4], seq, h[6], h[2]) + rec[i + 32:i + 32 + h[3]])
                    what.append("WRITE offset=%d count=%d" % (h[6], h[4]))
                i += 32 + h[3]
        else:
            # tls: its application_data records after the first --after
            n = 0
            while i + 5 <= len(rec) and len(out) < 64:
                t, v, ln = struct.unpack(">BHH", rec[i:i + 5])
                if t == TLS_APPDATA:
                    n += 1
                    if n > a.after:
                        out.append(rec[i:i + 5 + ln])
                i += 5 + ln
            what.append("%d application_data records" % len(out))
        if not out:
            self.log("splice: nothing to splice from the recording")
            return
        self.send(self.sb, b"".join(out))
        self.r.log("ACTION replay conn=%d: spliced into the live connection, toward beta, %s "
                   "recorded on conn %d" % (self.n, ", ".join(what[:4]) +
                                             (" ..." if len(what) > 4 else ""),
                                             self.r.recorded_conn))

    def inject(self):
        a = self.r.a
        m = a.marker.encode()
        payload = (m * (a.length // len(m) + 1))[:a.length]
        msg = hdr(WRITE, len(payload), len(payload), a.seq, a.offset) + payload
        if self.proto["a2b"] == "plain":
            self.swallow.add(a.seq)
            self.send(self.sb, msg)
            self.r.log("ACTION inject conn=%d: sent beta a WRITE seq=%d offset=%d count=%d "
                       "of marker %r" % (self.n, a.seq, a.offset, len(payload), a.marker))
        else:
            # No key: the best an attacker can do is a record whose body is
            # the plaintext and a made-up tag.
            body = msg[:16000] + os.urandom(16)
            rec = struct.pack(">BHH", TLS_APPDATA, 0x0303, len(body)) + body
            self.send(self.sb, rec)
            self.r.log("ACTION inject conn=%d: sent beta a forged application_data record of "
                       "%d bytes carrying a WRITE offset=%d of marker %r" % (
                           self.n, len(rec), a.offset, a.marker))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["pass", "inject", "forge-ack", "replay", "flip", "truncate"])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--to", required=True, help="beta's HOST:PORT")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--log")
    p.add_argument("--capture")
    p.add_argument("--arm")
    p.add_argument("--after", type=int, default=2)
    p.add_argument("--marker", default="MITM-INJECTED-MARKER")
    p.add_argument("--offset", type=int, default=8 << 20)
    p.add_argument("--length", type=int, default=4096)
    p.add_argument("--seq", type=int, default=(1 << 62) + 12345)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--then", choices=["close", "stall"], default="close")
    p.add_argument("--replay-wait", type=float, default=3)
    p.add_argument("--splice", action="store_true")
    p.add_argument("--keep-ack", action="store_true")
    a = p.parse_args()
    a.host, _, port = a.to.rpartition(":")
    a.port = int(port)
    if a.seconds <= 0 or a.seconds > 3600:
        p.error("--seconds must be in (0, 3600]")
    r = Relay(a)
    try:
        r.run()
    except KeyboardInterrupt:
        pass
    # Threads are daemons: they end with us.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
