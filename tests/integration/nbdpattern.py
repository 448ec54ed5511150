"""A deterministic NBD writer with FLUSHes at known points, and its checker.

    nbdpattern.py write URI LOG --blocks N --span SIZE [--bs 4096]
                  [--flush-every K] [--seed S] [--secs T] [--must-finish]
    nbdpattern.py check LOG FILE [FILE...] --span SIZE [--bs 4096] [--seed S]

write: N writes of one block each, to N distinct blocks of the first
BYTES of the export, in an order fixed by the seed (so that they spread
over the whole span), one at a time; a FLUSH after every K writes.  Each
block holds a 32-byte header (magic, seed, write number, block) repeated.
After every acknowledged FLUSH it appends "flushed I" to LOG, I being the
number of writes acknowledged before that FLUSH was sent; at the end
"acked A" (writes acknowledged).  A failed request ends the writer: exit 0
(the server was expected to go away), unless --must-finish, where any
error is exit 1.  --secs bounds the time (by the clock).

check: reads LOG and each FILE (a replica's data area starts at offset 0)
and prints one line per file:
    FILE: checked C flushed writes, lost L, torn T; later writes present P
Lost: a write below the last "flushed" is not there.  Torn: a block the
writer touched holds neither zeros nor its own block.  Exit 1 if any
file has a lost or torn block, 0 otherwise.
"""

import argparse
import random
import struct
import sys
import time

MAGIC = b"BLKREPPL"


def size(text):
    """A byte count: 4096, 16M, 1G."""
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text[:-1] if mult > 1 else text) * mult


def block(seed, i, slot, bs):
    return struct.pack("<8sQQQ", MAGIC, seed, i, slot) * (bs // 32)


def plan(seed, span, bs, blocks):
    slots = span // bs
    if blocks > slots:
        sys.exit("nbdpattern: %d blocks do not fit in %d bytes" % (blocks, span))
    return random.Random(seed).sample(range(slots), blocks)


def do_write(a):
    import nbd

    order = plan(a.seed, a.span, a.bs, a.blocks)
    h = nbd.NBD()
    h.connect_uri(a.uri)
    acked = 0
    end = time.monotonic() + a.secs
    err = None
    with open(a.log, "w", buffering=1) as log:
        try:
            for i, slot in enumerate(order):
                if time.monotonic() > end:
                    break
                h.pwrite(block(a.seed, i, slot, a.bs), slot * a.bs)
                acked = i + 1
                if acked % a.flush_every == 0:
                    h.flush()
                    log.write("flushed %d\n" % acked)
            if acked == len(order):
                h.flush()
                log.write("flushed %d\n" % acked)
        except nbd.Error as e:
            err = e
        log.write("acked %d\n" % acked)
    print("nbdpattern: %d writes acknowledged%s" % (acked, ", then: %s" % err if err else ""))
    if err and a.must_finish:
        return 1
    if a.must_finish and acked < len(order):
        print("nbdpattern: stopped by the clock after %d of %d writes" % (acked, len(order)))
        return 1
    return 0


def do_check(a):
    order = plan(a.seed, a.span, a.bs, a.blocks)
    flushed = acked = 0
    with open(a.log) as log:
        for line in log:
            w = line.split()
            if w and w[0] == "flushed":
                flushed = max(flushed, int(w[1]))
            elif w and w[0] == "acked":
                acked = int(w[1])
    zeros = bytes(a.bs)
    bad = 0
    for path in a.files:
        lost = torn = later = 0
        with open(path, "rb") as f:
            for i, slot in enumerate(order):
                f.seek(slot * a.bs)
                got = f.read(a.bs)
                mine = got == block(a.seed, i, slot, a.bs)
                if not mine and got != zeros:
                    torn += 1
                elif i < flushed and not mine:
                    lost += 1
                elif i >= flushed and mine:
                    later += 1
        print("%s: checked %d flushed writes, lost %d, torn %d; later writes present %d "
              "(of %d acknowledged)" % (path, flushed, lost, torn, later, acked - flushed))
        bad += lost + torn
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["write", "check"])
    p.add_argument("target")
    p.add_argument("rest", nargs="*")
    p.add_argument("--blocks", type=int, default=4096)
    p.add_argument("--span", type=size, required=True)
    p.add_argument("--bs", type=size, default=4096)
    p.add_argument("--flush-every", type=int, default=16)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--secs", type=float, default=60)
    p.add_argument("--must-finish", action="store_true")
    a = p.parse_args()
    if a.what == "write":
        if len(a.rest) != 1:
            sys.exit("usage: nbdpattern.py write URI LOG ...")
        a.uri, a.log = a.target, a.rest[0]
        return do_write(a)
    if not a.rest:
        sys.exit("usage: nbdpattern.py check LOG FILE...")
    a.log, a.files = a.target, a.rest
    return do_check(a)


if __name__ == "__main__":
    sys.exit(main())
