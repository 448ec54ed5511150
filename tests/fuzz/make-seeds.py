#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz harnesses.

Seeds are client byte streams (fuzz_handshake) and session + request headers
(fuzz_request) that reach every branch once, so the fuzzer starts from valid
protocol instead of rediscovering magics.  Run from anywhere; rerunning
rewrites the same files.  The export the handshake harness serves is named
"blkrep" and is 64 MiB.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
FIXED, NO_ZEROES = 1, 2
(EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO, STRUCTURED, LIST_META,
 SET_META, EXTENDED) = 1, 2, 3, 5, 6, 7, 8, 9, 10, 11
INFO_NAME, INFO_DESC, INFO_BLOCK = 1, 2, 3
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WZ, BLOCK_STATUS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16
MiB = 1 << 20
EXPORT = b"blkrep"
EXPORT_SIZE = 64 * MiB
ALLOC = b"base:allocation"


def flags(f):
    return struct.pack(">I", f)


def opt(code, data=b"", length=None):
    n = len(data) if length is None else length
    return struct.pack(">QII", IHAVEOPT, code, n) + data


def go_data(name=EXPORT, infos=()):
    return (struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) +
            b"".join(struct.pack(">H", i) for i in infos))


def meta_data(name=EXPORT, queries=(ALLOC,)):
    return (struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries)) +
            b"".join(struct.pack(">I", len(q)) + q for q in queries))


def req(cmd, offset=0, length=0, fl=0, cookie=1, payload=None):
    hdr = struct.pack(">IHHQQI", REQ_MAGIC, fl, cmd, cookie, offset, length)
    if cmd == WRITE and payload is None:
        payload = bytes([cookie & 0xff]) * length
    return hdr + (payload or b"")


# A session as a kernel would use it, then one of everything.
SESSION_REQUESTS = (
    req(READ, 0, 4096, cookie=1) + req(WRITE, 4096, 512, FUA, cookie=2) +
    req(FLUSH, cookie=3) + req(TRIM, MiB, 8 * MiB, cookie=4) +
    req(WZ, 0, MiB, NO_HOLE | FAST_ZERO, cookie=5) + req(CACHE, 0, MiB, cookie=6) +
    req(READ, EXPORT_SIZE - 512, 1024, cookie=7) + req(WRITE, EXPORT_SIZE, 16, cookie=8) +
    req(9, 0, 0, cookie=9) + req(READ, 0, 0, 0x20, cookie=10))
STRUCTURED_REQUESTS = (
    req(READ, 0, 65536, DF, cookie=11) +
    req(BLOCK_STATUS, 0, EXPORT_SIZE, REQ_ONE, cookie=12) +
    req(BLOCK_STATUS, 0, 0, cookie=13) + req(READ, 0, 33 * MiB, cookie=14))

HANDSHAKE = {
    "go_full": (flags(FIXED | NO_ZEROES) + opt(STRUCTURED) +
                opt(SET_META, meta_data()) +
                opt(INFO, go_data(EXPORT, (INFO_NAME, INFO_DESC, INFO_BLOCK))) +
                opt(GO, go_data(EXPORT, (INFO_BLOCK,))) +
                SESSION_REQUESTS + STRUCTURED_REQUESTS + req(DISC, cookie=99)),
    "go_default_plain": (flags(FIXED | NO_ZEROES) + opt(GO, go_data(b"")) +
                         SESSION_REQUESTS + req(DISC)),
    "export_name": (flags(FIXED) + opt(EXPORT_NAME, EXPORT) +
                    req(WRITE, 0, 512, cookie=7) + req(READ, 0, 4096) + req(DISC)),
    "export_name_nozeroes_default": (flags(FIXED | NO_ZEROES) + opt(EXPORT_NAME) +
                                     SESSION_REQUESTS),
    "export_name_unknown": flags(FIXED) + opt(EXPORT_NAME, b"nope"),
    "meta_context": (flags(FIXED | NO_ZEROES) + opt(STRUCTURED) +
                     opt(LIST_META, meta_data(EXPORT, ())) +
                     opt(LIST_META, meta_data(EXPORT, (b"base:",))) +
                     opt(LIST_META, meta_data(b"", (b"qemu:dirty-bitmap:x",))) +
                     opt(SET_META, meta_data(b"", (b"foo:bar", ALLOC))) +
                     opt(GO, go_data()) + STRUCTURED_REQUESTS),
    "meta_without_structured": (flags(FIXED | NO_ZEROES) + opt(SET_META, meta_data()) +
                                opt(LIST_META, meta_data()) + opt(GO, go_data()) +
                                req(BLOCK_STATUS, 0, 4096) + req(READ, 0, 512, DF)),
    "list_and_friends": (flags(FIXED | NO_ZEROES) + opt(LIST) + opt(LIST, b"xx") +
                         opt(STARTTLS) + opt(EXTENDED) + opt(42, b"data") +
                         opt(INFO, go_data(b"other")) + opt(ABORT)),
    "malformed_go": (flags(FIXED | NO_ZEROES) + opt(GO) +
                     opt(GO, go_data()[:-1]) + opt(GO, go_data() + b"\0") +
                     opt(GO, struct.pack(">I", 0xffffffff) + EXPORT + b"\0\0") +
                     opt(STRUCTURED, b"x") + opt(SET_META, meta_data()[:-2]) +
                     opt(GO, go_data(EXPORT, (INFO_NAME, INFO_NAME, 0x7777)))),
    "bad_option_magic": flags(FIXED) + struct.pack(">QII", IHAVEOPT ^ 1, GO, 0),
    "huge_option": flags(FIXED) + opt(GO, length=0xffffffff),
    "bad_client_flags": flags(FIXED | 4) + opt(GO, go_data()),
    "no_fixed_newstyle": flags(NO_ZEROES) + opt(GO, go_data()),
    "truncated": flags(FIXED | NO_ZEROES) + opt(GO, go_data())[:20],
    "oversized_write": (flags(FIXED | NO_ZEROES) + opt(GO, go_data()) +
                        req(WRITE, 0, 40 * MiB, payload=b"") +
                        req(WRITE, 0, 65 * MiB, payload=b"")),
}


def session(size=EXPORT_SIZE, tflags=0x0d6d, structured=0, meta=0):
    return struct.pack(">QHBI", size, tflags, structured, meta)


REQUEST = {
    "kernel": session() + SESSION_REQUESTS,
    "structured": session(tflags=0x0ded, structured=1, meta=1) + STRUCTURED_REQUESTS,
    "read_only": (session(tflags=0x0d6f) + req(WRITE, 0, 512, payload=b"") +
                  req(TRIM, 0, MiB) + req(WZ, 0, MiB) + req(READ, 0, MiB)),
    "overflow": (session(size=(1 << 64) - 1) + req(READ, (1 << 64) - 100, 4096) +
                 req(WRITE, (1 << 64) - 1, 2, payload=b"")),
    "big_payloads": (session() + req(WRITE, 0, 32 * MiB, payload=b"") +
                     req(WRITE, 0, 32 * MiB + 1, payload=b"") +
                     req(WRITE, 0, 64 * MiB + 1, payload=b"") +
                     req(TRIM, 0, 0xffffffff)),
    "zero_size": session(size=0) + req(READ) + req(READ, 0, 1) + req(FLUSH, 1, 0),
    "bad_magic": session() + b"\xde\xad\xbe\xef" + req(READ, 0, 512)[4:],
}


def write_corpus(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for seed, data in seeds.items():
        with open(os.path.join(d, seed), "wb") as f:
            f.write(data)
    print(f"{name}: {len(seeds)} seeds in {os.path.relpath(d)}")


if __name__ == "__main__":
    write_corpus("fuzz_handshake", HANDSHAKE)
    write_corpus("fuzz_request", REQUEST)
