#!/usr/bin/env bash
# The seeded fault driver: cycles of "load, fault, check, promote, fail
# back, compare" against a real pair whose nodes live in two network
# namespaces joined by a veth pair.
#
#   bash tests/torture/torture.sh [ROUNDS [SEED]]      (make torture ROUNDS=N SEED=S)
#
# Every cycle starts a fresh zeroed pair (alpha primary, beta secondary),
# runs build/nbdtorture's writer against alpha's NBD socket (4 connections,
# queue depth 8, random FLUSH and FUA), and injects one fault picked by the
# seeded generator:
#   kill-primary     kill -9 of alpha mid-load (sync mode)
#   cut-kill-primary the veth cut and alpha killed at the same instant, so
#                    nothing left in socket buffers can hide an early
#                    acknowledgement (sync mode)
#   kill-secondary   kill -9 of beta mid-load; sometimes killed again in
#                    the middle of the resync that follows (sync mode)
#   link-flap        the link rate-limited (tbf) and cut for 0.3..7 s, then
#                    restored, under load (sync mode)
#   async-kill       kill -9 of an async primary with max-lag = 4M
#   switch-kill      modes switched every 0.1..0.4 s, alpha killed mid-switch
#   disk-fail        beta's disk (faultfs) fails writes with EIO, or with
#                    ENOSPC in the data area, for 0.5..3 s, then heals
#   primary-disk-fail  alpha's data area fails writes with EIO or ENOSPC
#                    for 0.5..3 s: the client sees those writes fail and
#                    no other; then it heals, `blkrep resync` copies what
#                    the failures left out of sync, and alpha's disk must
#                    hold every acknowledged write
#   power-loss       both disks on faultfs in crash mode: both daemons
#                    killed, then both faultfs (unflushed writes are lost);
#                    both real files must hold every durable write
#                    (acknowledged FUA, or acknowledged before an
#                    acknowledged FLUSH); then both restart and resync
# The checker then reads the replica that must hold every acknowledged
# write (beta after a primary failure, alpha otherwise) and counts lost,
# stale, torn and garbage blocks: sync cycles allow no lost write, async
# ones must be consistent with happens-before and lack at most max-lag
# bytes.  After a primary failure beta is promoted (the time from the
# command to its first write is measured) and alpha fails back as
# secondary; every cycle ends with both replicas uptodate and byte-equal.
#
# A cycle is bounded (writer 30 s at most, every wait clock-bounded); the
# run is bounded by ROUNDS and by TORTURE_MAX_SECONDS (default 3600).
# The report (stdout, and $TORTURE_REPORT if set, as JSON) gives cycles
# run, acknowledged writes checked, lost, stale, torn, garbage, the
# largest async lag at a failure, and promotion times.
#
# Environment: TORTURE_SCENARIOS (space-separated subset), TORTURE_SIZE
# (backing size per node, default 96M), TORTURE_MAX_SECONDS, TORTURE_REPORT,
# NBDTORTURE (the tool, default build/nbdtorture), KEEP_TMP=1.
. "$(dirname "$0")/../integration/lib.sh"
require_cmd ip tc qemu-io
ROUNDS=${1:-${ROUNDS:-10}}
SEED=${2:-${SEED:-$(date +%s)}}
MAX_SECONDS=${TORTURE_MAX_SECONDS:-3600}
NBDTORTURE=${NBDTORTURE:-$REPO/build/nbdtorture}
SCENARIOS=(${TORTURE_SCENARIOS:-kill-primary cut-kill-primary kill-secondary link-flap async-kill switch-kill disk-fail primary-disk-fail power-loss})
SIZE=${TORTURE_SIZE:-96M}
MAX_LAG=4194304
[ -x "$NBDTORTURE" ] || { fail "no $NBDTORTURE (make build/nbdtorture)"; exit 1; }

. "$(dirname "$0")/../integration/pair.sh"
pair_init "$SIZE" "$SIZE"
. "$(dirname "$0")/../integration/faultfs.sh"
trap 'pair_stop; faultfs_cleanup; pair_netns_del; _cleanup' EXIT
pair_netns
# The faultfs scenarios need FUSE and build/faultfs; without them they are
# left out, and the run says so.
if ! (require_faultfs) >"$T/ffs.why" 2>&1; then
	msg "disk-fail, primary-disk-fail and power-loss left out: $(sed 's/^SKIP - //' "$T/ffs.why")"
	SCENARIOS=($(printf '%s\n' "${SCENARIOS[@]}" | grep -vx -e disk-fail -e primary-disk-fail -e power-loss))
else
	require_faultfs
fi
export BLKREP_SAVE_DIR=$T/saved
URIB="nbd+unix:///r0?socket=$T/beta.nbd"
RANDOM=$SEED

# rnd LO HI: sets R to a number in [LO, HI] from the seeded generator.
# Never call it in $(...): bash reseeds RANDOM in a subshell, and the
# run would no longer replay from its seed.
rnd() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }
# sleep_rnd LO HI: sleeps a seeded LO to HI milliseconds.
sleep_rnd() { rnd "$1" "$2"; sleep_ms "$R"; }
# sleep_ms MS
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Totals for the report.
cycles=0 writes_checked=0 lost=0 async_missing=0 max_unflushed=0 stale=0 torn=0 garbage=0 hb=0 max_lag_seen=0
promote_ms=() bad_cycles=()

# cycle_fail WHAT: this cycle broke a promise or an invariant.
cycle_fail() {
	fail "cycle $cycle ($scenario, seed $cseed): $*"
	CYCLE_OK=0
	show_logs 12
}

# fresh_pair [RESOURCE-LINES...]: stop what runs, new zeroed backing files
# (under faultfs where $FFS_NODES says: "b", or "a b" with --crash when
# $FFS_CRASH is set), both nodes up in their namespaces, connected, alpha
# primary.
fresh_pair() {
	local x
	pair_stop
	faultfs_cleanup
	FFS_PIDS=()
	tc -n "$NSA" qdisc del dev "$VA" root 2>/dev/null
	ip -n "$NSA" link set "$VA" up
	rm -f "$T/a.img" "$T/b.img" "$T/a.real" "$T/b.real"
	for f in "$T"/run/*.log; do [ -f "$f" ] && echo "=== torture cycle $cycle ($scenario)" >>"$f"; done
	rm -rf "$BLKREP_SAVE_DIR"
	mkdir -p "$BLKREP_SAVE_DIR"
	truncate -s "$SIZE" "$T/a.img" "$T/b.img"
	for x in ${FFS_NODES:-}; do
		faultfs_under "$x" ${FFS_CRASH:+--crash} || { cycle_fail "faultfs under $x"; return 1; }
	done
	PAIR_EXTRA=
	pair_conf_extra "$@"
	$A create --zeroed >/dev/null 2>&1 && $Bn create --zeroed >/dev/null 2>&1 &&
		$INA $A up >/dev/null 2>&1 && $INB $Bn up >/dev/null 2>&1 ||
		{ cycle_fail "could not create and start the pair"; return 1; }
	[ "$(wait_field "$A" "d['peer']['connection']" connected 20)" = connected ] ||
		{ cycle_fail "the fresh pair did not connect"; return 1; }
	$A primary >/dev/null 2>&1 || { cycle_fail "alpha primary refused"; return 1; }
	SIZE_BYTES=$(field "$A" "d['size_bytes']")
}

# start_writer SECONDS: the writer on alpha's socket, in the background.
start_writer() {
	"$NBDTORTURE" write --socket "$T/alpha.nbd" --export r0 --log "$T/w.log" \
		--conns 4 --qd 8 --max-blocks 8 --seconds "$1" --seed "$cseed" --quiet \
		>"$T/writer.out" 2>&1 &
	WPID=$!
	BG_PIDS+=("$WPID")
}

# stop_writer [FAILS-OK]: SIGTERM if still running; waits (bounded) for it
# to exit.  Any failed request breaks the cycle, unless FAILS-OK is given.
stop_writer() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$WPID" 2>/dev/null || break
		[ "$i" = 50 ] && kill -TERM "$WPID" 2>/dev/null
		sleep 0.1
	done
	kill -0 "$WPID" 2>/dev/null && { kill -KILL "$WPID"; cycle_fail "the writer did not stop"; }
	wait "$WPID" 2>/dev/null
	WRITER_RC=$?
	[ "$WRITER_RC" = 0 ] || cycle_fail "the writer exited $WRITER_RC: $(tail -n 3 "$T/writer.out")"
	[ -n "${1:-}" ] || grep -q 'acked [0-9]* failed 0,.* failed 0,' "$T/writer.out" ||
		cycle_fail "a client request failed: $(cat "$T/writer.out")"
}

# check_image IMAGE MODE: the checker over IMAGE's data area; adds to the
# totals.
check_image() {
	local out rc
	out=$("$NBDTORTURE" check --image "$1" --log "$T/w.log" --mode "$2" \
		--max-lag "$MAX_LAG" --json 2>"$T/check.err")
	rc=$?
	echo "$out" >"$T/check.json"
	if [ -z "$out" ] || [ $rc -ge 2 ]; then
		cycle_fail "the checker could not run (exit $rc): $(cat "$T/check.err")"
		return
	fi
	read -r wc l s t g h m < <($PY -c 'import json,sys; d=json.load(sys.stdin)
print(d["writes_checked"], d["lost"], d["stale"], d["torn"], d["garbage"], d["hb_violations"], d["acked_missing_bytes"])' <<<"$out")
	writes_checked=$((writes_checked + wc))
	if [ "$2" = async ]; then
		async_missing=$((async_missing + l))
	else
		lost=$((lost + l))
	fi
	stale=$((stale + s)) torn=$((torn + t)) garbage=$((garbage + g)) hb=$((hb + h))
	case $2 in
	async) [ "$m" -gt "$max_lag_seen" ] && max_lag_seen=$m ;;
	durable) [ "$m" -gt "$max_unflushed" ] && max_unflushed=$m ;;
	esac
	CYCLE_DESC="$CYCLE_DESC checked=$wc lost=$l stale=$s torn=$t garbage=$g hb=$h missing=$m"
	[ $rc = 0 ] || cycle_fail "the $2 check of $(basename "$1") failed: $out"
}

kill_node() { kill -KILL "$(daemon_pid "$1")" 2>/dev/null; }

# promote_beta: once beta has lost alpha, `primary` (with --force when its
# disk is only consistent, as after losing a primary under continue), and
# the first write through beta's export; records the time.
promote_beta() {
	local disk t0 force=
	[ "$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 20)" = True ] ||
		{ cycle_fail "beta did not notice that alpha is gone"; return 1; }
	disk=$(field "$Bn" "d['disk']")
	[ "$disk" = consistent ] && force=--force
	t0=$(now_ms)
	if ! $Bn primary $force >"$T/promote.out" 2>&1 ||
		! qemu-io -f raw "$URIB" -c 'write -P 0x5b 0 4k' -c flush >>"$T/promote.out" 2>&1; then
		cycle_fail "promoting beta ($disk) failed: $(tail -n 2 "$T/promote.out")"
		return 1
	fi
	promote_ms+=($(($(now_ms) - t0)))
	CYCLE_DESC="$CYCLE_DESC promote=${promote_ms[-1]}ms($disk)"
}

# failback: alpha comes back, finds beta primary and rejoins as secondary.
failback() {
	ip -n "$NSA" link set "$VA" up
	$INA $A up >"$T/up.out" 2>&1 || { cycle_fail "alpha up failed: $(tail -n 2 "$T/up.out")"; return 1; }
	[ "$(wait_field "$A" "d['role']" secondary 20)" = secondary ] ||
		cycle_fail "alpha did not rejoin as secondary"
}

# settle: the pair must end connected, resynced, uptodate and equal.
settle() {
	local st
	if ! st=$(wait_synced 90); then
		cycle_fail "the pair did not resync: $st"
		return 1
	fi
	cmp -s -n "$SIZE_BYTES" "$T/a.img" "$T/b.img" || cycle_fail "the replicas differ after the resync"
}

# --- the scenarios: each runs the load and the fault, then checks -----------

sc_kill_primary() {
	start_writer 30
	sleep_rnd 300 2500
	if [ "$scenario" = cut-kill-primary ]; then
		ip -n "$NSA" link set "$VA" down
	fi
	kill_node alpha
	stop_writer
	check_image "$T/b.img" sync
	promote_beta && failback && settle
}

sc_kill_secondary() {
	local i
	rnd 3 6
	start_writer "$R"
	sleep_rnd 200 1500
	kill_node beta
	sleep_rnd 100 1500
	$INB $Bn up >/dev/null 2>&1 || cycle_fail "beta up failed"
	if [ $((RANDOM % 2)) = 0 ]; then
		# Again, in the middle of the resync if there is one.
		for i in $(seq 1 30); do
			[ "$(field "$Bn" "d['resync'] is not None or d['disk'] == 'inconsistent'" 2>/dev/null)" = True ] && break
			sleep 0.1
		done
		CYCLE_DESC="$CYCLE_DESC killed-again-in-resync=$([ "$i" -lt 30 ] && echo yes || echo no)"
		kill_node beta
		sleep_rnd 100 800
		$INB $Bn up >/dev/null 2>&1 || cycle_fail "beta up (2) failed"
	fi
	stop_writer
	check_image "$T/a.img" sync
	settle
}

sc_link_flap() {
	local rate cut
	rnd 50 400; rate=$R
	rnd 300 7000; cut=$R
	tc -n "$NSA" qdisc add dev "$VA" root tbf rate "${rate}mbit" burst 64kb latency 50ms
	CYCLE_DESC="$CYCLE_DESC tbf=${rate}mbit cut=${cut}ms"
	start_writer $((cut / 1000 + 4))
	sleep_rnd 300 1500
	ip -n "$NSA" link set "$VA" down
	sleep_ms "$cut"
	ip -n "$NSA" link set "$VA" up
	stop_writer
	tc -n "$NSA" qdisc del dev "$VA" root 2>/dev/null
	check_image "$T/a.img" sync
	settle
}

sc_async_kill() {
	$A mode async >/dev/null 2>&1 || cycle_fail "mode async refused"
	start_writer 30
	sleep_rnd 500 2500
	CYCLE_DESC="$CYCLE_DESC lag_before_kill=$(field "$A" "d['lag_bytes']" 2>/dev/null)"
	kill_node alpha
	stop_writer
	check_image "$T/b.img" async
	promote_beta && failback && settle
}

sc_switch_kill() {
	local end mpid
	start_writer 30
	rnd 800 3000
	end=$(($(now_ms) + R))
	while [ "$(now_ms)" -lt "$end" ]; do
		$A mode async >/dev/null 2>&1
		sleep_rnd 100 400
		timeout 5 $A mode sync >/dev/null 2>&1 &
		mpid=$!
		sleep_rnd 0 100
		wait "$mpid"
	done
	timeout 5 $A mode sync >/dev/null 2>&1 &
	mpid=$!
	sleep_rnd 0 50
	kill_node alpha
	wait "$mpid"
	stop_writer
	check_image "$T/b.img" async
	promote_beta && failback && settle
}

# disk_fault WHERE: sets FAULT to a seeded faultfs command, EIO on WHERE
# ("" for the whole disk, or "below BYTES"), or ENOSPC in the data area
# after 0 to 100 more writes.
disk_fault() {
	if [ $((RANDOM % 2)) = 0 ]; then
		FAULT="fail eio${1:+ $1}"
	else
		rnd 0 100
		FAULT="fail enospc after $R below $SIZE_BYTES"
	fi
}

sc_disk_fail() {
	local how
	start_writer 30
	sleep_rnd 300 1500
	disk_fault ""; how=$FAULT
	CYCLE_DESC="$CYCLE_DESC disk=\"$how\""
	faultfs_ctl b "$how"
	sleep_rnd 500 3000
	CYCLE_DESC="$CYCLE_DESC beta=$(field "$Bn" "d['disk']")"
	faultfs_ctl b heal
	sleep_rnd 200 1500
	kill -TERM "$WPID" 2>/dev/null
	stop_writer
	check_image "$T/a.img" sync
	settle
}

# The primary's data area fails writes: only those fail for the client
# (never a FLUSH: "below" leaves fsync alone), alpha records the error,
# and its own disk still holds every acknowledged write.
sc_primary_disk_fail() {
	local how err nfail
	start_writer 30
	sleep_rnd 300 1500
	disk_fault "below $SIZE_BYTES"; how=$FAULT
	faultfs_ctl a "$how"
	sleep_rnd 500 3000
	err=$(field "$A" "d['disk_error']")
	faultfs_ctl a heal
	sleep_rnd 200 1500
	kill -TERM "$WPID" 2>/dev/null
	stop_writer fails-ok
	nfail=$(sed -n 's/.* acked [0-9]* failed \([0-9]*\), flushes .*/\1/p' "$T/writer.out")
	CYCLE_DESC="$CYCLE_DESC disk=\"$how\" failed_writes=${nfail:-?}"
	grep -q ', flushes [0-9]* acked [0-9]* failed 0,' "$T/writer.out" ||
		cycle_fail "a FLUSH failed: $(cat "$T/writer.out")"
	[ "${nfail:-0}" = 0 ] || [ -n "$err" ] ||
		cycle_fail "$nfail writes failed, but alpha's status shows no disk error"
	check_image "$T/a.real" sync
	$A resync >/dev/null 2>&1
	settle
}

# Power loss of both: the daemons first (nothing more is written), then
# what faultfs held; the real files must hold every durable write.
sc_power_loss() {
	start_writer 30
	sleep_rnd 500 3000
	kill_node alpha
	kill_node beta
	faultfs_powerloss a
	faultfs_powerloss b
	stop_writer
	check_image "$T/a.real" durable
	check_image "$T/b.real" durable
	FFS_PIDS=()
	faultfs_under a --crash && faultfs_under b --crash &&
		$INA $A up >"$T/up.out" 2>&1 && $INB $Bn up >>"$T/up.out" 2>&1 ||
		{ cycle_fail "restart after the power loss: $(tail -n 3 "$T/up.out")"; return; }
	[ "$(wait_field "$A" "d['role']" primary 20)" = primary ] ||
		cycle_fail "alpha is not primary again after the power loss"
	settle
}

# --- the run ---------------------------------------------------------------------
msg "seed $SEED, $ROUNDS cycles, scenarios: ${SCENARIOS[*]}"
run_start=$SECONDS
for cycle in $(seq 1 "$ROUNDS"); do
	[ $((SECONDS - run_start)) -lt "$MAX_SECONDS" ] || { msg "stopping: TORTURE_MAX_SECONDS reached"; break; }
	scenario=${SCENARIOS[RANDOM % ${#SCENARIOS[@]}]}
	cseed=$((SEED * 1000 + cycle))
	CYCLE_OK=1
	CYCLE_DESC=
	t0=$SECONDS
	extra=()
	FFS_NODES= FFS_CRASH=
	case $scenario in
	async-kill | switch-kill) extra=("max-lag = 4M") ;;
	disk-fail) FFS_NODES=b ;;
	primary-disk-fail) FFS_NODES=a ;;
	power-loss) FFS_NODES="a b" FFS_CRASH=1 ;;
	esac
	if fresh_pair "${extra[@]}"; then
		case $scenario in
		kill-primary | cut-kill-primary) sc_kill_primary ;;
		kill-secondary) sc_kill_secondary ;;
		link-flap) sc_link_flap ;;
		async-kill) sc_async_kill ;;
		switch-kill) sc_switch_kill ;;
		disk-fail) sc_disk_fail ;;
		primary-disk-fail) sc_primary_disk_fail ;;
		power-loss) sc_power_loss ;;
		esac
	fi
	cycles=$((cycles + 1))
	w=$(grep -o 'acked [0-9]*' "$T/writer.out" 2>/dev/null | head -n 1)
	if [ $CYCLE_OK = 1 ]; then
		pass "cycle $cycle $scenario ($((SECONDS - t0)) s, ${w:-acked ?}):$CYCLE_DESC"
	else
		bad_cycles+=("$cycle:$scenario")
	fi
done

pm=$(printf '%s\n' "${promote_ms[@]}" | sort -n)
pn=${#promote_ms[@]}
p50= pmax=
if [ "$pn" -gt 0 ]; then
	p50=$(sed -n "$(((pn + 1) / 2))p" <<<"$pm")
	pmax=$(tail -n 1 <<<"$pm")
fi
report=$(printf '{"seed": %s, "cycles": %s, "seconds": %s, "writes_checked": %s, "lost": %s, "async_missing_writes": %s, "stale": %s, "torn": %s, "garbage": %s, "hb_violations": %s, "max_async_lag_bytes": %s, "max_lag_setting": %s, "max_unflushed_lost_bytes": %s, "promotions": %s, "promote_ms_p50": %s, "promote_ms_max": %s, "failed_cycles": %s}' \
	"$SEED" "$cycles" "$((SECONDS - run_start))" "$writes_checked" "$lost" "$async_missing" "$stale" "$torn" "$garbage" "$hb" \
	"$max_lag_seen" "$MAX_LAG" "$max_unflushed" "$pn" "${p50:-null}" "${pmax:-null}" "${#bad_cycles[@]}")
echo "torture: $report"
[ -n "${TORTURE_REPORT:-}" ] && echo "$report" >"$TORTURE_REPORT"
[ ${#bad_cycles[@]} -eq 0 ] || msg "failed cycles: ${bad_cycles[*]}"
finish
