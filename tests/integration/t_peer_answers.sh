#!/usr/bin/env bash
# A peer waiting for an answer never waits for one that will not come: a
# node answers every request of its peer, or drops the link at once and
# says why in one log line (issue 12).  A fake alpha (fakepeer.py's
# command line) plays against beta's listener while alpha's daemon is down:
#   1. beta secondary, the fake its primary: a burst of 8000 TRIMs in one
#      send, more answers than beta's send queue holds at once.  Beta must
#      neither lose an ACK silently nor drop the link: it reads requests
#      only as fast as their answers leave, and the fake gets every ACK.
#   2. beta primary, the fake claiming to be its secondary sends a WRITE:
#      a primary takes no writes from its peer; it drops the link at once,
#      saying why, and keeps serving its NBD clients.
#   3. the real alpha then connects, resyncs from beta, and the replicas
#      are byte-identical;
#   4. the burst of (1) from the real primary beta: async mode, 8 clients
#      running 4 KiB TRIMs at queue depth 128; nothing lost, the link kept,
#      the replicas byte-identical.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
BURI="nbd+unix:///r0?socket=$T/beta.nbd"
out() { sed 's/^/    | /' "$T/last.out" "$T/last.err" | head -n 30; }
# The fake's report: "closed after S s" within 2 s (beta's own silence
# timeout would take 5 s, and the fake waits 3 s).
closed_promptly() {
	local s
	s=$(sed -n 's/^closed after \([0-9.]*\) s$/\1/p' "$T/last.out")
	[ -n "$s" ] && awk -v s="$s" 'BEGIN { exit !(s < 2) }'
}
# one_log_line TEXT: exactly one of the fake's "log:" lines, naming TEXT.
one_log_line() {
	local n
	n=$(grep -c "^log: .*$1" "$T/last.out")
	[ "$n" -eq 1 ] && pass "one log line says why: $(grep -m1 "^log: .*$1" "$T/last.out" | sed 's/^log: //')" ||
		{ fail "want one log line naming '$1', got $n"; grep '^log: ' "$T/last.out" | head -n 10 | sed 's/^/    | /'; }
}

check "create alpha --zeroed" $A create --zeroed
check "create beta --zeroed" $Bn create --zeroed
fake_alpha_beta_up
pid=$(daemon_pid beta)

# --- 1. more answers at once than the send queue holds ---
check "fake primary alpha: 8000 TRIMs in one send" "${FAKE[@]}" primary-trim-burst 8000
acks=$(sed -n 's/^acks //p' "$T/last.out")
if [ "${acks:-0}" -eq 8000 ]; then
	pass "beta acknowledged all 8000 TRIMs"
elif closed_promptly; then
	fail "beta acknowledged $acks of 8000, then dropped the link ($(grep '^closed' "$T/last.out")): a burst should be paced, not dropped"
	out
else
	fail "beta acknowledged $acks of 8000 and kept the link: the fake would wait for ever"
	out
fi
check_eq "... and kept the link until the fake closed it" \
	"$(grep '^log: .*connection lost' "$T/last.out" | sed 's/.*connection lost: //')" \
	"peer closed the connection"
check_eq "beta is still running" "$(daemon_pid beta)" "$pid"
check_eq "beta's status answers" "$(field "$Bn" "d['role'] + ' ' + d['peer']['connection']")" \
	"secondary connecting"

# --- 2. a WRITE to a primary ---
# Its primary gone, beta is only consistent now: promoting it takes --force.
check "beta primary --force (alone)" $Bn primary --force
check "a client writes 0x5a on beta" qemu-io -f raw "$BURI" -c 'write -P 0x5a 0 64k'
check "fake secondary alpha sends a WRITE" "${FAKE[@]}" secondary-write
if closed_promptly; then
	pass "beta drops the link at once ($(grep '^closed' "$T/last.out"))"
else
	fail "beta kept the link after a WRITE it will never answer"
	out
fi
check_eq "... without acknowledging it" "$(sed -n 's/^acks //p' "$T/last.out")" 0
one_log_line "connection lost: alpha sent WRITE to this primary, which takes no writes"
check_eq "beta is still running" "$(daemon_pid beta)" "$pid"
check_eq "beta is still primary" "$(field "$Bn" "d['role']")" primary
check "beta's client reads its data" qemu-io -f raw "$BURI" -c 'read -P 0x5a 0 64k'
check "beta's client writes on" qemu-io -f raw "$BURI" -c 'write -P 0x6b 64k 64k' -c flush
check "... and reads it back" qemu-io -f raw "$BURI" -c 'read -P 0x6b 64k 64k'

# --- 3. the real alpha ---
check "up alpha" $A up
if s=$(wait_synced 60); then
	pass "the real alpha connects and resyncs from beta: $s"
else
	fail "not synced: $s"
	show_logs
fi
size=$(field "$Bn" "d['size_bytes']")
check "the replicas are byte-identical" cmp -n "$size" "$T/a.img" "$T/b.img"

# --- 4. the same burst from a real primary ---
# Async mode answers a client's TRIM once it is done locally, so 8 clients
# at queue depth 128 put thousands of TRIM headers into the stream at once.
cat >"$T/trims.py" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
size = h.get_size()
for i in range(int(sys.argv[2])):
    while h.aio_in_flight() >= 128:
        h.poll(-1)
    h.aio_trim(4096, (i * 8192) % size)
while h.aio_in_flight() > 0:
    h.poll(-1)
print("done")
PY
check "beta: mode async" $Bn mode async
la=$(wc -l <"$BLKREP_RUN_DIR/r0-alpha.log")
lb=$(wc -l <"$BLOG")
for k in 1 2 3 4 5 6 7 8; do
	bg timeout -k 2 60 "$PY" "$T/trims.py" "$BURI" 10000 >"$T/trims.$k" 2>&1
done
wait
check_eq "8 clients ran 10000 TRIMs each" "$(cat "$T"/trims.* | grep -c '^done$')" 8
check "a write after them" qemu-io -f raw "$BURI" -c 'write -P 0x7c 1M 64k' -c flush
new_lines() { tail -n +$((la + 1)) "$BLKREP_RUN_DIR/r0-alpha.log"; tail -n +$((lb + 1)) "$BLOG"; }
check_eq "no answer was lost or refused, the link never dropped" \
	"$(new_lines | grep -c 'cannot acknowledge\|connection lost')" 0
check_eq "still connected" "$(field "$Bn" "d['peer']['connection']")" connected
check "beta: mode sync" $Bn mode sync
if s=$(wait_synced 60); then pass "in sync: $s"; else fail "not synced: $s"; show_logs; fi
check "the replicas are byte-identical" cmp -n "$size" "$T/a.img" "$T/b.img"
finish
