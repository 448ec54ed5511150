#!/usr/bin/env bash
# A wide TRIM (past half the activity log) is covered in the bitmap and
# tracked among the wide requests in flight before it is sent; when no
# place is free it parks (REPL_BUSY) and is retried later.  If its client
# dies meanwhile (a reply of its other request cannot be sent), the parked
# request is dropped with its connection, never ended: 6845a5a kept a
# pointer to its freed slot in the list of wide requests and read it when
# a later wide request completed (heap-use-after-free under ASan, alpha
# aborts).  The stream module remembers each wide request's range instead.
# (The dropped request's entry still stays in the list, keeping its bits
# and one of STREAM_WIDE_MAX places: conservative, not fixed here.)
#
# Alpha is real (primary, sync); beta is fakepeer.py's fake.  The fake
# stops answering; client W sends a small TRIM X, 32 clients fill the
# other 4095 places, one more client's small TRIM parks, then W's 40 MiB
# TRIM (wide with al-extents = 16) parks, and W hangs up.  The fake answers
# only X (through FakePeer's internals): its place goes to the small TRIM
# parked first, W's TRIM parks again, X's reply finds W gone and W's
# connection is dropped.  The fake then answers everything, and a new
# client's wide TRIM must complete with alpha still up.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/pair.sh"
pair_init 256M 256M
trap 'pair_stop; _cleanup' EXIT
pair_conf_extra "al-extents = 16"
check "create alpha --zeroed" $A create --zeroed

cat >"$T/scenario.py" <<'PY'
import os
import time
from fakepeer import *
import nbdraw

alpha, PORT, KW, AIMG, BIMG = fake_beta_env()
SOCK = os.environ["URI"].split("socket=")[1]
CMD_TRIM = 4
MiB = 1 << 20


def client():
    return nbdraw.Conn(SOCK, timeout=20).handshake(b"r0")


def scenario():
    lst = Listener("127.0.0.1", PORT)
    alpha.cli("up alpha", ["up"])
    fp = lst.accept(10, **KW)
    fp.handshake(role=ROLE_SECONDARY, disk=DISK_UPTODATE, gens=Gens(GEN_CREATED),
                 flags=HF_ZEROED | HF_NO_CHANGES)
    fp.start()
    need(fp.wait_for(is_last_bitmap, 10) is not None, "alpha sends its bitmap at the connect")
    fp.send_bitmap()
    n = len(fp.msgs)
    alpha.cli("alpha primary", ["primary"])
    need(fp.wait_for(is_last_bitmap, 10, n) is not None, "alpha's promotion exchanges bitmaps")
    fp.send_bitmap()
    need(fp.wait_for(lambda m: m.type == RESYNC_DONE, 10, n) is not None, "... and ends")
    fp.adopt_resync()
    d, ok = alpha.wait_status(in_sync, 10)
    need(ok, "alpha primary and in sync with the fake")

    fp.hold()
    # The wide client's first request X takes the first place.
    wide = client()
    wide.send_request(CMD_TRIM, 32 * MiB, 4096)
    need(fp.wait_for(lambda m: m.type == TRIM and m.offset == 32 * MiB, 10) is not None,
         "X reaches the fake, unanswered")
    conns = []
    for c in range(32):
        k = client()
        for i in range(128 if c < 31 else 127):
            k.send_request(CMD_TRIM, 64 * MiB + (c * 128 + i) * 4096, 4096)
        conns.append(k)
    need(fp.wait_for(lambda m: m.type == TRIM and m.offset == 64 * MiB + 4094 * 4096, 20)
         is not None, "4096 TRIMs reach the fake, unanswered")
    # One more small TRIM parks first, then the wide one.
    extra = client()
    extra.send_request(CMD_TRIM, 100 * MiB, 4096)
    time.sleep(0.5)
    wide.send_request(CMD_TRIM, 0, 40 * MiB)
    time.sleep(1)
    say(not fp.received(lambda m: m.type == TRIM and m.offset == 0 and m.count == 40 * MiB),
        "the wide TRIM waits: no place is free")
    wide.s.close()
    # Only X is answered: its place goes to the small TRIM parked first,
    # the wide one parks again, and X's reply finds the client gone.
    with fp._cv:
        m = fp._held.pop(0)
        fp._reply(m)
    time.sleep(1)
    fp.release()
    for k in conns:
        for i in range(128 if k is not conns[-1] else 127):
            k.recv_reply()
    extra.recv_reply()
    say(True, "the other TRIMs are answered once the fake answers")
    k = client()
    k.send_request(CMD_TRIM, 128 * MiB, 40 * MiB)
    try:
        cookie, err, _ = k.recv_reply()
        say(err == 0, "a later wide TRIM completes (error %d)" % err)
    except Exception as e:
        say(False, "a later wide TRIM completes: %r" % e)
    d = alpha.status()
    say(d is not None, "alpha is still up")


run_scenario(scenario, alpha)
PY
fake_beta_scenario "the parked wide TRIM scenario"
finish
