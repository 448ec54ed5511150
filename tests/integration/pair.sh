# A blkrep pair on loopback, for the node tests.  Source it after lib.sh:
#
#   . "$(dirname "$0")/pair.sh"
#   pair_init 64M 64M      # backing sizes of alpha and beta
#
# It gives $A and $Bn (blkrep for node alpha and beta of $T/r0.conf), $URI
# (alpha's NBD export), pair_conf to write variants of the config, field
# and wait_field to read status --json, and a trap that stops both daemons.
# For the resync tests: pair_conf_extra (more [resource] lines),
# PAIR_HOST_A/PAIR_HOST_B (addresses other than 127.0.0.1), daemon_pid,
# sync_state/wait_synced/check_synced (with the in-sync oracle: "synced"
# only with byte-equal data areas), check_identical (the same comparison
# on its own), pair_start (create, up, connect, alpha primary) and
# pair_stop (a bounded stop for custom traps).  fake_alpha_beta_up readies
# beta for a fake alpha (fakepeer.py), fake_beta_scenario runs a scenario
# against a fake beta (both set allow-unencrypted: fakepeer.py speaks the
# link in plain TCP).  For the tests that crash the primary: pair_bounded,
# need_synced, check_kill9, check_al_left, check_up_crashed and
# check_settles.
# pair_netns puts the two nodes in network namespaces joined by a veth
# pair, so that a test can really cut the link.

# pair_conf FILE RESOURCE SECRET-FILE NAME-OF-SECOND-NODE
# Lines in $PAIR_EXTRA (if set) go into [resource]; the nodes listen on
# $PAIR_HOST_A and $PAIR_HOST_B (default 127.0.0.1).  $PAIR_META_A and
# $PAIR_META_B (if set) are external metadata files (`meta = PATH`) for
# alpha and beta; the whole backing store is then data.
pair_conf() {
	{
		printf '[resource]\nname = %s\nsecret-file = %s\n' "$2" "$3"
		if [ -n "${PAIR_EXTRA:-}" ]; then printf '%s\n' "$PAIR_EXTRA"; fi
		cat <<CONF
[node alpha]
address = ${PAIR_HOST_A:-127.0.0.1}:$PAIR_PORT_A
backing = $T/a.img
nbd = unix:$T/alpha.nbd
CONF
		if [ -n "${PAIR_META_A:-}" ]; then printf 'meta = %s\n' "$PAIR_META_A"; fi
		cat <<CONF
[node $4]
address = ${PAIR_HOST_B:-127.0.0.1}:$PAIR_PORT_B
backing = $T/b.img
nbd = unix:$T/beta.nbd
CONF
		if [ -n "${PAIR_META_B:-}" ]; then printf 'meta = %s\n' "$PAIR_META_B"; fi
	} >"$1"
}

# pair_conf_extra LINE...: add LINEs (like "al-extents = 16") to the
# [resource] section of $T/r0.conf, keeping those added before.
pair_conf_extra() {
	local l
	for l in "$@"; do
		PAIR_EXTRA=${PAIR_EXTRA:+$PAIR_EXTRA$'\n'}$l
	done
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
}

# pair_init SIZE-A SIZE-B
pair_init() {
	export BLKREP_RUN_DIR=$T/run
	B=$BLKREP
	PAIR_PORT_A=$(free_port)
	PAIR_PORT_B=$(free_port)
	truncate -s "$1" "$T/a.img"
	truncate -s "$2" "$T/b.img"
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret"
	chmod 600 "$T/secret"
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
	A="$B -c $T/r0.conf --node alpha"
	Bn="$B -c $T/r0.conf --node beta"
	URI="nbd+unix:///r0?socket=$T/alpha.nbd"
	trap '$A down >/dev/null 2>&1; $Bn down >/dev/null 2>&1; _cleanup' EXIT
}

# field NODE-CMD EXPR: a field of status --json (d is the parsed object)
# (bounded by $FIELD_TIMEOUT seconds, default 15: a status to a node whose
# daemon is gone waits 10 s for it to start)
field() {
	timeout -k 1 "${FIELD_TIMEOUT:-15}" $1 status --json |
		$PY -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

# wait_field NODE-CMD EXPR WANT [SECS]: polls status for up to SECS
# (default 10) seconds of the clock; prints the last value seen and
# succeeds once it equals WANT.
wait_field() {
	local end=$((SECONDS + ${4:-10})) v
	while :; do
		v=$(field "$1" "$2" 2>/dev/null)
		[ "$v" = "$3" ] && { echo "$v"; return 0; }
		[ $SECONDS -ge "$end" ] && break
		sleep 0.1
	done
	echo "$v"
	return 1
}

# pair_start [LABEL [CREATE-FLAG]]: create both nodes' metadata with
# --zeroed (and CREATE-FLAG, e.g. --force), up both, wait until they are
# connected, make alpha primary.  Sets size (the data area's bytes) and
# SAME, a comparison of the two data areas (cmp_areas.sh: the differing
# extents on failure; through $T/X.real where faultfs is under node X's
# backing file).
pair_start() {
	local l=${1:+$1 } fa=$T/a.img fb=$T/b.img
	[ -e "$T/a.real" ] && fa=$T/a.real
	[ -e "$T/b.real" ] && fb=$T/b.real
	check "${l}create both --zeroed${2:+ $2}" \
		sh -c "$A create --zeroed ${2:-} && $Bn create --zeroed ${2:-}"
	check "${l}up both" sh -c "$A up && $Bn up"
	check_eq "${l}connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
	check "${l}alpha primary" $A primary
	size=$(field "$A" "d['size_bytes']")
	SAME="$TESTS_DIR/cmp_areas.sh $size $fa $fb"
}

# show_logs [LINES]: the daemons' last log lines (after a failure), and
# the state of their processes.
show_logs() {
	local f
	for f in "$T"/run/*.log; do
		[ -f "$f" ] || continue
		echo "    --- $(basename "$f")"
		tail -n "${1:-15}" "$f" | sed 's/^/    | /'
	done
	for f in alpha beta; do
		[ -n "$(daemon_pid $f)" ] &&
			ps -o pid=,stat=,pcpu=,wchan:32=,args= -p "$(daemon_pid $f)" 2>/dev/null | sed "s/^/    $f daemon: /"
	done
}

# daemon_pid NODE: the pid in NODE's pid file (empty if there is none).
daemon_pid() {
	cat "$BLKREP_RUN_DIR/r0-$1.pid" 2>/dev/null
}

# pair_stop: stop both daemons, each `down --keep-role` (a restart: a
# primary comes back as one) bounded to 20 s, then kill -9
# a daemon whose pid file still names a live process of $BLKREP.  For custom
# EXIT traps (trap 'pair_stop; ...; _cleanup' EXIT).
pair_stop() {
	local n pid
	timeout -k 2 20 $A down --keep-role >/dev/null 2>&1
	timeout -k 2 20 $Bn down --keep-role >/dev/null 2>&1
	for n in alpha beta; do
		pid=$(daemon_pid $n)
		[ -n "$pid" ] || continue
		case $(readlink "/proc/$pid/exe" 2>/dev/null) in
		"$(readlink -f "$BLKREP")"*) kill -KILL "$pid" 2>/dev/null ;;
		esac
	done
}

# fake_alpha_beta_up: for a fake alpha against beta's listener while
# alpha's daemon is down: up beta, and check that it listens (the fake must
# talk to this beta, not to another test's on a reused port).  Sets BLOG,
# beta's log, and FAKE, fakepeer.py's command line against beta (run as
# "${FAKE[@]}" MODE [N]).
fake_alpha_beta_up() {
	local i
	# fakepeer.py speaks the link in plain TCP.
	grep -q '^allow-unencrypted' "$T/r0.conf" || pair_conf_extra "allow-unencrypted = yes"
	BLOG=$BLKREP_RUN_DIR/r0-beta.log
	FAKE=("$PY" "$TESTS_DIR/fakepeer.py" 127.0.0.1 "$PAIR_PORT_B" "$T/secret" "$BLOG")
	check "up beta" $Bn up
	for i in $(seq 1 50); do grep -q "listening on 127.0.0.1:$PAIR_PORT_B" "$BLOG" && break; sleep 0.1; done
	check "beta listens on its port" grep -q "listening on 127.0.0.1:$PAIR_PORT_B" "$BLOG"
}

# fake_beta_scenario DESC: py_checks of $T/scenario.py (bounded to 120 s),
# a scenario of the real alpha against fakepeer.py's fake beta, which
# listens on beta's port; fakepeer.py's fake_beta_env() reads what it is
# given here.
fake_beta_scenario() {
	grep -q '^allow-unencrypted' "$T/r0.conf" || pair_conf_extra "allow-unencrypted = yes"
	A=$A URI=$URI PORT=$PAIR_PORT_B SECRET=$T/secret AIMG=$T/a.img BIMG=$T/b.img \
		CMD_TIMEOUT=120 py_checks "$1" "$T/scenario.py"
}

# --- the in-sync oracle (DESIGN.md rule 11) ---------------------------------
# Whenever sync_state sees the pair claim to be in sync, it compares the two
# data areas byte for byte (cmp_areas.sh); a difference turns the claim
# into "DIVERGED: ..." naming the differing 4 MiB extents, which wait_synced
# returns as a failure at once, and which is also appended to
# $T/oracle.diverged: lib.sh's exit check fails the test for it even where
# the caller looked only at the first word.  Call wait_synced with no
# client I/O running (the comparison is not atomic with the status).

# pair_data_file X (a or b): the file whose first size_bytes are node X's
# data area as its daemon sees it: $PAIR_DATA_X if set; under faultfs the
# real file $T/X.real (faultfs writes through to it), except while a
# faultfs in crash mode holds writes in memory, whose view $T/X.fs/disk is
# then the node's disk; else $T/X.img.
pair_data_file() {
	local x=$1 v pid crash
	eval "v=\${PAIR_DATA_$x:-} pid=\${FFS_PID_$x:-} crash=\${FFS_CRASH_$x:-}"
	if [ -n "$v" ]; then
		echo "$v"
	elif [ ! -e "$T/$x.real" ]; then
		echo "$T/$x.img"
	elif [ -n "$crash" ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -e "$T/$x.fs/disk" ]; then
		echo "$T/$x.fs/disk"
	else
		echo "$T/$x.real"
	fi
}

# pair_oracle SIZE: silent if the first SIZE bytes of both nodes' data are
# equal; else prints which 4 MiB extents differ and fails.
pair_oracle() {
	"$TESTS_DIR/cmp_areas.sh" "$1" "$(pair_data_file a)" "$(pair_data_file b)"
}

# sync_state: one line from both nodes' status --json, beginning with
# "synced" once the pair is connected, neither side runs a resync, nothing
# is out of sync on either side, no async lag is queued, both disks are
# uptodate and the two data areas (the smaller size_bytes) are byte-equal;
# "DIVERGED: <extents>; ..." when all that holds but the bytes differ (the
# oracle above); else "syncing" (or "unavailable" if a status fails).  The
# rest shows roles, disks, out-of-sync bytes and resync progress, for
# messages.
sync_state() {
	local a b s n
	a=$($A status --json 2>/dev/null)
	b=$($Bn status --json 2>/dev/null)
	s=$($PY -c '
import json, sys
try:
    a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
except ValueError:
    print("0 unavailable"); sys.exit(0)
def rs(d):
    r = d.get("resync")
    return "none" if r is None else "%s/%s@%s" % (r.get("done_bytes"), r.get("total_bytes"), r.get("bytes_per_second"))
def lag(d):
    return ",lag=%d" % d["lag_bytes"] if d.get("lag_bytes") else ""
synced = (a["peer"]["connection"] == "connected" and b["peer"]["connection"] == "connected"
          and a.get("resync") is None and b.get("resync") is None
          and a["out_of_sync_bytes"] == 0 and b["out_of_sync_bytes"] == 0
          and not a.get("lag_bytes") and not b.get("lag_bytes")
          and a["disk"] == "uptodate" and b["disk"] == "uptodate")
print("%d %s alpha:%s,%s,%s,oos=%d,resync=%s%s beta:%s,%s,%s,oos=%d,resync=%s%s" % (
    min(a["size_bytes"], b["size_bytes"]), "synced" if synced else "syncing",
    a["role"], a["disk"], a["peer"]["connection"], a["out_of_sync_bytes"], rs(a), lag(a),
    b["role"], b["disk"], b["peer"]["connection"], b["out_of_sync_bytes"], rs(b), lag(b)))
' "$a" "$b")
	n=${s%% *}
	s=${s#* }
	case $s in
	synced*)
		if ! a=$(pair_oracle "$n"); then
			b=$(pair_data_file a)
			b="${b#"$T"/} vs $(pair_data_file b)"
			s="DIVERGED: $a while the pair reports in sync (${b//"$T"\//}, $n bytes): $s"
			printf '%s\n' "$s" >>"$T/oracle.diverged"
		fi
		;;
	esac
	echo "$s"
}

# wait_synced [SECS]: polls sync_state until "synced", for up to SECS
# (default 60) seconds, giving up early once the state has not changed for
# 15 s (a resync that never starts, or stalls), and at once on DIVERGED.
# Prints the last state and succeeds once synced (the data areas equal).
# Do not use while a resync cannot have started yet and nothing is out of
# sync: the "synced" it waits for would be at once.
wait_synced() {
	local limit=${1:-60} start now since s last=
	start=$(date +%s)
	since=$start
	while :; do
		s=$(sync_state)
		case $s in
		synced*) echo "$s"; return 0 ;;
		DIVERGED*) echo "$s"; return 1 ;;
		esac
		now=$(date +%s)
		if [ "$s" != "$last" ]; then
			last=$s
			since=$now
		fi
		if [ $((now - start)) -ge "$limit" ] || [ $((now - since)) -ge 15 ]; then
			echo "$s"
			return 1
		fi
		sleep 0.2
	done
}

# check_identical DESC [SIZE [FILE-A FILE-B]]: pass if the two data areas
# (the first SIZE bytes, default $size, of $T/a.img and $T/b.img unless
# told) are byte-identical; else fail naming the 4 MiB extents that differ
# (cmp_areas.sh, the oracle's one implementation).
check_identical() {
	local d
	if d=$(bash "$(dirname "${BASH_SOURCE[0]}")/cmp_areas.sh" "${2:-$size}" "${3:-$T/a.img}" \
		"${4:-$T/b.img}"); then
		pass "$1"
	else
		fail "$1: $d"
	fi
}

# check_synced DESC [SECS]: wait_synced as a check: passes once the pair is
# in sync with equal data areas, fails with the last state (or the
# differing extents) otherwise.
check_synced() {
	local st
	if st=$(wait_synced "${2:-60}"); then
		pass "$1 (in sync, data areas equal)"
	else
		fail "$1: $st"
	fi
}

# --- for the tests that crash the primary and check what the pair makes of it

# pair_bounded [SECS]: from now on every blkrep command through $A and $Bn
# is bounded to SECS (default 15) seconds: a daemon that stops answering
# fails a check instead of hanging the test.
pair_bounded() {
	A="timeout -k 2 ${1:-15} $A"
	Bn="timeout -k 2 ${1:-15} $Bn"
}

# need_synced [LABEL [WHEN]]: the pair must be in sync (wait_synced, up to
# 30 s) before the test goes on: passes "LABEL the pair is in sync WHEN",
# or fails and returns 1.
need_synced() {
	local l=${1:+$1 } w=${2:+ $2} st
	if st=$(wait_synced 30); then
		pass "${l}the pair is in sync$w"
	else
		fail "${l}the pair is not in sync$w: $st"
		return 1
	fi
}

# check_kill9 DESC PID: kill -9 PID (a daemon) as the check DESC, then wait
# (up to 5 s) until it is gone.
check_kill9() {
	local i
	check "$1" kill -9 "$2"
	for i in $(seq 1 50); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
}

# check_al_left EXTENT DESC [LABEL]: dump-md on alpha (its activity log
# shown), and check DESC: the extent numbered EXTENT is not in that log.
check_al_left() {
	local l=${3:+$3 } al
	check "${l}dump-md on alpha" $A dump-md
	al=$(grep '^activity log:' "$T/last.out")
	msg "${l}alpha's $al"
	check_eq "${l}$2" \
		"$(sed 's/^activity log: [0-9]* extent(s)//' <<<"$al" | tr ' ' '\n' | grep -cx "$1")" 0
}

# check_up_crashed [LABEL [DESC]]: `up` alpha (the check DESC, default "up
# alpha") after its daemon was killed: up must say it had crashed.
check_up_crashed() {
	local l=${1:+$1 }
	check "${2:-${l}up alpha}" $A up
	grep -q "without a clean shutdown" "$T/last.err" "$T/last.out" && pass "${l}up says alpha had crashed" ||
		fail "${l}no crash noted: $(cat "$T/last.err")"
}

# check_settles [LABEL [SIZE FILE-A FILE-B]]: after a crash the pair must
# settle in sync within 60 s, and in sync, hold byte-identical data areas
# (check_identical, given SIZE FILE-A FILE-B if told).
check_settles() {
	local l=${1:+$1 } st
	[ $# -gt 0 ] && shift
	if st=$(wait_synced 60); then
		pass "${l}the pair settles in sync ($st)"
		check_identical "${l}in sync, so the data areas are byte-identical" "$@"
	else
		fail "${l}the pair does not settle in sync within 60 s: $st"
	fi
}

# pair_netns: alpha and beta in two network namespaces joined by a veth
# pair, so a test can cut the link for real (ip link set down) or shape it
# (tc).  Sets NSA/NSB (namespaces), VA/VB (alpha's and beta's veth end),
# INA/INB (command prefixes that run in their network namespace only) and
# PAIR_HOST_A/PAIR_HOST_B, and rewrites $T/r0.conf.  Skips the test if this machine cannot make
# namespaces.  The control and NBD sockets are paths, reachable from the
# host namespace.  pair_netns_del removes it all (for the EXIT trap).
pair_netns() {
	local net=10.77.$(($$ % 200))
	NSA=blkrep-a-$$
	NSB=blkrep-b-$$
	VA=brA$$
	VB=brB$$
	ip netns add "$NSA" 2>"$T/netns.err" || skip "ip netns add is not permitted: $(cat "$T/netns.err")"
	ip netns add "$NSB" 2>"$T/netns.err" || skip "ip netns add is not permitted: $(cat "$T/netns.err")"
	if ! { ip link add "$VA" type veth peer name "$VB" &&
		ip link set "$VA" netns "$NSA" && ip link set "$VB" netns "$NSB" &&
		ip -n "$NSA" addr add "$net.1/24" dev "$VA" && ip -n "$NSB" addr add "$net.2/24" dev "$VB" &&
		ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up &&
		ip -n "$NSA" link set "$VA" up && ip -n "$NSB" link set "$VB" up; } 2>"$T/veth.err"; then
		skip "cannot set up a veth pair between namespaces: $(cat "$T/veth.err")"
	fi
	# nsenter, not `ip netns exec`: that one also makes a mount namespace,
	# a copy of every mount of the moment, which would keep another test's
	# file system (and its loop device) busy for as long as the daemon runs.
	INA="nsenter --net=/run/netns/$NSA"
	INB="nsenter --net=/run/netns/$NSB"
	PAIR_HOST_A=$net.1
	PAIR_HOST_B=$net.2
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
}

pair_netns_del() {
	[ -n "${NSA:-}" ] || return 0
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	return 0
}
