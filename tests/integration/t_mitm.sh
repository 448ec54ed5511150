#!/usr/bin/env bash
# An attacker on the replication link (issue 14, item 5): mitm.py sits
# between alpha and beta (alpha's config names the relay's port as beta's
# address), forwards the handshake, then attacks once.  On a TLS link
# (the default config) every attack must fail:
#   - the relay's action really happened (its "ACTION" log line);
#   - the link drops, a daemon logging why ("connection lost: TLS: ...");
#   - no replica changes: an injected marker never reaches beta's image;
#   - no write is acknowledged that the secondary lacks: every write the
#     client saw acknowledged is in beta's image once the pair settles;
#   - after the reconnect (the relay passes later connections) the pair
#     resyncs to byte-identical data areas.
# Modes: pass (with --capture: a marker written through alpha never shows
# in what the relay sees), inject, forge-ack, flip, truncate (close and
# stall), replay (a recorded connection replayed to beta), splice (the
# recorded connection's requests spliced into a later live one).
#
# Control experiment: the same relay against a pair with
# `allow-unencrypted = yes` (today's plaintext protocol) must succeed at
# inject (the marker lands in beta's image, nobody notices), forge-ack
# (alpha acknowledges a FUA write and a FLUSH beta never received) and
# splice (an old connection's WRITE applied again), and a pass capture
# shows the marker: this proves the relay and the oracles
# work.  On a blkrep without TLS (no `allow-unencrypted` key) the control
# runs with the default config, which is then plaintext too, and the TLS
# checks above fail: that is the vulnerability the test is for.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io
. "$(dirname "$0")/pair.sh"
. "$(dirname "$0")/mitm_lib.sh"
pair_init 64M 64M
trap 'relay_stop; pair_stop; _cleanup' EXIT
strong_secret "$T/secret"
MIB=1048576

if key_supported allow-unencrypted yes; then
	CONTROL_EXTRA="allow-unencrypted = yes"
else
	CONTROL_EXTRA=
	msg "this blkrep does not know allow-unencrypted: its link is plaintext whatever the config;"
	msg "the TLS checks fail until TLS lands, the control experiments run on the default config"
fi

# want SCENARIO: MITM_ONLY (if set: scenario names, space-separated: pass
# inject forge-ack flip truncate replay splice control) names it.
want() {
	[ -z "${MITM_ONLY:-}" ] || [[ " $MITM_ONLY " == *" $1 "* ]]
}

# marker_file FILE STRING: 64 KiB of STRING repeated.
marker_file() {
	"$PY" -c 'import sys; m = sys.argv[2].encode(); open(sys.argv[1], "wb").write((m * (65536 // len(m) + 1))[:65536])' "$1" "$2"
}

# fresh_pair LABEL EXTRA MODE RELAY-ARGS...: both daemons down, new zeroed
# images, the configs (EXTRA in [resource]), the relay in MODE armed by
# $T/arm, then pair_start (alpha primary, connected through the relay).
# Sets ENC (alpha's peer.encryption, "absent" on a blkrep without TLS).
fresh_pair() {
	local label=$1 extra=$2
	shift 2
	pair_stop
	relay_stop
	rm -f "$T/a.img" "$T/b.img" "$T/arm"
	truncate -s 64M "$T/a.img"
	truncate -s 64M "$T/b.img"
	mitm_confs "$extra"
	relay_start "$@" --arm "$T/arm" || return 1
	pair_start "$label" || { fail "$label: the pair does not connect through the relay"; show_logs; return 1; }
	ENC=$(peer_field "$A" encryption)
	ACKED=()
	log_mark
}

# client_write OFF PAT: a FUA write of 64 KiB of byte PAT through alpha;
# acknowledged ones go into ACKED (OFF:PAT).
client_write() {
	if tmo -t 30 qemu-io -f raw "$URI" -c "write -f -P $2 $1 64k" >"$T/qemu.out" 2>&1 &&
		! grep -qi 'error\|failed' "$T/qemu.out"; then
		ACKED+=("$1:$2")
	else
		msg "write $2 at $1 not acknowledged: $(head -c 200 "$T/qemu.out")"
	fi
}

client_flush() {
	tmo -t 30 qemu-io -f raw "$URI" -c flush >"$T/qemu.out" 2>&1
}

# client_marker OFF FILE: a FUA write of FILE (64 KiB) at OFF, then a flush.
client_marker() {
	tmo -t 30 qemu-io -f raw "$URI" -c "write -f -s $2 $1 64k" -c flush >"$T/qemu.out" 2>&1 &&
		! grep -qi 'error\|failed' "$T/qemu.out"
}

# the_attack_fired MODE [SECS [LABEL]]: the relay logged its action (a test
# whose attack never happened must not pass).
the_attack_fired() {
	local line l=${3:-$1}
	if line=$(relay_fired "$1" "${2:-5}"); then
		pass "$l: the relay's attack fired: ${line#* ACTION }"
	else
		fail "$l: the relay never attacked (no 'ACTION $1' line):"
		tail -n 8 "$RELAY_LOG" | sed 's/^/    | /'
		return 1
	fi
}

# link_drops LABEL REGEX: a daemon logs a line matching REGEX within 10 s.
link_drops() {
	local line
	if line=$(wait_log_since "$2" 10); then
		pass "$1: the link drops, saying why: $line"
	else
		fail "$1: no log line matching '$2' within 10 s; the daemons logged $(log_since | grep -c .) line(s):"
		log_since | tail -n 8 | sed 's/^/    | /'
	fi
}

# settles LABEL: after the reconnect (through the relay, which passes it)
# the pair resyncs to byte-identical data and every acknowledged write is
# on beta.
settles() {
	local st bad
	if st=$(wait_synced 40); then
		pass "$1: after reconnecting the pair resyncs, byte-identical ($st)"
	else
		fail "$1: the pair does not settle in sync: $st"
		log_since | tail -n 8 | sed 's/^/    | /'
	fi
	if [ ${#ACKED[@]} -eq 0 ]; then
		fail "$1: no write was acknowledged to the client at all"
	elif bad=$(writes_on "$T/b.img" "${ACKED[@]}"); then
		pass "$1: all ${#ACKED[@]} writes the client saw acknowledged are on beta"
	else
		fail "$1: acknowledged to the client but not on beta: $bad"
	fi
}

# --- pass: the relay is transparent, and sees no plaintext ---
M0=MITM-PLAIN-$$-$RANDOM
marker_file "$T/m0" "$M0"
if want pass && fresh_pair "pass:" "" pass --capture "$T/cap.tls"; then
	touch "$T/arm"
	check_eq "pass: the link is encrypted with the secret's PSK (peer.encryption)" "$ENC" tls-psk
	t=$(peer_field "$A" tls_offload)
	case $t in kernel | userspace) pass "pass: tls_offload is $t" ;;
	*) fail "pass: tls_offload is '$t', want kernel or userspace" ;; esac
	client_marker $((2 * MIB)) "$T/m0" || fail "pass: the marker write failed"
	img_has "$T/b.img" "$M0" && pass "pass: the marker is on beta" || fail "pass: the marker is not on beta"
	if grep -q "alpha->beta speaks tls" "$RELAY_LOG"; then
		pass "pass: the relay sees TLS records"
	else
		fail "pass: the relay sees no TLS: $(grep -m2 speaks "$RELAY_LOG" | tr '\n' ' ')"
	fi
	if [ -s "$T/cap.tls" ] && ! img_has "$T/cap.tls" "$M0"; then
		pass "pass: the marker never appears in the $(file_size "$T/cap.tls") bytes the relay saw"
	else
		fail "pass: the marker written through alpha is in clear in what the relay saw"
	fi
	client_write $((3 * MIB)) 0x31
	settles "pass"
fi

# --- inject: a WRITE of a marker toward the secondary ---
MI=MITM-INJ-$$-$RANDOM
if want inject && fresh_pair "inject:" "" inject --marker "$MI" --offset $((8 * MIB)) --length 65536; then
	client_write $((1 * MIB)) 0x11
	touch "$T/arm"
	the_attack_fired inject
	client_write $((2 * MIB)) 0x12
	link_drops inject 'connection lost.*tls'
	if img_has "$T/b.img" "$MI"; then
		fail "inject: the injected marker is in beta's replica"
	else
		pass "inject: the injected marker is not in beta's replica"
	fi
	settles inject
	img_has "$T/b.img" "$MI" && fail "inject: the marker is in beta's replica after the resync"
fi

# --- forge-ack: drop alpha's WRITE/FLUSH, forge the answers ---
if want forge-ack && fresh_pair "forge-ack:" "" forge-ack; then
	client_write $((1 * MIB)) 0x21
	touch "$T/arm"
	client_write $((2 * MIB)) 0x22
	client_flush
	client_write $((3 * MIB)) 0x23
	the_attack_fired forge-ack
	link_drops forge-ack 'connection lost.*tls'
	settles forge-ack
fi

# --- flip: one byte of a post-handshake record ---
if want flip && fresh_pair "flip:" "" flip; then
	client_write $((1 * MIB)) 0x41
	touch "$T/arm"
	client_write $((2 * MIB)) 0x42
	client_write $((3 * MIB)) 0x43
	the_attack_fired flip
	link_drops flip 'connection lost.*tls'
	settles flip
fi

# --- truncate: half a record, then close / stall ---
for then in close stall; do
	if want truncate && fresh_pair "truncate-$then:" "" truncate --then "$then"; then
		client_write $((1 * MIB)) 0x51
		touch "$T/arm"
		client_write $((2 * MIB)) 0x52
		the_attack_fired truncate
		client_write $((3 * MIB)) 0x53
		link_drops "truncate-$then" 'connection lost'
		settles "truncate-$then"
	fi
done

# --- replay: a recorded connection replayed to beta ---
MR=MITM-REPLAY-$$-$RANDOM
marker_file "$T/mr" "$MR"
if want replay && fresh_pair "replay:" "" replay --replay-wait 3; then
	# The recorded connection carries the marker at 4 MiB ...
	client_marker $((4 * MIB)) "$T/mr" || fail "replay: the marker write failed"
	img_has "$T/b.img" "$MR" && pass "replay: the marker is on beta (in the recorded connection)" ||
		fail "replay: the marker is not on beta"
	check "replay: alpha disconnect" $A disconnect
	# ... which alpha then overwrites, and the next connection resyncs.
	client_write $((4 * MIB)) 0x44
	check "replay: alpha connect" $A connect
	if st=$(wait_synced 30); then pass "replay: resynced after the recorded connection ($st)"; else fail "replay: not in sync: $st"; fi
	check "replay: the relay recorded the first connection" grep -q "recorded [1-9][0-9]* bytes" "$RELAY_LOG"
	img_has "$T/b.img" "$MR" && fail "replay: the marker is still on beta after the resync"
	touch "$T/arm"
	check "replay: alpha disconnect" $A disconnect
	sleep 0.3
	log_mark
	check "replay: alpha connect (the relay replays to beta instead)" $A connect
	the_attack_fired replay 10
	for i in $(seq 1 60); do grep -q "replay: sent" "$RELAY_LOG" && break; sleep 0.1; done
	msg "replay: $(grep -m1 'replay: sent' "$RELAY_LOG" | cut -d' ' -f2-)"
	if line=$(wait_log_since 'refus|authenticat|tls|handshake|replay|mac|decrypt' 5 beta); then
		pass "replay: beta refuses the replayed connection: $line"
	else
		fail "replay: beta logged no refusal of the replayed connection"
	fi
	if img_has "$T/b.img" "$MR"; then
		fail "replay: the replayed WRITE put the old marker back on beta"
	else
		pass "replay: nothing of the replayed connection reached beta's replica"
	fi
	settles replay
fi

# --- splice: the recorded connection's requests into a later live one ---
# splice_setup LABEL EXTRA MARKER-FILE MARKER: the recorded connection puts
# MARKER at 4 MiB, alpha overwrites it while disconnected, the next
# connection resyncs (beta loses the marker), then the relay is armed:
# it splices the recorded WRITEs into that live connection.
splice_setup() {
	fresh_pair "$1:" "$2" replay --splice || return 1
	client_marker $((4 * MIB)) "$3" || fail "$1: the marker write failed"
	check "$1: alpha disconnect" $A disconnect
	client_write $((4 * MIB)) 0x45
	check "$1: alpha connect" $A connect
	if st=$(wait_synced 30); then pass "$1: resynced after the recorded connection"; else fail "$1: not in sync: $st"; fi
	img_has "$T/b.img" "$4" && fail "$1: the marker is still on beta after the resync"
	log_mark
	touch "$T/arm"
	the_attack_fired replay 10 "$1"
}
MS=MITM-SPLICE-$$-$RANDOM
marker_file "$T/ms" "$MS"
if want splice && splice_setup splice "" "$T/ms" "$MS"; then
	client_write $((5 * MIB)) 0x46
	link_drops splice 'connection lost.*tls'
	if img_has "$T/b.img" "$MS"; then
		fail "splice: the recorded WRITE was applied again: the old marker is back on beta"
	else
		pass "splice: nothing of the recorded connection reached beta's replica"
	fi
	settles splice
fi

# --- the control experiment: the same attacks on a plaintext link ---
MC=MITM-CTL-INJ-$$-$RANDOM
if want control && fresh_pair "control inject:" "$CONTROL_EXTRA" inject --marker "$MC" --offset $((8 * MIB)) --length 65536; then
	check_eq "control: the link is unencrypted" "$(sed 's/absent/none/' <<<"$ENC")" none
	client_write $((1 * MIB)) 0x61
	touch "$T/arm"
	the_attack_fired inject 5 "control inject"
	client_write $((2 * MIB)) 0x62
	sleep 0.5
	if img_has "$T/b.img" "$MC"; then
		pass "control: plaintext: the injected marker IS in beta's replica (the attack works)"
	else
		fail "control: plaintext: the injected marker is not in beta's replica: the relay or the oracle is broken"
	fi
	check_eq "control: plaintext: nobody noticed (both connected, alpha 0 bytes out of sync)" \
		"$(field "$A" "d['peer']['connection'] + ' ' + str(d['out_of_sync_bytes'])") $(field "$Bn" "d['peer']['connection']")" \
		"connected 0 connected"
	check_eq "control: plaintext: no connection lost in either log" "$(log_since | grep -c 'connection lost')" 0
fi

MF=MITM-CTL-ACK-$$-$RANDOM
marker_file "$T/mf" "$MF"
if want control && fresh_pair "control forge-ack:" "$CONTROL_EXTRA" forge-ack; then
	client_write $((1 * MIB)) 0x71
	touch "$T/arm"
	if client_marker $((2 * MIB)) "$T/mf"; then
		pass "control: plaintext: the client's FUA write and FLUSH were acknowledged"
	else
		fail "control: plaintext: the client's write or flush failed: $(head -c 300 "$T/qemu.out")"
	fi
	the_attack_fired forge-ack 5 "control forge-ack"
	grep -q "ACTION forge-ack.*FLUSH seq" "$RELAY_LOG" &&
		pass "control: plaintext: a FLUSH_ACK was forged too" || fail "control: no FLUSH was forged"
	if img_has "$T/a.img" "$MF" && ! img_has "$T/b.img" "$MF"; then
		pass "control: plaintext: forged ACK accepted: the acknowledged write is on alpha, not on beta"
	else
		fail "control: plaintext: the forged ACK test did not show the attack (alpha has it: $(img_has "$T/a.img" "$MF" && echo yes || echo no), beta has it: $(img_has "$T/b.img" "$MF" && echo yes || echo no))"
	fi
	check_eq "control: plaintext: alpha believes beta has it (connected, 0 bytes out of sync)" \
		"$(field "$A" "d['peer']['connection'] + ' ' + str(d['out_of_sync_bytes'])")" "connected 0"
fi

MSC=MITM-CTL-SPLICE-$$-$RANDOM
marker_file "$T/msc" "$MSC"
if want control && splice_setup "control splice" "$CONTROL_EXTRA" "$T/msc" "$MSC"; then
	sleep 0.5
	if img_has "$T/b.img" "$MSC"; then
		pass "control: plaintext: the spliced WRITE of an old connection IS applied on beta (the attack works)"
	else
		fail "control: plaintext: the spliced WRITE is not on beta: the relay or the oracle is broken"
	fi
	check_eq "control splice: nobody noticed (both connected, alpha 0 bytes out of sync)" \
		"$(field "$A" "d['peer']['connection'] + ' ' + str(d['out_of_sync_bytes'])") $(field "$Bn" "d['peer']['connection']")" \
		"connected 0 connected"
fi

MP=MITM-CTL-CAP-$$-$RANDOM
marker_file "$T/mp" "$MP"
if want control && fresh_pair "control capture:" "$CONTROL_EXTRA" pass --capture "$T/cap.plain"; then
	touch "$T/arm"
	client_marker $((2 * MIB)) "$T/mp" || fail "control capture: the marker write failed"
	img_has "$T/cap.plain" "$MP" && pass "control: plaintext: the marker IS in what the relay saw (the capture works)" ||
		fail "control: plaintext: the marker is not in the capture: the relay's capture is broken"
fi
finish
