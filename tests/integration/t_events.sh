#!/usr/bin/env bash
# `blkrep events --now` through a failover and a failback, watched from
# the node that survives (beta).  A pair in sync mode, alpha primary;
# beta's `events --now` runs in the background from the start.  Failover:
# alpha is killed (kill -9), beta promoted with --force and written to,
# the volume attached on beta (attach --loop) and detached.
# Failback: alpha comes back (secondary, the resync target), the resync
# ends, beta steps down and alpha is primary again.  Then beta's daemon
# stops: `events` prints a "destroy" line and exits 0.  The lines are
# checked in order: the --now snapshot (one "exists" line per object, then
# the marker {"kind": "exists", "object": "-"}), the link lost, disk
# consistent, role primary, disk uptodate, attached, detached, the link back, the resync as
# source (start, end), role secondary, the peer primary.  Every line has
# the resource's name, this node's name, an RFC 3339 time with
# milliseconds, and the peer's name on peer lines.  Then a split brain,
# watched from alpha: beta back as secondary, the pair disconnected, both
# write as primary, alpha reconnects as secondary: a connection line with
# split_brain true and connection splitbrain, then `resolve
# --discard-local`: connected, split_brain false, a resync as target.
# Also: `events` without
# --now starts with the next change, and against a node whose daemon is
# gone exits 1 with one line.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io timeout

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
A="timeout -k 2 15 $A"
Bn="timeout -k 2 15 $Bn"
BURI="nbd+unix:///r0?socket=$T/beta.nbd"

alive() {
	local pid
	pid=$(daemon_pid "$1")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
trap '[ $FAILS -gt 0 ] && show_logs 30; pair_stop
for f in "$T"/run/*.log "$T"/ev*.err; do check_sanitizer "$f"; done; _cleanup' EXIT

pair_start "" --force
check_eq "in sync at the start" "$(wait_field "$Bn" "d['disk'] + ' ' + d['peer']['disk']" "uptodate uptodate" 20)" "uptodate uptodate"

# beta's events, from the start; a second watcher without --now.
$BLKREP -c "$T/r0.conf" --node beta events --now >"$T/ev.json" 2>"$T/ev.err" &
EV_PID=$!
BG_PIDS+=($EV_PID)
$BLKREP -c "$T/r0.conf" --node beta events >"$T/ev2.json" 2>"$T/ev2.err" &
EV2_PID=$!
BG_PIDS+=($EV2_PID)
for i in $(seq 1 50); do
	grep -q '"object": "-"' "$T/ev.json" 2>/dev/null && break
	sleep 0.1
done
check "events --now printed its snapshot" grep -q '"object": "-"' "$T/ev.json"

# --- failover ---
pid=$(daemon_pid alpha)
kill -KILL "$pid"
for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check_eq "beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check "primary --force on beta" $Bn primary --force
check "a write through beta's export" qemu-io -f raw "$BURI" -c 'write -P 0x42 8M 1M'
# The volume attached and detached (attach --loop: no nbd.ko needed).
HAVE_LOOP=0
if [ -c /dev/fuse ] && [ -e /dev/loop-control ] && losetup -f >/dev/null 2>&1; then
	HAVE_LOOP=1
	check "attach --loop on beta" $Bn attach --loop
	check "detach on beta" $Bn detach
else
	msg "NOTE: no /dev/fuse or no free loop device: the attach and detach lines are not checked"
fi

# --- failback ---
check "up alpha again" $A up
check_eq "alpha steps back to secondary" "$(wait_field "$A" "d['role']" secondary 10)" secondary
st=$(wait_synced 30) && pass "the pair resyncs" || fail "the pair resyncs: $st"
check "beta secondary" $Bn secondary
check "alpha primary" $A primary
check_eq "beta sees alpha primary" \
	"$(wait_field "$Bn" "d['peer']['connection'] == 'connected' and d['role'] == 'secondary'" True 10)" True
sleep 1.5 # the last changes reach the watchers

# --- the daemon stops: a last line, exit 0 ---
check "down beta" $Bn down
rc=timeout
for i in $(seq 1 100); do
	if ! kill -0 $EV_PID 2>/dev/null; then
		wait $EV_PID
		rc=$?
		break
	fi
	sleep 0.1
done
check_eq "events exits 0 when the daemon stops" "$rc" 0
wait $EV2_PID 2>/dev/null
msg "beta's events:"
sed 's/^/    | /' "$T/ev.json"

cat >"$T/evcheck.py" <<'EOF'
import json, re, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
ok = lambda c, d: print(("ok - " if c else "FAIL - ") + d)
ev = []
for l in lines:
    try:
        ev.append(json.loads(l))
    except ValueError:
        ok(False, "a line is JSON: %r" % l)
ok(len(ev) == len(lines) and len(ev) > 6, "%d lines, each a JSON object" % len(ev))
ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ok(all(ts.match(e.get("time", "")) for e in ev), "each line has an RFC 3339 time with ms")
ok(all(e.get("name") == "r0" and e.get("node") == "beta" for e in ev),
   "each line names the resource (r0) and this node (beta)")
peer_lines = [e for e in ev if e.get("object") in ("connection", "peer-device")]
ok(peer_lines and all(e.get("conn_name") == "alpha" for e in peer_lines),
   "each connection and peer-device line names the peer (alpha)")
# the --now snapshot
i = next((k for k, e in enumerate(ev) if e.get("object") == "-"), -1)
ok(i == 4 and ev[i]["kind"] == "exists", "--now: four exists lines, then the marker (at %d)" % i)
objs = [e["object"] for e in ev[:4]]
ok(all(e["kind"] == "exists" for e in ev[:4]) and
   objs == ["resource", "connection", "device", "peer-device"],
   "--now: resource, connection, device, peer-device (%s)" % objs)
ok(ev[0].get("role") == "secondary" and ev[1].get("connection") == "connected" and
   ev[1].get("role") == "primary" and ev[2].get("disk") == "uptodate" and
   ev[3].get("replication") == "established" and ev[3].get("peer_disk") == "uptodate",
   "--now: secondary, connected to a primary, uptodate, established")
ok(all(e["kind"] in ("change", "destroy") for e in ev[i + 1:]), "after the marker: changes only")
# the expected changes: groups in order; within a group (changes that
# may come in one batch, rendered object by object) in any order
want = [
    [("connection", lambda e: e["connection"] != "connected", "the link lost"),
     ("peer-device", lambda e: e["replication"] == "off", "replication off"),
     ("device", lambda e: e["disk"] == "consistent", "disk consistent (lost its primary)")],
    [("resource", lambda e: e["role"] == "primary", "role primary (failover)"),
     ("device", lambda e: e["disk"] == "uptodate", "disk uptodate (promoted)")],
    [("device", lambda e: e["attached"] and e["path"].startswith("/dev/loop"), "attached")]
    if sys.argv[2] == "1" else [],
    [("device", lambda e: not e["attached"] and e["path"] is None, "detached")]
    if sys.argv[2] == "1" else [],
    [("connection", lambda e: e["connection"] == "connected", "the link back")],
    [("peer-device", lambda e: e["replication"] == "sync-source", "resync start (sync-source)")],
    [("peer-device", lambda e: e["replication"] == "established" and e["peer_disk"] == "uptodate",
      "resync end (established, peer disk uptodate)")],
    [("resource", lambda e: e["role"] == "secondary", "role secondary (failback)")],
    [("connection", lambda e: e["role"] == "primary", "the peer primary again")],
    [("resource", lambda e: e["kind"] == "destroy", "destroy at the daemon's stop")],
]
start = i + 1
for group in want:
    last = start - 1
    for obj, pred, what in group:
        k = next((k for k in range(start, len(ev))
                  if ev[k].get("object") == obj and ev[k]["kind"] != "exists" and pred(ev[k])), -1)
        ok(k >= 0, "in order: %s (line %d)" % (what, k + 1))
        last = max(last, k)
    start = last + 1
ok(ev[-1].get("kind") == "destroy", "the last line is the destroy line")
EOF
run_checks "beta's events in order" $PY "$T/evcheck.py" "$T/ev.json" $HAVE_LOOP

# events without --now: no snapshot, the changes from its start
check_eq "events without --now has no exists lines" "$(grep -c '"exists"' "$T/ev2.json")" 0
check "events without --now saw the promotion" grep -q '"role": "primary", "suspended"' "$T/ev2.json"

# --- split brain, watched from alpha ---
# beta back as secondary; both write as primary while disconnected; alpha
# reconnects as secondary: split brain; resolved on alpha.
URI_A=$URI
check "up beta again" $Bn up
st=$(wait_synced 30) && pass "the pair is in sync again" || fail "the pair is in sync again: $st"
$BLKREP -c "$T/r0.conf" --node alpha events >"$T/eva.json" 2>"$T/eva.err" &
EVA_PID=$!
BG_PIDS+=($EVA_PID)
sleep 0.5
check "disconnect alpha" $A disconnect
check_eq "beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check "primary --force on beta" $Bn primary --force
check "a write through alpha" qemu-io -f raw "$URI_A" -c 'write -P 0x11 0 64k' -c flush
check "a write through beta" qemu-io -f raw "$BURI" -c 'write -P 0x22 1M 64k' -c flush
check "alpha secondary" $A secondary
check "alpha connect" $A connect
check_eq "alpha: split brain" "$(wait_field "$A" "d['peer']['connection']" splitbrain 10)" splitbrain
check "resolve --discard-local on alpha" $A resolve --discard-local --save-to "$T/alpha.saved"
st=$(wait_synced 30) && pass "resolved: in sync" || fail "resolved: in sync: $st"
sleep 1.5
kill $EVA_PID 2>/dev/null
wait $EVA_PID 2>/dev/null
msg "alpha's events:"
sed 's/^/    | /' "$T/eva.json"
cat >"$T/evsb.py" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = lambda c, d: print(("ok - " if c else "FAIL - ") + d)
conn = [e for e in ev if e["object"] == "connection"]
sb = [k for k, e in enumerate(conn) if e["split_brain"] and e["connection"] == "splitbrain"]
ok(bool(sb), "alpha: a connection line with split_brain true, connection splitbrain")
ok(bool(sb) and "split brain" in conn[sb[0]]["last_error"],
   "alpha: ... its last_error says split brain")
ok(bool(sb) and any(not e["split_brain"] and e["connection"] == "connected" for e in conn[sb[0]:]),
   "alpha: then connected, split_brain false (resolved)")
ok(any(e["object"] == "peer-device" and e["replication"] == "sync-target" for e in ev),
   "alpha: a resync as target (sync-target)")
ok(any(e["object"] == "resource" and e["role"] == "secondary" for e in ev),
   "alpha: role secondary before the reconnect")
EOF
run_checks "alpha's events through a split brain" $PY "$T/evsb.py" "$T/eva.json"
pair_stop

# a daemon that is gone: exit 1, one line
check_fails "events against a stopped daemon fails" $BLKREP -c "$T/r0.conf" --node beta events
check_eq "... with one line on stderr" "$(cat "$T/last.err" 2>/dev/null | grep -c .)" 1
check_fails "events with a bad argument is refused" $A events --later
finish
