# Writes the fuzz_savefile seed corpus (python3 tests/fuzz/make-seeds-savefile.py).
# A seed is: flags u8 (1: fix checksums, 2: fix header counts), volume size
# u64 LE, then a save file as daemon/meta/savefile.h describes it.  The good
# files carry real sums (XXH64 seeded with the offset; version 1: seed 0)
# and flags 0, so they also test the sums.
import os, struct
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_savefile")
M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                      9650029242287828579, 2870177450012600261)
def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M
def rnd(acc, lane):
    return rotl((acc + lane * P2) & M, 31) * P1 & M
def xxh64(b, seed=0):
    n, i = len(b), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], struct.unpack_from("<Q", b, i + 8 * k)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for k in range(4):
            h = ((h ^ rnd(0, v[k])) * P1 + P4) & M
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, struct.unpack_from("<Q", b, i)[0]), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (struct.unpack_from("<I", b, i)[0] * P1 & M), 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = rotl(h ^ (b[i] * P5 & M), 11) * P1 & M
        i += 1
    h ^= h >> 33; h = h * P2 & M; h ^= h >> 29; h = h * P3 & M; h ^= h >> 32
    return h
assert xxh64(b"") == 0xef46db3751d8e999
def header(records, nbytes, magic=b"BLKRSAVE", version=2):
    return (magic + struct.pack("<IIQQ", version, records, 1700000000, nbytes) +
            b"r0".ljust(48, b"\0") + b"alpha".ljust(48, b"\0"))
def rec(off, data, csum=None, version=2):
    if csum is None:
        csum = xxh64(data, off if version == 2 else 0)
    return struct.pack("<QIQ", off, len(data), csum) + data
def sfile(recs, version=2, **kw):
    body = b"".join(rec(o, d, version=version) for o, d in recs)
    return header(len(recs), sum(len(d) for _, d in recs), version=version, **kw) + body
def seed(limit, f, flags=0):
    return struct.pack("<BQ", flags, limit) + f
GiB = 1 << 30
ext = bytes((i * 7) & 0xff for i in range(4096))
good = [(0, ext), (65536, ext[:1000]), (GiB - 512, b"\xaa" * 512)]
seeds = {
    "empty": seed(GiB, sfile([])),
    "good": seed(GiB, sfile(good)),
    "one_short": seed(GiB, sfile([(4096, b"abc")])),
    "at_the_end": seed(4096, sfile([(0, ext)])),
    "past_the_end": seed(4095, sfile([(0, ext)])),
    "bad_sum": seed(GiB, header(1, 3) + rec(0, b"abc", csum=1)),
    "bad_magic": seed(GiB, sfile(good, magic=b"BLKRSAVF")),
    "good_v1": seed(GiB, sfile(good, version=1)),
    "bad_version": seed(GiB, sfile(good, version=3)),
    "v1_sums_in_v2": seed(GiB, header(1, 4096) + rec(4096, ext, version=1)),
    "offset_moved": seed(GiB, header(1, 4096) + struct.pack("<QIQ", 8192, 4096, xxh64(ext, 4096)) + ext),
    "overlap": seed(GiB, sfile([(0, ext), (4095, b"x")])),
    "out_of_order": seed(GiB, sfile([(8192, b"x"), (0, b"y")])),
    "zero_length": seed(GiB, header(1, 0) + rec(0, b"")),
    "huge_length": seed(GiB, header(1, 5 << 20) + struct.pack("<QIQ", 0, 5 << 20, 0)),
    "count_short": seed(GiB, header(1, 4096 + 1000) + rec(0, ext) + rec(65536, ext[:1000])),
    "bytes_wrong": seed(GiB, header(2, 4096) + rec(0, ext) + rec(65536, ext[:1000])),
    "interrupted": seed(GiB, header(0, 0) + rec(0, ext)),
    "truncated": seed(GiB, sfile(good)[:-100]),
    "header_only_part": seed(GiB, header(0, 0)[:100]),
    "wrap": seed(M, header(1, 16) + rec(M - 7, bytes(16))),
    "fix_both": seed(GiB, header(9, 9) + rec(0, ext, 0) + rec(8192, ext[:77], 0), flags=3),
}
os.makedirs(D, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(D, k), "wb").write(v)
print(len(seeds))
