#!/usr/bin/env bash
# Metadata version 2: one bitmap slot per peer (issue 16).
#  (a) Version 1 metadata (written here with tests/integration/mdtool.py,
#      as blkrep before version 2 left it) is shown as version 1 by dump-md,
#      which changes nothing; `up` upgrades it in place, saying so in one
#      log line, the data stays, and the pair still resyncs only what
#      changed while beta was down.
#  (b) `create --max-peers 3` on a two-node config: up works, a crash of
#      the primary settles in sync, dump-md shows 3 slots, one used;
#      out-of-range values are refused.
#  (c) A slot held by a node no longer in the config and none free: up
#      refuses with one line.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
MDTOOL="$PY $TESTS_DIR/mdtool.py"

# --- (a) version 1 upgraded by up ------------------------------------
pair_start "(a)"
check "(a) a pattern through alpha" qemu-io -f raw "$URI" -c "write -P 0x5a 0 2M" -c flush
if st=$(wait_synced 30); then pass "(a) synced"; else fail "(a) sync: $st"; fi
pair_stop	# down --keep-role: alpha comes back primary
check "(a) alpha's superblocks rewritten as version 1" $MDTOOL v1 "$T/a.img"
check "(a) beta's superblocks rewritten as version 1" $MDTOOL v1 "$T/b.img"
sum=$(md5sum <"$T/a.img")
check "(a) dump-md reads version 1" $A dump-md
grep -q '^version: *1$' "$T/last.out" && grep -q '^max_peers: *1$' "$T/last.out" &&
	pass "(a) ... and shows it as version 1 with one slot" || fail "(a) dump-md: $(cat "$T/last.out")"
check_eq "(a) dump-md changed nothing" "$(md5sum <"$T/a.img")" "$sum"
check "(a) up both" sh -c "$A up && $Bn up"
check_eq "(a) alpha's log says it upgraded, once" \
	"$(grep -c 'r0/alpha: metadata upgraded from version 1 to 2 (1 peer slot)' "$T/run/r0-alpha.log")" 1
check_eq "(a) connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
check_eq "(a) alpha is primary again" "$(field "$A" "d['role']")" primary
check "(a) the pattern is still there" qemu-io -f raw "$URI" -c "read -P 0x5a 0 2M"
check "(a) beta down" $Bn down
check "(a) 1 MiB written while beta is away" qemu-io -f raw "$URI" -c "write -P 0x6b 8M 1M" -c flush
check_eq "(a) alpha keeps it out of sync in beta's slot" \
	"$(field "$A" "d['out_of_sync_bytes']")" $((1 << 20))
check "(a) beta up" $Bn up
if st=$(wait_synced 30); then pass "(a) the pair resyncs"; else fail "(a) resync: $st"; fi
sent=$(field "$A" "d['stats']['resynced_bytes']")
[ "$sent" -le $((2 << 20)) ] && pass "(a) only what changed is resynced ($sent bytes)" ||
	fail "(a) resynced $sent bytes for a 1 MiB change"
pair_stop
check "(a) dump-md after the upgrade" $A dump-md
grep -q '^version: *2$' "$T/last.out" && grep -q '^slot 0: *peer beta,' "$T/last.out" &&
	pass "(a) version 2 on disk, slot 0 is beta's" || fail "(a) dump-md: $(cat "$T/last.out")"

# --- (b) create --max-peers 3 on a two-node config --------------------
for bad in 0 8 x; do
	check_fails "(b) create --max-peers $bad refused" $A create --force --max-peers $bad
	grep -q "max-peers must be a number from 1 to 7" "$T/last.err" &&
		[ "$(wc -l <"$T/last.err")" -eq 1 ] && pass "(b) ... in one line" ||
		fail "(b) --max-peers $bad: $(cat "$T/last.err")"
done
check "(b) create --max-peers 3 on alpha" $A create --force --zeroed --max-peers 3
grep -q "3 peer slots" "$T/last.out" && pass "(b) ... saying 3 peer slots" ||
	fail "(b) create: $(cat "$T/last.out")"
check "(b) create on beta (default: the config's one peer)" $Bn create --force --zeroed
grep -q "1 peer slot," "$T/last.out" && pass "(b) ... one slot" || fail "(b) create: $(cat "$T/last.out")"
check "(b) up both" sh -c "$A up && $Bn up"
check_eq "(b) connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
check "(b) alpha primary" $A primary
size=$(field "$A" "d['size_bytes']")	# alpha's three slots leave less data
check "(b) writes replicate" qemu-io -f raw "$URI" -c "write -P 0x7c 0 1M" -c flush
if st=$(wait_synced 30); then pass "(b) in sync"; else fail "(b) sync: $st"; fi
# A crash as primary marks the activity log in every slot, the two free
# ones too: they are no peer's, so the pair still settles in sync.
check "(b) a write in flight" qemu-io -f raw "$URI" -c "write -P 0x7d 4M 1M" -c flush
check_kill9 "(b) alpha killed (kill -9)" "$(daemon_pid alpha)"
check_up_crashed "(b)"
check_settles "(b)"
pair_stop
check "(b) dump-md on alpha" $A dump-md
grep -q '^max_peers: *3$' "$T/last.out" && [ "$(grep -c '^slot [0-9]:' "$T/last.out")" = 1 ] &&
	grep -q '^slot 0: *peer beta,' "$T/last.out" &&
	pass "(b) 3 slots, one used (beta's)" || fail "(b) dump-md: $(cat "$T/last.out")"

# --- (c) no slot for the config's peer -------------------------------
check "(c) beta's slot renamed to a node not in the config" $MDTOOL rename-slot "$T/b.img" alpha gamma
check_fails "(c) up on beta refused" $Bn up
grep -q "no free peer slot" "$T/last.err" && [ "$(wc -l <"$T/last.err")" -eq 1 ] &&
	pass "(c) ... in one line: $(cat "$T/last.err")" || fail "(c) up: $(cat "$T/last.err")"
finish
