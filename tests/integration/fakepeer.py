"""A fake blkrep peer for the integration tests.

It speaks the replication protocol of proto/msg.h and proto/auth.h well
enough to stand in for one node of a pair against a real daemon, and to say
exactly what it received and when:

    lst = Listener("127.0.0.1", port)          # play the listening node ...
    fp = lst.accept(timeout=10)
    # fp = FakePeer.connect("127.0.0.1", port) # ... or the connecting one
    theirs = fp.handshake(role=ROLE_SECONDARY, disk=DISK_UPTODATE,
                          gens=Gens(GEN_CREATED), flags=HF_ZEROED)
    fp.start()                                 # a reader thread from now on
    m = fp.wait_for(lambda m: m.type == WRITE and m.offset == 1 << 20, 5)
    fp.hold()                                  # stop answering (in order)
    fp.release()                               # answer what was held, go on

Before start() the socket is read synchronously (recv_msg(), expect()), so
a test can also send raw, malformed bytes (fp.sock).  After start() a thread
reads every message into fp.msgs (each stamped with time.monotonic() in
.t), answers PING with PONG, and answers the replication stream as a
secondary does, in stream order: WRITE, TRIM, ZERO and RESYNC_DATA with ACK,
FLUSH with FLUSH_ACK.  hold() (or hold_from(pred), from the first message
pred accepts) queues those answers, as a peer that has not applied a
request yet answers nothing after it either; release() sends them in order.
With apply_to=PATH, a request is applied to that file (writes, zeroing)
when it is answered, so that the file can be compared with the real node's
data area at the end.  VERIFY_REQ is recorded, never answered.

Its last part drives the real node in a scenario run under lib.sh's
py_checks: say() and need() print result lines (a failed need() ends the
scenario), status() and wait_status() read the node's status, RealNode runs
blkrep commands and qemu-io clients on it, same_data() compares files,
run_scenario() runs the scenario and cleans up after it, and fake_beta_env()
reads what pair.sh's fake_beta_scenario passes to it.

As a program it is a one-shot fake alpha (alpha's name sorts first, so
alpha connects) against beta's listener while alpha's daemon is down: it
does one thing beta must answer, and reports what beta did:

    fakepeer.py HOST PORT SECRET-FILE LOG MODE [N]

MODE:
  version       a HELLO offering protocol versions 7..9, sent at once (both
                sides speak first); prints "hello from NODE, versions A..B"
                for beta's HELLO and "refuse: TEXT" for its REFUSE;
  KIND          after beta's HELLO, before any handshake:
    badmagic    a HELLO header with a bad magic;
    truncated   10 bytes of a header, then the end of our sending side;
    hugehello   a HELLO of 4 GiB;
    hugewrite   a WRITE of 4 GiB;
    stall       a header the codec accepts (a 32 MiB WRITE) and 4 KiB of
                it, then silence (waits 10 s, not 5, for beta to drop it);
    range       a 4 KiB WRITE at the end of the data area;
    write       a 4 KiB WRITE at 0 (to a primary, which must not take it;
                waits 3 s, not 5);
    trim-burst  N TRIMs of 4 KiB in one send, without reading meanwhile
                (waits 3 s, not 5);
  ROLE-KIND     KIND after a complete authenticated handshake as alpha, in
                ROLE (primary or secondary), uptodate, zeroed, at the first
                generation, up to beta's first BITMAP; prints "connected".
Then, reading without answering anything (not even PING, so a link kept
open would be dropped only by beta's own silence timeout, 5 s), it prints
"acks K", then "closed after S s" or "still open after S s", then the lines
beta logged meanwhile (in LOG), each as "log: LINE".

Nothing here waits without a bound: every wait takes a timeout.  Byte
layouts are those of proto/msg.c (the header, the frozen HELLO/STATE
payload) and proto/auth.c (the MAC); keep them in step.
"""

import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

MAGIC = 0x424C4B52
(HELLO, AUTH, REFUSE, STATE, WRITE, TRIM, ZERO, FLUSH, ACK, FLUSH_ACK, PING, PONG,
 BITMAP, RESYNC_REQ, RESYNC_DATA, RESYNC_DONE, VERIFY_REQ, VERIFY_REPLY) = range(1, 19)
NAMES = {v: k for k, v in dict(
    HELLO=HELLO, AUTH=AUTH, REFUSE=REFUSE, STATE=STATE, WRITE=WRITE, TRIM=TRIM, ZERO=ZERO,
    FLUSH=FLUSH, ACK=ACK, FLUSH_ACK=FLUSH_ACK, PING=PING, PONG=PONG, BITMAP=BITMAP,
    RESYNC_REQ=RESYNC_REQ, RESYNC_DATA=RESYNC_DATA, RESYNC_DONE=RESYNC_DONE,
    VERIFY_REQ=VERIFY_REQ, VERIFY_REPLY=VERIFY_REPLY).items()}

F_FUA, F_NO_HOLE, F_LAST, F_NOBARRIER = 1, 2, 4, 8

ROLE_SECONDARY, ROLE_PRIMARY = 0, 1
DISK_INCONSISTENT, DISK_OUTDATED, DISK_CONSISTENT, DISK_UPTODATE = 0, 1, 2, 3
DISK_NAMES = ["inconsistent", "outdated", "consistent", "uptodate"]

HF_CRASHED_PRIMARY, HF_ZEROED, HF_NO_SECRET, HF_ASYNC = 1, 2, 4, 8
HF_NO_CHANGES, HF_DISCARD, HF_RESUMED = 16, 32, 64

GEN_CREATED = 4         # daemon/meta/gen.h
AUTH_LABEL = b"blkrep-auth-v1"

HDR = ">IHHIIQQ"                       # 32 bytes
HEL = ">HH64s64sQIBBBBQQ4Q32s"         # 228 bytes
assert struct.calcsize(HDR) == 32 and struct.calcsize(HEL) == 228

# The requests a secondary answers, in stream order.
STREAM = (WRITE, TRIM, ZERO, RESYNC_DATA, FLUSH)


class ProtocolError(Exception):
    pass


def hdr(typ, length=0, count=0, seq=0, offset=0, flags=0, magic=MAGIC):
    return struct.pack(HDR, magic, typ, flags, length, count, seq, offset)


class Gens:
    """Generation ids as in daemon/meta/gen.h: current, bitmap, history (4)."""

    def __init__(self, current=GEN_CREATED, bitmap=0, history=()):
        self.current, self.bitmap = current, bitmap
        self.history = (list(history) + [0, 0, 0, 0])[:4]

    def copy(self):
        return Gens(self.current, self.bitmap, self.history)

    def history_push(self, g):
        if g:
            self.history = [g] + self.history[:3]

    def finished_target(self, source):
        """gen_resync_finished_target(): take the source's current id."""
        if self.current != source.current:
            self.history_push(self.current)
        self.current = source.current
        self.bitmap = 0

    def __repr__(self):
        return "gens(current=%x bitmap=%x history=%s)" % (
            self.current, self.bitmap, ",".join("%x" % h for h in self.history))


class Hello:
    """A HELLO or STATE payload (struct msg_hello)."""

    def __init__(self, resource="r0", node="beta", size=64 << 20, extent=65536,
                 role=ROLE_SECONDARY, disk=DISK_UPTODATE, flags=0, gens=None,
                 nonce=b"\0" * 32, vmin=1, vmax=1):
        self.vmin, self.vmax = vmin, vmax
        self.resource, self.node = resource, node
        self.size, self.extent = size, extent
        self.role, self.disk, self.flags = role, disk, flags
        self.gens = gens.copy() if gens else Gens()
        self.nonce = nonce

    def pack(self, nonce=None):
        g = self.gens
        return struct.pack(HEL, self.vmin, self.vmax, self.resource.encode(),
                           self.node.encode(), self.size, self.extent, self.role, self.disk,
                           self.flags, 0, g.current, g.bitmap, *g.history,
                           self.nonce if nonce is None else nonce)

    @classmethod
    def unpack(cls, p):
        f = struct.unpack(HEL, p[:228])
        h = cls(resource=f[2].rstrip(b"\0").decode(), node=f[3].rstrip(b"\0").decode(),
                size=f[4], extent=f[5], role=f[6], disk=f[7], flags=f[8],
                gens=Gens(f[10], f[11], f[12:16]), nonce=f[16], vmin=f[0], vmax=f[1])
        return h

    def __repr__(self):
        return "%s %s %s flags=%#x size=%d %r" % (
            self.node, "primary" if self.role == ROLE_PRIMARY else "secondary",
            DISK_NAMES[self.disk] if self.disk < 4 else self.disk, self.flags, self.size,
            self.gens)


class Msg:
    __slots__ = ("type", "flags", "length", "count", "seq", "offset", "payload", "t",
                 "answered")

    def __init__(self, typ, flags, length, count, seq, offset, payload):
        self.type, self.flags, self.length, self.count = typ, flags, length, count
        self.seq, self.offset, self.payload = seq, offset, payload
        self.t = time.monotonic()
        self.answered = None    # when the fake answered it (monotonic)

    @property
    def name(self):
        return NAMES.get(self.type, "type%d" % self.type)

    @property
    def end(self):
        return self.offset + self.count

    def overlaps(self, off, length):
        return self.offset < off + length and off < self.offset + self.count

    def __repr__(self):
        return "%s(seq=%d off=%d count=%d len=%d flags=%#x)" % (
            self.name, self.seq, self.offset, self.count, self.length, self.flags)


def mac(key, first_nonce, second_nonce, resource, node):
    """proto/auth.c: HMAC-SHA256 over label, both nonces, resource, node."""
    return hmac.new(key, AUTH_LABEL + first_nonce + second_nonce + resource.encode() +
                    b"\0" + node.encode() + b"\0", hashlib.sha256).digest()


def read_secret(path):
    """The secret file as daemon/config.c reads it: trailing newlines cut."""
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def bitmap_bytes(bits, nbits):
    """The bitmap as BITMAP payload bytes (bit i: byte i/8, bit i%8)."""
    b = bytearray((nbits + 7) // 8)
    for i in bits:
        b[i // 8] |= 1 << (i % 8)
    return bytes(b)


def bits_of(offset, payload):
    """The bit numbers set in a BITMAP chunk."""
    return [offset + 8 * i + j for i, v in enumerate(payload) if v for j in range(8)
            if v >> j & 1]


def is_last_bitmap(m):
    """The LAST chunk of a BITMAP: its sender's half of the exchange is done."""
    return m.type == BITMAP and m.flags & F_LAST


class LogTail:
    """The lines a file (a daemon's log) gains from now on."""

    def __init__(self, path):
        self.path = path
        try:
            self.start = os.path.getsize(path)
        except OSError:
            self.start = 0

    def lines(self):
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace").splitlines()


class FakePeer:
    def __init__(self, sock, resource="r0", node="beta", peer="alpha", secret=b""):
        self.sock = sock
        self.resource, self.node, self.peer = resource, node, peer
        self.secret = secret
        self.theirs = None          # their HELLO (Hello)
        self.their_state = None     # their latest STATE (Hello)
        self.mine = None            # what our last HELLO/STATE said (Hello)
        self.msgs = []              # everything received after start()
        self.eof = False
        self.error = None
        self.apply_fd = None
        self._send_lock = threading.Lock()
        self._cv = threading.Condition()
        self._holding = False
        self._hold_pred = None
        self._held = []
        self._thread = None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def connect(cls, host, port, timeout=5, **kw):
        """Connects (retrying for up to timeout seconds) as the node whose
        name sorts first does."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.create_connection((host, port), timeout=10)
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise ProtocolError("cannot connect to %s:%d: %s" % (host, port, e))
                time.sleep(0.1)
        return cls(s, **kw)

    # --- synchronous I/O (before start()) ---

    def _recv_exact(self, n):
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if not k:
                return None
            got += k
        return bytes(buf)

    def recv_msg(self):
        """The next message, or None at EOF.  A bad magic raises."""
        h = self._recv_exact(32)
        if h is None:
            return None
        magic, typ, flags, length, count, seq, offset = struct.unpack(HDR, h)
        if magic != MAGIC:
            raise ProtocolError("%s sent a bad magic %#x" % (self.peer, magic))
        p = self._recv_exact(length) if length else b""
        if p is None:
            return None
        return Msg(typ, flags, length, count, seq, offset, p)

    def expect(self, typ, what=None, timeout=10):
        """Reads until a message of type typ; a REFUSE or EOF raises."""
        what = what or NAMES[typ]
        self.sock.settimeout(timeout)
        try:
            while True:
                m = self.recv_msg()
                if m is None:
                    raise ProtocolError("%s closed the connection while we waited for %s"
                                        % (self.peer, what))
                if m.type == REFUSE:
                    raise ProtocolError("%s refused while we waited for %s: %s" % (
                        self.peer, what, m.payload.decode(errors="replace")))
                if m.type == typ:
                    return m
        except socket.timeout:
            raise ProtocolError("no %s from %s within %s s" % (what, self.peer, timeout))

    def until_closed(self, t0, secs):
        """Reads, answering nothing, until the other side closes the
        connection or secs have passed since t0 (time.monotonic()).
        Returns the ACKs read and "closed after S s" or "still open after
        S s" (S since t0)."""
        acks = 0
        try:
            while True:
                left = t0 + secs - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                m = self.recv_msg()
                if m is None:
                    return acks, "closed after %.1f s" % (time.monotonic() - t0)
                acks += m.type == ACK
        except socket.timeout:
            pass
        except ConnectionResetError:
            return acks, "closed after %.1f s" % (time.monotonic() - t0)
        return acks, "still open after %.1f s" % (time.monotonic() - t0)

    def send(self, typ, payload=b"", count=0, seq=0, offset=0, flags=0):
        with self._send_lock:
            self.sock.sendall(hdr(typ, len(payload), count, seq, offset, flags) + payload)

    def send_hello(self, h, typ=HELLO):
        """Sends h as HELLO (with a fresh nonce, kept in self.nonce) or as
        STATE (nonce zero)."""
        if typ == HELLO:
            self.nonce = os.urandom(32)
            self.send(HELLO, h.pack(self.nonce))
        else:
            self.send(STATE, h.pack(b"\0" * 32))
        self.mine = h

    def handshake(self, role=ROLE_SECONDARY, disk=DISK_UPTODATE, gens=None, flags=0,
                  size=None, extent=None, timeout=10):
        """The whole handshake as peer.c does it: their HELLO (read first),
        ours, AUTH both ways (theirs checked), STATE both ways.  size and
        extent default to theirs.  Returns their HELLO; their STATE is in
        self.their_state."""
        self.theirs = Hello.unpack(self.expect(HELLO, timeout=timeout).payload)
        h = Hello(self.resource, self.node, size or self.theirs.size,
                  extent or self.theirs.extent, role, disk, flags, gens)
        self.send_hello(h)
        self.send(AUTH, mac(self.secret, self.theirs.nonce, self.nonce, self.resource,
                            self.node))
        want = mac(self.secret, self.nonce, self.theirs.nonce, self.resource, self.peer)
        if self.expect(AUTH, timeout=timeout).payload != want:
            raise ProtocolError("%s's AUTH does not verify" % self.peer)
        self.send_hello(h, STATE)
        self.their_state = Hello.unpack(self.expect(STATE, timeout=timeout).payload)
        return self.theirs

    def send_state(self, **changes):
        """STATE with what the last HELLO/STATE said, changed by keyword
        (role, disk, flags, gens)."""
        h = Hello(self.mine.resource, self.mine.node, self.mine.size, self.mine.extent,
                  self.mine.role, self.mine.disk, self.mine.flags, self.mine.gens)
        for k, v in changes.items():
            setattr(h, k, v)
        self.send_hello(h, STATE)

    def send_bitmap(self, bits=()):
        """Our bitmap for the exchange: a chunk per 4 KiB page with bits
        set, then the LAST chunk repeating the first byte (node_send_bitmap)."""
        nbits = (min(self.mine.size, self.theirs.size) + self.mine.extent - 1) \
            // self.mine.extent
        b = bitmap_bytes(bits, nbits)
        for p in range(0, len(b), 4096):
            page = b[p:p + 4096]
            if any(page):
                self.send(BITMAP, page, offset=8 * p)
        self.send(BITMAP, b[:1] or b"\0", flags=F_LAST)

    # --- the reader thread (after start()) ---

    def start(self, apply_to=None):
        """Reads everything from now on in a thread; see the module doc."""
        if apply_to:
            self.apply_fd = os.open(apply_to, os.O_WRONLY)
        self.sock.settimeout(None)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def _reader(self):
        try:
            while True:
                m = self.recv_msg()
                if m is None:
                    break
                if m.type == STATE:
                    self.their_state = Hello.unpack(m.payload)
                with self._cv:
                    self.msgs.append(m)
                    self._cv.notify_all()
                if m.type == PING:
                    self.send(PONG, seq=m.seq)
                elif m.type in STREAM:
                    self._answer(m)
        except (OSError, ProtocolError, struct.error) as e:
            self.error = str(e)
        finally:
            with self._cv:
                self.eof = True
                self._cv.notify_all()

    def _answer(self, m):
        with self._cv:
            if not self._holding and self._hold_pred and self._hold_pred(m):
                self._holding = True
            if self._holding:
                self._held.append(m)
                return
            self._reply(m)

    def _reply(self, m):
        if self.apply_fd is not None:
            if m.type in (WRITE, RESYNC_DATA):
                os.pwrite(self.apply_fd, m.payload, m.offset)
            elif m.type in (TRIM, ZERO):
                for off in range(m.offset, m.end, 1 << 20):
                    os.pwrite(self.apply_fd, b"\0" * min(1 << 20, m.end - off), off)
        m.answered = time.monotonic()
        self.send(FLUSH_ACK if m.type == FLUSH else ACK, seq=m.seq)

    def hold(self):
        """Answer nothing more until release()."""
        with self._cv:
            self._holding = True

    def hold_from(self, pred):
        """Answer as usual until a request pred accepts; from that one on,
        answer nothing until release()."""
        with self._cv:
            self._hold_pred = pred

    def release(self):
        """Answers what was held, in order, and goes on answering."""
        with self._cv:
            for m in self._held:
                self._reply(m)
            self._held = []
            self._holding = False
            self._hold_pred = None

    def held(self):
        with self._cv:
            return list(self._held)

    def wait_for(self, pred, timeout, since=0):
        """The first message received (after start()) from index since on
        that pred accepts, waiting up to timeout seconds; None if none came
        (or the connection ended)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            i = since
            while True:
                while i < len(self.msgs):
                    if pred(self.msgs[i]):
                        return self.msgs[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self._cv.wait(left)

    def received(self, pred=lambda m: True):
        with self._cv:
            return [m for m in self.msgs if pred(m)]

    def adopt_resync(self):
        """What a resync target does at RESYNC_DONE: take the source's ids
        (from its last STATE) and its disk state, and say so in a STATE."""
        src = self.their_state
        g = self.mine.gens.copy()
        g.finished_target(src.gens)
        self.send_state(gens=g, disk=DISK_UPTODATE if src.disk == DISK_UPTODATE
                        else DISK_CONSISTENT)

    def close(self):
        """Drops the connection (FIN, or RST if input is unread)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread:
            self._thread.join(5)
        if self.apply_fd is not None:
            os.close(self.apply_fd)
            self.apply_fd = None


class Listener:
    """A listening socket for the fake when it plays the node whose name
    sorts last (the real node connects to it, and reconnects after a drop)."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(4)

    def accept(self, timeout=10, **kw):
        self.sock.settimeout(timeout)
        try:
            s, _ = self.sock.accept()
        except socket.timeout:
            raise ProtocolError("no connection within %s s" % timeout)
        s.settimeout(None)
        return FakePeer(s, **kw)

    def close(self):
        self.sock.close()


# --- driving the real node from a scenario (run under lib.sh's py_checks) ---

def say(ok, desc):
    """One result line as lib.sh's run_checks counts them."""
    print(("ok - " if ok else "FAIL - ") + desc, flush=True)
    return ok


class Stop(Exception):
    """A need() failed: what follows in the scenario would mean nothing."""


def need(ok, desc):
    """say(); if not ok, ends the scenario (see run_scenario)."""
    if not say(ok, desc):
        raise Stop()


def in_sync(d):
    """A status (status()) of a node connected to an uptodate peer, with
    nothing out of sync and no resync running."""
    return (d["peer"]["connection"] == "connected" and d["peer"]["disk"] == "uptodate" and
            d["out_of_sync_bytes"] == 0 and d["resync"] is None)


def same_data(desc, size, path_a, path_b):
    """say() whether the first size bytes of two files are equal."""
    r = subprocess.run(["cmp", "-n", str(size), path_a, path_b], capture_output=True)
    return say(r.returncode == 0, "%s%s" % (
        desc, "" if r.returncode == 0 else ": " + r.stdout.decode().strip()))


class RealNode:
    """The real node a scenario drives: cmd, its blkrep command line (a
    list, ending in --node NAME), and uri, its NBD export.  The clients
    qemu() starts are killed when run_scenario ends."""

    def __init__(self, cmd, uri):
        self.cmd, self.uri = cmd, uri
        self.clients = []

    def status(self):
        return status(self.cmd)

    def wait_status(self, pred, secs):
        return wait_status(self.cmd, pred, secs)

    def cli(self, desc, args):
        """blkrep ARGS on the node, as a need() (naming its exit and
        output if it fails)."""
        r = subprocess.run(self.cmd + args, capture_output=True, timeout=30)
        need(r.returncode == 0, "%s%s" % (desc, "" if r.returncode == 0 else " (exit %d: %s)" % (
            r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip())))

    def qemu(self, cmd, secs=60):
        """qemu-io -c CMD on the node's export, in the background: a Client."""
        c = Client(["qemu-io", "-f", "raw", self.uri, "-c", cmd], secs)
        self.clients.append(c)
        return c

    def reads(self, desc, *cmds):
        """say() whether qemu-io's commands cmds (read -P ...) all succeed
        on the node's export and verify their pattern."""
        argv = ["qemu-io", "-f", "raw", self.uri]
        for c in cmds:
            argv += ["-c", c]
        r = subprocess.run(argv, capture_output=True, timeout=30)
        return say(r.returncode == 0 and b"Pattern verification failed" not in r.stdout, desc)


def fake_beta_env():
    """What pair.sh's fake_beta_scenario gives its scenario: the real alpha
    (a RealNode), the port on which the fake beta listens, the keyword
    arguments for the fake's FakePeer (the pair's secret), alpha's backing
    file and the file the fake applies to."""
    return (RealNode(os.environ["A"].split(), os.environ["URI"]), int(os.environ["PORT"]),
            dict(secret=read_secret(os.environ["SECRET"])), os.environ["AIMG"],
            os.environ["BIMG"])


def run_scenario(scenario, node):
    """Runs scenario(): a failed need() ends it, and so does a
    ProtocolError, as a failed check.  Then kills node's clients still
    running and prints how long it took."""
    t0 = time.monotonic()
    try:
        scenario()
    except Stop:
        pass
    except ProtocolError as e:
        say(False, "the fake peer: %s" % e)
    finally:
        for c in node.clients:
            c.kill()
    print("scenario: %.1f s" % (time.monotonic() - t0))


def status(node_cmd, timeout=15):
    """The node's status --json (node_cmd: the blkrep command line as a
    list, ending in --node NAME), or None if it cannot be had."""
    try:
        r = subprocess.run(node_cmd + ["status", "--json"], capture_output=True,
                           timeout=timeout)
        return json.loads(r.stdout) if r.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        return None


def wait_status(node_cmd, pred, secs):
    """Polls status until pred(d) holds, for up to secs seconds; returns the
    last status seen and whether pred held."""
    deadline = time.monotonic() + secs
    while True:
        d = status(node_cmd)
        if d is not None and pred(d):
            return d, True
        if time.monotonic() >= deadline:
            return d, False
        time.sleep(0.1)


class Client:
    """A command (qemu-io, say) in the background, bounded by secs: done()
    once it exited, then rc, t_end (monotonic) and its output."""

    def __init__(self, argv, secs=60):
        self.t_start = time.monotonic()
        self.t_end = None
        self.rc = None
        self.p = subprocess.Popen(["timeout", "-k", "5", str(secs)] + argv,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._t = threading.Thread(target=self._wait, daemon=True)
        self._t.start()

    def _wait(self):
        self.output = self.p.stdout.read().decode(errors="replace")
        self.rc = self.p.wait()
        self.t_end = time.monotonic()

    def done(self):
        return self.t_end is not None

    def wait(self, secs):
        """True if it exited within secs seconds."""
        self._t.join(secs)
        return self.done()

    def kill(self):
        if not self.done():
            self.p.terminate()      # timeout(1) passes it on to the command
            self._t.join(5)



# --- the one-shot fake alpha (the command line: see the module doc) ---

# How long the fake waits for beta to close, by KIND (the module doc): 5 s
# unless said here.  Under 5 s where beta, keeping the link, must not drop
# it by its own silence timeout meanwhile.
WAIT_S = {"stall": 10, "write": 3, "trim-burst": 3}


def version_refused(fp):
    """Our HELLO (versions 7..9) at once, then beta's HELLO and REFUSE."""
    fp.send_hello(Hello("r0", "alpha", 64 << 20, 65536, vmin=7, vmax=9))
    while True:
        m = fp.recv_msg()
        if m is None:
            print("eof without a REFUSE")
            break
        if m.type == HELLO:
            h = Hello.unpack(m.payload)
            print("hello from %s, versions %d..%d" % (h.node, h.vmin, h.vmax))
        elif m.type == REFUSE:
            print("refuse: " + m.payload.decode(errors="replace"))
            break
        else:
            print("message type %d" % m.type)
    fp.sock.shutdown(socket.SHUT_WR)


def send_kind(fp, kind, size, count):
    """Sends what KIND says (the module doc) to a beta of size bytes."""
    s = fp.sock
    if kind == "badmagic":
        s.sendall(hdr(HELLO, 228, magic=0xDEADBEEF) + b"\0" * 228)
    elif kind == "truncated":
        s.sendall(hdr(HELLO, 228)[:10])
        s.shutdown(socket.SHUT_WR)
    elif kind == "hugehello":
        s.sendall(hdr(HELLO, 0xFFFFFFFF) + b"\0" * 228)
    elif kind == "hugewrite":
        s.sendall(hdr(WRITE, 0xFFFFFFFF, count=0xFFFFFFFF) + b"\xaa" * 4096)
    elif kind == "stall":
        # beta must not wait for the payload forever
        s.sendall(hdr(WRITE, 32 << 20, count=32 << 20) + b"\xaa" * 4096)
    elif kind == "range":
        s.sendall(hdr(WRITE, 4096, count=4096, seq=1, offset=size) + b"\xaa" * 4096)
    elif kind == "write":
        s.sendall(hdr(WRITE, 4096, count=4096, seq=1) + b"\xaa" * 4096)
    elif kind == "trim-burst":
        blocks = size // 4096
        s.sendall(b"".join(hdr(TRIM, count=4096, seq=i + 1, offset=(i % blocks) * 4096)
                           for i in range(count)))
    else:
        sys.exit("unknown mode " + kind)


def main(argv):
    """The command line (the module doc)."""
    host, port, secret_file, log, mode = argv[:5]
    count = int(argv[5]) if len(argv) > 5 else 1
    role, _, kind = mode.partition("-")
    if role not in ("primary", "secondary"):
        role, kind = None, mode
    try:
        fp = FakePeer.connect(host, int(port), timeout=5, node="alpha", peer="beta",
                              secret=read_secret(secret_file))
        if role:
            theirs = fp.handshake(role=ROLE_PRIMARY if role == "primary" else ROLE_SECONDARY,
                                  disk=DISK_UPTODATE, gens=Gens(GEN_CREATED), flags=HF_ZEROED)
            fp.expect(BITMAP, "the first BITMAP (beta is up)")
            print("connected", flush=True)
            time.sleep(0.3)     # beta's "connected" lines are out
        elif kind != "version":
            # beta's HELLO first, so that beta's own sends are done before
            # the garbage (no reset races the parse)
            theirs = Hello.unpack(fp.expect(HELLO).payload)
        tail = LogTail(log)
        t0 = time.monotonic()
        try:
            if kind == "version":
                version_refused(fp)
            else:
                send_kind(fp, kind, theirs.size, count)
        except (ConnectionResetError, BrokenPipeError):
            pass                # beta dropped the link already
        acks, how = fp.until_closed(t0, WAIT_S.get(kind, 5))
    except ProtocolError as e:
        sys.exit(str(e))
    print("acks %d" % acks)
    print(how)
    fp.sock.close()
    time.sleep(0.5)             # lines logged once the connection is finished
    for line in tail.lines():
        print("log: " + line)


if __name__ == "__main__":
    main(sys.argv[1:])
