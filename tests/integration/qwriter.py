#!/usr/bin/env python3
"""The writer and the lost-write oracle of t_quorum_chaos.sh (libnbd's
Python binding).

  qwriter.py write --node NAME=SOCKET ... --log FILE [--area-blocks N]
                   [--timeout SECS] [--rate N] [--pause-file F]
      writes numbered 4 KiB blocks, one at a time, through whichever node
      answers (a secondary has no export, or refuses writes: the next node
      is tried), block number i to slot i % N (default 4096, from offset
      0), at most --rate (default 200) a second.  Each block repeats the
      line "QW <i> <slot>".  The log, one line
      per event, flushed at once: "I i slot node time" (issued), "A ..."
      (acknowledged), "E ... error" (failed), "T ..." (no answer within
      --timeout, default 2 s: the connection is kept aside and still
      polled, so a late answer is logged as A or E with "late").  While
      --pause-file exists it issues nothing and keeps PAUSE-FILE.ack
      touched (the driver waits for it: nothing of its own in flight).
      SIGTERM ends it; the last line on stderr counts the events.

  qwriter.py check --log FILE --image IMG [--area-blocks N] [--node NAME]
      every slot's newest acknowledged block (or a block issued after it)
      must be in IMG (the data area at offset 0).  Prints "ok acked=N
      slots=N" or the slots that lost an acknowledged write, exit 1.
"""
import argparse
import os
import re
import signal
import sys
import time

BS = 4096


def block(i, slot):
    line = b"QW %d %d\n" % (i, slot)
    return (line * (BS // len(line) + 1))[:BS]


class Writer:
    def __init__(self, a):
        import nbd
        self.nbd = nbd
        self.nodes = [n.split("=", 1) for n in a.node]
        self.area = a.area_blocks
        self.tmo = a.timeout
        self.pause = a.pause_file
        self.gap = 1.0 / a.rate
        self.log = open(a.log, "a", buffering=1)
        self.cur = None  # (name, handle)
        self.next = 0  # index of the node to try first
        self.aside = []  # (handle, cookie, i, slot, name)
        self.stop = False
        self.count = {"I": 0, "A": 0, "E": 0, "T": 0, "late": 0}

    def out(self, kind, i, slot, name, extra=""):
        self.count[kind] += 1
        self.log.write("%s %d %d %s %.3f%s\n" % (kind, i, slot, name, time.time(),
                                                  " " + extra if extra else ""))

    def connect(self, name, sock):
        h = self.nbd.NBD()
        h.set_export_name("r0")
        try:
            h.aio_connect_unix(sock)
            end = time.time() + 1.0
            while not h.aio_is_ready():
                if h.aio_is_closed() or h.aio_is_dead() or time.time() > end:
                    raise RuntimeError("not ready")
                h.poll(100)
            if h.is_read_only():
                raise RuntimeError("read-only")
        except Exception:
            self.close(h)
            return None
        return h

    def close(self, h):
        try:
            h.close()
        except Exception:
            pass

    def pick(self):
        for k in range(len(self.nodes)):
            name, sock = self.nodes[(self.next + k) % len(self.nodes)]
            h = self.connect(name, sock)
            if h:
                self.cur = (name, h)
                return True
        self.next = (self.next + 1) % len(self.nodes)
        return False

    def drop(self):
        """Leave the current node; try the next one first."""
        if self.cur:
            for k, (name, _) in enumerate(self.nodes):
                if name == self.cur[0]:
                    self.next = (k + 1) % len(self.nodes)
        self.cur = None

    def poll_aside(self):
        keep = []
        for h, c, i, slot, name in self.aside:
            try:
                h.poll(0)
                done = h.aio_command_completed(c)
            except Exception as e:
                self.count["late"] += 1
                self.out("E", i, slot, name, "late " + str(e).replace("\n", " ")[:80])
                self.close(h)
                continue
            if done:
                self.count["late"] += 1
                self.out("A", i, slot, name, "late")
                self.close(h)
            else:
                keep.append((h, c, i, slot, name))
        self.aside = keep

    def write_one(self, i):
        name, h = self.cur
        slot = i % self.area
        self.out("I", i, slot, name)
        try:
            c = h.aio_pwrite(block(i, slot), slot * BS)
        except Exception as e:
            self.out("E", i, slot, name, str(e).replace("\n", " ")[:80])
            self.close(h)
            self.drop()
            return
        end = time.time() + self.tmo
        while True:
            try:
                if h.aio_command_completed(c):
                    self.out("A", i, slot, name)
                    return
            except Exception as e:
                self.out("E", i, slot, name, str(e).replace("\n", " ")[:80])
                self.close(h)
                self.drop()
                return
            if time.time() > end:
                self.out("T", i, slot, name)
                self.aside.append((h, c, i, slot, name))
                self.drop()
                return
            try:
                h.poll(50)
            except Exception:
                pass

    def run(self):
        i = 0
        while not self.stop:
            self.poll_aside()
            if self.pause and os.path.exists(self.pause):
                open(self.pause + ".ack", "w").close()
                time.sleep(0.05)
                continue
            if not self.cur and not self.pick():
                time.sleep(0.2)
                continue
            t = time.time()
            self.write_one(i)
            i += 1
            time.sleep(max(0.0, self.gap - (time.time() - t)))
        c = self.count
        sys.stderr.write("qwriter: issued %d, acknowledged %d, failed %d, no answer %d (late answers %d)\n"
                         % (c["I"], c["A"], c["E"], c["T"], c["late"]))


def check(a):
    newest = {}  # slot -> newest acknowledged i
    issued = {}  # slot -> set of i
    acked = 0
    for line in open(a.log):
        f = line.split()
        if len(f) < 5:
            continue
        kind, i, slot = f[0], int(f[1]), int(f[2])
        if kind == "I":
            issued.setdefault(slot, set()).add(i)
        elif kind == "A":
            acked += 1
            newest[slot] = max(newest.get(slot, -1), i)
    bad = []
    with open(a.image, "rb") as img:
        for slot, i in sorted(newest.items()):
            img.seek(slot * BS)
            data = img.read(BS)
            m = re.match(rb"QW (\d+) (\d+)\n", data)
            j = int(m.group(1)) if m else -1
            if not m or data != block(j, slot) or j < i or j not in issued.get(slot, ()):
                bad.append("slot %d: acknowledged block %d, found %s" % (slot, i, j if m else "other data"))
    who = " on " + a.node if a.node else ""
    if bad:
        print("LOST%s: %d acknowledged block(s) missing: %s" % (who, len(bad), "; ".join(bad[:5])))
        return 1
    print("ok%s acked=%d slots=%d" % (who, acked, len(newest)))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--node", action="append", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--area-blocks", type=int, default=4096)
    w.add_argument("--timeout", type=float, default=2.0)
    w.add_argument("--pause-file")
    w.add_argument("--rate", type=float, default=200)
    c = sub.add_parser("check")
    c.add_argument("--log", required=True)
    c.add_argument("--image", required=True)
    c.add_argument("--area-blocks", type=int, default=4096)
    c.add_argument("--node")
    a = p.parse_args()
    if a.cmd == "check":
        sys.exit(check(a))
    wr = Writer(a)

    def on_term(sig, frame):
        wr.stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    wr.run()


if __name__ == "__main__":
    main()
