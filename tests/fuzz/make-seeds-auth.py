# Writes the fuzz_auth seed corpus (python3 tests/fuzz/make-seeds-auth.py).
# Layout (tests/fuzz/fuzz_auth.c): mode u8, secret length u8, secret, this
# node's nonce (32), the peer's HELLO message, its AUTH message (32 bytes:
# the answer in mode 0, a XOR mask on a computed answer otherwise), then
# mode 2's other secret (length u8 + bytes) or mode 4's old nonce.
import hashlib, os, struct
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_auth")
MAGIC, HELLO, AUTH = 0x424c4b52, 1, 2
RAW, RIGHT, WRONG, REFLECT, REPLAY = range(5)
NO_SECRET = 4
def hdr(t, length):
    return struct.pack(">IHHIIQQ", MAGIC, t, 0, length, 0, 0, 0)
def name(s):
    return s.encode().ljust(64, b"\0")
def hello(node="beta", resource="r0", flags=0, nonce=bytes(range(100, 132)), tail=b""):
    p = (struct.pack(">HH", 1, 1) + name(resource) + name(node) +
         struct.pack(">QIBBBB", 1 << 30, 65536, 1, 3, flags, 0) +
         struct.pack(">QQ4Q", 0x1122334455667788, 0, 0, 0, 0, 0) + nonce + tail)
    return hdr(HELLO, len(p)) + p
def seed(mode, secret, peer_hello, mask=bytes(32), extra=b"", my_nonce=bytes(range(32))):
    return (bytes([mode, len(secret)]) + secret + my_nonce + peer_hello + hdr(AUTH, 32) + mask +
            extra)
S = b"correct horse battery staple"
LONG = bytes(range(1, 101))
seeds = {
    "raw_zero": seed(RAW, S, hello()),
    "right": seed(RIGHT, S, hello()),
    "right_one_bit": seed(RIGHT, S, hello(), mask=b"\x01" + bytes(31)),
    "right_empty_secret": seed(RIGHT, b"", hello()),
    "right_long_name": seed(RIGHT, S, hello(node="n" * 63, resource="r" * 63)),
    "right_later_version": seed(RIGHT, S, hello(tail=b"\x99" * 40)),
    "right_echoed_nonce": seed(RIGHT, S, hello(nonce=bytes(range(32)))),
    "wrong_secret": seed(WRONG, S, hello(), extra=bytes([len(S)]) + S[:-1] + b"X"),
    "wrong_secret_nul": seed(WRONG, S, hello(), extra=bytes([len(S) + 1]) + S + b"\0"),
    "wrong_secret_hashed": seed(WRONG, LONG, hello(),
                                extra=b"\x20" + hashlib.sha256(LONG).digest()),
    "wrong_secret_prefix": seed(WRONG, S, hello(), extra=bytes([len(S) - 1]) + S[:-1]),
    "reflect": seed(REFLECT, S, hello()),
    "reflect_same_name": seed(REFLECT, S, hello(node="alpha")),
    "replay": seed(REPLAY, S, hello(), extra=bytes(range(1, 33))),
    "replay_same": seed(REPLAY, S, hello(), extra=bytes(range(32))),
    "no_secret_hello": seed(RIGHT, S, hello(flags=NO_SECRET)),
    "bad_hello": seed(RIGHT, S, hello(node="be\nta")),
}
os.makedirs(D, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(D, k), "wb").write(v)
print(len(seeds))
