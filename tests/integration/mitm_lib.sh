# shellcheck shell=bash disable=SC2034
# Helpers for the link-security tests (t_mitm.sh, t_tls_refusals.sh,
# t_peer_hog.sh).  Source after lib.sh and pair.sh, then call pair_init.
#
# key_supported KEY VALUE: true if this blkrep's config parser knows the
#   [resource] key (today's main refuses unknown keys by name).
# strong_secret FILE: 256 random bits, mode 0600.
# mitm_confs [EXTRA-LINES]: alpha's config $T/a.conf names beta's address as
#   the relay's port ($RELAY_PORT) while beta's $T/b.conf has beta's real
#   port ($PAIR_PORT_B); HELLO carries no addresses, so nothing requires the
#   two files to be the same.  EXTRA-LINES go into [resource].  Sets A and
#   Bn to use them.
# relay_start MODE ARGS...: mitm.py between them, bounded by $RELAY_SECONDS
#   (default 90), logging to $RELAY_LOG ($T/mitm.N.log); relay_stop ends it.
# relay_fired ACTION [SECS]: wait (up to SECS, default 5) until the relay
#   logged "ACTION ACTION"; prints that line.
# log_mark / log_since: the daemons' log lines written after a mark.
# img_has FILE STRING: the file holds STRING (grep -a -F).
# writes_on FILE OFF:PAT...: every 64 KiB write of byte PAT at OFF is in FILE.

MITM=$TESTS_DIR/mitm.py

key_supported() {
	local d=$T/keyprobe
	mkdir -p "$d"
	strong_secret "$d/secret"
	printf '[resource]\nname = probe\nsecret-file = %s\n%s = %s\n[node alpha]\naddress = 127.0.0.1:1\nbacking = %s/a\n[node beta]\naddress = 127.0.0.1:2\nbacking = %s/b\n' \
		"$d/secret" "$1" "$2" "$d" "$d" >"$d/probe.conf"
	! "$BLKREP" -c "$d/probe.conf" --node alpha dump-md 2>&1 | grep -q "unknown key '$1'"
}

strong_secret() {
	(umask 077 && openssl rand -hex 32 >"$1") 2>/dev/null ||
		(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
	chmod 600 "$1"
}

mitm_confs() {
	RELAY_PORT=${RELAY_PORT:-$(free_port)}
	local keep=$PAIR_PORT_B extra=${1:-}
	PAIR_EXTRA=$extra PAIR_PORT_B=$RELAY_PORT pair_conf "$T/a.conf" r0 "$T/secret" beta
	PAIR_EXTRA=$extra PAIR_PORT_B=$keep pair_conf "$T/b.conf" r0 "$T/secret" beta
	A="$B -c $T/a.conf --node alpha"
	Bn="$B -c $T/b.conf --node beta"
}

RELAY_N=0
RELAY_PID=
relay_start() {
	relay_stop
	RELAY_N=$((RELAY_N + 1))
	RELAY_LOG=$T/mitm.$RELAY_N.log
	: >"$RELAY_LOG"
	"$PY" "$MITM" --listen "$RELAY_PORT" --to "127.0.0.1:$PAIR_PORT_B" \
		--seconds "${RELAY_SECONDS:-90}" --log "$RELAY_LOG" "$@" 2>>"$RELAY_LOG" &
	RELAY_PID=$!
	BG_PIDS+=("$RELAY_PID")
	local i
	for i in $(seq 1 50); do
		grep -q "listening on" "$RELAY_LOG" && return 0
		sleep 0.1
	done
	fail "the relay did not start: $(tail -n 3 "$RELAY_LOG")"
	return 1
}

relay_stop() {
	if [ -n "$RELAY_PID" ]; then
		kill "$RELAY_PID" 2>/dev/null
		wait "$RELAY_PID" 2>/dev/null
	fi
	RELAY_PID=
}

relay_fired() {
	local end=$((SECONDS + ${2:-5}))
	while :; do
		grep -m1 "ACTION $1" "$RELAY_LOG" && return 0
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# log_mark: remember how long both daemons' logs are; log_since prints the
# lines they gained after it (as "alpha: LINE" / "beta: LINE").
log_mark() {
	LOG_MARK_A=$(cat "$BLKREP_RUN_DIR/r0-alpha.log" 2>/dev/null | wc -l)
	LOG_MARK_B=$(cat "$BLKREP_RUN_DIR/r0-beta.log" 2>/dev/null | wc -l)
}
log_since() {
	tail -n +$((LOG_MARK_A + 1)) "$BLKREP_RUN_DIR/r0-alpha.log" 2>/dev/null | sed 's/^/alpha: /'
	tail -n +$((LOG_MARK_B + 1)) "$BLKREP_RUN_DIR/r0-beta.log" 2>/dev/null | sed 's/^/beta: /'
}

# wait_log_since REGEX [SECS [NODE]]: until a line matching REGEX (grep
# -Ei) is in log_since (NODE's lines only, if given); prints the first one.
wait_log_since() {
	local end=$((SECONDS + ${2:-10}))
	while :; do
		log_since | grep "^${3:-}" | grep -m1 -Ei -- "$1" && return 0
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

img_has() {
	LC_ALL=C grep -q -a -F -- "$2" "$1"
}

writes_on() {
	local f=$1
	shift
	"$PY" - "$f" "$@" <<'EOF'
import sys
f = open(sys.argv[1], "rb")
bad = []
for w in sys.argv[2:]:
    off, pat = w.split(":")
    off, pat = int(off, 0), int(pat, 0)
    f.seek(off)
    if f.read(65536) != bytes([pat]) * 65536:
        bad.append(w)
print(" ".join(bad))
sys.exit(1 if bad else 0)
EOF
}

# peer_field NODE-CMD KEY: status --json's peer.KEY ("absent" if the
# daemon does not report it).
peer_field() {
	field "$1" "d['peer'].get('$2', 'absent')" 2>/dev/null
}
