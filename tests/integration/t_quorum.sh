#!/usr/bin/env bash
# Quorum with a diskless witness (issue 17, part 5): two data nodes, alpha
# and beta, and a witness, each in its own network namespace (trio.sh).
#  (1) up: alpha has quorum (3 of 3 voters), the witness sees both data
#      nodes; writes through alpha reach beta, identical.
#  (2) alpha cut off from beta and the witness: a write on alpha is held
#      (not acknowledged after 5 s; status: quorum false, io_suspended,
#      quorum_why names the voters); beta (quorum with the witness) is
#      promoted with a plain `primary` and writes a marker.
#  (3) heal: alpha steps back to secondary by itself, the held write's
#      client gets an error, alpha resyncs from beta: identical, the marker
#      there, the held write nowhere, no save file, never a split brain.
#  (5) the secondary (alpha) cut off: beta keeps writing (quorum with the
#      witness; acknowledged after a short pause); kill -9 beta, heal
#      alpha: `primary` on alpha is refused, a voter knows newer data.
#  (6) beta back; the witness killed -9 and started again: its state file
#      kept the generation (equal to the primary's).
#  (4) on-no-quorum = io-error (the daemons restarted with it): the cut
#      primary's write, issued at the cut, fails with EIO within 10 s (the
#      link counts as lost after 5 s of silence), the next one at once;
#      healed, it stays primary (nobody else was promoted) and writes again.
# A sampler records every node's status throughout: no sample shows a
# split brain or two primaries that could both acknowledge.
. "$(dirname "$0")/lib.sh"
require_cmd ip nsenter qemu-io cmp
. "$(dirname "$0")/trio.sh"
export BLKREP_SAVE_DIR=$T/saved
mkdir -p "$BLKREP_SAVE_DIR"
K=65536

TRIO_WITNESS=witness
trio_init 64M alpha beta witness

# qw NODE BYTE OFF [LEN]: write LEN (default 64k) bytes of BYTE at OFF through
# NODE's export, then FLUSH, bounded by $QW_TMO seconds (default 20).
qw() {
	timeout -k 2 "${QW_TMO:-20}" qemu-io -f raw "$(trio_uri "$1")" -c "write -P $2 $3 ${4:-64k}" -c flush
}
# has NODE BYTE OFF [LEN]: NODE's backing file holds BYTE there.
has() { qemu-io -U -r -f raw "$(trio_img "$1")" -c "read -P $2 $3 ${4:-64k}" 2>&1 | grep -q '^read '; }
# gen NODE: NODE's generation (status --json), as an integer.
gen() { trio_field "$1" "int(str(d.get('generation')), 16) if isinstance(d.get('generation'), str) else d.get('generation')"; }
# peerconn NODE OTHER: NODE's view of its link to OTHER.
peerconn() { trio_field "$1" "peer('$2').get('connection')"; }

trio_step "(1) two data nodes and a witness up"
trio_start || {
	fail "the nodes do not start with a witness (above: the daemon's own words); the rest needs quorum and the witness (issue 17)"
	exit 1
}
trio_sample_start
check_eq "(1) alpha: quorum true, 3 voters, 3 connected, policy majority" \
	"$(trio_field alpha "(d.get('quorum'), d.get('voters'), d.get('voters_connected'), d.get('quorum_policy'))")" \
	"(True, 3, 3, 'majority')"
check_eq "(1) alpha lists the witness as a peer: role witness, disk diskless" \
	"$(trio_field alpha "(peer('witness').get('connection'), peer('witness').get('role'), peer('witness').get('disk'))")" \
	"('connected', 'witness', 'diskless')"
check_eq "(1) the witness: role witness, both links connected" \
	"$(trio_field witness "(d.get('role'), peer('alpha').get('connection'), peer('beta').get('connection'))")" \
	"('witness', 'connected', 'connected')"
check_eq "(1) alpha primary, beta secondary" \
	"$(trio_field alpha "d['role']") $(trio_field beta "d['role']")" "primary secondary"
trio_run "(1) write 1 MiB of 0x11 through alpha" qw alpha 0x11 0 1M
check_trio_synced "(1) alpha and beta" 30 alpha beta
trio_identical alpha beta "(1) alpha and beta byte-identical"

trio_step "(2) alpha cut off from beta and the witness"
trio_cut alpha beta
trio_cut alpha witness
check_eq "(2) alpha loses quorum (within 20 s)" "$(trio_wait_field alpha "d.get('quorum')" False 20)" False
t0=$SECONDS
QW_TMO=90 qw alpha 0x22 1M >"$T/held.out" 2>&1 &
HELD=$!
BG_PIDS+=("$HELD")
sleep 5
if kill -0 "$HELD" 2>/dev/null; then
	pass "(2) a write on alpha is not acknowledged after 5 s (held)"
else
	wait "$HELD"
	fail "(2) the write on alpha without quorum ended after $((SECONDS - t0)) s (exit $?): $(tr '\n' ' ' <"$T/held.out")"
fi
check_eq "(2) alpha's status: role primary, quorum false, io_suspended true" \
	"$(trio_field alpha "(d['role'], d.get('quorum'), d.get('io_suspended'))")" "('primary', False, True)"
why=$(trio_field alpha "d.get('quorum_why')")
msg "(2) alpha's quorum_why: $why"
check_eq "(2) quorum_why names the count and alpha (connected to 1 of 3 voters (alpha))" \
	"$(grep -c '1 of 3 voters (alpha)' <<<"$why")" 1
check_eq "(2) status text says quorum LOST and writes suspended" \
	"$($TRIO_A status 2>/dev/null | grep -ci 'quorum: LOST.*suspend')" 1
check_eq "(2) beta keeps quorum (beta and the witness, within 20 s)" \
	"$(trio_wait_field beta "(d.get('quorum'), d.get('voters_connected'))" "(True, 2)" 20)" "(True, 2)"
check "(2) primary on beta, no --force" $TRIO_B primary
trio_run "(2) beta writes a marker (64 KiB of 0x33 at 2 MiB)" qw beta 0x33 2M

trio_step "(3) heal: alpha steps back and resyncs from beta"
trio_heal alpha beta
trio_heal alpha witness
check_eq "(3) alpha becomes secondary by itself (within 15 s)" \
	"$(trio_wait_field alpha "d['role']" secondary 15)" secondary
for i in $(seq 1 100); do kill -0 "$HELD" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$HELD" 2>/dev/null; then
	fail "(3) the held write's client still waits 10 s after alpha stepped back"
else
	wait "$HELD"
	rc=$?
	msg "(3) the held write's client: exit $rc: $(tr '\n' ' ' <"$T/held.out")"
	check_eq "(3) the held write's client got an error (qemu-io exit non-zero, not a timeout)" \
		"$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo yes)" yes
fi
check_trio_synced "(3) alpha resynced from beta" 60 alpha beta
trio_identical alpha beta "(3) alpha and beta byte-identical"
trio_run "(3) alpha holds beta's marker" has alpha 0x33 2M
trio_run "(3) the held write is nowhere (beta, hence alpha, has zeroes at 1 MiB)" has beta 0 1M
check_eq "(3) no save file was needed" "$(ls "$BLKREP_SAVE_DIR" | wc -l)" 0
check_eq "(3) no split brain in any status so far" \
	"$(trio_samples | sed 's/.*splitbrain=\([0-9]*\).*/\1/')" 0

trio_step "(5) the secondary (alpha) cut off: beta writes on with the witness"
trio_cut alpha beta
trio_cut alpha witness
t0=$(trio_now)
trio_run "(5) a write on beta is acknowledged (within 20 s)" qw beta 0x44 3M
msg "(5) the write took $(trio_since "$t0") s (the pause while the witness records alpha behind)"
QW_TMO=10 trio_run "(5) and the next one too" qw beta 0x45 4M
check_eq "(5) beta: quorum true (2 of 3), primary" \
	"$(trio_field beta "(d.get('quorum'), d.get('voters_connected'), d['role'])")" "(True, 2, 'primary')"
trio_kill9 beta
trio_heal alpha witness
trio_heal alpha beta
check_eq "(5) alpha has quorum again with the witness" "$(trio_wait_field alpha "d.get('quorum')" True 20)" True
check_fails "(5) primary on alpha is refused" $TRIO_A primary
refusal=$(cat "$T/last.out" "$T/last.err")
msg "(5) the refusal: $refusal"
check_eq "(5) the refusal says a voter knows newer data" "$(grep -ci 'newer' <<<"$refusal")" 1
check_eq "(5) alpha is still secondary" "$(trio_field alpha "d['role']")" secondary

trio_step "(6) beta back; the witness restarted keeps the generation"
trio_up beta
if [ "$(trio_wait_field beta "d['role']" primary 5)" != primary ]; then
	check "(6) beta primary again (it holds the newest data)" $TRIO_B primary
fi
check_trio_synced "(6) alpha and beta" 60 alpha beta
trio_run "(6) alpha holds what beta wrote alone" has alpha 0x45 4M
g=$(gen beta)
check_eq "(6) the witness follows beta's generation" "$(trio_wait_field witness "int(str(d.get('generation')), 16) if isinstance(d.get('generation'), str) else d.get('generation')" "$g" 10)" "$g"
trio_kill9 witness
trio_up witness
check_eq "(6) the restarted witness has beta's generation (from its state file)" "$(gen witness)" "$g"
m=$(trio_wait_mesh 20 $TRIO_ALL)
check_eq "(6) the witness reconnects to both" "$m" connected
check_eq "(6) beta has quorum, 3 of 3" "$(trio_wait_field beta "(d.get('quorum'), d.get('voters_connected'))" "(True, 3)" 10)" "(True, 3)"

s=$(trio_samples)
msg "status samples (1)-(6): $s"
check_eq "(1)-(6) no split brain and never two primaries that could both acknowledge, in any sample" \
	"$(sed 's/samples=[0-9]* //; s/ primaries2=[0-9]*//' <<<"$s")" "splitbrain=0 writable2=0"
trio_sample_stop

trio_step "(4) on-no-quorum = io-error: the daemons restarted with it"
trio_stop
TRIO_EXTRA="on-no-quorum = io-error"
trio_conf "$T/r0.conf" $TRIO_ALL
for n in $TRIO_ALL; do trio_up "$n"; done
m=$(trio_wait_mesh 20 $TRIO_ALL)
check_eq "(4) all three connected again" "$m" connected
if [ "$(trio_wait_field beta "d['role']" primary 5)" != primary ]; then
	check "(4) beta primary" $TRIO_B primary
fi
check_trio_synced "(4) alpha and beta" 30 alpha beta
t4=$(trio_now)
trio_sample_start
trio_cut beta alpha
trio_cut beta witness
t0=$(trio_now)
QW_TMO=15 qw beta 0x55 5M >"$T/eio.out" 2>&1
rc=$?
secs=$(trio_since "$t0")
msg "(4) beta's write issued at the cut: exit $rc after $secs s: $(tr '\n' ' ' <"$T/eio.out")"
check_eq "(4) it fails (not held: exit non-zero, not a timeout)" "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo yes)" yes
check_eq "(4) with an I/O error (EIO)" "$(grep -ci 'Input/output error' "$T/eio.out" | sed 's/^[1-9][0-9]*$/yes/')" yes
check_eq "(4) within 10 s of the cut (the link counts as lost after 5 s of silence): $secs s" \
	"$(trio_lt "$secs" 10 && echo yes)" yes
check_eq "(4) beta has lost quorum" "$(trio_wait_field beta "d.get('quorum')" False 10)" False
t0=$(trio_now)
QW_TMO=15 qw beta 0x57 7M >"$T/eio2.out" 2>&1
rc=$?
secs=$(trio_since "$t0")
msg "(4) a write without quorum: exit $rc after $secs s: $(tr '\n' ' ' <"$T/eio2.out")"
check_eq "(4) a write without quorum fails with EIO within 2 s ($secs s)" \
	"$(grep -ci 'Input/output error' "$T/eio2.out" | sed 's/^[1-9][0-9]*$/yes/') $(trio_lt "$secs" 2 && echo yes)" "yes yes"
check_eq "(4) beta's status: quorum false, io_suspended false, on-no-quorum io-error" \
	"$(trio_field beta "(d.get('quorum'), d.get('io_suspended'))")" "(False, False)"
trio_heal beta alpha
trio_heal beta witness
check_eq "(4) healed: beta has quorum again" "$(trio_wait_field beta "d.get('quorum')" True 20)" True
check_eq "(4) and stays primary (nobody else was promoted)" "$(trio_field beta "d['role']")" primary
trio_run "(4) beta writes again" qw beta 0x56 6M
check_trio_synced "(4) alpha and beta" 60 alpha beta
trio_identical alpha beta "(4) alpha and beta byte-identical"
s=$(trio_samples "$t4")
msg "status samples (4): $s"
check_eq "(4) no split brain, never two primaries" "$(sed 's/samples=[0-9]* //' <<<"$s")" \
	"splitbrain=0 primaries2=0 writable2=0"
check_eq "no save file in the whole test" "$(ls "$BLKREP_SAVE_DIR" | wc -l)" 0
finish
