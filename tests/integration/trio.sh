# Three (or more) blkrep nodes, each in its own network namespace, for the
# N-node tests (issue 16).  Source it after lib.sh:
#
#   . "$(dirname "$0")/trio.sh"
#   TRIO_MODE_B=sync TRIO_MODE_C=async TRIO_MAXLAG_C=8M
#   trio_init 128M                 # alpha beta gamma (or: trio_init 64M alpha beta)
#   trio_start                     # create, up, mesh connected, alpha primary
#
# The network: node number i (alpha 1, beta 2, gamma 3, ...) has the
# address 10.99.0.i on the loopback of its namespace, and listens there on
# port 7790.  Every two nodes X and Y are joined by their own veth pair:
# the end in X's namespace is called to-Y, the end in Y's is to-X, and
# each namespace routes the other node's address over that link only (no
# forwarding).  So cutting X-Y cuts only that link (trio_cut X Y: both
# ends down), and shaping to-Y in every other namespace slows down
# everything sent to Y (trio_shape Y RATE: tbf).  Namespace names carry the
# test's pid; an EXIT trap stops every daemon and deletes the namespaces
# (their veths go with them), also when the test fails.
#
# Each node's CLI runs in its namespace through nsenter --net (not `ip
# netns exec`, which also makes a mount namespace, see pair_netns) and is
# bounded (20 s): $TRIO_A, $TRIO_B, $TRIO_C or "$(trio_cmd NODE)".  The
# control sockets (in $BLKREP_RUN_DIR) and the NBD exports (unix:$T/NODE.nbd,
# trio_uri NODE) are paths, reachable from the host namespace for fio,
# nbdtorture and qemu-io.  Backing files: $T/NODE.img (trio_img NODE).
#
# Status: trio_field NODE EXPR and trio_wait_field NODE EXPR WANT [SECS]
# are pair.sh's field and wait_field with, in EXPR, peer('NAME'): this
# node's entry for that peer in status --json's `peers` list, or, from a
# two-node daemon that has no `peers`, its `peer` object with the top-level
# mode, out_of_sync_bytes, lag_bytes and resync merged in ({} if unknown).
# trio_sync_state/trio_wait_synced/check_trio_synced: pair.sh's in-sync
# oracle over any set of nodes (pair.sh's sync_state is replaced by one over
# $TRIO_SYNC_NODES); trio_identical X Y: byte-equal data areas.
# Checks that change the network or the nodes: trio_cut X Y, trio_heal X Y,
# trio_shape Y RATE (trio_unshape Y), trio_kill9 X.  trio_step TEXT prints
# each step with the time the previous one took.  Every wait is bounded.
#
# A witness (issue 17): TRIO_WITNESS=NAME (e.g. `TRIO_WITNESS=witness
# trio_init 128M alpha beta witness`) makes that node `witness = yes` with
# its `state-file` $T/NAME.state, no backing file and no export; trio_start
# does not `create` it (it only comes `up`), and the oracles over "every
# node" (trio_sync_state, trio_identical) take the data nodes only:
# $TRIO_DATA.  trio_cut_off X cuts every link of X (trio_heal_all heals
# them); trio_up X starts X's daemon again after a kill.

. "$TESTS_DIR/pair.sh"

TRIO_PORT=7790

# trio_index NODE: NODE's number (1..) in $TRIO_NET, the nodes with a namespace.
trio_index() {
	local n i=0
	for n in $TRIO_NET; do
		i=$((i + 1))
		[ "$n" = "$1" ] && { echo $i; return 0; }
	done
	echo "trio: unknown node '$1'" >&2
	return 1
}

trio_ns() { echo "blkrep-t$$-$1"; }
trio_ip() { echo "10.99.0.$(trio_index "$1")"; }
trio_img() { echo "$T/$1.img"; }
trio_uri() { echo "nbd+unix:///r0?socket=$T/$1.nbd"; }
trio_cmd() { echo "nsenter --net=/run/netns/$(trio_ns "$1") timeout -k 2 20 $BLKREP -c $T/r0.conf --node $1"; }

# trio_var PREFIX NODE: the value of PREFIX_L, L being A for the first node
# of the config, B for the second, C for the third ... (TRIO_MODE_C is
# gamma's mode).
trio_var() {
	local l
	l=$(printf "\\x$(printf %x $((64 + $(trio_index "$2"))))")
	eval "echo \"\${${1}_$l:-}\""
}

# trio_is_witness NODE: NODE is one of $TRIO_WITNESS (space-separated).
trio_is_witness() {
	case " ${TRIO_WITNESS:-} " in *" $1 "*) return 0 ;; esac
	return 1
}

# trio_conf FILE NODE...: one config for the nodes named.  [resource] gets
# the lines of $TRIO_EXTRA; a node gets `mode = $TRIO_MODE_L`,
# `max-lag = $TRIO_MAXLAG_L` and `priority = $TRIO_PRIO_L` when those are
# set (see trio_var); a witness (trio_is_witness) gets `witness = yes` and
# its state file instead of a backing file and an export.
trio_conf() {
	local f=$1 n v
	shift
	{
		printf '[resource]\nname = r0\nsecret-file = %s\n' "$T/secret"
		if [ -n "${TRIO_EXTRA:-}" ]; then printf '%s\n' "$TRIO_EXTRA"; fi
		for n in "$@"; do
			if trio_is_witness "$n"; then
				printf '[node %s]\naddress = %s:%s\nwitness = yes\nstate-file = %s\n' \
					"$n" "$(trio_ip "$n")" "$TRIO_PORT" "$T/$n.state"
				continue
			fi
			printf '[node %s]\naddress = %s:%s\nbacking = %s\nnbd = unix:%s\n' \
				"$n" "$(trio_ip "$n")" "$TRIO_PORT" "$(trio_img "$n")" "$T/$n.nbd"
			v=$(trio_var TRIO_PRIO "$n")
			if [ -n "$v" ]; then printf 'priority = %s\n' "$v"; fi
			v=$(trio_var TRIO_MODE "$n")
			if [ -n "$v" ]; then printf 'mode = %s\n' "$v"; fi
			v=$(trio_var TRIO_MAXLAG "$n")
			if [ -n "$v" ]; then printf 'max-lag = %s\n' "$v"; fi
		done
	} >"$f"
}

# trio_link_up X Y: the X-Y link up at both ends, and each end's route to
# the other node (setting a link down drops the routes through it).
trio_link_up() {
	ip -n "$(trio_ns "$1")" link set "to-$2" up &&
		ip -n "$(trio_ns "$2")" link set "to-$1" up &&
		ip -n "$(trio_ns "$1")" route replace "$(trio_ip "$2")/32" dev "to-$2" src "$(trio_ip "$1")" &&
		ip -n "$(trio_ns "$2")" route replace "$(trio_ip "$1")/32" dev "to-$1" src "$(trio_ip "$2")"
}

# trio_net: the namespaces and the mesh of veth pairs for $TRIO_NET.
# Skips the test if this machine cannot make them.
trio_net() {
	local x y ns seen=
	# Namespaces left by a run that was killed (its pid is gone).
	for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(blkrep-t[0-9]*-[a-z0-9]*\).*/\1/p'); do
		x=${ns#blkrep-t}
		kill -0 "${x%%-*}" 2>/dev/null || ip netns del "$ns" 2>/dev/null
	done
	for x in $TRIO_NET; do
		ns=$(trio_ns "$x")
		ip netns add "$ns" 2>"$T/netns.err" || skip "ip netns add is not permitted: $(cat "$T/netns.err")"
		TRIO_NETNS="$TRIO_NETNS $ns"
		ip -n "$ns" link set lo up && ip -n "$ns" addr add "$(trio_ip "$x")/32" dev lo ||
			skip "cannot configure a network namespace"
	done
	for x in $TRIO_NET; do
		for y in $seen; do
			{ ip link add "to-$y" netns "$(trio_ns "$x")" type veth peer name "to-$x" netns "$(trio_ns "$y")" &&
				trio_link_up "$x" "$y"; } 2>"$T/veth.err" ||
				skip "cannot set up a veth pair between namespaces: $(cat "$T/veth.err")"
		done
		seen="$seen $x"
	done
}

# trio_net_del: delete the namespaces (for the EXIT trap, after trio_stop:
# a namespace lives on while a daemon runs in it).
trio_net_del() {
	local ns
	for ns in ${TRIO_NETNS:-}; do
		ip netns del "$ns" 2>/dev/null
	done
	TRIO_NETNS=
	return 0
}

# trio_init SIZE [NODE...]: backing files of SIZE, a secret, the network
# and $T/r0.conf for the nodes named (default alpha beta gamma); sets
# TRIO_ALL (those nodes), TRIO_DATA (those that are not a witness),
# TRIO_A/TRIO_B/TRIO_C (the first three nodes' commands) and the EXIT trap
# (the daemons' logs shown if a check failed, every daemon stopped, the
# namespaces deleted).  The namespaces and links
# are made for $TRIO_NET if set (the config's nodes and more, e.g. a third
# node without a daemon), else for TRIO_ALL.
trio_init() {
	local n
	export BLKREP_RUN_DIR=$T/run
	TRIO_SIZE=$1
	shift
	TRIO_ALL=${*:-alpha beta gamma}
	TRIO_NET=${TRIO_NET:-$TRIO_ALL}
	TRIO_DATA=
	for n in $TRIO_ALL; do
		trio_is_witness "$n" || TRIO_DATA="${TRIO_DATA:+$TRIO_DATA }$n"
	done
	TRIO_NETNS=
	TRIO_T0=$SECONDS
	TRIO_STEP_T0=$SECONDS
	for n in $TRIO_DATA; do truncate -s "$TRIO_SIZE" "$(trio_img "$n")"; done
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret"
	chmod 600 "$T/secret"
	trap '[ $FAILS -gt 0 ] && show_logs 20; trio_stop; trio_net_del; _cleanup' EXIT
	trio_net
	trio_conf "$T/r0.conf" $TRIO_ALL
	set -- $TRIO_ALL
	TRIO_A=$(trio_cmd "$1")
	TRIO_B=$(trio_cmd "$2")
	TRIO_C=${3:+$(trio_cmd "$3")}
}

# trio_stop: every node `down --keep-role` (bounded), then kill -9 any
# daemon whose pid file still names a live process of $BLKREP.
trio_stop() {
	local n pid
	for n in ${TRIO_ALL:-}; do
		pid=$(daemon_pid "$n")
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
		timeout -k 2 10 $(trio_cmd "$n") down --keep-role >/dev/null 2>&1
		pid=$(daemon_pid "$n")
		[ -n "$pid" ] || continue
		case $(readlink "/proc/$pid/exe" 2>/dev/null) in
		"$(readlink -f "$BLKREP")"*) kill -KILL "$pid" 2>/dev/null ;;
		esac
	done
}

# TRIO_PEER_PY: Python defining peer_of(d, NAME), status d's entry for its
# peer NAME (see the top); the programs below start with it.
TRIO_PEER_PY='def peer_of(d, n):
    d = d or {}
    for p in d.get("peers") or []:
        if p.get("name") == n:
            return p
    p = d.get("peer") or {}
    if "peers" in d or p.get("name") != n:
        return {}
    return dict({k: d.get(k) for k in ("mode", "out_of_sync_bytes", "lag_bytes", "resync")}, **p)
'

# trio_expr EXPR: EXPR for pair.sh's field, with peer(NAME) = peer_of(d, NAME).
trio_expr() {
	printf "(exec('''%s'''), (lambda peer: (%s))(lambda n: peer_of(d, n)))[1]" "$TRIO_PEER_PY" "$1"
}

trio_field() { field "$(trio_cmd "$1")" "$(trio_expr "$2")"; }
trio_wait_field() { wait_field "$(trio_cmd "$1")" "$(trio_expr "$2")" "$3" "${4:-10}"; }

# trio_step TEXT: a line naming the step about to run, with the time the
# previous step took and the time since trio_init.
trio_step() {
	msg "--- [$((SECONDS - TRIO_T0)) s, last step $((SECONDS - TRIO_STEP_T0)) s] $*"
	TRIO_STEP_T0=$SECONDS
}

# trio_statuses NODE...: one line per node, "NODE JSON" (JSON "null" if its
# status fails).
trio_statuses() {
	local n j
	for n in "$@"; do
		j=$(timeout -k 1 "${FIELD_TIMEOUT:-15}" $(trio_cmd "$n") status --json 2>/dev/null | tr -d '\n')
		echo "$n ${j:-null}"
	done
}

# trio_mesh NODE...: "connected" once each node named sees every other one
# connected, else each node's view of the others (alpha:beta=connecting,...).
trio_mesh() {
	trio_statuses "$@" | $PY -c "$TRIO_PEER_PY"'
import json, sys
st = dict(l.rstrip("\n").split(" ", 1) for l in sys.stdin)
st = {n: json.loads(j) for n, j in st.items()}
bad = ["%s:%s=%s" % (n, m, peer_of(d, m).get("connection")) for n, d in st.items() for m in st
       if m != n and peer_of(d, m).get("connection") != "connected"]
print(" ".join(bad) if bad else "connected")'
}

# trio_wait_mesh SECS NODE...: polls trio_mesh until connected (prints the
# last state; fails after SECS).
trio_wait_mesh() {
	local end=$((SECONDS + $1)) s
	shift
	while :; do
		s=$(trio_mesh "$@")
		[ "$s" = connected ] && break
		[ $SECONDS -ge "$end" ] && break
		sleep 0.2
	done
	echo "$s"
	[ "$s" = connected ]
}

# trio_start [NODE...]: create the nodes named (default all) --zeroed (a
# witness is not created), up each in its namespace, wait (20 s) until they
# are connected to each other, make the first data node primary (--force:
# the nodes are all uptodate anyway), wait (30 s) until the data nodes are
# in sync.  Sets size (that node's data area's bytes).  Returns 1 at the
# first failed check.
trio_start() {
	local n nodes=${*:-$TRIO_ALL} m data=
	for n in $nodes; do
		trio_is_witness "$n" && continue
		data="${data:+$data }$n"
		check "create $n --zeroed" $(trio_cmd "$n") create --zeroed || return 1
	done
	for n in $nodes; do
		check "up $n in its namespace" $(trio_cmd "$n") up || return 1
	done
	m=$(trio_wait_mesh 20 $nodes)
	check_eq "every node sees every other one connected (${m})" "$m" connected || return 1
	check "${data%% *} primary --force" $(trio_cmd "${data%% *}") primary --force || return 1
	size=$(trio_field "${data%% *}" "d['size_bytes']")
	check_trio_synced "all in sync after the start" 30 $data
}

# trio_sync_state NODE...: "synced ..." once every node named sees every
# other one connected, with no resync running, nothing out of sync and no
# lag, every disk uptodate, and their data areas byte-equal (else
# "DIVERGED: ...", also appended to $T/oracle.diverged as pair.sh does);
# else "syncing ..." (or "unavailable") with each node's view.
trio_sync_state() {
	local s n d first= diff
	s=$(trio_statuses "$@" | $PY -c "$TRIO_PEER_PY"'
import json, sys
st = [l.rstrip("\n").split(" ", 1) for l in sys.stdin]
names = [n for n, _ in st]
try:
    st = {n: json.loads(j) for n, j in st}
except ValueError:
    print("0 unavailable"); sys.exit(0)
if any(d is None for d in st.values()):
    print("0 unavailable: " + " ".join(n for n in names if st[n] is None)); sys.exit(0)
synced, words = True, []
for n in names:
    d = st[n]
    synced &= d["disk"] == "uptodate"
    w = ["%s:%s,%s" % (n, d["role"], d["disk"])]
    for m in names:
        if m == n:
            continue
        p = peer_of(d, m)
        synced &= (p.get("connection") == "connected" and p.get("resync") is None
                   and not p.get("out_of_sync_bytes") and not p.get("lag_bytes"))
        r = p.get("resync")
        w.append("%s=%s,oos=%s%s%s" % (m, p.get("connection"), p.get("out_of_sync_bytes"),
                 ",lag=%s" % p["lag_bytes"] if p.get("lag_bytes") else "",
                 ",resync=%s/%s" % (r.get("done_bytes"), r.get("total_bytes")) if r else ""))
    words.append(" ".join(w))
print("%d %s %s" % (min(d["size_bytes"] for d in st.values()), "synced" if synced else "syncing",
                    "; ".join(words)))')
	n=${s%% *}
	s=${s#* }
	case $s in
	synced*)
		for d in "$@"; do
			[ -n "$first" ] || { first=$d; continue; }
			if ! diff=$("$TESTS_DIR/cmp_areas.sh" "$n" "$(trio_img "$first")" "$(trio_img "$d")"); then
				s="DIVERGED: $first vs $d: $diff while they report in sync: $s"
				printf '%s\n' "$s" >>"$T/oracle.diverged"
				break
			fi
		done
		;;
	esac
	echo "$s"
}

# sync_state: pair.sh's, replaced: trio_sync_state over $TRIO_SYNC_NODES
# (default all data nodes), so that pair.sh's wait_synced and check_synced serve here.
sync_state() { trio_sync_state ${TRIO_SYNC_NODES:-${TRIO_DATA:-$TRIO_ALL}}; }

# trio_wait_synced [SECS [NODE...]]: pair.sh's wait_synced over the nodes
# named (default all): polls until "synced" for up to SECS (default 60)
# seconds, giving up early once the state has not changed for 15 s, and at
# once on DIVERGED.  Prints the last state; succeeds once synced.
trio_wait_synced() {
	local TRIO_SYNC_NODES="${*:2}"
	wait_synced "${1:-60}"
}

# check_trio_synced DESC [SECS [NODE...]]: the same as a check.
check_trio_synced() {
	local TRIO_SYNC_NODES="${*:3}"
	check_synced "$1" "${2:-60}"
}

# trio_identical X Y [DESC]: X's and Y's data areas (the first $size bytes
# of their backing files) are byte-identical (pair.sh's check_identical).
trio_identical() {
	check_identical "${3:-$1 and $2 hold byte-identical data areas}" "$size" "$(trio_img "$1")" "$(trio_img "$2")"
}

# trio_run DESC CMD...: CMD (a shell function too) as a check, its errors shown.
trio_run() {
	local d=$1
	shift
	if "$@" >"$T/last.out" 2>"$T/last.err"; then
		pass "$d"
	else
		fail "$d (exit $?: $*)"
		show_last
		return 1
	fi
}

# trio_cut X Y / trio_heal X Y (checks): the X-Y link down at both ends
# (nothing passes, both sides' sockets see a dead link), or up again with
# its routes.
trio_link_down() {
	ip -n "$(trio_ns "$1")" link set "to-$2" down && ip -n "$(trio_ns "$2")" link set "to-$1" down
}
trio_cut() { trio_run "cut the $1-$2 link" trio_link_down "$@"; }
trio_heal() { trio_run "heal the $1-$2 link" trio_link_up "$@"; }

# trio_shape Y RATE (a check): everything sent to Y goes through a token
# bucket of RATE (tc units: 4mbit) on every link towards Y; trio_unshape Y
# removes it.
trio_shape() {
	local x
	for x in $TRIO_NET; do
		[ "$x" = "$1" ] ||
			trio_run "shape $x's link to $1: tbf $2" tc -n "$(trio_ns "$x")" qdisc replace \
				dev "to-$1" root tbf rate "$2" burst 32kb latency 200ms || return 1
	done
}
trio_unshape() {
	local x
	for x in $TRIO_NET; do
		[ "$x" = "$1" ] || tc -n "$(trio_ns "$x")" qdisc del dev "to-$1" root 2>/dev/null
	done
	return 0
}

# trio_reach X Y: "yes" if a TCP connection from X's namespace reaches Y's
# address (an answer: refused or accepted, on a port nothing listens on),
# "no" if the network says no or nothing answers within 1 s.
trio_reach() {
	nsenter --net="/run/netns/$(trio_ns "$1")" $PY -c '
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], 9))
    print("yes")
except ConnectionRefusedError:
    print("yes")
except OSError:
    print("no")' "$(trio_ip "$2")"
}

# trio_kill9 X: kill -9 X's daemon (a check), then wait until it is gone.
trio_kill9() {
	local pid
	pid=$(daemon_pid "$1")
	check_kill9 "kill -9 $1's daemon (pid '$pid')" "$pid"
}

# trio_cut_off X / trio_heal_all X (checks): every link of X down (X alone
# on its side of the partition), or up again.
trio_cut_off() {
	local y
	for y in $TRIO_NET; do
		[ "$y" = "$1" ] || trio_cut "$1" "$y" || return 1
	done
}
trio_heal_all() {
	local y
	for y in $TRIO_NET; do
		[ "$y" = "$1" ] || trio_heal "$1" "$y" || return 1
	done
}

# trio_up X (a check): `up` X's daemon again in its namespace (after a
# kill -9: `up` may say it had crashed).
trio_up() { check "up $1 again in its namespace" $(trio_cmd "$1") up; }

# trio_sample_start [SECS]: a background sampler of every node's status
# --json (all at once, each bounded to 2 s), one line per round every SECS (default 0.3)
# into $T/samples: "TIME<TAB>NODE JSON<TAB>NODE JSON..." (JSON "null" when a
# node does not answer).  Stopped with the test (or trio_sample_stop).
trio_sample_start() {
	(
		while :; do
			line=$(date +%s.%N)
			for n in $TRIO_ALL; do
				timeout -k 1 2 $(trio_cmd "$n") status --json 2>/dev/null | tr -d '\n\t' >"$T/sample.$n" &
			done
			wait
			for n in $TRIO_ALL; do
				j=$(cat "$T/sample.$n")
				line="$line	$n ${j:-null}"
			done
			printf '%s\n' "$line"
			sleep "${1:-0.3}"
		done >>"$T/samples" 2>/dev/null
	) &
	TRIO_SAMPLER=$!
	BG_PIDS+=("$TRIO_SAMPLER")
	disown "$TRIO_SAMPLER" # no "Killed" line when it is stopped
}
trio_sample_stop() {
	[ -n "${TRIO_SAMPLER:-}" ] && kill -KILL "$TRIO_SAMPLER" 2>/dev/null
	TRIO_SAMPLER=
	return 0
}

# trio_samples [FROM [TO]]: what the samples between the times FROM and TO
# (default all) show, one line "samples=N splitbrain=K primaries2=K writable2=K":
# samples in which some node's peer is in "splitbrain" (or a split_brain
# flag is true), samples with two data nodes primary at once, and samples
# with two primaries that both have quorum and hold no writes (both could
# acknowledge: quorum not false, io_suspended not true).  The first such
# samples are appended to $T/samples.bad.
trio_samples() {
	$PY - "$T/samples" "${1:-0}" "$T/samples.bad" "${2:-1e12}" <<'EOF2'
import json, sys
path, since, bad, until = sys.argv[1], float(sys.argv[2]), open(sys.argv[3], "a"), float(sys.argv[4])
n = sb = p2 = w2 = 0
def splitbrain(d):
    if any(p.get("connection") == "splitbrain" or p.get("split_brain") for p in d.get("peers") or []):
        return True
    return (d.get("peer") or {}).get("connection") == "splitbrain"
try:
    lines = open(path).read().splitlines()
except OSError:
    lines = []
for line in lines:
    f = line.split("\t")
    try:
        t = float(f[0])
    except ValueError:
        continue
    if t < since or t > until:
        continue
    st = {}
    for x in f[1:]:
        name, _, j = x.partition(" ")
        try:
            st[name] = json.loads(j)
        except ValueError:
            st[name] = None
    st = {k: v for k, v in st.items() if isinstance(v, dict)}
    n += 1
    prim = [k for k, d in st.items() if d.get("role") == "primary"]
    writ = [k for k in prim if st[k].get("quorum") is not False and st[k].get("io_suspended") is not True]
    s = any(splitbrain(d) for d in st.values())
    sb += s
    p2 += len(prim) > 1
    w2 += len(writ) > 1
    if s or len(writ) > 1:
        bad.write("%.1f %s\n" % (t, " ".join("%s:%s,q=%s,susp=%s" % (k, d.get("role"), d.get("quorum"),
                                                    d.get("io_suspended")) for k, d in st.items())))
print("samples=%d splitbrain=%d primaries2=%d writable2=%d" % (n, sb, p2, w2))
EOF2
}

# trio_now: the time in seconds (date +%s.%N); trio_since T0: seconds
# since T0, to 0.01 s; trio_lt A B: true if the number A < B.
trio_now() { date +%s.%N; }
trio_since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.2f\n", a - b }'; }
trio_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
