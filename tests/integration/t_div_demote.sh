#!/usr/bin/env bash
# Issue 12, bug 2: demoting clears the crashed-primary flag without
# persisting the bitmap (DESIGN.md rule 10), and a connected pair that
# knows of out-of-sync extents does not resync them by itself.
#
# node_demote() writes only the superblock.  Bits that exist only in
# memory (here: a write outstanding when the link went, acknowledged under
# on-peer-loss = continue) are forgotten when the process dies afterwards:
# the superblock no longer says "crashed primary", so nothing recovers
# them from the activity log either.
#
# Scenario: sync mode, on-peer-loss = continue; SIGSTOP beta's daemon; a
# 64 KiB write W at 8 MiB (pattern 0x5a) through alpha is outstanding
# (qemu-io in the background waits for beta's ACK); kill -9 beta: the link
# goes, W is acknowledged, alpha's status shows 64 KiB out of sync (and
# dump-md shows what the metadata holds); `blkrep secondary` on alpha;
# kill -9 alpha; `up` both (both come back secondary, consistent);
# `primary --force` on alpha.
#
# What it proves: the pair then resyncs W's extent by itself, within 30 s,
# with no `blkrep resync` from an operator, and ends byte-identical with W
# on both.  On the code before the fix no resync starts (beta stays
# consistent).  To show that the bitmap also lost W, the test then does
# run `blkrep resync` (only when the pair did not settle by itself) and
# applies the oracle: the pair claims to be in sync while the extent
# holding W (#2, 8-12 MiB) differs and beta lacks W.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io cmp
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap '[ $FAILS -gt 0 ] && show_logs 20; kill -CONT "$(daemon_pid beta)" 2>/dev/null; pair_stop; _cleanup' EXIT
pair_bounded
MIB=1048576
W_OFF=$((8 * MIB))

pair_conf_extra "on-peer-loss = continue"
pair_start
check_eq "sync mode" "$(field "$A" "d['mode']")" sync
need_synced || exit 1

bpid=$(daemon_pid beta)
check "SIGSTOP beta's daemon (pid '$bpid')" kill -STOP "$bpid"
writes0=$(field "$A" "d['stats']['writes']")
bg timeout -k 2 30 qemu-io -f raw "$URI" -c "write -P 0x5a $W_OFF 64k" >"$T/qio.out" 2>&1
qpid=$!
check_eq "W is sent to beta and waits for its ACK" \
	"$(wait_field "$A" "d['stats']['writes'] > $writes0" True 10)" True
sleep 0.3
check_eq "... qemu-io is still waiting" "$(kill -0 "$qpid" 2>/dev/null && echo yes)" yes
check "kill -9 beta's daemon (pid '$bpid')" kill -9 "$bpid"
for i in $(seq 1 100); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
wait "$qpid"
check_eq "W is acknowledged once the link is gone (qemu-io exit)" "$?" 0
grep -q '^wrote 65536/65536 bytes at offset' "$T/qio.out" || sed 's/^/    | /' "$T/qio.out"
check_eq "alpha: W's 64 KiB out of sync" \
	"$(wait_field "$A" "d['out_of_sync_bytes']" 65536 10)" 65536
check "dump-md on alpha" $A dump-md
msg "alpha's metadata now: $(grep '^bitmap:' "$T/last.out")"

check "blkrep secondary on alpha" $A secondary
check_eq "alpha is secondary" "$(field "$A" "d['role']")" secondary
apid=$(daemon_pid alpha)
check_kill9 "kill -9 alpha's daemon (pid '$apid')" "$apid"
check "dump-md on alpha after the kill" $A dump-md
msg "alpha's metadata after the kill: $(grep '^bitmap:' "$T/last.out")"

check "up alpha" $A up
check "up beta" $Bn up
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
msg "before the promotion: $(sync_state)"
check "primary --force on alpha" $A primary --force
check_eq "alpha is primary" "$(field "$A" "d['role']")" primary

if st=$(wait_synced 30); then
	pass "the pair resyncs by itself after the promotion ($st)"
else
	fail "no resync by itself after the promotion (waited up to 30 s, 15 s without change): $st"
	# Would an operator's resync repair it?  Only if the bitmap still
	# knows W's extent.
	check "(diagnostic) blkrep resync on alpha" $A resync
	if st=$(wait_synced 30); then
		pass "(diagnostic) after blkrep resync the pair says it is in sync ($st)"
	else
		fail "(diagnostic) not in sync within 30 s of blkrep resync: $st"
	fi
fi
case $(sync_state) in
synced*) check_identical "in sync, so the data areas are byte-identical" ;;
*) fail "the pair never got in sync, so the oracle cannot apply: $(sync_state)" ;;
esac
check "W is on alpha" cmp -n 65536 -i "$W_OFF:0" "$T/a.img" <(head -c 65536 /dev/zero | tr '\0' '\132')
check "W is on beta" cmp -n 65536 -i "$W_OFF:0" "$T/b.img" <(head -c 65536 /dev/zero | tr '\0' '\132')
finish
