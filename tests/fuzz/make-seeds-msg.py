import os, struct
import os.path
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_msg")
MAGIC = 0x424c4b52
(HELLO, AUTH, REFUSE, STATE, WRITE, TRIM, ZERO, FLUSH, ACK, FLUSH_ACK, PING, PONG,
 BITMAP, RESYNC_REQ, RESYNC_DATA, RESYNC_DONE, VERIFY_REQ, VERIFY_REPLY) = range(1, 19)
FUA, NO_HOLE, LAST = 1, 2, 4
def hdr(t, flags=0, length=0, count=0, seq=0, offset=0, magic=MAGIC):
    return struct.pack(">IHHIIQQ", magic, t, flags, length, count, seq, offset)
def name(s):
    return s.encode().ljust(64, b"\0")
def hello(node="alpha", vmin=1, vmax=1, role=0, disk=3, flags=0, cur=0x1122334455667788,
          bm=0, hist=(4, 0, 0, 0), size=1 << 30, ext=65536, nonce=bytes(range(32))):
    return (struct.pack(">HH", vmin, vmax) + name("r0") + name(node) +
            struct.pack(">QIBBBB", size, ext, role, disk, flags, 0) +
            struct.pack(">QQ4Q", cur, bm, *hist) + nonce)
def msg(t, payload=b"", **kw):
    return hdr(t, length=len(payload), **kw) + payload
assert len(hello()) == 228
seeds = {}
data = bytes((i * 31) & 0xff for i in range(4096))
seeds["session"] = (msg(HELLO, hello(flags=2)) + msg(AUTH, bytes(32)) +
    msg(WRITE, data, count=4096, seq=1, offset=8192) +
    msg(WRITE, data[:512], flags=FUA, count=512, seq=2, offset=0) +
    hdr(TRIM, count=1 << 20, seq=3, offset=1 << 20) +
    hdr(ZERO, flags=FUA | NO_HOLE, count=0xffffffff, seq=4, offset=0) +
    hdr(FLUSH, seq=1) + hdr(ACK, seq=1) + hdr(ACK, seq=2, count=5) + hdr(FLUSH_ACK, seq=1) +
    hdr(PING, seq=9) + hdr(PONG, seq=9) +
    msg(BITMAP, b"\xff\x00\x01", offset=0) + msg(BITMAP, b"\x80", flags=LAST, offset=8 * 3) +
    msg(STATE, hello(role=1, disk=3, nonce=bytes(32))))
seeds["resync"] = (msg(HELLO, hello(node="beta", role=1, flags=1, bm=0x77)) +
    msg(AUTH, bytes(range(32, 64))) + hdr(RESYNC_REQ, count=65536, seq=10, offset=65536) +
    msg(RESYNC_DATA, data[:1024], count=1024, seq=10, offset=65536) + hdr(ACK, seq=10) +
    hdr(RESYNC_DONE))
seeds["refuse_version"] = (msg(HELLO, hello(vmin=2, vmax=3) + b"\xee" * 40) +
    msg(REFUSE, b"incompatible protocol version: peer speaks 2..3, this node 1..1"))
seeds["refuse_utf8"] = msg(REFUSE, "wrong secret \u00e9\u20ac \x1b[31m".encode() + b"\xff\xc0\xaf")
seeds["bad_magic"] = hdr(PING, magic=0x424c4b53) + hdr(PING)
seeds["unknown_type"] = hdr(19) + hdr(0)
digests = b"".join(struct.pack(">Q", 0x0123456789abcdef * (i + 1) & (1 << 64) - 1)
                   for i in range(16))
seeds["verify"] = (hdr(VERIFY_REQ, count=1 << 20, seq=7, offset=1 << 20) +
    msg(VERIFY_REPLY, digests, seq=7) + hdr(VERIFY_REQ, count=32 << 20, seq=8) +
    msg(VERIFY_REPLY, digests[:8], seq=8))
seeds["verify_empty"] = hdr(VERIFY_REQ, count=0, seq=1)
seeds["verify_too_big"] = hdr(VERIFY_REQ, count=(32 << 20) + 1)
seeds["verify_with_payload"] = hdr(VERIFY_REQ, length=8, count=4096) + bytes(8)
seeds["verify_flags"] = hdr(VERIFY_REQ, flags=FUA, count=4096)
seeds["verify_range_wrap"] = hdr(VERIFY_REQ, count=4096, offset=(1 << 63) - 100)
seeds["verify_reply_partial"] = msg(VERIFY_REPLY, bytes(12))
seeds["verify_reply_empty"] = hdr(VERIFY_REPLY)
seeds["verify_reply_errno"] = hdr(VERIFY_REPLY, length=8, count=5) + bytes(8)
seeds["bad_flags"] = hdr(FLUSH, flags=FUA) + hdr(TRIM, flags=NO_HOLE, count=1)
seeds["write_too_big"] = hdr(WRITE, length=(32 << 20) + 1, count=(32 << 20) + 1)
seeds["write_len_mismatch"] = hdr(WRITE, length=512, count=1024) + bytes(512)
seeds["trim_with_payload"] = hdr(TRIM, length=4, count=4) + b"abcd"
seeds["range_wrap"] = hdr(WRITE, length=1, count=1, offset=(1 << 63) - 1) + b"x"
seeds["bitmap_unaligned"] = hdr(BITMAP, length=1, offset=3) + b"\x01"
seeds["bitmap_past_session"] = msg(BITMAP, bytes(16), offset=16384 - 64, flags=LAST)
seeds["hello_bad_name"] = msg(HELLO, hello(node="al\npha"))
seeds["hello_bad_role"] = msg(HELLO, hello(role=2))
seeds["hello_short"] = hdr(HELLO, length=100) + bytes(100)
seeds["state_with_tail"] = hdr(STATE, length=229) + hello() + b"\0"
seeds["ack_bad_errno"] = hdr(ACK, seq=1, count=4096)
seeds["truncated_payload"] = hdr(WRITE, length=4096, count=4096) + bytes(100)
seeds["truncated_header"] = hdr(PING)[:20]
os.makedirs(D, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(D, k), "wb").write(v)
print(len(seeds))
