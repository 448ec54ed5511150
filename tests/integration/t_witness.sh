#!/usr/bin/env bash
# The witness daemon (issue 17): two data nodes, alpha and beta, and a
# witness, wit (witness = yes), on loopback.
#  - `create` and `primary` on the witness are refused with one line;
#    `up` starts it and creates its state file (logged).
#  - It connects to both data nodes; its status (text and --json) shows
#    each link with the node's role, disk and generation; alpha's status
#    shows the witness in its peers (role witness, disk diskless) and
#    quorum with 3 voters.
#  - alpha primary writes: the witness's generation follows alpha's.
#  - kill -9 of the witness and `up` again: the state file kept the
#    generation, the links come back.
#  - alpha killed, beta promoted by plain `primary` (quorum: beta and the
#    witness): the witness's state file follows beta's new generation,
#    and keeps it over a restart.
#  - A corrupt state file: `up` fails with one line saying what to do.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io timeout
. "$TESTS_DIR/pair.sh"

pair_init 64M 64M
PORT_W=$(free_port)
# The witness is "wit" (the data nodes connect to it); WIT=aw names it so
# that it sorts between alpha and beta (alpha connects to it, it to beta).
WIT=${WIT:-wit}
STATE=$T/wit/$WIT.state
# pair_conf with the witness's section after the two data nodes.
witness_conf() {
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
	printf '[node %s]\naddress = 127.0.0.1:%s\nwitness = yes\nstate-file = %s\n' \
		"$WIT" "$PORT_W" "$STATE" >>"$T/r0.conf"
}
witness_conf
W="$B -c $T/r0.conf --node $WIT"
WLOG=$BLKREP_RUN_DIR/r0-$WIT.log
trap '$A down >/dev/null 2>&1; $Bn down >/dev/null 2>&1; $W down >/dev/null 2>&1; _cleanup' EXIT

# --- the CLI on a witness ----------------------------------------------------
out=$($W create 2>&1)
check_eq "create on the witness exits 1" "$?" 1
check_eq "... with one line" "$out" "blkrep: error: $WIT is a witness (witness = yes): it keeps no data"
out=$($W primary 2>&1)
check_eq "primary on the witness is refused" "$out" \
	"blkrep: error: $WIT is a witness (witness = yes): it keeps no data"
check "check-config names the witness" sh -c "$W check-config | grep -q 'a witness, state file $STATE'"

# --- up ----------------------------------------------------------------------
check "create alpha and beta --zeroed" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up the witness" $W up
check "its state file was created" test -s "$STATE"
check "... and the log says so" grep -q "state file $STATE created" "$WLOG"
check "up alpha and beta" sh -c "$A up && $Bn up"
check_eq "the witness is connected to alpha" \
	"$(wait_field "$W" "[p['connection'] for p in d['peers'] if p['name'] == 'alpha'][0]" connected 15)" connected
check_eq "... and to beta" \
	"$(wait_field "$W" "[p['connection'] for p in d['peers'] if p['name'] == 'beta'][0]" connected 15)" connected
check_eq "its status: role witness" "$(field "$W" "d['role']")" witness
check_eq "... voters connected" "$(field "$W" "(d['voters'], d['voters_connected'], d['quorum'])")" "(3, 3, True)"
check_eq "alpha lists the witness as a diskless witness" \
	"$(wait_field "$A" "[(p['role'], p['disk']) for p in d['peers'] if p['name'] == '$WIT'][0]" "('witness', 'diskless')" 10)" \
	"('witness', 'diskless')"
check_eq "alpha has quorum with 3 voters" \
	"$(wait_field "$A" "(d.get('quorum'), d.get('voters'), d.get('voters_connected'))" "(True, 3, 3)" 10)" "(True, 3, 3)"
check "alpha primary" $A primary
gen_a=$(field "$A" "d['generation']")
check_eq "the witness's generation follows alpha's" \
	"$(wait_field "$W" "d['generation']" "$gen_a" 10)" "$gen_a"
check "a write through alpha" timeout 20 qemu-io -f raw -c 'write -P 0x5a 0 1M' "$URI"
check_eq "the witness shows alpha primary" \
	"$(field "$W" "[p['role'] for p in d['peers'] if p['name'] == 'alpha'][0]")" primary
$W status >"$T/wstatus.txt"
check "status (text) names both links and the generation" \
	sh -c "grep -q 'alpha: connected, primary, disk uptodate, generation $gen_a' '$T/wstatus.txt' &&
	       grep -q '^  beta: connected' '$T/wstatus.txt' &&
	       grep -q 'witness (no data), generation $gen_a' '$T/wstatus.txt'"

# --- kill -9 and up again ------------------------------------------------------
kill -KILL "$(daemon_pid "$WIT")"
check_eq "alpha sees the witness go" \
	"$(wait_field "$A" "[p['connection'] for p in d['peers'] if p['name'] == '$WIT'][0]" connecting 15)" connecting
check "up the witness again" $W up
check_eq "its state file kept alpha's generation" "$(field "$W" "d['generation']")" "$gen_a"
check_eq "the links come back" \
	"$(wait_field "$W" "d['voters_connected']" 3 15)" 3

# --- a promotion elsewhere -------------------------------------------------------
kill -KILL "$(daemon_pid alpha)"
check_eq "beta loses alpha" \
	"$(wait_field "$Bn" "[p['connection'] for p in d['peers'] if p['name'] == 'alpha'][0]" connecting 15)" connecting
check "plain primary on beta (quorum with the witness)" $Bn primary
gen_b=$(field "$Bn" "d['generation']")
check "beta moved to a new generation" test "$gen_b" != "$gen_a"
msg "generations: alpha's $gen_a, then beta's $gen_b"
check_eq "the witness's generation follows beta's" \
	"$(wait_field "$W" "d['generation']" "$gen_b" 10)" "$gen_b"
check "the witness logged it, from beta" grep -q "generation $gen_b (was [0-9a-f]*), from beta" "$WLOG"
check "down the witness" $W down
check "up the witness again" $W up
check_eq "its state file kept beta's generation over a restart" \
	"$(field "$W" "d['generation']")" "$gen_b"

# --- a corrupt state file --------------------------------------------------------
check "down the witness" $W down
printf '\x01' | dd of="$STATE" bs=1 seek=160 conv=notrunc 2>/dev/null
out=$($W up 2>&1)
check_eq "up with a corrupt state file exits 1" "$?" 1
check_eq "... with one line saying what to do" "$out" \
	"blkrep: error: $STATE: checksum mismatch (the file is corrupt): move it away to start afresh (the witness then forgets the generation it saw: bring it up only while the primary is up)"
finish
