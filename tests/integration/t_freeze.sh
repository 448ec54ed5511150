#!/usr/bin/env bash
# on-peer-loss = freeze, with the link really cut: alpha and beta run in
# two network namespaces joined by a veth pair, and the veth is set down.
# A write issued after the cut must not complete (alpha holds it and shows
# frozen: true once it has declared the peer lost) until the operator runs
# `blkrep outdate-peer`; then it completes successfully within a few
# seconds and frozen is false.  When the link comes back the pair
# reconnects and resyncs, and the replicas end equal.
# The control and NBD sockets are filesystem paths, reachable from the
# host namespace.  Skips if network namespaces cannot be made here.
. "$(dirname "$0")/lib.sh"
require_cmd ip qemu-io
require_nbdsh

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M

trap 'pair_stop; pair_netns_del; _cleanup' EXIT
pair_netns

pair_conf_extra "on-peer-loss = freeze"
check "create both --zeroed" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up alpha in its namespace" $INA $A up
check "up beta in its namespace" $INB $Bn up
check_eq "connected over the veth" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary" $A primary
check_eq "status shows on_peer_loss freeze" "$(field "$A" "d['on_peer_loss']")" freeze
check_eq "not frozen while connected" "$(field "$A" "d.get('frozen')")" False
size=$(field "$A" "d['size_bytes']")
SAME="$TESTS_DIR/cmp_areas.sh $size $T/a.img $T/b.img"
check "a write while connected completes" qemu-io -f raw "$URI" -c 'write -P 0x11 1M 64k' -c flush
check "the replicas are equal" $SAME

check "cut the link (veth down in alpha's namespace)" $INA ip link set "$VA" down
t0=$(date +%s)
# The write is sent at once, before alpha can know the link is gone: it is
# in flight to the peer when the peer is declared lost.  Its end time goes
# to held.done, for the message if it completes too early.
(
	timeout -k 5 60 nbdsh -u "$URI" -c 'h.pwrite(b"\x5a" * 65536, 0)' -c 'h.flush()'
	rc=$?
	date +%s >"$T/held.done"
	exit $rc
) >"$T/held.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
# The keepalive drops a silent peer within ~5 s; allow 15.
v=$(wait_field "$A" "d.get('frozen')" True 15)
check_eq "alpha shows frozen: true after losing its peer ($(($(date +%s) - t0)) s after the cut)" "$v" True
check_eq "alpha no longer counts the peer as connected" \
	"$(field "$A" "d['peer']['connection'] != 'connected'")" True
if kill -0 "$wpid" 2>/dev/null; then
	pass "the write issued after the cut has not completed ($(($(date +%s) - t0)) s after the cut)"
else
	wait "$wpid"
	fail "the write issued after the cut completed (exit $?, $(($(cat "$T/held.done") - t0)) s after the cut) while the peer was lost: not frozen"
	sed 's/^/    | /' "$T/held.out"
fi
check "outdate-peer: the operator says beta is fenced" $A outdate-peer
rc=timeout
for i in $(seq 1 50); do
	if ! kill -0 "$wpid" 2>/dev/null; then
		wait "$wpid"
		rc=$?
		break
	fi
	sleep 0.1
done
check_eq "the held write completes successfully within 5 s of outdate-peer" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$T/held.out"
check_eq "frozen is false again" "$(field "$A" "d.get('frozen')")" False
check "new writes complete alone" qemu-io -f raw "$URI" -c 'write -P 0x22 2M 64k' -c flush
check "alpha holds the writes" qemu-io -f raw "$URI" -c 'read -P 0x5a 0 64k' -c 'read -P 0x22 2M 64k'
check_fails "the replicas differ while the link is down" $SAME

check "bring the link up again" $INA ip link set "$VA" up
check_eq "the pair reconnects within 20 s" \
	"$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
if st=$(wait_synced 60); then
	pass "the resync after the reconnect finishes"
else
	fail "the resync after the reconnect did not finish: $st"
fi
check_eq "beta's disk ends uptodate" "$(field "$Bn" "d['disk']")" uptodate
check "the data areas are equal" $SAME
check_eq "still not frozen" "$(field "$A" "d.get('frozen')")" False
finish
