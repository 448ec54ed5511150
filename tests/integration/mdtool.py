#!/usr/bin/env python3
"""Edits blkrep superblocks in place, for the metadata tests.

  mdtool.py v1 FILE            every one-slot version 2 superblock in FILE
                               rewritten as version 1 wrote it (slot 0's
                               bitmap id and disk in version 1's fields)
  mdtool.py rename-slot FILE OLD NEW
                               the slot named OLD renamed NEW

Superblocks are found by their magic at 4096-aligned offsets in the first
8 KiB (external metadata) and the last 4 MiB (internal).  The layout is
daemon/meta/meta.c's; the checksum is XXH64 (seed 0, pure Python here),
checked against each block before it is rewritten."""
import os
import struct
import sys

BLK = 4096
M = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P4, P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def rnd(acc, lane):
    return rotl((acc + lane * P2) & M, 31) * P1 & M


def xxh64(data):
    """XXH64 with seed 0 of data, whose length is a multiple of 32."""
    assert len(data) % 32 == 0 and len(data) >= 32
    v = [(P1 + P2) & M, P2, 0, (-P1) & M]
    for off in range(0, len(data), 32):
        lanes = struct.unpack_from("<4Q", data, off)
        v = [rnd(v[i], lanes[i]) for i in range(4)]
    h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
    for x in v:
        h = ((h ^ rnd(0, x)) * P1 + P4) & M
    h = (h + len(data)) & M
    h ^= h >> 33
    h = h * P2 & M
    h ^= h >> 29
    h = h * P3 & M
    return h ^ (h >> 32)


def csum(blk):
    return xxh64(bytes(blk[:BLK - 8]) + bytes(8))


def seal(blk):
    struct.pack_into("<Q", blk, BLK - 8, csum(blk))


def superblocks(fd):
    size = os.fstat(fd).st_size
    offs = set(range(0, min(size, 2 * BLK), BLK))
    offs |= set(range(max(0, size - (4 << 20)) // BLK * BLK, size - BLK + 1, BLK))
    for off in sorted(offs):
        blk = bytearray(os.pread(fd, BLK, off))
        if len(blk) == BLK and blk[:8] == b"BLKREPMD":
            if struct.unpack_from("<Q", blk, BLK - 8)[0] != csum(blk):
                sys.exit("mdtool: checksum of the superblock at %d does not match" % off)
            yield off, blk


SLOTS, SLOT = 240, 80


def to_v1(blk):
    version, = struct.unpack_from("<I", blk, 8)
    peers, = struct.unpack_from("<I", blk, 236)
    if version != 2 or peers != 1:
        return False
    gen, = struct.unpack_from("<Q", blk, SLOTS + 64)
    disk = blk[SLOTS + 72]
    struct.pack_into("<I", blk, 8, 1)
    struct.pack_into("<Q", blk, 184, gen)
    blk[225] = disk
    blk[236:BLK - 8] = bytes(BLK - 8 - 236)
    return True


def rename(blk, old, new):
    peers, = struct.unpack_from("<I", blk, 236)
    for i in range(peers):
        at = SLOTS + i * SLOT
        if bytes(blk[at:at + 64]).rstrip(b"\0") == old.encode():
            blk[at:at + 64] = new.encode().ljust(64, b"\0")
            return True
    return False


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_RDWR)
    n = 0
    for off, blk in list(superblocks(fd)):
        if cmd == "v1":
            done = to_v1(blk)
        else:
            done = rename(blk, sys.argv[3], sys.argv[4])
        if done:
            seal(blk)
            os.pwrite(fd, bytes(blk), off)
            n += 1
    os.fsync(fd)
    os.close(fd)
    if n == 0:
        sys.exit("mdtool: no superblock to change in %s" % path)
    print("%d superblock(s) changed" % n)


main()
