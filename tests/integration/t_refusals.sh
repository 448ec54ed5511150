#!/usr/bin/env bash
# Every refusal of the replication link gives a clear reason and loses
# nothing (the refusals t_node.sh covers -- wrong secret, other resource,
# unexpected node -- are not repeated here):
#   1. one node has a secret, the other allow-unauthenticated: both say so;
#   2. a fake peer speaking protocol versions 7..9 gets a REFUSE naming the
#      incompatible versions, and beta's status says so too;
#   3. malformed messages (bad magic, a truncated header, huge or
#      out-of-range lengths), before the handshake and after a real-looking
#      authenticated one: beta logs one line, drops that connection, keeps
#      running, and the real alpha connects afterwards;
#   4. a different bitmap granularity is refused;
#   5. corrupt metadata: up fails with one clear line, nothing is touched;
#   6. split brain: both primary is refused, then (beta secondary) the
#      generations still say both wrote alone: refused as split brain, and
#      neither node's data changes.
# Alpha's name sorts first, so alpha connects and beta listens: the fake
# peer (fakepeer.py's command line) plays alpha against beta's listener
# while alpha's daemon is down.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT

# A status of a node whose daemon is gone waits 10 s for it to start:
# bound every one to 3 s here.
FIELD_TIMEOUT=3
# has_err NODE-CMD TEXT [SECS]: wait until peer.last_error contains TEXT.
has_err() {
	wait_field "$1" "'$2' in d['peer']['last_error']" True "${3:-10}" >/dev/null
}
# never_connects SECS: neither node reports a connection for SECS seconds.
never_connects() {
	local end=$((SECONDS + $1)) a b
	while [ $SECONDS -lt $end ]; do
		a=$(field "$A" "d['peer']['connection']" 2>/dev/null)
		b=$(field "$Bn" "d['peer']['connection']" 2>/dev/null)
		if [ "$a" = connected ] || [ "$b" = connected ]; then
			echo "alpha $a, beta $b"
			return 1
		fi
		sleep 0.2
	done
	echo "alpha $a, beta $b"
}
err_of() { field "$1" "d['peer']['last_error']" 2>/dev/null; }

check "create alpha --zeroed" $A create --zeroed
check "create beta --zeroed" $Bn create --zeroed

# --- 1. a secret on one side only (plain TCP: allow-unencrypted on both) ---
grep -v '^secret-file' "$T/r0.conf" |
	sed 's/^\[resource\]$/[resource]\nallow-unauthenticated = yes\nallow-unencrypted = yes/' >"$T/nosecret.conf"
sed 's/^\[resource\]$/[resource]\nallow-unencrypted = yes/' "$T/r0.conf" >"$T/plain.conf"
NS="$B -c $T/nosecret.conf --node beta"
AP="$B -c $T/plain.conf --node alpha"
check "up alpha (with a secret, plain TCP)" $AP up
check "up beta (allow-unauthenticated, no secret-file)" $NS up
if has_err "$A" "has no shared secret (allow-unauthenticated) but this node has one"; then
	pass "secret on one side: alpha explains the mismatch"
else
	fail "secret on one side: alpha's last_error: '$(err_of "$A")'"
fi
if has_err "$Bn" "this node has no shared secret (allow-unauthenticated) but peer alpha has one"; then
	pass "secret on one side: beta explains the mismatch"
else
	fail "secret on one side: beta's last_error: '$(err_of "$Bn")'"
fi
v=$(never_connects 2) && pass "secret on one side: the pair does not connect ($v)" ||
	fail "secret on one side: the pair connected ($v)"
grep -q "secret-file" <<<"$(err_of "$A")" && pass "... and says what to do (same secret-file)" ||
	fail "no hint: '$(err_of "$A")'"
check "down beta" $NS down
check "down alpha" $AP down

# --- 1b. TLS on one side only: each side says what to change ---
PB="$B -c $T/plain.conf --node beta"
check "up alpha (TLS)" $A up
check "up beta (allow-unencrypted)" $PB up
has_err "$A" "not TLS (is allow-unencrypted set on one node only?)" &&
	pass "TLS on one side: alpha explains: $(err_of "$A")" ||
	fail "TLS on one side: alpha's last_error: '$(err_of "$A")'"
has_err "$Bn" "the peer speaks TLS: set allow-unencrypted on both nodes or on neither" 3 &&
	pass "TLS on one side: beta explains: $(err_of "$Bn")" ||
	fail "TLS on one side: beta's last_error: '$(err_of "$Bn")'"
v=$(never_connects 2) && pass "TLS on one side: the pair does not connect ($v)" ||
	fail "TLS on one side: the pair connected ($v)"
check "down beta" $PB down
check "down alpha" $A down

# --- 2. incompatible protocol version (a fake alpha) ---
fake_alpha_beta_up
py_out() { sed 's/^/    | /' "$T/last.out" "$T/last.err"; }
check "fake alpha speaking versions 7..9" "${FAKE[@]}" version
grep -q "^hello from beta, versions 1..1" "$T/last.out" && pass "beta sends its HELLO (versions 1..1)" ||
	{ fail "no HELLO from beta"; py_out; }
want="incompatible protocol version: peer speaks 7..9, this node 1..1"
grep -qxF "refuse: $want" "$T/last.out" && pass "beta REFUSEs: '$want'" ||
	{ fail "no REFUSE naming the versions"; py_out; }
grep -q "^closed after" "$T/last.out" && pass "... and closes the connection" ||
	{ fail "beta kept the refused connection"; py_out; }
has_err "$Bn" "$want" 3 && pass "beta's status says: $want" ||
	fail "beta's last_error: '$(err_of "$Bn")'"
check_eq "one log line for the refusal" "$(grep -cF "$want" "$BLOG")" 1

# --- 3. malformed messages, before and after a real-looking handshake ---
# garbage MODE REASON DESC: the fake sends it (MODE: KIND, or
# secondary-KIND after an authenticated handshake); beta must drop that
# connection with one log line naming REASON, and keep running.
garbage() {
	local mode=$1 reason=$2 desc=$3 n
	check "$desc: the fake peer runs" "${FAKE[@]}" "$mode" || return
	case $mode in secondary-*)
		grep -qx connected "$T/last.out" && pass "$desc: the fake completes an authenticated handshake" ||
			{ fail "$desc: no handshake"; py_out; } ;;
	esac
	grep -q "^closed after" "$T/last.out" && pass "$desc: beta drops the connection ($(grep '^closed' "$T/last.out"))" ||
		{ fail "$desc: beta kept the connection"; py_out; }
	n=$(grep -c '^log: ' "$T/last.out")
	if [ "$n" -eq 1 ] && grep -q "^log: .*$reason" "$T/last.out"; then
		pass "$desc: one log line: $(sed -n 's/^log: //p' "$T/last.out")"
	else
		fail "$desc: want one log line naming '$reason', got $n:"
		sed -n 's/^log: /    | /p' "$T/last.out"
	fi
	v=$(field "$Bn" "d['node'] + ' ' + d['peer']['connection']" 2>&1)
	if [ "$v" = "beta connecting" ]; then
		pass "$desc: beta still answers status (beta connecting)"
	else
		fail "$desc: beta's status: '$v'; the end of its log:"
		tail -n 5 "$BLOG" | sed 's/^/    | /'
	fi
}
garbage badmagic "bad message from the peer: bad magic" "bad magic"
garbage truncated "peer closed the connection" "truncated header, then close"
garbage hugehello "bad message from the peer: bad hello length" "HELLO of 4 GiB"
garbage hugewrite "bad message from the peer: data payload too large" "WRITE of 4 GiB before the handshake"
garbage stall "handshake not finished within 5 s" "32 MiB WRITE header before the handshake, then silence"
garbage secondary-badmagic "bad magic" "authenticated peer, bad magic"
garbage secondary-truncated "peer closed the connection" "authenticated peer, truncated header"
garbage secondary-hugewrite "data payload too large" "authenticated peer, WRITE of 4 GiB"
garbage secondary-range "range beyond the end of the data area" "authenticated peer, WRITE past the end"
check "beta's daemon is still running" kill -0 "$(daemon_pid beta)"
check "now the real alpha comes up" $A up
check_eq "... and connects" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check_eq "beta sees it connected" "$(wait_field "$Bn" "d['peer']['connection']" connected)" connected
check_eq "... with nothing to resync" "$(field "$A" "d['out_of_sync_bytes']")" 0
check_synced "... and in sync" 30

# --- 4. a different bitmap granularity ---
check "down beta" $Bn down
saved_extra=$PAIR_EXTRA
PAIR_EXTRA="${PAIR_EXTRA:+$PAIR_EXTRA$'\n'}bitmap-granularity = 128K"
pair_conf "$T/gran.conf" r0 "$T/secret" beta
PAIR_EXTRA=$saved_extra
G="$B -c $T/gran.conf --node beta"
check "create beta --force with bitmap-granularity = 128K" $G create --force --zeroed
check "up beta (128K)" $G up
if has_err "$A" "bitmap granularity differs"; then
	pass "alpha refuses: $(err_of "$A")"
else
	fail "granularity: alpha's last_error: '$(err_of "$A")'"
fi
grep -q "131072" <<<"$(err_of "$A")" && grep -q "65536" <<<"$(err_of "$A")" &&
	pass "... naming both granularities" || fail "granularities not named: '$(err_of "$A")'"
has_err "$Bn" "bitmap granularity differs" 3 && pass "beta refuses too: $(err_of "$Bn")" ||
	fail "granularity: beta's last_error: '$(err_of "$Bn")'"
v=$(never_connects 1) && pass "granularity: the pair does not connect ($v)" ||
	fail "granularity: the pair connected ($v)"
check "down beta (128K)" $G down
check "create beta --force --zeroed again (64K)" $Bn create --force --zeroed

# --- 6. split brain ---
check "up beta" $Bn up
check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check "disconnect alpha" $A disconnect
check_eq "standalone" "$(wait_field "$A" "d['peer']['connection']" standalone)" standalone
check "alpha primary while disconnected" $A primary
check "beta primary while disconnected" $Bn primary
BURI="nbd+unix:///r0?socket=$T/beta.nbd"
check "write 0x11 on alpha" qemu-io -f raw "$URI" -c 'write -P 0x11 0 4k' -c flush
check "write 0x22 on beta" qemu-io -f raw "$BURI" -c 'write -P 0x22 0 4k' -c flush
check "reconnect alpha" $A connect
if has_err "$A" "both nodes are primary"; then pass "both primary: alpha refuses: $(err_of "$A")"
else fail "both primary: alpha's last_error: '$(err_of "$A")'"; fi
has_err "$Bn" "both nodes are primary" 3 && pass "both primary: beta refuses: $(err_of "$Bn")" ||
	fail "both primary: beta's last_error: '$(err_of "$Bn")'"
# Both wrote alone: a split brain, which status says on both sides (found
# by the simulator's oracle 4: status said "connecting").
check_eq "both primary and both wrote: alpha's status says splitbrain" \
	"$(field "$A" "d['peer']['connection']")" splitbrain
check_eq "... and beta's" "$(field "$Bn" "d['peer']['connection']")" splitbrain
check "beta secondary" $Bn secondary
sb="split brain: both nodes wrote as primary"
if has_err "$A" "$sb" 15; then pass "split brain: alpha refuses: $(err_of "$A")"
else fail "split brain: alpha's last_error: '$(err_of "$A")'"; fi
has_err "$Bn" "$sb" 3 && pass "split brain: beta refuses: $(err_of "$Bn")" ||
	fail "split brain: beta's last_error: '$(err_of "$Bn")'"
v=$(never_connects 3) && pass "split brain: the pair stays unconnected ($v)" ||
	fail "split brain: the pair connected ($v)"
check "alpha's block is alpha's (0x11)" qemu-io -f raw "$URI" -c 'read -P 0x11 0 4k'
check "beta's block is beta's (0x22)" cmp -n 4096 "$T/b.img" <(head -c 4096 /dev/zero | tr '\0' '\042')
check_eq "alpha did not resync anything" "$(field "$A" "d['stats']['resynced_bytes']")" 0
check_eq "beta did not resync anything" "$(field "$Bn" "d['stats']['resynced_bytes']")" 0
check_eq "alpha is still primary" "$(field "$A" "d['role']")" primary
check "down beta" $Bn down
check "down alpha" $A down
grep -q "r0: peer beta: split brain: both nodes wrote" "$BLKREP_RUN_DIR/r0-alpha.log" &&
	pass "alpha's log names the split brain" || fail "alpha's log: $(grep -i 'split' "$BLKREP_RUN_DIR/r0-alpha.log")"

# --- 5. corrupt metadata at up ---
$PY - "$T/a.img" >"$T/corrupt.out" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
tail = size - (8 << 20)
buf = os.pread(fd, 8 << 20, tail)
n = 0
i = buf.find(b"BLKREPMD")
while i >= 0:
    os.pwrite(fd, bytes([buf[i + 100] ^ 0xff]), tail + i + 100)
    n += 1
    i = buf.find(b"BLKREPMD", i + 1)
os.close(fd)
print(n)
PY
n=$(cat "$T/corrupt.out")
[ "$n" -ge 2 ] && pass "corrupted $n superblock copies of alpha" || fail "found $n superblocks to corrupt"
sum=$(md5sum <"$T/a.img")
check_fails "up alpha with corrupt metadata fails" $A up
if [ "$(wc -l <"$T/last.err")" -eq 1 ] && grep -q "checksum mismatch" "$T/last.err"; then
	pass "... with one clear line: $(cat "$T/last.err")"
else
	fail "up with corrupt metadata said:"
	sed 's/^/    ! /' "$T/last.err"
fi
check_fails "no daemon is left running" $A status
check_fails "dump-md still refuses it" $A dump-md
grep -q "checksum mismatch" "$T/last.err" && pass "... naming the corruption" || fail "dump-md: $(cat "$T/last.err")"
check_eq "nothing was overwritten" "$(md5sum <"$T/a.img")" "$sum"
finish
