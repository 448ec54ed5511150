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
# and the ones of issue 12 (each a way the pair once claimed to be in sync
# while the replicas differed, made random):
#   restart-stall    `down`/`up` of alpha (back as primary), at once writes
#                    with beta stopped (SIGSTOP): async, or sync past the
#                    peer timeout; kill -9 of both, up both
#   demote-crash     beta stopped with writes outstanding, killed; alpha
#                    (alone, perhaps writing on) made `secondary`, killed;
#                    up both, `primary --force` on alpha: the pair must
#                    resync by itself, with every acknowledged write
#   wide-trim-crash  a TRIM or WRITE_ZEROES wider than half the activity log
#                    (al-extents = 16: over 32 MiB) whose local zeroing is
#                    slow (faultfs nofallocate + delay-writes), alpha killed
#                    in the middle; needs those faultfs commands
#   powerloss-flushed  alpha's disk alone on faultfs in crash mode, internal
#                    or external metadata (both nodes): writes with few
#                    FLUSHes, the activity log turning over, power loss of
#                    alpha; beta keeps every acknowledged write, alpha the
#                    durable ones, and after the resync both are equal
#   promote-during-resync  beta killed under load and brought back; while
#                    alpha resyncs to it alpha is made secondary and primary
#                    again (or taken down and up), and a second writer goes on
#   freeze-reconnect-crash  on-peer-loss = freeze, the link cut under load
#                    past the peer timeout (writes held), restored, and
#                    alpha killed right after the reconnect: beta must refuse
#                    a plain `primary`, or hold every acknowledged write
# The checker then reads the replica that must hold every acknowledged
# write (beta after a primary failure, alpha otherwise) and counts lost,
# stale, torn and garbage blocks: sync cycles allow no lost write, async
# ones must be consistent with happens-before and lack at most max-lag
# bytes.  After a primary failure beta is promoted (the time from the
# command to its first write is measured) and alpha fails back as
# secondary; every cycle ends with both replicas uptodate and byte-equal.
# The in-sync oracle (pair.sh's wait_synced) compares the two data areas
# whenever the pair claims to be in sync; a cycle where they differ counts
# as divergent (the report's "divergent", beside "lost").
#
# A cycle is bounded (writer 30 s at most, every wait clock-bounded); the
# run is bounded by ROUNDS and by TORTURE_MAX_SECONDS (default 3600): no
# cycle starts once the time used plus the longest cycle so far would pass
# it.
# The report (stdout, and $TORTURE_REPORT if set, as JSON) gives cycles
# run, acknowledged writes checked, lost, divergent cycles, stale, torn,
# garbage, the largest async lag at a failure, and promotion times.
#
# Environment: TORTURE_SCENARIOS (space-separated subset: the cycles draw
# only from it, e.g. TORTURE_SCENARIOS="demote-crash restart-stall"), TORTURE_SIZE
# (backing size per node, default 96M), TORTURE_MAX_SECONDS, TORTURE_REPORT,
# NBDTORTURE (the tool, default build/nbdtorture), KEEP_TMP=1.
. "$(dirname "$0")/../integration/lib.sh"
require_cmd ip tc qemu-io
ROUNDS=${1:-${ROUNDS:-10}}
SEED=${2:-${SEED:-$(date +%s)}}
MAX_SECONDS=${TORTURE_MAX_SECONDS:-3600}
NBDTORTURE=${NBDTORTURE:-$REPO/build/nbdtorture}
ALL_SCENARIOS="kill-primary cut-kill-primary kill-secondary link-flap async-kill switch-kill disk-fail
	primary-disk-fail power-loss restart-stall demote-crash wide-trim-crash powerloss-flushed
	promote-during-resync freeze-reconnect-crash"
SCENARIOS=(${TORTURE_SCENARIOS:-$ALL_SCENARIOS})
for s in "${SCENARIOS[@]}"; do
	grep -qw -- "$s" <<<"$ALL_SCENARIOS" || { fail "no scenario '$s' (there are: $(echo $ALL_SCENARIOS))"; exit 1; }
done
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
# drop_scenarios WHY NAME...: leave these out of the run, saying why.
drop_scenarios() {
	local why=$1 left=() s x keep
	shift
	for s in "${SCENARIOS[@]}"; do
		keep=1
		for x in "$@"; do [ "$s" = "$x" ] && keep=0; done
		[ $keep = 1 ] && left+=("$s")
	done
	[ ${#left[@]} = ${#SCENARIOS[@]} ] || msg "$* left out: $why"
	SCENARIOS=("${left[@]}")
}
if ! (require_faultfs) >"$T/ffs.why" 2>&1; then
	drop_scenarios "$(sed 's/^SKIP - //' "$T/ffs.why")" disk-fail primary-disk-fail power-loss \
		wide-trim-crash powerloss-flushed
else
	require_faultfs
	# Slow local zeroing needs faultfs's nofallocate and delay-writes.
	grep -qa 'delay-writes' "$FAULTFS" && grep -qa 'nofallocate' "$FAULTFS" ||
		drop_scenarios "$FAULTFS has no nofallocate/delay-writes commands (slow zeroing)" wide-trim-crash
fi
command -v nbdsh >/dev/null && $PY -c 'import nbd' 2>/dev/null ||
	drop_scenarios "nbdsh (python3-libnbd) is missing" wide-trim-crash
[ ${#SCENARIOS[@]} -gt 0 ] || skip "none of the scenarios asked for can run here"
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
divergent=0 longest_cycle=0
promote_ms=() bad_cycles=() divergent_cycles=()

# cycle_fail WHAT: this cycle broke a promise or an invariant.
cycle_fail() {
	fail "cycle $cycle ($scenario, seed $cseed): $*"
	CYCLE_OK=0
	show_logs 12
}

# fresh_pair [RESOURCE-LINES...]: stop what runs, new zeroed backing files
# of $CYCLE_SIZE (default $SIZE) bytes (under faultfs where $FFS_NODES
# says: "a", "b", or "a b", with --crash when $FFS_CRASH is set; external
# metadata files when $EXT_META is set), both nodes up in their
# namespaces, connected, alpha primary.
fresh_pair() {
	local x n
	# A daemon left stopped (SIGSTOP) by a broken cycle would make `down`
	# wait for nothing.
	for n in alpha beta; do kill -CONT "$(daemon_pid $n)" 2>/dev/null; done
	pair_stop
	faultfs_cleanup
	FFS_PIDS=()
	tc -n "$NSA" qdisc del dev "$VA" root 2>/dev/null
	ip -n "$NSA" link set "$VA" up
	rm -f "$T/a.img" "$T/b.img" "$T/a.real" "$T/b.real" "$T/a.meta" "$T/b.meta"
	for f in "$T"/run/*.log; do [ -f "$f" ] && echo "=== torture cycle $cycle ($scenario)" >>"$f"; done
	rm -rf "$BLKREP_SAVE_DIR"
	mkdir -p "$BLKREP_SAVE_DIR"
	truncate -s "${CYCLE_SIZE:-$SIZE}" "$T/a.img" "$T/b.img"
	PAIR_META_A= PAIR_META_B=
	[ -n "${EXT_META:-}" ] && PAIR_META_A=$T/a.meta PAIR_META_B=$T/b.meta
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

# start_writer SECONDS [NAME [WRITER-ARGS...]]: the writer on alpha's
# socket, in the background, logging to $T/NAME.log (default w) with its
# summary in $T/writer.out ($T/NAME.out for another NAME); WRITER-ARGS
# like --area-offset or --flush-prob.  Sets WPID and WOUT.
start_writer() {
	local secs=$1 name=${2:-w}
	shift
	[ $# -gt 0 ] && shift
	WOUT=$T/writer.out
	[ "$name" = w ] || WOUT=$T/$name.out
	"$NBDTORTURE" write --socket "$T/alpha.nbd" --export r0 --log "$T/$name.log" \
		--conns 4 --qd 8 --max-blocks 8 --seconds "$secs" --seed "$cseed" --quiet "$@" \
		>"$WOUT" 2>&1 &
	WPID=$!
	BG_PIDS+=("$WPID")
}

# stop_writer [FAILS-OK]: SIGTERM if still running after 5 s; waits
# (bounded) for it to exit.  Any failed request breaks the cycle, unless
# FAILS-OK is given.
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
	[ "$WRITER_RC" = 0 ] || cycle_fail "the writer exited $WRITER_RC: $(tail -n 3 "$WOUT")"
	[ -n "${1:-}" ] || grep -q 'acked [0-9]* failed 0,.* failed 0,' "$WOUT" ||
		cycle_fail "a client request failed: $(cat "$WOUT")"
}

# end_writer: stop the writer now (SIGTERM: no new writes, the ones in
# flight answered) and wait for it as stop_writer does.
end_writer() {
	kill -TERM "$WPID" 2>/dev/null
	stop_writer "$@"
}

# check_image IMAGE MODE [LOG [OFFSET [recheck]]]: the checker over IMAGE's
# data area (the writer's area at OFFSET bytes, for a writer run with
# --area-offset) against LOG (default $T/w.log); adds to the totals.  With
# "recheck" the writes are not counted again (a second look at the same
# run, on the other replica once the pair is in sync): only what it finds
# wrong is.
check_image() {
	local out rc log=${3:-$T/w.log} off=${4:-0} again=${5:-}
	out=$("$NBDTORTURE" check --image "$1" --image-offset "$off" --log "$log" --mode "$2" \
		--max-lag "$MAX_LAG" --json 2>"$T/check.err")
	rc=$?
	echo "$out" >"$T/check.json"
	if [ -z "$out" ] || [ $rc -ge 2 ]; then
		cycle_fail "the checker could not run (exit $rc): $(cat "$T/check.err")"
		return
	fi
	read -r wc l s t g h m < <($PY -c 'import json,sys; d=json.load(sys.stdin)
print(d["writes_checked"], d["lost"], d["stale"], d["torn"], d["garbage"], d["hb_violations"], d["acked_missing_bytes"])' <<<"$out")
	[ -n "$again" ] || writes_checked=$((writes_checked + wc))
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
	CYCLE_DESC="$CYCLE_DESC ${again:+re}checked($(basename "$1"),$(basename "$log" .log))=$wc lost=$l stale=$s torn=$t garbage=$g hb=$h missing=$m"
	[ $rc = 0 ] || cycle_fail "the $2 check of $(basename "$1") ($(basename "$log")${again:+, after the resync}) failed: $out"
}

# lost_on IMAGE MODE: how many of $T/w.log's acknowledged writes the
# checker finds missing on IMAGE ("?" if it cannot run); nothing counted,
# nothing failed: for the cycle's description.
lost_on() {
	"$NBDTORTURE" check --image "$1" --log "$T/w.log" --mode "$2" --json 2>/dev/null |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["lost"])' 2>/dev/null || echo "?"
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

# settle [SECS]: the pair must end connected, resynced, uptodate and equal
# (pair.sh's wait_synced compares the data areas once it reports in sync:
# the in-sync oracle).
settle() {
	local st
	if ! st=$(wait_synced "${1:-90}"); then
		case $st in
		DIVERGED*) cycle_fail "$st" ;;
		*) cycle_fail "the pair did not resync: $st" ;;
		esac
		return 1
	fi
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

# --- the scenarios of issue 12 ----------------------------------------------------
# Each has once made the pair claim to be in sync while the replicas
# differed, or lose an acknowledged write at a failover.  They end as the
# others do: every acknowledged write where the mode promises it, then the
# pair in sync with equal data areas (settle: the in-sync oracle).

# node_up NODE: `up` in NODE's namespace; its output in $T/up.out.
node_up() {
	case $1 in
	alpha) $INA $A up >"$T/up.out" 2>&1 ;;
	beta) $INB $Bn up >"$T/up.out" 2>&1 ;;
	esac || { cycle_fail "$1 up failed: $(tail -n 3 "$T/up.out")"; return 1; }
}

# primary_again AFTER: alpha, up again after AFTER ("the crash"), must be
# primary again, and the pair settle.
primary_again() {
	[ "$(wait_field "$A" "d['role']" primary 20)" = primary ] ||
		{ cycle_fail "alpha is not primary again after $1"; return 1; }
	settle
}

# stall_node NODE: SIGSTOP its daemon (fresh_pair lets it go again).
stall_node() { kill -STOP "$(daemon_pid "$1")" 2>/dev/null; }

# restart-stall: `down` and `up` of the primary (it comes back primary),
# then at once writes with the peer stopped; both killed; both up.  Every
# acknowledged write is on alpha's disk (a kill -9 loses no page cache),
# and the resync after the crash must leave beta equal to it.  Async
# (3 in 4: the writes are acknowledged while beta sleeps, up to max-lag),
# or sync with the stall outlasting the 5 s peer timeout (then alpha goes
# on alone).  In half the cycles a first writer fills the first 24 MiB
# before the restart; the second writes above it.
sc_restart_stall() {
	local mode=sync pre stall up=$((24 << 20))
	rnd 0 3
	[ "$R" -gt 0 ] && mode=async
	rnd 0 1; pre=$R
	if [ $mode = async ]; then rnd 800 3000; else rnd 5500 7500; fi
	stall=$R
	CYCLE_DESC="$CYCLE_DESC mode=$mode pre-restart-writer=$pre stall=${stall}ms"
	[ $mode = sync ] || $A mode async >/dev/null 2>&1 || { cycle_fail "mode async refused"; return; }
	if [ "$pre" = 1 ]; then
		start_writer 30 w0 --area-blocks $((up / 4096)) --writer 1
		sleep_rnd 500 1500
		end_writer
	fi
	$A down --keep-role >"$T/down.out" 2>&1 || { cycle_fail "alpha down: $(tail -n 2 "$T/down.out")"; return; }
	node_up alpha || return
	[ "$(wait_field "$A" "d['role'] + ' ' + d['peer']['connection']" "primary connected" 20)" = \
		"primary connected" ] || { cycle_fail "alpha did not come back as a connected primary"; return; }
	sleep_rnd 0 200
	stall_node beta
	start_writer 30 w --area-offset $up --writer 2
	sleep_ms "$stall"
	CYCLE_DESC="$CYCLE_DESC lag_at_kill=$(field "$A" "d['lag_bytes']" 2>/dev/null)"
	kill_node alpha
	kill_node beta
	stop_writer
	[ "$pre" = 1 ] && check_image "$T/a.img" sync "$T/w0.log" 0
	check_image "$T/a.img" sync "$T/w.log" $up
	node_up alpha && node_up beta || return
	primary_again "the crash" || return
	[ "$pre" = 1 ] && check_image "$T/b.img" sync "$T/w0.log" 0 recheck
	check_image "$T/b.img" sync "$T/w.log" $up recheck
}

# demote-crash: sync, on-peer-loss = continue.  beta stopped with writes
# outstanding, then killed: alpha acknowledges them alone (and, in half the
# cycles, more writes), is made secondary, and killed.  Both up;
# `primary --force` on alpha: the pair must resync by itself (no
# `blkrep resync`), and end equal with every acknowledged write on both.
sc_demote_crash() {
	local alone
	start_writer 30
	sleep_rnd 300 1500
	stall_node beta
	sleep_rnd 100 1500
	kill_node beta
	rnd 0 1; alone=$R
	[ "$alone" = 1 ] && sleep_rnd 200 1000
	end_writer
	CYCLE_DESC="$CYCLE_DESC writing-alone=$alone oos_before_demote=$(field "$A" "d['out_of_sync_bytes']" 2>/dev/null)"
	$A secondary >"$T/secondary.out" 2>&1 ||
		{ cycle_fail "secondary on alpha refused: $(tail -n 2 "$T/secondary.out")"; return; }
	kill_node alpha
	check_image "$T/a.img" sync
	node_up alpha && node_up beta || return
	[ "$(wait_field "$A" "d['peer']['connection']" connected 20)" = connected ] ||
		CYCLE_DESC="$CYCLE_DESC not-connected-before-promotion"
	$A primary --force >"$T/promote.out" 2>&1 ||
		{ cycle_fail "primary --force on alpha refused: $(tail -n 2 "$T/promote.out")"; return; }
	settle 60 || return
	check_image "$T/b.img" sync "" 0 recheck
}

# wide-trim-crash (160 MiB disks, al-extents = 16, faultfs under alpha):
# a pattern over 36 to 64 MiB at 16 MiB, flushed; 17 other extents written
# and flushed, so that those extents leave the activity log; then alpha's
# disk zeroes slowly (faultfs: fallocate refused, every write delayed 3 to
# 10 ms), a TRIM or WRITE_ZEROES of that range (wider than half the log)
# starts, 0.5 to 1.5 s later a write goes to an extent not in the log, and
# alpha is killed 0.3 to 2.5 s after that, most often while it is still
# zeroing.  After `up` and the resync:
# equal replicas, the writer's acknowledged writes (its area: the first
# 8 MiB), and zeros over the range if the TRIM was acknowledged.
sc_wide_trim_crash() {
	local mib op name usec i ev=() qpid npid acked=no off=$((16 << 20))
	rnd 9 16; mib=$((R * 4))
	# One request each (nbdsh: qemu-io would split a WRITE_ZEROES into
	# requests of 32 MiB, half the log, not wider).
	rnd 0 2
	case $R in
	0) name=TRIM op="h.trim($((mib << 20)), $off)" ;;
	1) name=WRITE_ZEROES op="h.zero($((mib << 20)), $off)" ;;
	2) name=WRITE_ZEROES+NO_HOLE op="h.zero($((mib << 20)), $off, nbd.CMD_FLAG_NO_HOLE)" ;;
	esac
	rnd 3000 10000; usec=$R
	CYCLE_DESC="$CYCLE_DESC $name(16M+${mib}M) delay=${usec}us"
	qemu-io -f raw "$URI" -c "write -P 0xa5 16M ${mib}M" -c flush >"$T/fill.out" 2>&1 ||
		{ cycle_fail "filling the range failed: $(tail -n 2 "$T/fill.out")"; return; }
	for i in $(seq 21 37); do ev+=(-c "write -P 0x77 $((i * 4))M 4k"); done
	qemu-io -f raw "$URI" "${ev[@]}" -c flush >"$T/fill.out" 2>&1 ||
		{ cycle_fail "writing 17 other extents failed: $(tail -n 2 "$T/fill.out")"; return; }
	sleep 1.2
	faultfs_ctl a nofallocate && faultfs_ctl a "delay-writes $usec" ||
		{ cycle_fail "faultfs refused nofallocate or delay-writes"; return; }
	start_writer 30 w --area-blocks 2048
	sleep_rnd 200 800
	(exec timeout -k 2 60 nbdsh -u "$URI" -c "$op" -c 'print("acknowledged")') >"$T/trim.out" 2>&1 &
	qpid=$!
	# Past the idle primary's once-a-second FLUSH, most often.
	sleep_rnd 500 1500
	(exec timeout -k 2 60 qemu-io -f raw "$URI" -c "write -P 0x99 152M 4k") >"$T/new.out" 2>&1 &
	npid=$!
	sleep_rnd 300 2500
	kill_node alpha
	faultfs_ctl a "delay-writes 0"
	stop_writer
	wait "$qpid" "$npid" 2>/dev/null
	grep -q '^acknowledged' "$T/trim.out" && acked=yes
	CYCLE_DESC="$CYCLE_DESC zeroing-acked=$acked"
	check_image "$T/a.real" sync
	node_up alpha || return
	primary_again "the crash" || return
	[ $acked = no ] || cmp -s -i "$off:0" -n $((mib << 20)) "$T/a.real" /dev/zero ||
		cycle_fail "the acknowledged $name of 16M+${mib}M is not zeros on alpha"
	check_image "$T/b.img" sync "" 0 recheck
}

# powerloss-flushed (faultfs in crash mode under alpha alone, al-extents =
# 16, internal or external metadata on both nodes): writes with few
# FLUSHes all over the data area, the activity log turning over (23
# extents, 16 slots), then power loss of alpha: its daemon killed, then
# its faultfs (what alpha never flushed is gone).  beta, alive, holds every
# acknowledged write; alpha's real file every durable one.  alpha comes
# back primary, resyncs what its activity log names, and the pair must end
# equal: an extent that left alpha's log before alpha's own copy was
# durable would differ.
sc_powerloss_flushed() {
	local fp
	rnd 0 2
	case $R in 0) fp=0 ;; 1) fp=0.002 ;; 2) fp=0.01 ;; esac
	CYCLE_DESC="$CYCLE_DESC metadata=$([ -n "${EXT_META:-}" ] && echo external || echo internal) flush-prob=$fp"
	start_writer 30 w --flush-prob "$fp" --fua-prob 0.01
	sleep_rnd 1500 4000
	kill_node alpha
	faultfs_powerloss a
	stop_writer
	check_image "$T/a.real" durable
	check_image "$T/b.img" sync
	FFS_PIDS=()
	faultfs_under a --crash || { cycle_fail "faultfs under alpha again"; return; }
	node_up alpha || return
	primary_again "the power loss" || return
	check_image "$T/b.img" durable "" 0 recheck
}

# promote-during-resync (resync-rate 8 to 30 MiB/s): a writer at 48 MiB,
# beta killed; while it is away the first 40 MiB are written with zeros
# (the same bytes, but out of sync: what the resync copies first), and
# beta comes back.  While alpha resyncs to it, alpha's role changes
# (`secondary` then `primary`, or `down` then `up`), and at once a second
# writer writes over those first 40 MiB as the resync goes through them.
# Rule 4: a resync chunk read before the change must never land on beta
# after a later client write to its range (beta would lack that write).
sc_promote_during_resync() {
	local how i zw=() seen=no one=$((48 << 20))
	rnd 0 1
	[ "$R" = 0 ] && how=secondary-primary || how=down-up
	start_writer 30 w --area-offset $one --area-blocks $((40 << 8))
	sleep_rnd 300 1000
	kill_node beta
	for i in $(seq 0 39); do zw+=(-c "write -P 0 ${i}M 1M"); done
	qemu-io -f raw "$URI" "${zw[@]}" >"$T/zeros.out" 2>&1 ||
		cycle_fail "writing zeros while beta is away failed: $(tail -n 2 "$T/zeros.out")"
	sleep_rnd 0 1500
	node_up beta || { end_writer; return; }
	for i in $(seq 1 50); do
		[ "$(field "$A" "d['resync'] is not None" 2>/dev/null)" = True ] && { seen=yes; break; }
		sleep 0.1
	done
	sleep_rnd 0 500
	CYCLE_DESC="$CYCLE_DESC $how resync-seen=$seen at=$(field "$A" "'%s/%s' % (d['resync']['done_bytes'], d['resync']['total_bytes']) if d['resync'] else 'none'" 2>/dev/null)"
	case $how in
	secondary-primary)
		$A secondary >"$T/role.out" 2>&1 || cycle_fail "secondary on alpha refused: $(tail -n 2 "$T/role.out")"
		sleep_rnd 0 500
		$A primary >>"$T/role.out" 2>&1 || cycle_fail "primary on alpha refused: $(tail -n 2 "$T/role.out")"
		;;
	down-up)
		$A down --keep-role >"$T/role.out" 2>&1 || cycle_fail "alpha down: $(tail -n 2 "$T/role.out")"
		node_up alpha
		;;
	esac
	# The first writer ended at the role change (its connection closed).
	stop_writer
	rnd 2 4
	start_writer "$R" w2 --area-blocks $((40 << 8)) --writer 2
	CYCLE_DESC="$CYCLE_DESC resync-after=$(field "$A" "'%s/%s' % (d['resync']['done_bytes'], d['resync']['total_bytes']) if d['resync'] else 'none'" 2>/dev/null)"
	stop_writer
	settle || return
	check_image "$T/a.img" sync "$T/w.log" $one
	check_image "$T/a.img" sync "$T/w2.log" 0
	check_image "$T/b.img" sync "$T/w.log" $one recheck
	check_image "$T/b.img" sync "$T/w2.log" 0 recheck
}

# freeze-reconnect-crash (on-peer-loss = freeze): the link cut under load
# for 5.5 to 8 s (past the peer timeout: alpha holds new writes), restored
# (in half the cycles at 1 to 8 mbit, so that the reconnect's bitmap
# exchange and resync take seconds), and alpha killed 0 to 0.3 s after it
# reports the peer connected again.
# RPO 0: beta must refuse a plain `primary` while it lacks an acknowledged
# write; if it accepts, it must hold every one (then beta serves and alpha
# fails back).  If it refuses, alpha comes back and resyncs it.
sc_freeze_reconnect_crash() {
	local cut frozen disk rate=
	rnd 5500 8000; cut=$R
	rnd 0 1
	[ "$R" = 1 ] && { rnd 1 8; rate=$R; }
	start_writer 30
	sleep_rnd 300 1500
	ip -n "$NSA" link set "$VA" down
	sleep_ms "$cut"
	frozen=$(field "$A" "d['frozen']" 2>/dev/null)
	[ -n "$rate" ] && tc -n "$NSA" qdisc add dev "$VA" root tbf rate "${rate}mbit" burst 32kb latency 400ms
	ip -n "$NSA" link set "$VA" up
	[ "$(wait_field "$A" "d['peer']['connection']" connected 20)" = connected ] ||
		CYCLE_DESC="$CYCLE_DESC no-reconnect"
	sleep_rnd 0 300
	kill_node alpha
	tc -n "$NSA" qdisc del dev "$VA" root 2>/dev/null
	stop_writer
	[ "$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 20)" = True ] ||
		{ cycle_fail "beta did not notice that alpha is gone"; return; }
	disk=$(field "$Bn" "d['disk']")
	CYCLE_DESC="$CYCLE_DESC cut=${cut}ms restored-at=${rate:-full}${rate:+mbit} frozen=$frozen beta=$disk"
	if $Bn primary >"$T/promote.out" 2>&1; then
		CYCLE_DESC="$CYCLE_DESC plain-primary=accepted"
		check_image "$T/b.img" sync
		qemu-io -f raw "$URIB" -c 'write -P 0x5b 0 4k' -c flush >>"$T/promote.out" 2>&1 ||
			cycle_fail "a write through beta failed: $(tail -n 2 "$T/promote.out")"
		failback && settle
	else
		# Whether the refusal kept a promise or was only caution.
		CYCLE_DESC="$CYCLE_DESC plain-primary=refused beta-lacked=$(lost_on "$T/b.img" sync)"
		check_image "$T/a.img" sync
		node_up alpha || return
		primary_again "the crash" || return
		check_image "$T/b.img" sync "" 0 recheck
	fi
}

# --- the run ---------------------------------------------------------------------
msg "seed $SEED, $ROUNDS cycles, scenarios: ${SCENARIOS[*]}"
run_start=$SECONDS
for cycle in $(seq 1 "$ROUNDS"); do
	[ $((SECONDS - run_start + longest_cycle)) -lt "$MAX_SECONDS" ] ||
		{ msg "stopping: another cycle (up to ${longest_cycle} s so far) would pass TORTURE_MAX_SECONDS ($MAX_SECONDS)"; break; }
	scenario=${SCENARIOS[RANDOM % ${#SCENARIOS[@]}]}
	cseed=$((SEED * 1000 + cycle))
	CYCLE_OK=1
	CYCLE_DESC=
	t0=$SECONDS
	extra=()
	FFS_NODES= FFS_CRASH= CYCLE_SIZE= EXT_META=
	rm -f "$T"/w*.log "$T"/w*.out "$T/writer.out"
	case $scenario in
	async-kill | switch-kill) extra=("max-lag = 4M") ;;
	disk-fail) FFS_NODES=b ;;
	primary-disk-fail) FFS_NODES=a ;;
	power-loss) FFS_NODES="a b" FFS_CRASH=1 ;;
	restart-stall) extra=("al-extents = 16" "max-lag = 4M") ;;
	wide-trim-crash) FFS_NODES=a CYCLE_SIZE=160M extra=("al-extents = 16") ;;
	powerloss-flushed)
		FFS_NODES=a FFS_CRASH=1 extra=("al-extents = 16")
		rnd 0 1
		[ "$R" = 1 ] && EXT_META=1
		;;
	promote-during-resync) rnd 8 30; extra=("resync-rate = ${R}M") ;;
	freeze-reconnect-crash) extra=("on-peer-loss = freeze") ;;
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
		restart-stall) sc_restart_stall ;;
		demote-crash) sc_demote_crash ;;
		wide-trim-crash) sc_wide_trim_crash ;;
		powerloss-flushed) sc_powerloss_flushed ;;
		promote-during-resync) sc_promote_during_resync ;;
		freeze-reconnect-crash) sc_freeze_reconnect_crash ;;
		esac
	fi
	cycles=$((cycles + 1))
	# The in-sync oracle's findings (pair.sh's sync_state appends them):
	# this cycle is divergent, whatever else it found.
	if [ -s "$T/oracle.diverged" ]; then
		divergent=$((divergent + 1))
		divergent_cycles+=("$cycle:$scenario")
		[ $CYCLE_OK = 0 ] || cycle_fail "$(head -n 1 "$T/oracle.diverged")"
		sed "s/^/cycle $cycle: /" "$T/oracle.diverged" >>"$T/oracle.all"
		rm -f "$T/oracle.diverged"
	fi
	[ $((SECONDS - t0)) -gt "$longest_cycle" ] && longest_cycle=$((SECONDS - t0))
	w=$(grep -o 'acked [0-9]*' "$T/writer.out" 2>/dev/null | head -n 1)
	if [ $CYCLE_OK = 1 ]; then
		pass "cycle $cycle $scenario ($((SECONDS - t0)) s, ${w:-acked ?}):$CYCLE_DESC"
	else
		msg "cycle $cycle $scenario failed ($((SECONDS - t0)) s, ${w:-acked ?}):$CYCLE_DESC"
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
report=$(printf '{"seed": %s, "cycles": %s, "seconds": %s, "writes_checked": %s, "lost": %s, "divergent": %s, "async_missing_writes": %s, "stale": %s, "torn": %s, "garbage": %s, "hb_violations": %s, "max_async_lag_bytes": %s, "max_lag_setting": %s, "max_unflushed_lost_bytes": %s, "promotions": %s, "promote_ms_p50": %s, "promote_ms_max": %s, "failed_cycles": %s}' \
	"$SEED" "$cycles" "$((SECONDS - run_start))" "$writes_checked" "$lost" "$divergent" "$async_missing" "$stale" "$torn" "$garbage" "$hb" \
	"$max_lag_seen" "$MAX_LAG" "$max_unflushed" "$pn" "${p50:-null}" "${pmax:-null}" "${#bad_cycles[@]}")
echo "torture: $report"
[ -n "${TORTURE_REPORT:-}" ] && echo "$report" >"$TORTURE_REPORT"
msg "seed $SEED: $cycles cycles, $writes_checked writes checked, lost $lost, divergent $divergent, failed ${#bad_cycles[@]}"
[ ${#bad_cycles[@]} -eq 0 ] || msg "failed cycles: ${bad_cycles[*]}"
[ $divergent -eq 0 ] || msg "divergent cycles (in sync by status, data areas differ): ${divergent_cycles[*]}"
finish
