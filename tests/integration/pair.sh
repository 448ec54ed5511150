# A blkrep pair on loopback, for the node tests.  Source it after lib.sh:
#
#   . "$(dirname "$0")/pair.sh"
#   pair_init 64M 64M      # backing sizes of alpha and beta
#
# It gives $A and $Bn (blkrep for node alpha and beta of $T/r0.conf), $URI
# (alpha's NBD export), pair_conf to write variants of the config, field
# and wait_field to read status --json, and a trap that stops both daemons.

# pair_conf FILE RESOURCE SECRET-FILE NAME-OF-SECOND-NODE
pair_conf() {
	cat >"$1" <<CONF
[resource]
name = $2
secret-file = $3
[node alpha]
address = 127.0.0.1:$PAIR_PORT_A
backing = $T/a.img
nbd = unix:$T/alpha.nbd
[node $4]
address = 127.0.0.1:$PAIR_PORT_B
backing = $T/b.img
nbd = unix:$T/beta.nbd
CONF
}

# pair_init SIZE-A SIZE-B
pair_init() {
	export BLKREP_RUN_DIR=$T/run
	B=$BLKREP
	PAIR_PORT_A=$(free_port)
	PAIR_PORT_B=$(free_port)
	truncate -s "$1" "$T/a.img"
	truncate -s "$2" "$T/b.img"
	printf 'pair-secret\n' >"$T/secret"
	chmod 600 "$T/secret"
	pair_conf "$T/r0.conf" r0 "$T/secret" beta
	A="$B -c $T/r0.conf --node alpha"
	Bn="$B -c $T/r0.conf --node beta"
	URI="nbd+unix:///r0?socket=$T/alpha.nbd"
	trap '$A down >/dev/null 2>&1; $Bn down >/dev/null 2>&1; _cleanup' EXIT
}

# field NODE-CMD EXPR: a field of status --json (d is the parsed object)
field() {
	$1 status --json | $PY -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

# wait_field NODE-CMD EXPR WANT: polls status for up to 10 s; prints the
# last value seen and succeeds once it equals WANT.
wait_field() {
	local i v
	for i in $(seq 1 100); do
		v=$(field "$1" "$2" 2>/dev/null)
		[ "$v" = "$3" ] && { echo "$v"; return 0; }
		sleep 0.1
	done
	echo "$v"
	return 1
}
