#!/usr/bin/env bash
# A node pair on loopback: blkrep up/down/status/primary/secondary/connect
# /disconnect from one shared config, the peer link's handshake and its
# refusals (wrong secret, other resource, unexpected node), roles kept
# across a clean restart and a kill -9, the NBD export while primary.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret2"
chmod 600 "$T/secret2"

check "create alpha --zeroed" $A create --zeroed
check "create beta --zeroed" $Bn create --zeroed
check "up alpha returns once ready" $A up
check "up beta" $Bn up
check_fails "up alpha twice is refused" $A up
grep -q "already up" "$T/last.err" && pass "... saying it is already up" || fail "up twice: $(cat "$T/last.err")"
check_eq "both connect" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check_eq "status --json: role" "$(field "$A" "d['role']")" secondary
check_eq "status --json: disk of a zeroed node" "$(field "$A" "d['disk']")" uptodate
check_eq "status --json: peer disk" "$(field "$A" "d['peer']['disk']")" uptodate
check_eq "status --json: size" "$(field "$Bn" "d['size_bytes']")" "$(field "$A" "d['size_bytes']")"
check "status (human form)" $A status
grep -q "r0/alpha: secondary" "$T/last.out" && pass "... names node and role" || fail "status: $(cat "$T/last.out")"

check "primary on alpha" $A primary
check_eq "alpha is primary" "$(field "$A" "d['role']")" primary
check "the NBD export is up" nbdinfo --size "nbd+unix:///r0?socket=$T/alpha.nbd"
size=$(cat "$T/last.out")
check_eq "the export is the data area" "$size" "$(field "$A" "d['size_bytes']")"
check "write through the export" qemu-io -f raw "nbd+unix:///r0?socket=$T/alpha.nbd" -c 'write -P 0x5a 1M 64k' -c flush
# Replicated and flushed on the peer: nothing is out of sync.
check_eq "a replicated, flushed write is not out of sync" "$(field "$A" "d['out_of_sync_bytes']")" 0
check_eq "status counts the write" "$(field "$A" "d['stats']['writes'] >= 1")" True
check_fails "primary on beta while alpha is primary is refused" $Bn primary
grep -q "peer is primary" "$T/last.err" && pass "... saying why" || fail "refusal: $(cat "$T/last.err")"
# A word the daemon would split in two is refused by the CLI, not mangled.
check_exit "restore-saved of a path with a space is refused (exit 2)" 2 $A restore-saved "$T/a b.saved"
[ "$(wc -l <"$T/last.err")" = 1 ] && grep -q "cannot send this request" "$T/last.err" &&
	pass "... in one line saying why" || fail "space refusal: $(cat "$T/last.err")"

check "down --keep-role alpha while primary (a restart: no handover)" $A down --keep-role
check_fails "the export is gone" nbdinfo --size "nbd+unix:///r0?socket=$T/alpha.nbd"
check_fails "status of a stopped node fails" $A status
grep -q "no blkrep daemon is running" "$T/last.err" && pass "... clearly" || fail "status: $(cat "$T/last.err")"
mkdir "$T/alpha.nbd"	# the export's address is taken
check_fails "up as primary fails when its export cannot start" $A up
check_eq "... saying why" "$(grep -c "cannot start the NBD export\|alpha.nbd" "$T/last.err")" 1
rmdir "$T/alpha.nbd"
check "up alpha again" $A up
check_eq "it comes back primary" "$(field "$A" "d['role']")" primary
check "the data is there" qemu-io -f raw "nbd+unix:///r0?socket=$T/alpha.nbd" -c 'read -P 0x5a 1M 64k'

pid=$(cat "$T/run/r0-alpha.pid")
kill -9 "$pid"
sleep 0.3
check "up after kill -9" $A up
grep -q "without a clean shutdown" "$T/last.err" && pass "up says the node crashed" ||
	fail "crash not noted: $(cat "$T/last.err")"
check_eq "back as primary after a crash" "$(field "$A" "d['role']")" primary
grep -q "extents of its activity log are out of sync" "$T/last.err" &&
	pass "... and that its activity-log extents are out of sync" ||
	fail "no activity-log recovery: $(cat "$T/last.err")"
check_eq "the activity-log extents are resynced to beta" \
	"$(wait_field "$A" "d['out_of_sync_bytes'] == 0 and d['resync'] is None" True)" True
check_eq "... which copied what a crash leaves suspect, not the whole area" \
	"$(field "$A" "0 < d['stats']['resynced_bytes'] <= 4 << 20")" True
check_synced "the pair is in sync after the crash"
check "secondary on alpha" $A secondary
check_fails "no export on a secondary" nbdinfo --size "nbd+unix:///r0?socket=$T/alpha.nbd"
mkdir "$T/alpha.nbd"	# the export's address is taken
check_fails "primary fails when the export cannot start" $A primary
grep -q "cannot start the NBD export" "$T/last.err" && pass "... saying so" ||
	fail "export failure: $(cat "$T/last.err")"
check_eq "and the node stays secondary" "$(field "$A" "d['role']")" secondary
rmdir "$T/alpha.nbd"
check "disconnect" $A disconnect
check_eq "standalone after disconnect" "$(wait_field "$A" "d['peer']['connection']" standalone)" standalone
check "connect" $A connect
check_eq "connected again" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check_synced "in sync after the reconnect"
check "down beta" $Bn down
# beta listens for the link (alpha, first by name, connects): a port
# held by another program makes `up` fail, saying why.
$PY -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("bound", flush=True); time.sleep(20)' \
	"$PAIR_PORT_B" >"$T/squat.out" 2>&1 &
squat=$!
for i in $(seq 1 50); do grep -q bound "$T/squat.out" && break; sleep 0.1; done
check_fails "up fails when the peer port is taken" $Bn up
check_eq "... saying it cannot listen there" \
	"$(grep -c "listen on 127.0.0.1:$PAIR_PORT_B: Address already in use" "$T/last.err")" 1
check_eq "... and no daemon is left running" "$(pgrep -fc -- "$T/r0.conf --node beta up")" 0
kill $squat 2>/dev/null; wait $squat 2>/dev/null

# Refusals: wrong secret, other resource name (both fail TLS: its key is
# derived from both), unexpected node name.
refusal() {
	local desc=$1 conf=$2 node=$3 want=$4 v
	check "$desc: up" $B -c "$conf" --node "$node" up
	v=$(wait_field "$A" "'$want' in d['peer']['last_error']" True)
	check_eq "$desc: alpha reports '$want'" "$v" True
	check_eq "$desc: not connected" "$(field "$A" "d['peer']['connection']")" connecting
	$B -c "$conf" --node "$node" down >/dev/null 2>&1
}
pair_conf "$T/wrong-secret.conf" r0 "$T/secret2" beta
refusal "wrong secret" "$T/wrong-secret.conf" beta "authentication failed"
pair_conf "$T/other-res.conf" r1 "$T/secret" beta
$B -c "$T/other-res.conf" --node beta create --force --zeroed >/dev/null
refusal "other resource" "$T/other-res.conf" beta "resource names differ"
pair_conf "$T/gamma.conf" r0 "$T/secret" gamma
$B -c "$T/gamma.conf" --node gamma create --force --zeroed >/dev/null
refusal "unexpected node" "$T/gamma.conf" gamma "unexpected peer node"

check "down alpha" $A down
check "dump-md after a clean down" $A dump-md
grep -q "out of sync (0 bytes)" "$T/last.out" && pass "the resynced, clean bitmap is what is on disk" ||
	fail "dump-md: $(grep -i "out of sync" "$T/last.out")"


grep -q "flags:.*clean" "$T/last.out" && pass "metadata says the shutdown was clean" ||
	fail "flags: $(grep flags "$T/last.out")"

# up --foreground is the daemon: it tells systemd it is ready, with its
# pid (NOTIFY_SOCKET), and that it stops; it logs to stderr, stamped.
$PY - "$T/notify" >"$T/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
while True:
    m = s.recv(256).decode()
    print(m.replace("\n", " "), flush=True)
    if m == "STOPPING=1":
        break
PY
npid=$!
for i in $(seq 1 50); do [ -S "$T/notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify $A up --foreground >"$T/fg.log" 2>&1 &
fgpid=$!
for i in $(seq 1 150); do [ -s "$T/notify.out" ] && break; sleep 0.1; done
check_eq "up --foreground sends READY=1 and its pid to NOTIFY_SOCKET" \
	"$(head -n 1 "$T/notify.out")" "READY=1 MAINPID=$fgpid"
check_eq "the foreground daemon answers" "$(field "$A" "d['node']")" alpha
check "down stops the foreground daemon" $A down
wait $fgpid
check_eq "... which exits 0" "$?" 0
wait $npid
check_eq "... having sent STOPPING=1" "$(tail -n 1 "$T/notify.out")" STOPPING=1
stamp='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (error|warning|info|debug) blkrep: '
check_eq "every line on its stderr is stamped" "$(grep -cvE "^$stamp" "$T/fg.log")" 0
grep -qE "^$stamp"'blkrep [0-9.]+ starting r0/alpha, pid '"$fgpid\$" "$T/fg.log" &&
	pass "... the first saying the version and pid" || fail "no start line: $(head -n 2 "$T/fg.log")"
grep -qE "^$stamp"'.*r0/alpha up as' "$T/run/r0-alpha.log" &&
	pass "the log file of a daemon up in the background is stamped too" ||
	fail "log file: $(head -n 3 "$T/run/r0-alpha.log")"
grep -qE "^$stamp"'blkrep [0-9.]+ starting r0/alpha, pid [0-9]+$' "$T/run/r0-alpha.log" &&
	pass "... and says the version and pid of each start" ||
	fail "no start line in $(head -n 3 "$T/run/r0-alpha.log")"
# stderr is the journal (JOURNAL_STREAM names it): syslog levels, no time.
: >"$T/journal"
JOURNAL_STREAM=$(stat -c %d:%i "$T/journal") $A up --foreground --bogus 2>>"$T/journal"
check_eq "stderr that is the journal gets <N> levels" "$(cat "$T/journal")" \
	"<3>blkrep: error: up: unknown option '--bogus' (try: blkrep help up)"
JOURNAL_STREAM=1:1 $A up --foreground --bogus 2>"$T/journal"
check_eq "... not another stream" "$(cut -c1-7 "$T/journal")" "blkrep:"
check_fails "up with metadata of another resource is refused" $B -c "$T/other-res.conf" --node alpha up
grep -q "holds metadata of r0/alpha, not r1/alpha" "$T/last.err" && pass "... saying whose metadata it is" || fail "foreign metadata: $(cat "$T/last.err")"
finish
