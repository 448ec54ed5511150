#!/usr/bin/env bash
# Nodes with data areas of different sizes: the pair replicates the smaller
# one (a connected primary exports that size, and says why in its log); a
# primary already exporting more than its peer holds refuses the peer with
# the reason.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 32M

check "create both (zeroed)" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up both" sh -c "$A up && $Bn up"
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
small=$(field "$Bn" "d['size_bytes']")
check "alpha primary" $A primary
check "the export is up" nbdinfo --size "$URI"
check_eq "the export is the smaller data area (beta's)" "$(cat "$T/last.out")" "$small"
grep -q "data areas differ" "$T/run/r0-alpha.log" && pass "alpha's log says the areas differ" ||
	fail "no size warning: $(tail -3 "$T/run/r0-alpha.log")"
check "a write through the export" qemu-io -f raw "$URI" -c "write -P 0x5a 0 64k" -c "write -P 0x5b $((small - 65536)) 64k" -c flush
check_synced "the pair reports in sync (the smaller data area compared)"

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
