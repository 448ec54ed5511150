#!/usr/bin/env bash
# Issue 12, item 6: a resync source promoted mid-resync keeps rule 4.  The
# source locks a chunk's range against application writes from its read
# until the target applied it; chunks locked while the node was secondary
# (no NBD server, so no lock set) must be locked in the new server's
# in-flight set at the promotion, or a client write to such a range goes
# to the peer before the chunk is acknowledged.
#
# Alpha is real; beta is the fake peer of fakepeer.py, listening on beta's
# port (alpha's name sorts first, so alpha connects).  Alpha is made
# primary alone, writes 1 MiB of 0xc1 at 0 and goes back to secondary: it
# is uptodate at a generation of its own.  The fake connects as a freshly
# created, inconsistent, not zeroed secondary: alpha, still secondary, is
# the source of a full sync.  The fake records every chunk but answers
# nothing from the first RESYNC_DATA (chunk C) on, as a peer that has not
# applied C yet.  While C is not acknowledged:
#   - `blkrep primary` on alpha succeeds (the peer is a secondary);
#   - W, a client write of 64 KiB of 0x77 inside C's range, is issued
#     through alpha's export;
#   - for 3 s no WRITE overlapping C may reach the fake (cc2229f sends it
#     at once: rule 4 broken), and W is not acknowledged.
# Then the fake answers C and everything after it, in order: W's WRITE
# arrives after C's ACK, with W's bytes, and W is acknowledged; the resync
# ends, and alpha's data area equals what the fake applied.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
check "create alpha --zeroed" $A create --zeroed

cat >"$T/scenario.py" <<'PY'
import time
from fakepeer import *

alpha, PORT, KW, AIMG, BIMG = fake_beta_env()


def brief(d):
    if not d:
        return "no status"
    return "%s, disk %s, connection %s, peer disk %s, out of sync %d, resync %s" % (
        d["role"], d["disk"], d["peer"]["connection"], d["peer"]["disk"],
        d["out_of_sync_bytes"], d["resync"])


def scenario():
    # Alpha alone: a generation of its own, then secondary.
    alpha.cli("up alpha (its peer not there yet)", ["up"])
    alpha.cli("alpha primary alone", ["primary"])
    c = alpha.qemu("write -P 0xc1 0 1M")
    need(c.wait(20) and c.rc == 0, "alpha writes 1 MiB of 0xc1 at 0 alone%s" % (
        "" if c.rc == 0 else ": " + c.output.strip()))
    alpha.cli("alpha secondary", ["secondary"])

    lst = Listener("127.0.0.1", PORT)
    fp = lst.accept(15, **KW)
    theirs = fp.handshake(role=ROLE_SECONDARY, disk=DISK_INCONSISTENT, gens=Gens(GEN_CREATED))
    fp.hold_from(lambda m: m.type == RESYNC_DATA)
    fp.start(apply_to=BIMG)
    say(True, "the fake beta (created, inconsistent) authenticates; alpha says: %r" % theirs)
    need(fp.wait_for(is_last_bitmap, 10) is not None, "alpha sends its bitmap")
    fp.send_bitmap()
    C = fp.wait_for(lambda m: m.type == RESYNC_DATA, 10)
    need(C is not None, "alpha, secondary, sends the first resync chunk C: %r; the fake holds it"
         % C)
    d = alpha.status()
    need(d and d["role"] == "secondary" and d["resync"] is not None,
         "alpha is a secondary resync source (%s)" % brief(d))
    time.sleep(0.3)     # the first chunks are all out
    print("held before the promotion: %r" % fp.held())

    # The promotion, and a client write inside C.
    alpha.cli("blkrep primary on alpha while C is not acknowledged (the peer is secondary)",
        ["primary"])
    w_off = C.offset + 65536
    n = len(fp.msgs)
    W = alpha.qemu("write -P 0x77 %d 64k" % w_off)
    early = fp.wait_for(lambda m: m.type in (WRITE, TRIM, ZERO) and m.overlaps(C.offset, C.count),
                        3, n)
    say(early is None, "no WRITE overlapping C reaches the fake for 3 s while C is not "
        "ACKed%s" % ("" if early is None else ": got %r %.2f s after W was issued"
                     % (early, early.t - W.t_start)))
    say(not W.done(), "W is not acknowledged meanwhile%s" % (
        "" if not W.done() else " (exit %s)" % W.rc))

    # The fake applies and answers C and everything after it, in order.
    print("held at the release, besides resync chunks: %r"
          % [m for m in fp.held() if m.type != RESYNC_DATA])
    fp.release()
    mw = fp.wait_for(lambda m: m.type == WRITE and m.overlaps(w_off, 65536), 5, n)
    need(mw is not None, "W reaches the fake as a WRITE: %r" % mw)
    say(mw.t >= C.answered, "... after C's ACK%s" % (
        "" if mw.t >= C.answered else " -- no: %.3f s before it" % (C.answered - mw.t)))
    say(mw.offset == w_off and mw.payload == b"\x77" * 65536, "... with W's bytes")
    ok = W.wait(5)
    say(ok and W.rc == 0, "W is acknowledged%s" % (
        "" if ok and W.rc == 0 else " -- no (exit %s): %s" % (W.rc, W.output.strip())))

    need(fp.wait_for(lambda m: m.type == RESYNC_DONE, 60) is not None, "the resync ends")
    fp.adopt_resync()
    d, ok = alpha.wait_status(in_sync, 15)
    need(ok, "alpha, primary, in sync with the fake (%s)" % brief(d))
    alpha.reads("alpha holds 0xc1 with W inside it", "read -P 0xc1 0 %d" % (w_off),
                "read -P 0x77 %d 64k" % w_off,
                "read -P 0xc1 %d %d" % (w_off + 65536, (1 << 20) - w_off - 65536))
    same_data("alpha's data area equals what the fake applied", d["size_bytes"],
              AIMG, BIMG)


run_scenario(scenario, alpha)
PY
fake_beta_scenario "the resync-promote scenario"
finish
