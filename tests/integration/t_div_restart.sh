#!/usr/bin/env bash
# Issue 12, bug 1: writes before the first peer FLUSH after a start are
# treated as flushed (DESIGN.md rules 2 and 7).
#
# The node struct is zero-filled, so a freshly started daemon sends its
# writes in epoch 0 while the activity log's flushed_epoch is 0 too:
# actlog.c's evictable() (epoch <= flushed_epoch) lets an extent written
# before the daemon's first peer FLUSH leave the activity log although no
# peer FLUSH covers it.  A crash then resyncs only what the log still
# names, and the pair claims to be in sync while the replicas differ.
#
# Scenario: async mode (writes are acknowledged locally), al-extents = 16;
# `down` and `up` alpha (it comes back primary, a fresh start: epoch 0),
# wait until the pair is connected and in sync; SIGSTOP beta's daemon;
# qemu-io writes 4 KiB into each of 40 activity-log extents (4 MiB each),
# one after the other; kill -9 alpha, then beta (never continued: nothing
# it had received was applied); `up` both; wait for the pair to settle.
#
# What it proves (the oracle): once both report in sync (connected,
# uptodate, 0 out of sync, no resync), the data areas are byte-identical,
# and every write alpha acknowledged is on alpha's image (it stayed
# primary).  On the code before the fix the pair reports in sync and the
# first 24 extents differ: they left the activity log without a flush.
#
# Timing: alpha drops a silent peer after 5 s, and after that its bitmap
# (with every unflushed write) would be persisted by the next activity-log
# write, hiding the bug; so alpha is killed at most 2.5 s after beta was
# stopped, even if the writes are not all done.  The daemon's idle tick
# sends a peer FLUSH (epoch 1) once a second while writes wait for one: if
# it falls within the 40 writes, the later ones cannot evict each other and
# wait; the extents written before it are still lost on the old code.
# Only the writes qemu-io reports as done are counted as acknowledged: a
# fixed daemon holds write 17 and on until a peer FLUSH (or the link's
# loss) lets an extent go, so it acknowledges 16 before the kill.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io cmp
. "$(dirname "$0")/pair.sh"
pair_init 256M 256M
trap '[ $FAILS -gt 0 ] && show_logs 20; kill -CONT "$(daemon_pid beta)" 2>/dev/null; pair_stop; _cleanup' EXIT
pair_bounded
MIB=1048576
EXT=$((4 * MIB))
NW=40

pair_conf_extra "al-extents = 16"
pair_start
check "mode async" $A mode async
check "down alpha (a restart: --keep-role)" $A down --keep-role
check "up alpha" $A up
check_eq "alpha comes back primary" "$(wait_field "$A" "d['role']" primary 10)" primary
check_eq "alpha is async" "$(field "$A" "d['mode']")" async
check_eq "the pair reconnects" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
need_synced "" "after the restart" || exit 1

# The writes: 4 KiB at 64 KiB into extent k, pattern byte 0x41 + k.
args=()
for k in $(seq 0 $((NW - 1))); do
	args+=(-c "write -P $((0x41 + k)) $((k * EXT + 65536)) 4k")
done
bpid=$(daemon_pid beta)
apid=$(daemon_pid alpha)
check "SIGSTOP beta's daemon (pid '$bpid')" kill -STOP "$bpid"
t0=$(date +%s%N)
bg timeout -k 2 30 qemu-io -f raw "$URI" "${args[@]}" >"$T/qio.out" 2>&1
qpid=$!
# Until qemu-io is done, at most 2.5 s after the SIGSTOP.
while kill -0 "$qpid" 2>/dev/null && [ $((($(date +%s%N) - t0) / 1000000)) -lt 2500 ]; do
	sleep 0.05
done
done_ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "alpha still has its peer when it is killed" "$(field "$A" "d['peer']['connection']")" connected
check "kill -9 alpha's daemon (pid '$apid') ${done_ms} ms after the SIGSTOP" kill -9 "$apid"
check "kill -9 beta's daemon (pid '$bpid', still stopped)" kill -9 "$bpid"
wait "$qpid" 2>/dev/null
acked=$(grep -c '^wrote 4096/4096 bytes at offset' "$T/qio.out")
msg "qemu-io: $acked of $NW writes acknowledged before the kill"
# 16 fill the log; the old code takes all 40 (unless the idle tick's
# FLUSH came in between), a fixed one holds the 17th until a peer FLUSH.
check_eq "at least the log's 16 writes were acknowledged ($acked)" \
	"$([ "$acked" -ge 16 ] && echo yes)" yes
[ "$acked" -ge 16 ] || sed 's/^/    | /' "$T/qio.out" | tail -n 5
for i in $(seq 1 50); do
	[ -z "$(daemon_pid alpha)" ] || ! kill -0 "$(daemon_pid alpha)" 2>/dev/null && break
	sleep 0.1
done

check_up_crashed
check "up beta" $Bn up
check_eq "alpha is primary" "$(field "$A" "d['role']")" primary
check_settles
# Every acknowledged write is on alpha (the primary) and, in sync, on beta.
$PY - "$T/qio.out" "$T/a.img" "$T/b.img" >"$T/present.out" <<'EOF'
import re, sys
out, a, b = sys.argv[1:4]
EXT = 4 << 20
acked = [int(m.group(1)) for m in re.finditer(r"^wrote 4096/4096 bytes at offset (\d+)", open(out).read(), re.M)]
for name, path in (("alpha", a), ("beta", b)):
    missing = []
    with open(path, "rb") as f:
        for off in acked:
            k = (off - 65536) // EXT
            f.seek(off)
            if f.read(4096) != bytes([0x41 + k]) * 4096:
                missing.append("#%d" % k)
    print("%s %d %s" % (name, len(missing), ",".join(missing) or "-"))
EOF
read -r miss_a list_a <<<"$(sed -n 's/^alpha //p' "$T/present.out")"
read -r miss_b list_b <<<"$(sed -n 's/^beta //p' "$T/present.out")"
check_eq "all $acked acknowledged writes are on alpha (missing in extents: $list_a)" "$miss_a" 0
check_eq "all $acked acknowledged writes are on beta (missing in extents: $list_b)" "$miss_b" 0
finish
