#!/usr/bin/env bash
# Events, metrics and status text per peer on three nodes (issue 16, part
# 5), each in its own network namespace (trio.sh): alpha primary, beta a
# sync replica, gamma an async one.
#  (a) all three up and in sync.  alpha's `events --now` runs from there:
#      its snapshot has a connection line and a peer-device line for each
#      peer (beta, gamma), in events2's order.  alpha's `status` text has
#      one line per peer (beta in sync mode, gamma in async mode) and no
#      single "peer" line; `blkrep metrics` has one series per peer in the
#      per-peer families (connection state, out of sync, lag), both
#      connected (promtool accepts the text when installed).
#  (b) the alpha-gamma link cut: alpha's events show gamma's connection
#      going down (and its peer-device off), nothing about beta's; a write
#      through alpha leaves gamma out of sync, beta not: in the metrics
#      (out of sync per peer, gamma's connection 0, beta's 1) and in the
#      status text.
#  (c) the link healed: alpha's events show gamma's connection back and a
#      resync to it (sync-source), then established with its disk
#      uptodate; all three in sync.
. "$(dirname "$0")/lib.sh"
require_cmd ip nsenter qemu-io timeout
. "$(dirname "$0")/trio.sh"
TRIO_MODE_B=sync
TRIO_MODE_C=async

trio_init 64M
trio_step "(a) three nodes up; alpha's events, status text and metrics"
trio_start || {
	fail "three nodes do not start (above: the daemon's own words)"
	exit 1
}
# alpha's events, in alpha's namespace (not bounded by trio_cmd's timeout).
nsenter --net="/run/netns/$(trio_ns alpha)" $BLKREP -c "$T/r0.conf" --node alpha events --now \
	>"$T/ev.json" 2>"$T/ev.err" &
EV_PID=$!
BG_PIDS+=($EV_PID)
for i in $(seq 1 50); do
	grep -q '"object": "-"' "$T/ev.json" 2>/dev/null && break
	sleep 0.1
done
check "(a) events --now printed its snapshot" grep -q '"object": "-"' "$T/ev.json"

# objects FILE [KIND]: "object:conn_name ..." of the lines of FILE (of kind KIND).
objects() {
	$PY -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(e["object"] + (":" + e["conn_name"] if "conn_name" in e else "")
               for e in ev if len(sys.argv) < 3 or e["kind"] == sys.argv[2]))' "$@"
}
check_eq "(a) --now: a connection and a peer-device line per peer, in events2's order" \
	"$(objects "$T/ev.json" exists)" \
	"resource connection:beta connection:gamma device peer-device:beta peer-device:gamma -"

# status_text STEP: alpha's status text (a check), kept and shown;
# status_lines STEP PATTERN...: how many of its lines match each PATTERN.
status_text() {
	check "($1) status text on alpha" $TRIO_A status
	cp "$T/last.out" "$T/status_$1.txt"
	sed 's/^/    | /' "$T/status_$1.txt"
}
status_lines() {
	local f=$T/status_$1.txt p
	shift
	for p in "$@"; do grep -c -e "$p" "$f"; done | tr '\n' ' '
}
status_text a
n=$(status_lines a '^  peer beta: connected, secondary, disk uptodate, sync mode, 0 B out of sync' \
	'^  peer gamma: connected, secondary, disk uptodate, async mode, 0 B out of sync' \
	'peer the peers')
check_eq "(a) status: a line for beta (connected, sync mode), one for gamma (async mode), no single peer line" "$n" "1 1 0 "

# value FILE SERIES: the value of the sample line that starts with SERIES.
value() { grep -F "$2 " "$1" | head -1 | awk '{print $NF}'; }
L='resource="r0",node="alpha"'
check "(a) blkrep metrics on alpha" sh -c "$TRIO_A metrics >'$T/m0.txt'"
if command -v promtool >/dev/null; then
	check "(a) promtool check metrics accepts it" sh -c "promtool check metrics <'$T/m0.txt'"
fi
for p in beta gamma; do
	check_eq "(a) metrics: $p connected" \
		"$(value "$T/m0.txt" "blkrep_connection_state{$L,peer=\"$p\",state=\"connected\"}")" 1
	check_eq "(a) metrics: $p's peer disk uptodate" \
		"$(value "$T/m0.txt" "blkrep_peer_disk_state{$L,peer=\"$p\",state=\"uptodate\"}")" 1
done
check_eq "(a) metrics: one out-of-sync series per peer" \
	"$(grep -c '^blkrep_out_of_sync_bytes{' "$T/m0.txt")" 2
check_eq "(a) metrics: one lag series per peer" "$(grep -c '^blkrep_lag_bytes{' "$T/m0.txt")" 2
check_eq "(a) metrics: the node's writes counter once" "$(grep -c '^blkrep_writes_total{' "$T/m0.txt")" 1

trio_step "(b) the alpha-gamma link cut; a write through alpha"
trio_cut alpha gamma || exit 1
check_eq "(b) alpha sees gamma gone" \
	"$(trio_wait_field alpha "peer('gamma').get('connection') != 'connected'" True 20)" True
check_eq "(b) alpha still sees beta connected" "$(trio_field alpha "peer('beta').get('connection')")" connected
check "(b) 1 MiB written through alpha" qemu-io -f raw "$(trio_uri alpha)" -c 'write -P 0x5a 4M 1M' -c flush
check_eq "(b) gamma out of sync on alpha" \
	"$(trio_wait_field alpha "peer('gamma').get('out_of_sync_bytes', 0) >= 1048576" True 10)" True
check "(b) blkrep metrics on alpha" sh -c "$TRIO_A metrics >'$T/m1.txt'"
check_eq "(b) metrics: gamma not connected, beta connected" \
	"$(value "$T/m1.txt" "blkrep_connection_state{$L,peer=\"gamma\",state=\"connected\"}") $(value "$T/m1.txt" "blkrep_connection_state{$L,peer=\"beta\",state=\"connected\"}")" "0 1"
oos_g=$(value "$T/m1.txt" "blkrep_out_of_sync_bytes{$L,peer=\"gamma\"}")
check_eq "(b) metrics: gamma out of sync ($oos_g >= 1 MiB), beta 0" \
	"$([ "${oos_g:-0}" -ge 1048576 ] && echo yes) $(value "$T/m1.txt" "blkrep_out_of_sync_bytes{$L,peer=\"beta\"}")" "yes 0"
status_text b
n=$(status_lines b '^  peer gamma: connecting, role unknown, disk unknown, async mode, 1.0 MiB out of sync' \
	'^  peer beta: connected, .* 0 B out of sync')
check_eq "(b) status: gamma's line says connecting, 1 MiB out of sync; beta's connected, 0 B" "$n" "1 1 "

trio_step "(c) the link healed"
trio_heal alpha gamma || exit 1
m=$(trio_wait_mesh 30 alpha beta gamma)
check_eq "(c) the mesh connected again ($m)" "$m" connected
check_trio_synced "(c) all three in sync" 60
sleep 1.5 # the last changes reach the watcher
kill $EV_PID 2>/dev/null
wait $EV_PID 2>/dev/null
msg "alpha's events:"
sed 's/^/    | /' "$T/ev.json"

cat >"$T/evcheck.py" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = lambda c, d: print(("ok - " if c else "FAIL - ") + d)
ch = [e for e in ev if e["kind"] == "change"]
ok(all(e.get("name") == "r0" and e.get("node") == "alpha" for e in ev),
   "each line names the resource and alpha")
peer_lines = [e for e in ev if e["object"] in ("connection", "peer-device")]
ok(all(e.get("conn_name") in ("beta", "gamma") for e in peer_lines),
   "each connection and peer-device line names its peer")
def first(pred, start=0):
    return next((k for k in range(start, len(ch)) if pred(ch[k])), -1)
down = first(lambda e: e["object"] == "connection" and e["conn_name"] == "gamma"
             and e["connection"] != "connected")
ok(down >= 0, "(b) gamma's connection goes down (line %d)" % down)
off = first(lambda e: e["object"] == "peer-device" and e["conn_name"] == "gamma"
            and e["replication"] == "off")
ok(off >= 0, "(b) gamma's peer-device off")
up = first(lambda e: e["object"] == "connection" and e["conn_name"] == "gamma"
           and e["connection"] == "connected", max(down, 0))
ok(down >= 0 and up > down, "(c) then gamma's connection back (line %d)" % up)
rs = first(lambda e: e["object"] == "peer-device" and e["conn_name"] == "gamma"
           and e["replication"] == "sync-source", max(up, 0))
ok(up >= 0 and rs > up, "(c) then a resync to gamma (sync-source)")
est = first(lambda e: e["object"] == "peer-device" and e["conn_name"] == "gamma"
            and e["replication"] == "established" and e["peer_disk"] == "uptodate", max(rs, 0))
ok(rs >= 0 and est > rs, "(c) then gamma established, its disk uptodate")
ok(not any(e["object"] == "connection" and e["conn_name"] == "beta" for e in ch),
   "beta's connection made no change line (its link never went)")
EOF
run_checks "alpha's events per peer" $PY "$T/evcheck.py" "$T/ev.json"
finish
