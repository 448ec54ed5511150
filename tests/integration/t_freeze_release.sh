#!/usr/bin/env bash
# Issue 12, item 5: under on-peer-loss = freeze, a write held since the
# link went is never acknowledged before the peer holds it.  cc2229f
# answered held writes at the reconnect, while the peer still said
# uptodate and lacked them: had the primary died then, the peer would have
# been promoted as uptodate without them (RPO 0 broken).  Now a held
# request is sent again on the new link and answered when the peer
# acknowledges it, as any sync write; the resync that follows copies its
# range too.
#
# Alpha is real (primary, sync, freeze); beta is the fake peer of
# fakepeer.py, listening on beta's port (alpha's name sorts first, so alpha
# connects).  The fake connects as a fresh zeroed secondary, takes part in
# alpha's promotion resync and ACKs everything (applying it to b.img).
# Then it stops answering; W (64 KiB at 1 MiB) reaches it unacknowledged,
# and it drops the connection: W is held.  W2 (64 KiB at 8 MiB), issued
# while the link is down, waits too.  Alpha reconnects; the fake says
# secondary, uptodate, the same generations (what a real beta that was
# merely cut off says), and answers nothing from W's WRITE on:
#   A. W is sent again as a WRITE with W's bytes, W2 as a WRITE; neither is
#      acknowledged 3 s later while the fake has not ACKed them (cc2229f
#      acknowledged W at the reconnect);
#   B. the fake ACKs them: both are acknowledged, after the ACKs;
#   C. the fake sends its bitmap: the resync covers W's range with W's
#      bytes, ends, and alpha's data area equals what the fake applied.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
pair_conf_extra "on-peer-loss = freeze"
check "create alpha --zeroed" $A create --zeroed

cat >"$T/scenario.py" <<'PY'
import time
from fakepeer import *

alpha, PORT, KW, AIMG, BIMG = fake_beta_env()
W_OFF, W2_OFF, LEN = 1 << 20, 8 << 20, 65536


def brief(d):
    if not d:
        return "no status"
    return "connection %s, peer disk %s, out of sync %d, resync %s, frozen %s" % (
        d["peer"]["connection"], d["peer"]["disk"], d["out_of_sync_bytes"], d["resync"],
        d["frozen"])


def scenario():
    lst = Listener("127.0.0.1", PORT)
    alpha.cli("up alpha", ["up"])
    fp = lst.accept(10, **KW)
    theirs = fp.handshake(role=ROLE_SECONDARY, disk=DISK_UPTODATE, gens=Gens(GEN_CREATED),
                          flags=HF_ZEROED | HF_NO_CHANGES)
    fp.start(apply_to=BIMG)
    ext = theirs.extent
    say(True, "the fake beta authenticates; alpha says: %r" % theirs)
    need(fp.wait_for(is_last_bitmap, 10) is not None, "alpha sends its bitmap at the connect")
    fp.send_bitmap()

    # The promotion: alpha's new generation, a resync with nothing to copy.
    n = len(fp.msgs)
    alpha.cli("alpha primary", ["primary"])
    need(fp.wait_for(is_last_bitmap, 10, n) is not None, "alpha's promotion starts a bitmap exchange")
    fp.send_bitmap()
    need(fp.wait_for(lambda m: m.type == RESYNC_DONE, 10, n) is not None,
         "... and ends it with RESYNC_DONE")
    fp.adopt_resync()
    gens = fp.mine.gens.copy()
    d, ok = alpha.wait_status(in_sync, 10)
    need(ok, "alpha primary and in sync with the fake (%s)" % brief(d))

    c = alpha.qemu("write -P 0x11 0 64k")
    need(c.wait(20) and c.rc == 0, "a write W1 while connected completes%s" % (
        "" if c.rc == 0 else ": " + c.output.strip()))
    say(fp.received(lambda m: m.type == WRITE and m.offset == 0 and m.answered),
        "... it reached the fake as a WRITE, ACKed")

    # The cut: W reaches the fake, which drops the link without an ACK.
    fp.hold()
    n = len(fp.msgs)
    W = alpha.qemu("write -P 0x5a 1M 64k")
    mw = fp.wait_for(lambda m: m.type == WRITE and m.overlaps(W_OFF, LEN), 10, n)
    need(mw is not None, "W reaches the fake: %r, not ACKed" % mw)
    fp.close()
    d, ok = alpha.wait_status(lambda d: d["frozen"] and d["peer"]["connection"] != "connected", 10)
    need(ok, "the fake drops the link: alpha is frozen (%s)" % brief(d))
    need(not W.done(), "W is held, not acknowledged%s" % (
        ": " + W.output.strip() if W.done() else ""))
    W2 = alpha.qemu("write -P 0x66 8M 64k")
    time.sleep(1)
    need(not W2.done(), "W2, issued while the link is down, waits")

    # The reconnect: a beta that was merely cut off, answering nothing yet.
    fp2 = lst.accept(10, **KW)
    fp2.handshake(role=ROLE_SECONDARY, disk=DISK_UPTODATE, gens=gens,
                  flags=HF_ZEROED | HF_NO_CHANGES)
    t_up = time.monotonic()
    # From W's WRITE on (a real peer applies in order), answer nothing:
    # qemu-io's closing FLUSH then waits too, so W's qemu-io exits only
    # once W is acknowledged.
    fp2.hold_from(lambda m: m.type == WRITE and m.overlaps(W_OFF, LEN))
    fp2.start(apply_to=BIMG)
    say(True, "alpha reconnects; the fake says secondary, uptodate, %r" % gens)
    need(fp2.wait_for(is_last_bitmap, 10) is not None, "alpha sends its bitmap")
    bits = set()
    for m in fp2.received(lambda m: m.type == BITMAP):
        bits.update(bits_of(m.offset, m.payload))
    say(W_OFF // ext in bits, "alpha's bitmap names W's extent (bits %s)" % sorted(bits))

    # Phase A: W and W2 reach the fake again, unanswered: not acknowledged.
    mw = fp2.wait_for(lambda m: m.type == WRITE and m.overlaps(W_OFF, LEN), 5)
    say(mw is not None and mw.payload == b"\x5a" * LEN,
        "W is sent again on the new link, with W's bytes: %r" % mw)
    held = not W.wait(3)
    say(held, "W is not acknowledged 3 s after the reconnect, the fake not having ACKed it "
        "(%s)" % ("held" if held else "acknowledged %.2f s after the reconnect: exit %s"
                  % (W.t_end - t_up, W.rc)))
    m2 = fp2.received(lambda m: m.type == WRITE and m.overlaps(W2_OFF, LEN))
    say(m2 and not W2.done(), "W2 went to the fake as a WRITE, not acknowledged either "
        "(%r, done %s)" % (m2, W2.done()))
    d = alpha.status()
    say(d and d["peer"]["connection"] == "connected", "alpha stays connected meanwhile")

    # Phase B: the fake ACKs: W and W2 are acknowledged after the ACKs.
    t_ack = time.monotonic()
    fp2.release()
    ok = W.wait(5) and W2.wait(5)
    say(ok and W.rc == 0 and W2.rc == 0 and W.t_end >= t_ack and W2.t_end >= t_ack,
        "once the fake ACKs them, W and W2 are acknowledged (%.2f s and %.2f s after the "
        "ACKs; exit %s, %s)" % ((W.t_end or 0) - t_ack, (W2.t_end or 0) - t_ack, W.rc, W2.rc))

    # Phase C: the fake sends its bitmap: the resync copies W's range.
    n = len(fp2.msgs)
    fp2.send_bitmap()
    rd = fp2.wait_for(lambda m: m.type == RESYNC_DATA and m.overlaps(W_OFF, LEN), 10, n)
    say(rd is not None and rd.offset <= W_OFF and rd.end >= W_OFF + LEN,
        "the resync sends W's range: %r" % rd)
    if rd is not None and rd.offset <= W_OFF and rd.end >= W_OFF + LEN:
        say(rd.payload[W_OFF - rd.offset:W_OFF - rd.offset + LEN] == b"\x5a" * LEN,
            "... with W's bytes")
    need(fp2.wait_for(lambda m: m.type == RESYNC_DONE, 15, n) is not None, "the resync ends")
    fp2.adopt_resync()
    d, ok = alpha.wait_status(in_sync, 10)
    need(ok, "alpha in sync with the fake again (%s)" % brief(d))
    alpha.reads("alpha holds W1, W and W2",
                "read -P 0x11 0 64k", "read -P 0x5a 1M 64k", "read -P 0x66 8M 64k")
    same_data("alpha's data area equals what the fake applied", d["size_bytes"],
              AIMG, BIMG)


run_scenario(scenario, alpha)
PY
fake_beta_scenario "the freeze-release scenario"
finish
