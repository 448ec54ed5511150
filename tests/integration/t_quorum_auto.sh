#!/usr/bin/env bash
# Automatic failover with quorum (issue 17, part 3 and 5): alpha, beta and
# a witness, each in its own network namespace (trio.sh), with
# `auto-failover = yes` and a `promote-command` that appends
# "$BLKREP_NODE $BLKREP_RESOURCE" to a file.
#  (A) kill -9 the primary (alpha): beta promotes itself within 10 s, the
#      command ran there (the file names beta); beta writes; alpha comes
#      back (`up`) as secondary, resyncs, identical.  No status sample
#      shows two primaries from the kill to alpha's `up`, nor after it two
#      that could both acknowledge (alpha returns as a primary without
#      quorum for a moment, then steps back).
#  (B) cut the primary (beta) off from both others: alpha promotes itself
#      within 10 s of the cut (the command ran, the file names alpha);
#      beta stays primary without quorum (its writes suspended) until the
#      heal, then steps back to secondary by itself and resyncs: identical,
#      alpha's writes on both.  No sample shows two primaries that could
#      both acknowledge, nor a split brain; no save file.  (In (A) the
#      killed primary comes back as a resumed primary and saves its
#      activity log's extents before the resync, as after any crash of a
#      primary: it cannot tell how the other was promoted.)
. "$(dirname "$0")/lib.sh"
require_cmd ip nsenter qemu-io cmp
. "$(dirname "$0")/trio.sh"
export BLKREP_SAVE_DIR=$T/saved
mkdir -p "$BLKREP_SAVE_DIR"

TRIO_WITNESS=witness
TRIO_EXTRA="auto-failover = yes
promote-command = echo \"\$BLKREP_NODE \$BLKREP_RESOURCE\" >>$T/promoted"
trio_init 64M alpha beta witness

qw() {
	timeout -k 2 "${QW_TMO:-20}" qemu-io -f raw "$(trio_uri "$1")" -c "write -P $2 $3 ${4:-64k}" -c flush
}
has() { qemu-io -U -r -f raw "$(trio_img "$1")" -c "read -P $2 $3 ${4:-64k}" 2>&1 | grep -q '^read '; }

# promoted_by NODE SECS (since the time $t0): waits until NODE is primary;
# prints the seconds it took, or "never".
promoted_by() {
	if [ "$(trio_wait_field "$1" "d['role']" primary "$2")" = primary ]; then
		trio_since "$t0"
	else
		echo never
	fi
}

trio_step "(A) up with auto-failover; kill -9 the primary"
trio_start || {
	fail "the nodes do not start with a witness and auto-failover (above: the daemon's own words)"
	exit 1
}
check_eq "(A) alpha has quorum 3 of 3" \
	"$(trio_field alpha "(d.get('quorum'), d.get('voters_connected'))")" "(True, 3)"
trio_run "(A) alpha writes 1 MiB of 0x11" qw alpha 0x11 0 1M
check_trio_synced "(A) alpha and beta" 30 alpha beta
# A fresh resource may already have promoted alpha by itself (all
# secondaries, quorum, nobody newer): only what follows counts.
msg "(A) promotions before the kill: $(cat "$T/promoted" 2>/dev/null | tr '\n' ';')"
n0=$(cat "$T/promoted" 2>/dev/null | wc -l)
# new_promotions: the promote-command's lines since the kill, ';'-joined.
new_promotions() { tail -n +$((n0 + 1)) "$T/promoted" 2>/dev/null | tr '\n' ';'; }
tA=$(trio_now)
trio_sample_start 0.2
sleep 1
t0=$(trio_now)
trio_kill9 alpha
took=$(promoted_by beta 10)
msg "(A) beta promoted itself $took s after alpha's kill"
check_eq "(A) beta promotes itself within 10 s" "$([ "$took" != never ] && trio_lt "$took" 10 && echo yes)" yes
sleep 1
check_eq "(A) the promote-command ran on beta, once, with BLKREP_NODE and BLKREP_RESOURCE" \
	"$(new_promotions)" "beta r0;"
trio_run "(A) beta writes a marker (0x33 at 2 MiB)" qw beta 0x33 2M
tUp=$(trio_now)
trio_up alpha
check_eq "(A) alpha comes back as secondary" "$(trio_wait_field alpha "d['role']" secondary 15)" secondary
check_trio_synced "(A) alpha resyncs from beta" 60 alpha beta
trio_identical alpha beta "(A) alpha and beta byte-identical"
trio_run "(A) alpha holds beta's marker" has alpha 0x33 2M
s=$(trio_samples "$tA")
msg "(A) status samples: $s"
# The killed primary comes back `up` as a primary (as it went down), without
# quorum until it connects, then steps back: a sample may catch it primary
# for that moment (primaries2), never with quorum (writable2).
check_eq "(A) never two primaries that could both acknowledge, never a split brain" \
	"$(sed 's/samples=[0-9]* //; s/ primaries2=[0-9]*//' <<<"$s")" "splitbrain=0 writable2=0"
# (A sample is stamped when its queries start; a query to a node that is
# down waits up to 2 s for it to start, so the samples of the 2.5 s before
# the `up` may hold alpha's answer after it.)
check_eq "(A) never two primaries at once while alpha was down (kill to up)" \
	"$(trio_samples "$tA" "$(awk -v t="$tUp" 'BEGIN { printf "%.3f", t - 2.5 }')" |
		sed 's/.*primaries2=\([0-9]*\).*/\1/')" 0

trio_step "(B) cut the primary (beta) off"
m=$(trio_wait_mesh 20 $TRIO_ALL)
check_eq "(B) all three connected" "$m" connected
tB=$(trio_now)
nsaved=$(ls "$BLKREP_SAVE_DIR" | wc -l)
t0=$(trio_now)
trio_cut_off beta
took=$(promoted_by alpha 10)
msg "(B) alpha promoted itself $took s after the cut"
check_eq "(B) alpha promotes itself within 10 s of the cut" \
	"$([ "$took" != never ] && trio_lt "$took" 10 && echo yes)" yes
sleep 1
check_eq "(B) the promote-command ran on alpha" "$(new_promotions)" "beta r0;alpha r0;"
check_eq "(B) beta, cut off: no quorum" "$(trio_wait_field beta "d.get('quorum')" False 10)" False
trio_run "(B) alpha writes a marker (0x44 at 3 MiB)" qw alpha 0x44 3M
trio_heal_all beta
check_eq "(B) healed: beta is secondary (within 15 s)" "$(trio_wait_field beta "d['role']" secondary 15)" secondary
check_eq "(B) alpha stays primary" "$(trio_field alpha "d['role']")" primary
check_trio_synced "(B) beta resyncs from alpha" 60 alpha beta
trio_identical alpha beta "(B) alpha and beta byte-identical"
trio_run "(B) beta holds alpha's marker" has beta 0x44 3M
trio_run "(B) and beta's own from (A)" has beta 0x33 2M
check_eq "(B) promotions since the kill: beta then alpha, nothing else" "$(new_promotions)" "beta r0;alpha r0;"
s=$(trio_samples "$tB")
msg "(B) status samples: $s (two primaries while beta is cut off: it keeps the role without quorum)"
check_eq "(B) never two primaries that could both acknowledge, never a split brain" \
	"$(sed 's/samples=[0-9]* //; s/ primaries2=[0-9]*//' <<<"$s")" "splitbrain=0 writable2=0"
check_eq "(B) no save file made by the cut and the heal" "$(ls "$BLKREP_SAVE_DIR" | wc -l)" "$nsaved"
finish
