#!/usr/bin/env bash
# The replication benchmark: `blkrep serve` with no peer, a blkrep pair in
# sync mode and one in async mode (the link in TLS, userspace on a host
# without kTLS), a sync pair over plain TCP (allow-unencrypted) for TLS's
# cost, on the same fio nbd workloads as
# bench/bench.sh, all on this machine (both daemons and fio share its
# cores); plus 4k QD1 write latency next to the link's round-trip time, and
# the rate of an unthrottled full resync next to serve's sequential writes.
# Not a test: it prints a table (bench/results/pair-latest.md) and the
# ratios the async-mode issue sets as targets.
#
# Environment (optional): BENCH_SECONDS (5), BENCH_ROUNDS (3, medians),
# BENCH_SIZE_MB (1024), BENCH_CACHE (.cache/bench-pair), BLKREP (./blkrep).
# BENCH_TRIO=1 adds the three-node row (issue 16: alpha primary, beta a sync
# replica, gamma an async one, on the same fio jobs as the pair rows, and a
# table of its own); BENCH_TRIO=only runs serve and that row alone (no pair
# rows, no rtt, no resync).  It needs a daemon with N-node support.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
SIZE_MB=${BENCH_SIZE_MB:-1024}
CACHE=${BENCH_CACHE:-$REPO/.cache/bench-pair}
BLKREP=${BLKREP:-$REPO/blkrep}
OUT=$REPO/bench/results
read -r -a WORKLOADS <<<"${BENCH_WORKLOADS:-seqwrite-1m-qd8 randwrite-4k-qd32 randwrite-4k-qd1 randread-4k-qd32}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

log() { printf '[pair-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for t in fio timeout; do command -v $t >/dev/null || die "$t missing (make deps)"; done
fio --enghelp=nbd >/dev/null 2>&1 || die "fio has no nbd engine"
[ -x "$BLKREP" ] || die "$BLKREP missing (make)"

W=$(mktemp -d /tmp/blkrep-pair-bench.XXXXXX)
mkdir -p "$CACHE" "$OUT"
export BLKREP_RUN_DIR=$W/run
RAW=$W/raw.tsv
: >"$RAW"
PORT_A=$((20000 + RANDOM % 20000))
PORT_B=$((PORT_A + 1))
NBD_PORT=$((PORT_A + 2))
SERVE_PORT=$((PORT_A + 3))
PORT_C=$((PORT_A + 4))
CONF=$W/r0.conf
A="$BLKREP -c $CONF --node alpha"
B="$BLKREP -c $CONF --node beta"
C="$BLKREP -c $W/trio.conf --node gamma"
SERVE_PID=
TRIO=${BENCH_TRIO:-0}

cleanup() {
	$A down >/dev/null 2>&1 || true
	$B down >/dev/null 2>&1 || true
	[ "$TRIO" = 0 ] || $C down >/dev/null 2>&1 || true
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/secret"
chmod 600 "$W/secret"
# conf FILE [RESOURCE-LINE]: the pair's config
conf() {
	cat >"$1" <<EOF
[resource]
name = r0
secret-file = $W/secret
${2:-}
[node alpha]
address = 127.0.0.1:$PORT_A
backing = $CACHE/a.img
nbd = 127.0.0.1:$NBD_PORT
[node beta]
address = 127.0.0.1:$PORT_B
backing = $CACHE/b.img
EOF
}
conf "$CONF"
conf "$W/plain.conf" "allow-unencrypted = yes"
# The three nodes' config: the pair's, beta in sync mode, and gamma in async.
{
	sed '/^\[node beta\]/,$d' "$CONF"
	cat <<EOF
[node beta]
address = 127.0.0.1:$PORT_B
backing = $CACHE/b.img
mode = sync
[node gamma]
address = 127.0.0.1:$PORT_C
backing = $CACHE/c.img
mode = async
EOF
} >"$W/trio.conf"

fio_args() {
	case $1 in
	seqwrite-1m-qd8) echo "--rw=write --bs=1m --iodepth=8" ;;
	randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
	randwrite-4k-qd1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
	randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
	esac
}

# run_fio SETUP WORKLOAD ROUND URI: one row "setup workload round iops MiB/s p50_us"
run_fio() {
	local json=$W/fio.json
	# shellcheck disable=SC2046
	timeout $((SECS + 60)) fio --name=b --ioengine=nbd --uri="$4" $(fio_args "$2") \
		--size=$((SIZE_MB / 2))M --time_based --runtime="$SECS" --norandommap \
		--lat_percentiles=1 --output-format=json >"$json" 2>/dev/null ||
		{ log "fio failed: $1 $2"; return 0; }
	$PY - "$json" "$1" "$2" "$3" >>"$RAW" <<'EOF'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
d = j["write"] if j["write"]["io_bytes"] else j["read"]
p50 = d["clat_ns"]["percentile"]["50.000000"] / 1000
print("%s\t%s\t%s\t%.0f\t%.1f\t%.1f" % (sys.argv[2], sys.argv[3], sys.argv[4], d["iops"],
      d["bw_bytes"] / 1048576, p50))
EOF
}

# Both images hold the same random data, written out (not sparse): as the
# anchors' backing file in bench.sh is, and as a used volume is.  (Writing
# into the holes of a sparse file is several times slower on ext4.)
# make_images [NODE-LETTER...]: a.img and b.img, and c.img if "c" is named.
make_images() {
	local x
	[ -s "$CACHE/random.img" ] ||
		dd if=/dev/urandom of="$CACHE/random.img" bs=1M count="$SIZE_MB" status=none
	for x in a b "$@"; do
		rm -f "$CACHE/$x.img"
		cp --sparse=never "$CACHE/random.img" "$CACHE/$x.img"
	done
}

# pair_up MODE: a fresh zeroed pair, alpha primary in MODE ("plain": sync
# over plain TCP)
pair_up() {
	local A=$A B=$B
	[ "$1" = plain ] && A="$BLKREP -c $W/plain.conf --node alpha" B="$BLKREP -c $W/plain.conf --node beta"
	make_images
	$A create --zeroed >/dev/null && $B create --zeroed >/dev/null
	$A up 2>/dev/null && $B up 2>/dev/null
	for _ in $(seq 100); do
		$A status --json | grep -q '"connection": "connected"' && break
		sleep 0.1
	done
	$A primary >/dev/null
	$A mode "${1/plain/sync}" >/dev/null
}

pair_down() {
	$A down >/dev/null
	$B down >/dev/null
}

# trio_up: three fresh zeroed nodes (alpha primary, beta sync, gamma async),
# alpha connected to both before it is made primary.
trio_up() {
	local n A="$BLKREP -c $W/trio.conf --node alpha" B="$BLKREP -c $W/trio.conf --node beta"
	make_images c
	{ $A create --zeroed && $B create --zeroed && $C create --zeroed; } >/dev/null ||
		die "three nodes: create refused (a daemon without N-node support?)"
	$A up 2>/dev/null && $B up 2>/dev/null && $C up 2>/dev/null || die "three nodes: up failed"
	for _ in $(seq 100); do
		n=$($A status --json | $PY -c 'import json,sys
print(sum(p["connection"] == "connected" for p in json.load(sys.stdin).get("peers") or []))' || true)
		[ "$n" = 2 ] && break
		sleep 0.1
	done
	[ "$n" = 2 ] || log "three nodes: alpha sees $n of 2 peers connected"
	$A primary >/dev/null
}

trio_down() {
	pair_down
	$C down >/dev/null
}

# The link's round trip: TCP ping-pong of 64 bytes on 127.0.0.1, median in µs.
link_rtt() {
	$PY - <<'EOF'
import socket, threading, time, statistics
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
def echo():
    c, _ = srv.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(64)
        if not b: return
        c.sendall(b)
threading.Thread(target=echo, daemon=True).start()
s = socket.create_connection(srv.getsockname()); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ts = []
for _ in range(2000):
    t = time.perf_counter(); s.sendall(b"x" * 64); n = 0
    while n < 64: n += len(s.recv(64 - n))
    ts.append(time.perf_counter() - t)
print("%.1f" % (statistics.median(ts[200:]) * 1e6))
EOF
}

# A full resync (the pair created without --zeroed) of SIZE_MB of random
# data, unthrottled: MiB/s
resync_rate() {
	make_images
	$A create >/dev/null && $B create >/dev/null
	$A up 2>/dev/null && $B up 2>/dev/null
	for _ in $(seq 100); do
		$A status --json | grep -q '"connection": "connected"' && break
		sleep 0.1
	done
	local t0 t1
	t0=$(date +%s.%N)
	$A primary --force >/dev/null
	for _ in $(seq 6000); do
		[ "$($B status --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["disk"])')" = uptodate ] && break
		sleep 0.05
	done
	t1=$(date +%s.%N)
	pair_down
	$PY -c "print('%.1f' % ($SIZE_MB / ($t1 - $t0)))"
}

for r in $(seq 1 "$ROUNDS"); do
	log "round $r: serve"
	make_images
	"$BLKREP" serve "$CACHE/a.img" --listen "127.0.0.1:$SERVE_PORT" 2>/dev/null &
	SERVE_PID=$!
	sleep 0.5
	for w in "${WORKLOADS[@]}"; do run_fio serve "$w" "$r" "nbd://127.0.0.1:$SERVE_PORT/"; done
	kill "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	SERVE_PID=
	modes=${BENCH_MODES:-sync async plain}
	[ "$TRIO" = only ] && modes=
	for mode in $modes; do
		log "round $r: pair, $mode"
		pair_up $mode
		for w in "${WORKLOADS[@]}"; do run_fio "$mode" "$w" "$r" "nbd://127.0.0.1:$NBD_PORT/r0"; done
		pair_down
	done
	if [ "$TRIO" != 0 ]; then
		log "round $r: three nodes, beta sync, gamma async"
		trio_up
		for w in "${WORKLOADS[@]}"; do run_fio trio "$w" "$r" "nbd://127.0.0.1:$NBD_PORT/r0"; done
		trio_down
	fi
	[ "$TRIO" = only ] && continue
	log "round $r: link rtt, resync"
	printf 'rtt\tlink\t%s\t%s\t\t\n' "$r" "$(link_rtt)" >>"$RAW"
	printf 'resync\tfull\t%s\t%s\t\t\n' "$r" "$(resync_rate)" >>"$RAW"
done
rm -f "$CACHE/a.img" "$CACHE/b.img" "$CACHE/c.img" "$CACHE/random.img"

STAMP=$(date '+%Y-%m-%d %H:%M')
{
	echo "# blkrep pair benchmark, $STAMP"
	echo
	echo "Command: \`BENCH_SECONDS=$SECS BENCH_ROUNDS=$ROUNDS BENCH_SIZE_MB=$SIZE_MB${BENCH_TRIO:+ BENCH_TRIO=$BENCH_TRIO} bash bench/pair.sh\`"
	echo
	[ "$TRIO" = only ] || $PY - "$RAW" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(setup, wl, col):
    v = [float(r[col]) for r in rows if r[0] == setup and r[1] == wl and r[col]]
    return st.median(v) if v else float("nan")
wls = ["seqwrite-1m-qd8", "randwrite-4k-qd32", "randwrite-4k-qd1", "randread-4k-qd32"]
print("| workload | serve (no peer) | pair, sync | pair, async | sync, plain TCP | sync / serve | async / serve | TLS / plain (sync) |")
print("|---|--:|--:|--:|--:|--:|--:|--:|")
for w in wls:
    unit = "MiB/s" if w.startswith("seq") else "IOPS"
    col = 4 if w.startswith("seq") else 3
    s, y, a, pl = (med(x, w, col) for x in ("serve", "sync", "async", "plain"))
    print("| %s | %.0f %s | %.0f | %.0f | %.0f | %.2f× | %.2f× | %.2f× |" % (w, s, unit, y, a, pl, y / s, a / s, y / pl))
print()
rtt = med("rtt", "link", 3)
p = {x: med(x, "randwrite-4k-qd1", 5) for x in ("serve", "sync", "async")}
print("4k QD1 write latency, p50: serve %.0f µs, sync %.0f µs, async %.0f µs; link round trip %.0f µs." % (p["serve"], p["sync"], p["async"], rtt))
print("Sync QD1 p50 target: <= serve + RTT + 50 µs = %.0f µs: %s." % (p["serve"] + rtt + 50, "met" if p["sync"] <= p["serve"] + rtt + 50 else "not met"))
rs = med("resync", "full", 3)
sw = med("serve", "seqwrite-1m-qd8", 4)
print("Full resync, unthrottled: %.0f MiB/s = %.2f× serve's sequential writes (target >= 0.5×)." % (rs, rs / sw))
a32 = med("async", "randwrite-4k-qd32", 3) / med("serve", "randwrite-4k-qd32", 3)
s32 = med("sync", "randwrite-4k-qd32", 3) / med("serve", "randwrite-4k-qd32", 3)
print("Targets: async >= 0.9× no-peer IOPS (4k QD32: %.2f×); sync >= 0.6× on 4k QD32 (%.2f×)." % (a32, s32))
t32 = med("sync", "randwrite-4k-qd32", 3) / med("plain", "randwrite-4k-qd32", 3)
tsq = med("sync", "seqwrite-1m-qd8", 4) / med("plain", "seqwrite-1m-qd8", 4)
print("TLS (userspace here) / plain TCP, sync: 4k QD32 %.2f×, 1 MiB seq %.2f× (target >= 0.8×: %s)." % (t32, tsq, "met" if min(t32, tsq) >= 0.8 else "not met"))
EOF
	[ "$TRIO" = 0 ] || $PY - "$RAW" <<'EOF'
import sys, math, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(setup, wl, col):
    v = [float(r[col]) for r in rows if r[0] == setup and r[1] == wl and r[col]]
    return st.median(v) if v else float("nan")
def cell(v, fmt):
    return "-" if math.isnan(v) else fmt % v
print()
print("Three nodes (alpha primary, beta sync, gamma async), same jobs:")
print()
print("| workload | serve (no peer) | pair, sync | three nodes | three / serve | three / pair, sync |")
print("|---|--:|--:|--:|--:|--:|")
for w in ["seqwrite-1m-qd8", "randwrite-4k-qd32", "randwrite-4k-qd1", "randread-4k-qd32"]:
    unit = "MiB/s" if w.startswith("seq") else "IOPS"
    col = 4 if w.startswith("seq") else 3
    s, y, t = (med(x, w, col) for x in ("serve", "sync", "trio"))
    print("| %s | %s %s | %s | %s | %s | %s |" % (w, cell(s, "%.0f"), unit, cell(y, "%.0f"), cell(t, "%.0f"),
          cell(t / s, "%.2f×"), cell(t / y, "%.2f×")))
p = med("trio", "randwrite-4k-qd1", 5)
print()
print("Three nodes, 4k QD1 write latency, p50: %s µs (serve %s µs, pair sync %s µs)." % (
    cell(p, "%.0f"), cell(med("serve", "randwrite-4k-qd1", 5), "%.0f"), cell(med("sync", "randwrite-4k-qd1", 5), "%.0f")))
EOF
} | tee "$OUT/pair-latest.md"
