# Shared helpers for blkrep's integration tests.  Source it first thing:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives each test a private temporary directory ($T), counts results
# (pass/fail), lets a test skip with a reason, starts servers on a free TCP
# port or a unix socket and waits until they answer, and in an EXIT trap
# stops every server it started, checks their logs for sanitizer reports,
# detaches loop devices and removes $T.  The test's exit status is computed
# there: 0 = passed, 1 = failed, 77 = skipped.
#
# Environment:
#   BLKREP        binary under test (default: ./blkrep at the repo root)
#   SERVER        blkrep (default) or nbdkit, a stand-in reference server
#   CMD_TIMEOUT   default seconds for one client command (default 60)
#   KEEP_TMP=1    keep $T for post-mortem

set -u

TEST_NAME=$(basename "$0" .sh)
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$TESTS_DIR/../.." && pwd)
BLKREP=${BLKREP:-$REPO/blkrep}
case $BLKREP in /*) ;; *) BLKREP=$REPO/$BLKREP ;; esac
SERVER=${SERVER:-blkrep}
CMD_TIMEOUT=${CMD_TIMEOUT:-60}

# The system python has the nbd module (python3-libnbd); a pyenv python3
# earlier in PATH does not.
PY=/usr/bin/python3
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH

# Sanitizer reports go to the server's stderr (our log); keep the process
# alive on UBSan reports so the log has all of them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

T=$(mktemp -d "${TMPDIR:-/tmp}/blkrep-it.$TEST_NAME.XXXXXX")
PASSES=0
FAILS=0
SKIP_REASON=
SERVER_PIDS=()
SERVER_LOGS=()
LOOP_DEVS=()
BG_PIDS=()

msg() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
pass() { PASSES=$((PASSES + 1)); printf 'ok - %s\n' "$*"; }
fail() { FAILS=$((FAILS + 1)); printf 'FAIL - %s\n' "$*"; }

# skip REASON: the test cannot run here.  Exits now (status 77 unless
# something already failed).
skip() {
	SKIP_REASON=$*
	printf 'SKIP - %s\n' "$*"
	exit 77
}

# held_write URI BYTE OFF: a 64 KiB write of BYTE at OFF and a FLUSH through
# nbdsh, in the background, for the tests of writes a primary holds: its pid
# in $wpid, its end time in $T/held.done, its output in $T/held.out.
held_write() {
	(
		timeout -k 5 60 nbdsh -u "$1" -c "h.pwrite(bytes([$2]) * 65536, $3)" -c 'h.flush()'
		rc=$?
		date +%s.%N >"$T/held.done"
		exit $rc
	) >"$T/held.out" 2>&1 &
	wpid=$!
	BG_PIDS+=("$wpid")
}

# held_wait SECS: rc = the held write's exit status once it ended, or
# "pending" after SECS.
held_wait() {
	local i
	rc=pending
	for i in $(seq 1 $(($1 * 10))); do
		if ! kill -0 "$wpid" 2>/dev/null; then
			wait "$wpid"
			rc=$?
			return
		fi
		sleep 0.1
	done
}

# require_cmd CMD...: skip unless every command is installed.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

require_nbdsh() {
	require_cmd nbdsh
	$PY -c 'import nbd' 2>/dev/null || skip "python3-libnbd (import nbd) is missing"
}

# tmo [-t SECS] CMD...: run CMD with a timeout (CMD_TIMEOUT by default).
tmo() {
	local secs=$CMD_TIMEOUT
	if [ "${1:-}" = -t ]; then
		secs=$2
		shift 2
	fi
	timeout -k 5 "$secs" "$@"
}

show_last() {
	tail -n 20 "$T/last.out" | sed 's/^/    | /'
	tail -n 20 "$T/last.err" | sed 's/^/    ! /'
}

# check DESC CMD...: run CMD under tmo, pass if it exits 0; on failure show
# the tail of its output.  Stdout is kept in $T/last.out, stderr in
# $T/last.err.
check() {
	local desc=$1 rc
	shift
	tmo "$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	cat "$T/last.out" "$T/last.err" >>"$T/all.out"
	if [ $rc -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc (exit $rc: $*)"
		show_last
	fi
	return $rc
}

# check_exit DESC WANT CMD...: pass if CMD exits with status WANT.
check_exit() {
	local desc=$1 want=$2 rc
	shift 2
	tmo "$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	cat "$T/last.out" "$T/last.err" >>"$T/all.out"
	if [ $rc -eq "$want" ]; then
		pass "$desc"
	else
		fail "$desc (exit $rc, want $want: $*)"
		show_last
	fi
}

# check_fails DESC CMD...: pass if CMD exits non-zero (and did not time out).
check_fails() {
	local desc=$1 rc
	shift
	tmo "$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	cat "$T/last.out" "$T/last.err" >>"$T/all.out"
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
		pass "$desc"
	else
		fail "$desc (exit $rc, want a failure: $*)"
		show_last
	fi
}

# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1 (got '$2', want '$3')"
	fi
}

# run_checks DESC CMD...: run a check program; every line it prints as
# "ok - X" or "FAIL - X" counts as one result; other lines are shown as
# they are.  A crash or timeout of the program is one more failure.
run_checks() {
	local desc=$1 rc line
	shift
	tmo "$@" >"$T/py.out" 2>&1
	rc=$?
	cat "$T/py.out" >>"$T/all.out"
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "${line#ok - }" ;;
		"FAIL - "*) fail "${line#FAIL - }" ;;
		"SKIP - "*) msg "sub-check skipped: ${line#SKIP - }" ;;
		*) printf '    | %s\n' "$line" ;;
		esac
	done <"$T/py.out"
	[ $rc -eq 0 ] || fail "$desc: exited $rc"
	return $rc
}

# py_checks DESC SCRIPT ARGS...: run_checks with the system python; "-"
# reads the script from stdin.  nbdraw.py is importable.
py_checks() {
	local desc=$1
	shift
	PYTHONPATH=$TESTS_DIR run_checks "$desc" "$PY" "$@"
}

# nbdsh_checks DESC URI SCRIPT ARGS...: run the python SCRIPT inside nbdsh
# connected to URI (handle h, base:allocation requested), with sys.argv = [SCRIPT, ARGS...].
nbdsh_checks() {
	local desc=$1 uri=$2 script=$3
	shift 3
	printf '%s\n' "$script" "$@" >"$T/nbdsh.argv"
	PYTHONPATH=$TESTS_DIR run_checks "$desc" nbdsh --base-allocation -u "$uri" \
		-c "import sys; sys.argv = open('$T/nbdsh.argv').read().splitlines()" \
		-c "exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))"
}

# free_port: print a TCP port that was free a moment ago.
free_port() {
	$PY -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# nbd_ready HOST PORT | nbd_ready unix PATH: true once a server there
# sends the NBD greeting.
nbd_ready() {
	$PY - "$1" "$2" <<'EOF' 2>/dev/null
import socket, sys
kind, where = sys.argv[1], sys.argv[2]
if kind == "unix":
    s = socket.socket(socket.AF_UNIX)
    addr = where
else:
    s = socket.socket()
    addr = (kind, int(where))
s.settimeout(2)
s.connect(addr)
buf = b""
while len(buf) < 8:
    d = s.recv(8 - len(buf))
    if not d:
        sys.exit(1)
    buf += d
sys.exit(0 if buf == b"NBDMAGIC" else 1)
EOF
}

# start_server FILE [--unix] [--tcp-and-unix] [--name N] [--read-only]
#              [--direct] [--raw-args ARGS...]
# Starts the server under test serving FILE on a fresh 127.0.0.1 port (or a
# unix socket, or both), waits until it greets, and sets:
#   SRV_PID SRV_LOG SRV_PORT SRV_SOCK SRV_NAME
#   SRV_URI (TCP when there is a TCP listener, else unix), SRV_UNIX_URI
# Returns non-zero (after a fail) if the server does not come up.
start_server() {
	local file=$1
	shift
	local unix=0 tcp=1 name= ro=0 direct=0 attempt
	while [ $# -gt 0 ]; do
		case $1 in
		--unix) unix=1; tcp=0 ;;
		--tcp-and-unix) unix=1; tcp=1 ;;
		--name) name=$2; shift ;;
		--read-only) ro=1 ;;
		--direct) direct=1 ;;
		*) echo "start_server: unknown option $1" >&2; return 2 ;;
		esac
		shift
	done
	local n=${#SERVER_PIDS[@]}
	SRV_LOG=$T/server.$n.log
	SRV_NAME=$name
	SRV_SOCK=
	SRV_PORT=
	[ $unix -eq 1 ] && SRV_SOCK=$T/sock.$n
	for attempt in 1 2 3; do
		[ $tcp -eq 1 ] && SRV_PORT=$(free_port)
		local -a cmd
		if [ "$SERVER" = nbdkit ]; then
			[ $tcp -eq 1 ] && [ $unix -eq 1 ] && skip "nbdkit cannot listen on TCP and unix at once"
			cmd=(nbdkit --foreground --exit-with-parent)
			[ $tcp -eq 1 ] && cmd+=(-i 127.0.0.1 -p "$SRV_PORT")
			[ $unix -eq 1 ] && cmd+=(-U "$SRV_SOCK")
			[ -n "$name" ] && cmd+=(-e "$name")
			[ $ro -eq 1 ] && cmd+=(-r)
			cmd+=(file "$file")
			[ $direct -eq 1 ] && cmd+=(cache=none)
		else
			[ -x "$BLKREP" ] || { fail "server binary $BLKREP is missing"; return 1; }
			cmd=("$BLKREP" serve "$file")
			[ $tcp -eq 1 ] && cmd+=(--listen "127.0.0.1:$SRV_PORT")
			[ $unix -eq 1 ] && cmd+=(--listen "unix:$SRV_SOCK")
			[ -n "$name" ] && cmd+=(--name "$name")
			[ $ro -eq 1 ] && cmd+=(--read-only)
			[ $direct -eq 1 ] && cmd+=(--direct)
		fi
		echo "+ ${cmd[*]}" >>"$SRV_LOG"
		"${cmd[@]}" </dev/null >>"$SRV_LOG" 2>&1 &
		SRV_PID=$!
		SERVER_PIDS+=("$SRV_PID")
		SERVER_LOGS+=("$SRV_LOG")
		local i up=0
		for i in $(seq 1 100); do
			if ! kill -0 "$SRV_PID" 2>/dev/null; then
				break
			fi
			if { [ $tcp -eq 0 ] || nbd_ready 127.0.0.1 "$SRV_PORT"; } &&
				{ [ $unix -eq 0 ] || nbd_ready unix "$SRV_SOCK"; }; then
				up=1
				break
			fi
			sleep 0.1
		done
		if [ $up -eq 1 ]; then
			if [ $tcp -eq 1 ]; then
				SRV_URI=nbd://127.0.0.1:$SRV_PORT/$name
			else
				SRV_URI="nbd+unix:///$name?socket=$SRV_SOCK"
			fi
			SRV_UNIX_URI=
			[ $unix -eq 1 ] && SRV_UNIX_URI="nbd+unix:///$name?socket=$SRV_SOCK"
			return 0
		fi
		# Lost the port race, or the server died: retry a few times.
		kill -KILL "$SRV_PID" 2>/dev/null
		wait "$SRV_PID" 2>/dev/null
		rm -f "$SRV_SOCK"
	done
	fail "server did not come up: ${cmd[*]}"
	tail -n 20 "$SRV_LOG" | sed 's/^/    | /'
	return 1
}

# check_sanitizer LOG: fail if LOG holds an ASan/UBSan/LSan report.
check_sanitizer() {
	local log=$1
	[ -f "$log" ] || return 0
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:' "$log"; then
		fail "sanitizer report in $(basename "$log")"
		grep -m 5 -E -A 8 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:' "$log" |
			sed 's/^/    | /'
		return 1
	fi
	return 0
}

# stop_server [PID] [SIGNAL]: signal the server (TERM by default), wait up
# to 10 s, fail if it does not exit or exits non-zero.  Sets SRV_STATUS and
# SRV_STOP_MS (milliseconds from signal to exit).
stop_server() {
	local pid=${1:-$SRV_PID} sig=${2:-TERM} i t0
	SRV_STATUS=
	t0=$(date +%s%N)
	kill -"$sig" "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; SRV_STATUS=$?; return 0; }
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		SRV_STATUS=timeout
		SRV_STOP_MS=$((($(date +%s%N) - t0) / 1000000))
		fail "server $pid did not exit within 10 s of SIG$sig"
		return 1
	fi
	wait "$pid" 2>/dev/null
	SRV_STATUS=$?
	SRV_STOP_MS=$((($(date +%s%N) - t0) / 1000000))
	if [ "$SRV_STATUS" -ne 0 ]; then
		fail "server $pid exited $SRV_STATUS after SIG$sig (want 0)"
		return 1
	fi
	return 0
}

# bg CMD...: run CMD in the background; it is killed on exit if still there.
bg() {
	"$@" &
	BG_PIDS+=($!)
}

# make_random FILE MIB: FILE gets MIB MiB of random bytes.
make_random() {
	head -c "$(($2 * 1048576))" /dev/urandom >"$1"
}

# make_pattern FILE MIB: a fixed, non-zero content that is cheap to make.
make_pattern() {
	$PY - "$1" "$2" <<'EOF'
import sys
mib = int(sys.argv[2])
with open(sys.argv[1], "wb") as f:
    for i in range(mib):
        f.write(bytes([(i * 37 + 11) & 0xff or 1]) * 1048576)
EOF
}

# losetup_file FILE: attach FILE to a loop device, set LOOP_DEV (detached
# on exit).  Not in a $(...) subshell, or the cleanup list is lost.
losetup_file() {
	LOOP_DEV=$(losetup -f --show "$1" 2>"$T/losetup.err") || return 1
	LOOP_DEVS+=("$LOOP_DEV")
}

file_size() { stat -c %s "$1"; }

# finish: the last line of every test.
finish() {
	FINISHED=1
	exit 0
}

_cleanup() {
	local rc=$? pid i
	trap - EXIT
	for pid in "${BG_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	for pid in "${SERVER_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
			for i in $(seq 1 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.05
			done
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	# Socket-activated servers write to the client's stderr: all.out.
	for i in "${SERVER_LOGS[@]}" "$T/all.out"; do
		check_sanitizer "$i"
	done
	# Node daemons (pair.sh) log under $T/run, and under $T when tests keep
	# their own run directories there.
	for i in "$T"/run/*.log "$T"/*/run/*.log; do
		[ -f "$i" ] && check_sanitizer "$i"
	done
	# pair.sh's in-sync oracle saw a pair claim to be in sync with data
	# areas that differ (DESIGN.md rule 11): a failure, whatever the test
	# made of the state it was given.
	if [ -s "$T/oracle.diverged" ]; then
		fail "a pair reported in sync while its data areas differed ($(grep -c . "$T/oracle.diverged") time(s)):"
		head -n 5 "$T/oracle.diverged" | sed 's/^/    | /'
	fi
	for i in "${LOOP_DEVS[@]}"; do
		losetup -d "$i" 2>/dev/null
	done
	if [ "${KEEP_TMP:-0}" = 1 ] || { [ $FAILS -gt 0 ] && [ "${KEEP_TMP_ON_FAIL:-0}" = 1 ]; }; then
		msg "kept $T"
	else
		rm -rf "$T"
	fi
	if [ $FAILS -gt 0 ]; then
		msg "$PASSES passed, $FAILS failed"
		exit 1
	fi
	if [ -n "$SKIP_REASON" ]; then
		exit 77
	fi
	if [ "${FINISHED:-0}" != 1 ]; then
		msg "test script stopped early (exit $rc) without reaching finish"
		exit 1
	fi
	if [ $PASSES -eq 0 ]; then
		msg "no checks ran"
		exit 1
	fi
	msg "$PASSES passed"
	exit 0
}
trap _cleanup EXIT
trap 'fail "interrupted (SIGTERM, probably the per-test timeout)"; exit 143' TERM
trap 'fail "interrupted (SIGINT)"; exit 130' INT
