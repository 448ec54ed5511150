#!/usr/bin/env bash
# fence-peer and unfence-peer (issue 18), with the link really cut: alpha
# and beta in two network namespaces joined by a veth pair, on-peer-loss =
# freeze, and handler scripts that log their environment and answer with
# the exit code in $T/fence.rc (taking 1 s, as a cluster manager's would).
#   1. The handler says no (exit 1): a write issued after the cut stays
#      unanswered, the handler ran once (not again and again), status says
#      its answer; `outdate-peer` still releases the write.  On the heal
#      the pair resyncs and beta, the target, runs unfence-peer.
#   2. The handler says the peer is outdated (exit 4): the held write
#      completes, not before the handler answered; alpha counts beta as
#      outdated; the heal resyncs and unfence-peer runs again.
#   3. kill -9 of the primary, `primary` on beta: beta runs fence-peer
#      for alpha at its promotion (exit 5, down) and writes once it
#      answered; alpha comes back, resyncs from beta, runs unfence-peer.
# Every step ends with the data areas compared.
. "$(dirname "$0")/lib.sh"
require_cmd ip qemu-io
require_nbdsh

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
export BLKREP_SAVE_DIR=$T/saved # a primary killed and back saves its own writes

trap 'pair_stop; pair_netns_del; _cleanup' EXIT
pair_netns

cat >"$T/fence.sh" <<EOF
#!/bin/sh
echo "\$BLKREP_NODE|\$BLKREP_RESOURCE|\$BLKREP_PEERS|\$BLKREP_CONFIG" >>"$T/fence.log"
sleep 1
date +%s.%N >"$T/fence.end"
exit \$(cat "$T/fence.rc")
EOF
cat >"$T/unfence.sh" <<EOF
#!/bin/sh
echo "\$BLKREP_NODE|\$BLKREP_RESOURCE|\$BLKREP_PEERS" >>"$T/unfence.log"
EOF
chmod +x "$T/fence.sh" "$T/unfence.sh"
: >"$T/fence.log"
: >"$T/unfence.log"

pair_conf_extra "on-peer-loss = freeze" "fence-peer = $T/fence.sh" "unfence-peer = $T/unfence.sh"
URIB="nbd+unix:///r0?socket=$T/beta.nbd"
check "create both --zeroed" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up alpha in its namespace" $INA $A up
check "up beta in its namespace" $INB $Bn up
check_eq "connected over the veth" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary" $A primary
check_eq "no fence-peer has run while connected" "$(field "$A" "d['fence_peer']")" ""
size=$(field "$A" "d['size_bytes']")
SAME="$TESTS_DIR/cmp_areas.sh $size $T/a.img $T/b.img"
check "a write while connected completes" qemu-io -f raw "$URI" -c 'write -P 0x11 1M 64k' -c flush

lines() { wc -l <"$1" | tr -d ' '; }

# unfenced_since N: the unfence-peer runs logged after the first N lines
# (unfence-peer runs after every resync a node completes as its target,
# the first connect's included), once there is one (waits up to 5 s).
unfenced_since() {
	local i
	for i in $(seq 1 50); do
		[ "$(lines "$T/unfence.log")" -gt "$1" ] && break
		sleep 0.1
	done
	sed -n "$(($1 + 1)),\$p" "$T/unfence.log" | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# --- 1. the handler refuses ---
echo 1 >"$T/fence.rc"
u0=$(lines "$T/unfence.log")
check "cut the link" $INA ip link set "$VA" down
held_write "$URI" 0x5a 0
v=$(wait_field "$A" "d['fence_peer']" "exit 1" 20)
check_eq "alpha ran fence-peer and shows its answer" "$v" "exit 1"
check_eq "the handler got the node, resource, peer and config" "$(head -1 "$T/fence.log")" \
	"alpha|r0|beta|$T/r0.conf"
held_wait 3
check_eq "the write stays unanswered 3 s after the refusal" "$rc" pending
check_eq "fence-peer ran once for this loss" "$(lines "$T/fence.log")" 1
check_eq "frozen" "$(field "$A" "d['frozen']")" True
check "status says what fence-peer answered" sh -c "$A status | grep -qF 'fence-peer: exit 1'"
check "the log says writes stay frozen" \
	grep -qF "fence-peer for beta: exit 1: writes stay frozen" "$T/run/r0-alpha.log"
check "outdate-peer still releases them" $A outdate-peer
held_wait 10
check_eq "the held write completes" "$rc" 0
check "bring the link up" $INA ip link set "$VA" up
if st=$(wait_synced 60); then pass "resynced after the heal"; else fail "no resync after the heal: $st"; fi
check_eq "beta, the resync target, ran unfence-peer naming alpha" "$(unfenced_since "$u0")" "beta|r0|alpha"
check "the data areas are equal" $SAME

# --- 2. the handler outdates the peer ---
echo 4 >"$T/fence.rc"
rm -f "$T/fence.end"
u0=$(lines "$T/unfence.log")
check "cut the link again" $INA ip link set "$VA" down
held_write "$URI" 0x6b 2097152
held_wait 30
check_eq "the held write completes once fence-peer said outdated" "$rc" 0
[ -s "$T/held.out" ] && sed 's/^/    | /' "$T/held.out"
if [ -s "$T/fence.end" ] && [ -s "$T/held.done" ] &&
	awk -v w="$(cat "$T/held.done")" -v f="$(cat "$T/fence.end")" 'BEGIN { exit !(w >= f) }'; then
	pass "... not before the handler answered"
else
	fail "the write completed before the handler answered (write $(cat "$T/held.done" 2>/dev/null), handler $(cat "$T/fence.end" 2>/dev/null))"
fi
check_eq "status shows its answer" "$(field "$A" "d['fence_peer']")" "exit 4"
check_eq "not frozen" "$(field "$A" "d['frozen']")" False
check_eq "fence-peer ran for this loss too" "$(lines "$T/fence.log")" 2
check "alpha's metadata records beta as outdated" sh -c "$A dump-md | grep -q 'peer beta.*peer_disk outdated'"
check "writes go on alone" qemu-io -f raw "$URI" -c 'write -P 0x22 3M 64k' -c flush
check "bring the link up again" $INA ip link set "$VA" up
if st=$(wait_synced 60); then pass "resynced after the heal"; else fail "no resync after the heal: $st"; fi
check_eq "unfence-peer ran on beta again" "$(unfenced_since "$u0")" "beta|r0|alpha"
check "the data areas are equal" $SAME
check "beta holds every acknowledged write" \
	qemu-io -f raw -r "$T/b.img" -c 'read -P 0x5a 0 64k' -c 'read -P 0x6b 2M 64k' -c 'read -P 0x22 3M 64k'

# --- 3. the primary is lost: the new primary fences it at its promotion ---
echo 5 >"$T/fence.rc"
u0=$(lines "$T/unfence.log")
check "kill -9 alpha" kill -KILL "$(daemon_pid alpha)"
check_eq "beta sees alpha gone" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 15)" True
check "beta primary (plain: it missed nothing under freeze)" $Bn primary
held_write "$URIB" 0x7c 4194304
held_wait 30
check_eq "beta's write completes once fence-peer said alpha is down" "$rc" 0
check_eq "beta ran fence-peer for alpha" "$(sed -n 3p "$T/fence.log")" "beta|r0|alpha|$T/r0.conf"
check_eq "beta shows its answer" "$(field "$Bn" "d['fence_peer']")" "exit 5"
check "alpha comes back" $INA $A up
check_eq "alpha, back as primary only because it went down as one, fences nobody" \
	"$(sed -n 4p "$T/fence.log")" ""
check_eq "alpha is secondary" "$(wait_field "$A" "d['role']" secondary 15)" secondary
if st=$(wait_synced 60); then pass "alpha resynced from beta"; else fail "no resync: $st"; fi
check_eq "alpha, the resync target, ran unfence-peer naming beta" "$(unfenced_since "$u0")" "alpha|r0|beta"
check "the data areas are equal" $SAME
check "alpha holds beta's write" qemu-io -f raw -r "$T/a.img" -c 'read -P 0x7c 4M 64k'
check_eq "fence-peer ran three times in all" "$(lines "$T/fence.log")" 3
finish
