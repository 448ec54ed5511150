#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/netem.sh build/nbdtorture): the
# replication link under netem (delay with jitter, loss, reordering with
# duplication and corruption) and link flaps, with the torture tool's
# writer and checker.
#
# alpha (root network namespace) and beta (namespace b) replicate over the
# veth pair of lib.sh; each node also serves its NBD export on a unix socket
# ($W/alpha.nbd, $W/beta.nbd: an `nbd =` line added to each node's section).
# Every round starts a fresh zeroed pair (alpha primary, sync mode), puts
# one netem setting on both ends of the veth (both directions suffer it;
# netem's corrupt flips single bits, which the TCP checksum always catches:
# the round prints how many segments that dropped), and then:
#  - nbdtorture's writer (4 connections, queue depth 8, random FLUSH and
#    FUA) writes through alpha's export; in the rounds with a flap the
#    veth goes down (2 s: bridged by TCP; 6.5 s: past the daemon's 5 s
#    silence limit, the link drops) and comes back mid-load, and the pair
#    must be connected and synced again while the writer runs;
#  - kill -9 of alpha's daemon: the writer stops ("connection lost") with
#    no failed request;
#  - `nbdtorture check --mode sync` of beta's data area: every acknowledged
#    write is there (0 lost), nothing stale, torn or garbage;
#  - beta is promoted (`primary`, `--force` if its disk is only
#    consistent) and a short writer run goes through its export; alpha comes
#    back (`up`) and rejoins as secondary; the pair ends connected, both
#    uptodate, nothing out of sync, and the data areas (size_bytes) equal.
# Per round it prints the netem setting, writes acknowledged and checked,
# lost/stale/torn/garbage and the bytes beta resynced to alpha.
#
# NETEM_SEED (exported through BLKREP_VM_ENV) fixes the writers' seeds;
# by default it comes from the clock and is printed.
NAME=NETEM
. /test/lib.sh
TORT=/test/nbdtorture
SEED=${NETEM_SEED:-$(($(date +%s) % 100000))}
AREA_BLOCKS=4096 # 16 MiB of 4k blocks: the writer's area, and the most a failback resyncs
export BLKREP_SAVE_DIR=$W/saved
# "NETEM-ARGS[|CUT-MS]" per round: CUT-MS, a link flap of that long.  A cut
# shorter than the daemon's 5 s "peer silent" limit is bridged by TCP (the
# link stays up, writes wait); a longer one drops the link, alpha goes on
# alone (on-peer-loss = continue) and resyncs beta once it is back.
ROUNDS=(
	"delay 5ms 2ms|2000"
	"loss 2%|6500"
	"delay 5ms reorder 25% 50% duplicate 1% corrupt 0.1%"
)

# np_pair_up SIZE: like lib.sh's pair_up, with an NBD unix socket for each
# node; any earlier pair's daemons are gone, its files removed.
np_pair_up() {
	rm -rf "$W"
	pair_conf
	awk -v w="$W" '{ print }
		/^backing = .*\/a\.img$/ { print "nbd = unix:" w "/alpha.nbd" }
		/^backing = .*\/b\.img$/ { print "nbd = unix:" w "/beta.nbd" }' "$CONF" >"$CONF.new" &&
		mv "$CONF.new" "$CONF" || fail "add the nbd lines to $CONF"
	[ "$(grep -c '^nbd = unix:' "$CONF")" = 2 ] || fail "no nbd lines in $CONF: $(cat "$CONF")"
	mkdir -p "$BLKREP_SAVE_DIR"
	truncate -s "$1" "$W/a.img" "$W/b.img"
	$A create --zeroed >/dev/null && $BN create --zeroed >/dev/null || fail "create"
	$A up >"$W/up-alpha.out" 2>&1 || fail "alpha up: $(cat "$W/up-alpha.out")"
	$IN_B $BN up >"$W/up-beta.out" 2>&1 || fail "beta up (netns b): $(cat "$W/up-beta.out")"
	wait_for 100 connected || fail "not connected after 10 s: alpha $(json connection), beta $(json connection "$BN")"
	$A primary >/dev/null || fail "primary"
	wait_for 50 [ -S "$W/alpha.nbd" ] || fail "alpha serves no socket $W/alpha.nbd"
	[ "$(json mode)" = sync ] || fail "a new pair is in $(json mode) mode"
}

# netem_set ARGS...: ARGS as the root qdisc on both ends of the veth.
netem_set() {
	tc qdisc replace dev va root netem "$@" || fail "netem $* on va"
	$IN_B tc qdisc replace dev vb root netem "$@" || fail "netem $* on vb"
}
netem_clear() {
	tc qdisc del dev va root 2>/dev/null
	$IN_B tc qdisc del dev vb root 2>/dev/null
	return 0
}

# writer_start SOCKET LOG SECONDS SEED [ARGS...]: nbdtorture's writer in the
# background (WPID), output in LOG.out.
writer_start() {
	local sock=$1 log=$2 secs=$3 seed=$4
	shift 4
	"$TORT" write --socket "$sock" --export r0 --log "$log" --conns 4 --qd 8 \
		--area-blocks "$AREA_BLOCKS" --seconds "$secs" --seed "$seed" --quiet "$@" >"$log.out" 2>&1 &
	WPID=$!
	BG_PIDS+=("$WPID")
}
writer_running() { kill -0 "$WPID" 2>/dev/null; }
# writer_wait LOG: the writer exits within 15 s (SIGTERM at 10 s), with
# status 0 and no failed request; sets ACKED.
writer_wait() {
	local log=$1 rc
	wait_secs 10 eval '! writer_running' || kill -TERM "$WPID" 2>/dev/null
	wait_secs 5 eval '! writer_running' || fail "the writer $WPID did not stop: $(cat "$log.out")"
	wait "$WPID"
	rc=$?
	BG_PIDS=()
	[ $rc = 0 ] || fail "the writer exited $rc: $(cat "$log.out")"
	grep -q 'acked [0-9]* failed 0,.* failed 0,' "$log.out" || fail "a request failed: $(cat "$log.out")"
	ACKED=$(grep -o 'writes issued [0-9]* acked [0-9]*' "$log.out" | awk '{ print $5 }')
	[ "${ACKED:-0}" -gt 0 ] || fail "no write acknowledged: $(cat "$log.out")"
}

# csum_errors: TCP segments dropped for a bad checksum (InCsumErrors) in
# both namespaces together: netem's corrupt flips one bit, which the TCP
# checksum always catches, so corruption reaches the daemons as loss.
csum_errors() {
	{
		awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "InCsumErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
		$IN_B awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "InCsumErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
	} | awk '{ s += $1 } END { print s + 0 }'
}

# jfield FIELD FILE: a number from the checker's JSON.
jfield() { grep -o "\"$1\": [0-9a-z]*" "$2" | head -1 | sed 's/.*: //'; }

step "nbdtorture runs in the guest; a veth between root and netns b"
[ -x "$TORT" ] || fail "no $TORT (pass build/nbdtorture to run.sh)"
"$TORT" >"/tmp/tort.out" 2>&1
grep -q 'usage: nbdtorture write' /tmp/tort.out || fail "nbdtorture does not run: $(head -3 /tmp/tort.out)"
net_up
ok "seed $SEED, ${#ROUNDS[@]} rounds"

summary=()
r=0
for spec in "${ROUNDS[@]}"; do
	r=$((r + 1))
	setting=${spec%%|*}
	flap=
	[ "$spec" != "$setting" ] && flap=${spec#*|}
	# shellcheck disable=SC2206
	nargs=($setting)

	step "round $r: netem '$setting'${flap:+ and a link flap of $flap ms}; a fresh pair, the writer on alpha"
	netem_clear
	np_pair_up 48M
	netem_set "${nargs[@]}"
	csum0=$(csum_errors)
	ok "pair connected, alpha primary (sync); $(tc qdisc show dev va | head -1)"
	writer_start "$W/alpha.nbd" "$W/w.log" 30 "$((SEED * 10 + r))"
	sleep 1.5
	writer_running || fail "the writer ended early: $(cat "$W/w.log.out")"
	flapinfo=
	if [ -n "$flap" ]; then
		ip link set va down || fail "va down"
		sleep "$(awk -v m="$flap" 'BEGIN { printf "%.3f", m / 1000 }')"
		cut_st=$(status_fields "$A" connection out_of_sync_bytes)
		ip link set va up || fail "va up"
		t=$EPOCHREALTIME
		wait_secs 40 synced ||
			fail "not synced 40 s after the flap: alpha $(status_fields "$A" connection disk out_of_sync_bytes resync), beta $(status_fields "$BN" connection disk)"
		flapinfo="end of the ${flap} ms cut: alpha's peer '${cut_st% *}', ${cut_st#* } bytes out of sync; synced $(ms_since "$t") ms after the link came back, resynced $(json resynced_bytes) bytes; 'connection lost' in alpha's log: $(grep -c 'connection lost' "$W/run/r0-alpha.log")"
		writer_running || fail "the writer did not outlast the flap: $(cat "$W/w.log.out")"
		ok "$flapinfo"
		sleep 1
	else
		sleep 1.5
	fi
	writer_running || fail "the writer ended before the kill: $(cat "$W/w.log.out")"
	st=$(status_fields "$A" connection out_of_sync_bytes)
	[ "$st" = "connected 0" ] || fail "before the kill alpha is not connected and in sync: $st"

	step "round $r: kill -9 alpha's daemon; beta's data area holds every acknowledged write"
	pid=$(daemon_pid alpha)
	kill -9 "$pid" || fail "kill -9 $pid"
	wait_for 50 eval '! kill -0 "$pid"' || fail "alpha's daemon $pid still alive after kill -9"
	writer_wait "$W/w.log"
	acked=$ACKED
	grep -q 'stopped: connection lost' "$W/w.log.out" || fail "the writer did not stop at the kill: $(cat "$W/w.log.out")"
	"$TORT" check --image "$W/b.img" --log "$W/w.log" --mode sync --json >"$W/check.json" 2>"$W/check.err"
	rc=$?
	[ -s "$W/check.json" ] || fail "the checker printed nothing (exit $rc): $(cat "$W/check.err")"
	read -r checked lost stale torn garbage <<<"$(for f in writes_checked lost stale torn garbage; do jfield $f "$W/check.json"; done | tr '\n' ' ')"
	[ $rc = 0 ] && [ "$lost" = 0 ] && [ "$stale" = 0 ] && [ "$torn" = 0 ] && [ "$garbage" = 0 ] ||
		fail "the sync check of beta failed (exit $rc): $(cat "$W/check.json")"
	ok "writes acked $acked, checked $checked: lost $lost, stale $stale, torn $torn, garbage $garbage"

	step "round $r: beta promoted, writes; alpha back as secondary; synced; data areas equal"
	wait_secs 20 eval '[ "$(json connection "$BN")" != connected ]' || fail "beta still sees alpha 20 s after the kill"
	disk=$(json disk "$BN")
	case $disk in
	uptodate) force= ;;
	consistent) force=--force ;;
	*) fail "beta's disk is '$disk' after losing alpha" ;;
	esac
	$BN primary $force >"$W/primary.out" 2>&1 || fail "primary $force on beta ($disk): $(cat "$W/primary.out")"
	wait_for 50 [ -S "$W/beta.nbd" ] || fail "beta serves no socket $W/beta.nbd"
	writer_start "$W/beta.nbd" "$W/w2.log" 1 "$((SEED * 10 + r + 5))"
	writer_wait "$W/w2.log"
	acked2=$ACKED
	$A up >"$W/up.out" 2>&1 || fail "alpha up: $(cat "$W/up.out")"
	wait_secs 20 eval '[ "$(json role)" = secondary ]' || fail "alpha is $(json role), not secondary"
	t=$EPOCHREALTIME
	wait_secs 60 synced ||
		fail "not synced 60 s after alpha came back: alpha $(status_fields "$A" role connection disk out_of_sync_bytes resync), beta $(status_fields "$BN" role connection disk out_of_sync_bytes)"
	sync_ms=$(ms_since "$t")
	resynced=$(json resynced_bytes "$BN")
	synced_equal
	ok "beta primary ${force:+$force }(was $disk), $acked2 writes on beta; alpha secondary, synced in $sync_ms ms, beta resynced $resynced bytes; $SIZE bytes equal"
	[ -n "$flapinfo" ] && summary+=("round $r: $flapinfo")
	summary+=("round $r: netem '$setting'${flap:+ + flap ${flap}ms}: acked $acked/checked $checked, lost $lost stale $stale torn $torn garbage $garbage, beta promoted ($disk), resynced $resynced bytes")

	csum=$(($(csum_errors) - csum0))
	case $setting in *corrupt*) summary[-1]="${summary[-1]}, $csum segments dropped by TCP for a bad checksum" ;; esac
	pids="$(daemon_pid alpha) $(daemon_pid beta)"
	$BN down >/dev/null || fail "beta down"
	$A down >/dev/null || fail "alpha down"
	daemons_exit $pids
done
netem_clear

printf '%s\n' "${summary[@]}"
echo "$NAME PASSED ($n steps, $(elapsed) s)"
