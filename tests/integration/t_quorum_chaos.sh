#!/usr/bin/env bash
# A randomized, seeded schedule of partitions and kills under quorum with a
# witness and auto-failover (issue 17, part 5): alpha, beta and a witness,
# each in its own network namespace (trio.sh).  QUORUM_ROUNDS rounds
# (default 10; `make quorum-chaos`: 100), QUORUM_SEED to replay a seed (the
# seed is printed first).  Each round one fault, drawn from the seed: the
# primary cut off from both others, the secondary cut off, the witness cut
# off, or kill -9 of one node (primary, secondary or witness) and `up`
# again; it lasts 1-4 s more than a failover needs (a cut of the secondary
# or the witness 3-8 s: a blip or a loss), then heals
# (QUORUM_ACTIONS="cut-primary kill-witness ..." draws from fewer kinds).
# Meanwhile qwriter.py writes numbered blocks through whichever node is
# primary and logs what was acknowledged.  After each round (the writer
# paused, nothing of its own in flight):
#  - the data nodes connected, in sync, byte-identical, exactly one primary;
#  - every acknowledged block (each slot's newest, or a later one) is on
#    the primary's disk (qwriter.py check);
#  - no save file, unless a primary was killed (it saves its activity log
#    when it returns, as after any crash of a primary);
#  - no status sample of the round shows a split brain or two primaries that
#    could both acknowledge (quorum, writes not held);
#  - every acknowledgement came from a node that a status sample just
#    before or after it shows primary, and when the acknowledging node
#    changes, the two are at least 0.5 s apart (a failover takes longer:
#    two primaries acknowledging in one window would be closer).
# A failed round ends the schedule (QUORUM_KEEP_GOING=1: go on, the
# failures counted).  One line per round, then the figures: rounds, failovers, time from the
# fault to the promotion (min/median/max), writes acknowledged and lost.
# The sanitized integration stage skips it (see below).
. "$(dirname "$0")/lib.sh"
require_cmd ip nsenter qemu-io cmp
require_nbdsh
case $BLKREP in
*/build-san/* | */build-tsan/*)
	skip "a sanitized daemon: the chaos schedule's time bounds (promotion, 120 s for 10 rounds) are for the plain build; t_quorum.sh and t_quorum_auto.sh run the same paths sanitized"
	;;
esac
. "$(dirname "$0")/trio.sh"
export BLKREP_SAVE_DIR=$T/saved
mkdir -p "$BLKREP_SAVE_DIR"
ROUNDS=${QUORUM_ROUNDS:-10}
SEED=${QUORUM_SEED:-$(($(date +%s%N) / 1000 % 1000000000))}
msg "seed $SEED, $ROUNDS rounds (replay: QUORUM_SEED=$SEED QUORUM_ROUNDS=$ROUNDS)"
RANDOM=$SEED
AREA=4096   # the writer's slots (16 MiB)

TRIO_WITNESS=witness
TRIO_EXTRA="auto-failover = yes"
trio_init 64M alpha beta witness

# primaries: the data nodes whose status says primary (space-separated).
primaries() {
	trio_statuses $TRIO_DATA | $PY -c '
import json, sys
print(" ".join(l.split(" ", 1)[0] for l in sys.stdin
               if (json.loads(l.split(" ", 1)[1]) or {}).get("role") == "primary"))'
}
other() { [ "$1" = alpha ] && echo beta || echo alpha; }
cut_off() {
	local y
	for y in $TRIO_NET; do [ "$y" = "$1" ] || trio_link_down "$1" "$y"; done
}
heal_all() {
	local y
	for y in $TRIO_NET; do [ "$y" = "$1" ] || trio_link_up "$1" "$y"; done
}
# kill9 NODE: kill -9 its daemon and wait (5 s) until it is gone.
kill9() {
	local pid i
	pid=$(daemon_pid "$1")
	[ -n "$pid" ] && kill -9 "$pid"
	for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
# wait_primary NODE SECS: until NODE alone is primary; prints the seconds
# since $t0, or "none".
wait_primary() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt "$end" ]; do
		[ "$(trio_field "$1" "d['role']" 2>/dev/null)" = primary ] && { trio_since "$t0"; return 0; }
		sleep 0.1
	done
	echo none
	return 1
}
# writer_pause / writer_resume: the writer stops issuing (and says so).
writer_pause() {
	local i
	rm -f "$T/pause.ack"
	touch "$T/pause"
	for i in $(seq 1 100); do [ -e "$T/pause.ack" ] && return 0; sleep 0.1; done
	return 1
}
writer_resume() { rm -f "$T/pause" "$T/pause.ack"; }

# acks_check FROM TO: the acknowledgements logged between the times FROM
# and TO against the status samples: each from a node a sample next to it
# shows primary (or that did not answer it: a sample is stamped when it
# starts, and a node killed meanwhile answers nothing), and a change of the acknowledging node at least 0.5 s
# after the previous acknowledgement.  Prints "acks=N switches=N
# min_switch_gap=S bad=N" and the first offences.
acks_check() {
	$PY - "$T/w.log" "$T/samples" "$1" "$2" <<'EOF'
import bisect, json, sys
log, samples, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
acks = []
for l in open(log):
    f = l.split()
    if len(f) >= 5 and f[0] == "A" and t0 <= float(f[4]) <= t1:
        acks.append((float(f[4]), f[3], int(f[1])))
acks.sort()
st = []
for l in open(samples):
    f = l.rstrip("\n").split("\t")
    try:
        t = float(f[0])
    except ValueError:
        continue
    prim = set()
    for x in f[1:]:
        n, _, j = x.partition(" ")
        try:
            d = json.loads(j)
        except ValueError:
            d = None
        # No answer (a node killed while the sample was taken): unknown.
        if not isinstance(d, dict) or d.get("role") == "primary":
            prim.add(n)
    st.append((t, prim))
times = [t for t, _ in st]
bad, switches, gap = [], 0, None
for k, (t, n, i) in enumerate(acks):
    j = bisect.bisect_right(times, t)
    near = [st[x][1] for x in (j - 1, j) if 0 <= x < len(st)]
    if near and not any(n in p for p in near):
        bad.append("block %d acknowledged by %s at %.2f, not primary in the samples around it" % (i, n, t))
    if k and acks[k - 1][1] != n:
        switches += 1
        g = t - acks[k - 1][0]
        gap = g if gap is None else min(gap, g)
        if g < 0.5:
            bad.append("%s acknowledged block %d %.3f s after %s acknowledged block %d" %
                       (n, i, g, acks[k - 1][1], acks[k - 1][2]))
print("acks=%d switches=%d min_switch_gap=%s bad=%d" % (len(acks), switches,
      "-" if gap is None else "%.2f" % gap, len(bad)))
for b in bad[:5]:
    print("  " + b)
EOF
}

trio_step "start: two data nodes and a witness, auto-failover"
trio_start || {
	fail "the nodes do not start with a witness and auto-failover (above: the daemon's own words)"
	exit 1
}
trio_sample_start 0.25
"$PY" "$TESTS_DIR/qwriter.py" write --node "alpha=$T/alpha.nbd" --node "beta=$T/beta.nbd" \
	--log "$T/w.log" --area-blocks $AREA --pause-file "$T/pause" 2>"$T/w.err" &
WRITER=$!
BG_PIDS+=("$WRITER")

read -r -a actions <<<"${QUORUM_ACTIONS:-cut-primary cut-secondary cut-witness kill-primary kill-secondary kill-witness}"
failovers=0
ptimes=()
lost=0
bad_rounds=0
tstart=$SECONDS
for r in $(seq 1 "$ROUNDS"); do
	a=${actions[RANDOM % ${#actions[@]}]}
	# A cut of the secondary or the witness: from a blip nobody notices to
	# one past the 5 s after which a silent link counts as lost.
	case $a in cut-secondary | cut-witness) hold=$((3 + RANDOM % 6)) ;; *) hold=$((1 + RANDOM % 4)) ;; esac
	rt0=$(trio_now)
	rsec=$SECONDS
	ns0=$(ls "$BLKREP_SAVE_DIR" | wc -l)
	p=$(primaries)
	if [ "$p" != alpha ] && [ "$p" != beta ]; then
		fail "round $r: before the fault, the primaries are '$p' (want exactly one)"
		break
	fi
	s=$(other "$p")
	sleep 1 # the writer writes through $p
	case $a in
	*-primary) v=$p ;;
	*-secondary) v=$s ;;
	*) v=witness ;;
	esac
	t0=$(trio_now)
	case $a in cut-*) cut_off "$v" ;; kill-*) kill9 "$v" ;; esac
	promo=-
	if [ "$v" = "$p" ]; then
		promo=$(wait_primary "$s" 15)
	fi
	sleep "$hold"
	case $a in cut-*) heal_all "$v" ;; kill-*) trio_run "round $r: up $v again" $(trio_cmd "$v") up ;; esac
	why=
	writer_pause || why="$why the writer does not pause;"
	m=$(trio_wait_mesh 30 $TRIO_ALL) || why="$why not connected after the heal ($m);"
	sy=$(trio_wait_synced 60 alpha beta) || why="$why not in sync: $sy;"
	np=$(primaries)
	[ "$np" = alpha ] || [ "$np" = beta ] || why="$why primaries after the round: '$np';"
	if [ "$v" = "$p" ]; then
		if [ "$promo" = none ]; then
			why="$why $s did not promote itself within 15 s of the fault on $p;"
		else
			failovers=$((failovers + 1))
			ptimes+=("$promo")
		fi
		[ "$np" = "$s" ] || why="$why $s promoted, but '$np' is primary after the heal;"
	else
		[ "$np" = "$p" ] || why="$why primary changed from $p to '$np' though $v was hit;"
	fi
	if [ "$np" = alpha ] || [ "$np" = beta ]; then
		ck=$("$PY" "$TESTS_DIR/qwriter.py" check --log "$T/w.log" --image "$(trio_img "$np")" \
			--area-blocks $AREA --node "$np")
		case $ck in
		ok*) ;;
		*)
			why="$why $ck;"
			nl=$(sed -n 's/.*: \([0-9]*\) acknowledged.*/\1/p' <<<"$ck")
			lost=$((lost + ${nl:-1}))
			;;
		esac
	fi
	cmp_out=$("$TESTS_DIR/cmp_areas.sh" "$size" "$(trio_img alpha)" "$(trio_img beta)") ||
		why="$why data areas differ: $cmp_out;"
	sm=$(trio_samples "$rt0")
	case $sm in *" splitbrain=0 "*"writable2=0") ;; *) why="$why status samples: $sm;" ;; esac
	# A killed primary returns as a resumed primary and saves its activity
	# log's extents before the resync (it cannot tell how the other was
	# promoted); any other round needs no save file.
	ns=$(ls "$BLKREP_SAVE_DIR" | wc -l)
	[ "$a" = kill-primary ] || [ "$ns" = "$ns0" ] || why="$why $((ns - ns0)) save file(s) made;"
	ac=$(acks_check "$rt0" "$(trio_now)")
	case $ac in *" bad=0") ;; *) why="$why acknowledgements: $(tr '\n' ' ' <<<"$ac");" ;; esac
	line="round $r/$ROUNDS: $a ($v, $hold s), primary $p -> $np, promotion ${promo} s, $((SECONDS - rsec)) s, ${ac%% *}"
	if [ -z "$why" ]; then
		pass "$line"
	else
		fail "$line:$why"
		bad_rounds=$((bad_rounds + 1))
		[ "${QUORUM_KEEP_GOING:-0}" = 1 ] || break
	fi
	writer_resume
done
trio_sample_stop
kill -TERM "$WRITER" 2>/dev/null
wait "$WRITER" 2>/dev/null
acked=$(grep -c '^A ' "$T/w.log")
summary=$(printf '%s\n' "${ptimes[@]:-}" | $PY -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print("%.1f/%.1f/%.1f s" % (v[0], statistics.median(v), v[-1]) if v else "-")')
msg "writer: $(tail -n 1 "$T/w.err")"
msg "figures: seed $SEED, $r rounds in $((SECONDS - tstart)) s, $failovers failovers, promotion after the fault min/median/max $summary, $acked writes acknowledged, $lost lost, $bad_rounds bad rounds, $(ls "$BLKREP_SAVE_DIR" | wc -l) save files (killed primaries)"
check_eq "no acknowledged write lost" "$lost" 0
finish
