#!/usr/bin/env bash
# Nodes with data areas of different sizes: the pair replicates the smaller
# one (a connected primary exports that size, and says why in its log); a
# primary already exporting more than its peer holds refuses the peer with
# the reason.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo

export BLKREP_RUN_DIR=$T/run
B=$BLKREP
pa=$(free_port)
pb=$(free_port)
truncate -s 64M "$T/a.img"
truncate -s 32M "$T/b.img"
printf 'pair-secret\n' >"$T/secret"
chmod 600 "$T/secret"
cat >"$T/r0.conf" <<CONF
[resource]
name = r0
secret-file = $T/secret
[node alpha]
address = 127.0.0.1:$pa
backing = $T/a.img
nbd = unix:$T/alpha.nbd
[node beta]
address = 127.0.0.1:$pb
backing = $T/b.img
CONF
A="$B -c $T/r0.conf --node alpha"
Bn="$B -c $T/r0.conf --node beta"
URI="nbd+unix:///r0?socket=$T/alpha.nbd"
trap '$A down >/dev/null 2>&1; $Bn down >/dev/null 2>&1; _cleanup' EXIT

field() {
	$1 status --json | $PY -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
wait_field() {
	local i v
	for i in $(seq 1 100); do
		v=$(field "$1" "$2" 2>/dev/null)
		[ "$v" = "$3" ] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "$v"
}

check "create both (zeroed)" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up both" sh -c "$A up && $Bn up"
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
small=$(field "$Bn" "d['size_bytes']")
check "alpha primary" $A primary
check "the export is up" nbdinfo --size "$URI"
check_eq "the export is the smaller data area (beta's)" "$(cat "$T/last.out")" "$small"
grep -q "data areas differ" "$T/run/r0-alpha.log" && pass "alpha's log says the areas differ" ||
	fail "no size warning: $(tail -3 "$T/run/r0-alpha.log")"

check "beta down" $Bn down
check "alpha secondary, then primary alone" sh -c "$A secondary && $A primary"
big=$(field "$A" "d['size_bytes']")
check "the export is up" nbdinfo --size "$URI"
check_eq "alone, alpha exports its whole data area" "$(cat "$T/last.out")" "$big"
check "beta up again" $Bn up
v=$(wait_field "$A" "'smaller than this primary' in d['peer']['last_error']" True)
check_eq "alpha refuses the smaller peer, saying why" "$v" True
check_eq "... and stays unconnected" "$(field "$A" "d['peer']['connection']")" connecting
finish
