#!/usr/bin/env bash
# `blkrep adjust`: a running pair takes a changed config's on-peer-loss,
# max-lag, resync-rate, timeouts and peer address at once, and refuses
# anything else, naming the key, with nothing changed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pair.sh"

pair_init 64M 64M
pair_start
# conf EXTRA-LINES: rewrite $T/r0.conf with these [resource] lines.
conf() {
	PAIR_EXTRA=$1
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
}

check "adjust with the same file" $A adjust
check_eq "... changes nothing" "$(cat "$T/last.out")" "r0/alpha: nothing changed"

conf $'on-peer-loss = freeze\nmax-lag = 8M\nresync-rate = 20M\ntimeout = 20'
check "adjust after a change of live keys" $A adjust
check_eq "... names them" "$(cat "$T/last.out")" \
	"r0/alpha: adjusted on-peer-loss, resync-rate, max-lag, timeout"
check_eq "status shows the new on-peer-loss" "$(field "$A" "d['on_peer_loss']")" freeze
grep -q "adjust: on-peer-loss, resync-rate, max-lag, timeout" "$T/run/r0-alpha.log" &&
	pass "the log says what was adjusted" || fail "log: $(tail -n 3 "$T/run/r0-alpha.log")"

# refused CONF-EXTRA WANT DESC: adjust fails with one line saying WANT.
refused() {
	check_fails "adjust refuses $3" $A adjust
	[ "$(wc -l <"$T/last.err")" -eq 1 ] && grep -qF -- "$2" "$T/last.err" &&
		pass "... in one line: $(cat "$T/last.err")" ||
		fail "want '$2', got: $(cat "$T/last.err" "$T/last.out")"
}
conf $'on-peer-loss = continue\nmax-lag = 1G'
refused "" "max-lag above its value at the start: a restart is needed" "a max-lag above its start"
check_eq "... and changes nothing" "$(field "$A" "d['on_peer_loss']")" freeze
conf $'on-peer-loss = freeze\nmax-lag = 8M\nresync-rate = 20M\ntimeout = 20'
sed -i "s|^backing = $T/a.img|backing = $T/other.img|" "$T/r0.conf"
refused "" "[node alpha] backing changed: a restart is needed to apply it" "a new backing store"
conf $'on-peer-loss = freeze\nmax-lag = 8M\nresync-rate = 20M\ntimeout = 20\nmode = async'
refused "" "mode changed: a restart is needed to apply it" "a new mode"

# The peer's address: alpha (the connecting side) dials the new one.
old_port=$PAIR_PORT_B
PAIR_PORT_B=$(free_port)
conf $'on-peer-loss = freeze\nmax-lag = 8M\nresync-rate = 20M\ntimeout = 20'
check "adjust to a new peer address" $A adjust
check_eq "... names it" "$(cat "$T/last.out")" "r0/alpha: adjusted the peer's address"
check "disconnect alpha" $A disconnect
check "connect alpha" $A connect
for i in $(seq 1 50); do
	grep -q "connecting to 127.0.0.1:$PAIR_PORT_B" "$T/run/r0-alpha.log" && break
	sleep 0.1
done
grep -q "connecting to 127.0.0.1:$PAIR_PORT_B" "$T/run/r0-alpha.log" &&
	pass "alpha connects to the new address" ||
	fail "alpha's log: $(grep connecting "$T/run/r0-alpha.log" | tail -n 2)"
check_eq "where beta does not listen" "$(field "$A" "d['peer']['connection']")" connecting
PAIR_PORT_B=$old_port
conf $'on-peer-loss = freeze\nmax-lag = 8M\nresync-rate = 20M\ntimeout = 20'
check "adjust back to beta's address" $A adjust
check_eq "and the pair connects again" "$(wait_field "$A" "d['peer']['connection']" connected 20)" \
	connected
finish
