#!/usr/bin/env bash
# A planned switchover needs no --force (issue 15): `down` of a primary
# connected to an up-to-date peer hands over (its clients answered, the
# stream flushed by the peer, STATE secondary sent), so the peer stays
# up to date and plain `primary` promotes it, and the old primary comes
# back as secondary.  Both directions, in sync and in async mode; at
# each handover the two data areas are byte-identical (nothing the old
# primary acknowledged is missing), and after each return the pair
# resyncs and ends equal.  A primary without an up-to-date peer connected
# still goes down as primary and comes back as one, and says so.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io cmp timeout
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
BURI="nbd+unix:///r0?socket=$T/beta.nbd"
pair_bounded 30

pair_start
check "a write through alpha (sync mode)" qemu-io -f raw "$URI" -c 'write -P 0x51 0 2M'

# switch FROM-CMD FROM TO-CMD TO URI PATTERN OFFSET: FROM is primary and
# connected; `down` hands over to TO, which is promoted by plain
# `primary` and written through; FROM comes back as secondary and the
# pair resyncs.
switch() {
	local from=$1 fname=$2 to=$3 tname=$4 uri=$5 pat=$6 off=$7 flags=${8:-} out
	out=$($from down $flags 2>&1)
	check_eq "$fname down $flags hands over to $tname" \
		"$(echo "$out" | grep -c "handed over to $tname and is secondary")" 1
	check_identical "$fname down: both data areas equal at the handover"
	check_eq "$tname stays up to date" "$(field "$to" "d['disk']")" uptodate
	check_eq "$tname: the peer is gone" "$(wait_field "$to" "d['peer']['connection']" connecting 10)" connecting
	check "$tname: plain primary (no --force)" $to primary
	check "a write through $tname" qemu-io -f raw "$uri" -c "write -P $pat $off 1M" -c flush
	out=$($from up 2>&1)
	check_eq "$fname comes back as secondary" "$(field "$from" "d['role']")" secondary
	check_eq "$fname reconnects" "$(wait_field "$from" "d['peer']['connection']" connected 15)" connected
	check_synced "$fname resyncs from $tname"
}

# The first handover as beta's event stream and both nodes' metrics see it.
timeout -k 2 60 $Bn events >"$T/events.beta" 2>&1 &
EVPID=$!
sleep 0.5
switch "$A" alpha "$Bn" beta "$BURI" 0x52 4M
kill "$EVPID" 2>/dev/null; wait "$EVPID" 2>/dev/null
# In order: alpha seen secondary while connected, the link gone with beta's
# disk still uptodate (never consistent), beta primary, alpha back as a
# connected secondary.
order=$($PY - "$T/events.beta" <<'PY'
import json, sys
want = [("connection", lambda d: d["connection"] == "connected" and d["role"] == "secondary"),
        ("connection", lambda d: d["connection"] == "connecting"),
        ("resource", lambda d: d["role"] == "primary"),
        ("connection", lambda d: d["connection"] == "connected" and d["role"] == "secondary")]
i, bad = 0, []
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("object") == "device" and d.get("disk") not in ("uptodate", None):
        bad.append(d["disk"])
    if i < len(want) and d.get("object") == want[i][0] and want[i][1](d):
        i += 1
print("%d/%d%s" % (i, len(want), " disk " + ",".join(bad) if bad else ""))
PY
)
check_eq "beta's events: alpha secondary, link gone, beta primary, alpha back (disk uptodate throughout)" \
	"$order" "4/4"
[ "$order" = 4/4 ] || sed 's/^/    | /' "$T/events.beta"
check_eq "beta's metrics: role primary, disk uptodate, connected to alpha" \
	"$($Bn metrics | grep -cE '^blkrep_(role\{.*role="primary"|disk_state\{.*state="uptodate"|connection_state\{.*state="connected").* 1$')" 3
check_eq "alpha's metrics: role secondary" \
	"$($A metrics | grep -cE '^blkrep_role\{.*role="secondary".* 1$')" 1
# systemd's stop (down --keep-attached) hands over too when nothing is attached.
switch "$Bn" beta "$A" alpha "$URI" 0x53 8M --keep-attached

# Async mode: acknowledged writes still queued for the peer at `down` are
# sent and flushed before the handover.
check "mode async" $A mode async
check "a burst through alpha (async mode)" qemu-io -f raw "$URI" \
	-c 'write -P 0x54 16M 16M' -c 'write -P 0x55 40M 8M'
switch "$A" alpha "$Bn" beta "$BURI" 0x56 20M
check_eq "beta follows async mode" "$(field "$Bn" "d['mode']")" async
switch "$Bn" beta "$A" alpha "$URI" 0x57 24M
check "mode sync" $A mode sync
check "the data is the last written: 0x57 at 24M, 0x55 at 40M" qemu-io -f raw "$URI" \
	-c 'read -P 0x57 24M 1M' -c 'read -P 0x55 40M 8M' -c 'read -P 0x52 4M 1M'

# No up-to-date peer connected: down keeps the role for the next up.
check "beta down (a secondary)" $Bn down
out=$($A down 2>&1)
check_eq "alpha down alone says it stays primary" \
	"$(echo "$out" | grep -c 'stopping as primary')" 1
check "alpha up" $A up
check_eq "alpha comes back as primary" "$(field "$A" "d['role']")" primary
check "beta up" $Bn up
check_synced "the pair reconnects"
finish
