#!/usr/bin/env bash
# Nodes with data areas of different sizes: the pair replicates the smaller
# one (a connected primary exports that size, and says why in its log); the
# size agreed at a connect is kept in the metadata, so a primary that comes
# back alone (restart, or promotion without its peer) exports it too and the
# peer is accepted again; a primary that never met its peer exports its
# whole area and refuses a smaller peer with the reason.
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

check "a write to the last MiB of the export" \
	qemu-io -f raw "$URI" -c "write -P 0x5a $((small - 1048576)) 1M" -c flush
check "beta down" $Bn down
check "alpha secondary, then primary alone" sh -c "$A secondary && $A primary"
check "the export is up" nbdinfo --size "$URI"
check_eq "alone, alpha exports the size agreed with beta" "$(cat "$T/last.out")" "$small"
check "alpha down and up again, alone" sh -c "$A down && $A up"
check "the export is up" nbdinfo --size "$URI"
check_eq "restarted alone, alpha still exports the agreed size" "$(cat "$T/last.out")" "$small"
check "a write alone, at the end of the export" \
	qemu-io -f raw "$URI" -c "write -P 0x6b $((small - 4096)) 4k" -c flush
check "beta up again" $Bn up
check_eq "alpha accepts beta again" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
if st=$(wait_synced 30); then pass "the pair resyncs: $st"; else fail "not in sync: $st"; fi
check "the replicated areas are equal" cmp -n "$small" "$T/a.img" "$T/b.img"

# A new pair (not zeroed) of different sizes: the full sync copies the
# smaller area; the larger node's tail is never counted out of sync, in
# status or after verify (issue 15), and status shows both areas.
check "both down" sh -c "$A down && $Bn down"
check "new metadata on both, not zeroed" sh -c "$A create --force && $Bn create --force"
check "up both" sh -c "$A up && $Bn up"
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "alpha primary --force (the first sync)" $A primary --force
check_synced "the first sync finishes"
check_eq "alpha: nothing out of sync (its tail is not counted)" "$(field "$A" "d['out_of_sync_bytes']")" 0
check_eq "alpha: size_bytes is the replicated size" "$(field "$A" "d['size_bytes']")" "$small"
check_eq "alpha: data_area_bytes is its own, larger area" \
	"$(field "$A" "d['data_area_bytes'] > d['size_bytes'] and d['peer_data_area_bytes'] == d['size_bytes']")" True
check "verify on alpha" $A verify
check_eq "verify counts nothing out of sync ($(tail -1 "$T/last.out"))" \
	"$(grep -c "0 extents differ (0 bytes now out of sync)" "$T/last.out")" 1

# A primary that never met its peer exports its whole area, and then
# refuses a smaller peer, saying why.
check "both down" sh -c "$A down && $Bn down"
check "fresh metadata on both" sh -c "$A create --force && $Bn create --force"
check "alpha up alone, primary --force" sh -c "$A up && $A primary --force"
big=$(field "$A" "d['size_bytes']")
check "the export is up" nbdinfo --size "$URI"
check_eq "never connected, alpha exports its whole data area" "$(cat "$T/last.out")" "$big"
check "beta up" $Bn up
v=$(wait_field "$A" "'smaller than this primary' in d['peer']['last_error']" True)
check_eq "alpha refuses the smaller peer, saying why" "$v" True
check_eq "... and stays unconnected" "$(field "$A" "d['peer']['connection']")" connecting
finish
