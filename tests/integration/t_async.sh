#!/usr/bin/env bash
# Async replication, max-lag, verify, resync and invalidate.
#  (7) `blkrep mode` is kept in the superblock: async survives down/up;
#      `mode fast` is refused with a one-line error.
#  (1) Async burst: fio writes through alpha in async mode, then a FLUSH
#      and `mode sync`; the moment `mode sync` returns the lag has drained:
#      the data areas are equal and lag_bytes is 0.
#  (2) Mode switches under load: back-to-back fio jobs with crc32c verify
#      while a loop switches async/sync every 0.3 s; no fio error, every
#      mode command succeeds, the replicas end equal.
#  (5) verify + resync: 7 bytes corrupted in beta's image behind the
#      daemons' back are found by `verify` (1 extent, 64 KiB out of sync)
#      and copied back by `resync`; verify on the secondary is refused.
#  (6) invalidate: beta discards its data and gets all of it again;
#      invalidate on the primary is refused.
#  (4) kill -9 of the primary in async mode: beta holds exactly the state
#      after some prefix of the write history (no reordering, no torn
#      blocks); alpha comes back primary and the pair resyncs equal.  Once
#      as is, once with beta stopped for the last second before the kill.
#  (3) max-lag = 1M: with beta stopped (SIGSTOP), a 4 MiB writer stalls
#      with alpha's lag_bytes <= 1M + one write; after SIGCONT it finishes
#      and the replicas end equal.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io fio cmp
require_nbdsh
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap '[ $FAILS -gt 0 ] && show_logs 30; pair_stop; _cleanup' EXIT
MIB=1048576
# Every blkrep command is bounded, status polls in the helpers included: a
# daemon that stops answering fails checks instead of hanging the test.
A="timeout -k 2 15 $A"
Bn="timeout -k 2 15 $Bn"

# pair_alive WHERE: both daemons must be running; if one is gone (it died,
# or something outside the test stopped it) the rest of the test cannot
# mean anything: fail once and stop here instead of failing every check.
pair_alive() {
	local n pid
	for n in alpha beta; do
		pid=$(daemon_pid $n)
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			fail "$1: $n's daemon (pid '$pid') is not running; stopping the test here"
			exit 1
		fi
	done
}

# in_t CMD...: run CMD from $T (fio leaves verify state files in its cwd).
in_t() { (cd "$T" && exec "$@"); }

# synced DESC [SECS]: pass once the pair is connected and in sync.
synced() {
	local st
	if st=$(wait_synced "${2:-60}"); then
		pass "$1"
	else
		fail "$1: $st"
	fi
}

pair_start
check_eq "a new pair starts in sync mode" "$(field "$A" "d['mode']")" sync
check_eq "status has lag_bytes 0 and lag_seconds 0 when idle" \
	"$(field "$A" "(d['lag_bytes'], float(d['lag_seconds']))")" "(0, 0.0)"

# --- (7) the mode survives a restart; bad usage ------------------------
pair_alive "before (7)"
check "(7) mode async" $A mode async
check_eq "(7) status says async" "$(field "$A" "d['mode']")" async
check "(7) down alpha (a restart: --keep-role)" $A down --keep-role
check "(7) up alpha" $A up
check_eq "(7) async after down/up" "$(field "$A" "d['mode']")" async
check_eq "(7) alpha reconnects" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
check_eq "(7) alpha is primary again" "$(wait_field "$A" "d['role']" primary 10)" primary
check_fails "(7) mode fast is refused" $A mode fast
lines=$(cat "$T/last.out" "$T/last.err" | grep -c .)
check_eq "(7) ... with a one-line error ($(cat "$T/last.out" "$T/last.err" | head -c 200 | tr '\n' ' '))" "$lines" 1
check_fails "(7) mode without an argument is refused" $A mode
check_eq "(7) the refused commands left the mode alone" "$(field "$A" "d['mode']")" async
check "(7) mode sync" $A mode sync
check_eq "(7) status says sync" "$(field "$A" "d['mode']")" sync
synced "(7) the pair is in sync after the restart" 30

# --- (1) async burst ----------------------------------------------------
pair_alive "before (1)"
check "(1) mode async" $A mode async
check_eq "(1) status says async" "$(field "$A" "d['mode']")" async
in_t timeout -k 5 30 fio --name=burst --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
	--iodepth=32 --offset=0 --size=60M --time_based --runtime=3 --randrepeat=0 \
	>"$T/fio-burst.out" 2>&1 &
fpid=$!
BG_PIDS+=("$fpid")
maxlag=0
for i in $(seq 1 40); do
	kill -0 "$fpid" 2>/dev/null || break
	v=$(field "$A" "d['lag_bytes']" 2>/dev/null)
	[ -n "$v" ] && [ "$v" -gt "$maxlag" ] && maxlag=$v
	sleep 0.1
done
wait "$fpid"
rc=$?
check_eq "(1) the fio burst (3 s, randwrite 4k QD32) succeeds" "$rc" 0
[ "$rc" = 0 ] || tail -n 15 "$T/fio-burst.out" | sed 's/^/    | /'
msg "(1) largest lag_bytes seen during the burst: $maxlag"
check "(1) a FLUSH" qemu-io -f raw "$URI" -c flush
check "(1) mode sync (waits for the lag to drain)" $A mode sync
check "(1) the moment mode sync returns, the data areas are equal" $SAME
check_eq "(1) lag_bytes is 0" "$(field "$A" "d['lag_bytes']")" 0
check_eq "(1) status says sync" "$(field "$A" "d['mode']")" sync
synced "(1) the pair reports in sync" 30

# --- (2) mode switches under load ----------------------------------------
pair_alive "before (2)"
touch "$T/toggle.on"
(
	for i in $(seq 1 40); do
		[ -e "$T/toggle.on" ] || break
		timeout -k 2 20 $A mode async >>"$T/toggle.out" 2>&1
		echo "async $?" >>"$T/toggle.rc"
		sleep 0.3
		timeout -k 2 20 $A mode sync >>"$T/toggle.out" 2>&1
		echo "sync $?" >>"$T/toggle.rc"
		sleep 0.3
	done
) &
tpid=$!
BG_PIDS+=("$tpid")
t0=$(date +%s%N)
jobs_run=0 fio_bad=0
for j in $(seq 1 12); do
	in_t timeout -k 5 30 fio --name=v$j --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
		--iodepth=16 --offset=$(((j % 2) * 16 * MIB)) --size=16M --randrepeat=0 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		>"$T/fio-v$j.out" 2>&1
	rc=$?
	jobs_run=$j
	if [ $rc -ne 0 ] || grep -qE 'err= *[1-9]' "$T/fio-v$j.out"; then
		fio_bad=$j
		fail "(2) fio job $j (randwrite 4k QD16 16 MiB + crc32c verify) exit $rc"
		tail -n 15 "$T/fio-v$j.out" | sed 's/^/    | /'
		break
	fi
	[ $((($(date +%s%N) - t0) / 1000000)) -ge 6000 ] && break
done
rm -f "$T/toggle.on"
for i in $(seq 1 250); do
	kill -0 "$tpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$tpid" 2>/dev/null; then
	fail "(2) the mode switching loop did not end within 25 s"
	kill -KILL "$tpid" 2>/dev/null
fi
wait "$tpid" 2>/dev/null
elapsed=$((($(date +%s%N) - t0) / 1000000))
check_eq "(2) $jobs_run fio jobs with verify in ${elapsed} ms, none failed" "$fio_bad" 0
nmode=$(grep -c . "$T/toggle.rc" 2>/dev/null)
badmode=$(grep -vc ' 0$' "$T/toggle.rc" 2>/dev/null)
check_eq "(2) all $nmode mode switches during the load exited 0" "$([ "${nmode:-0}" -ge 4 ] && echo "${badmode:-0}")" 0
[ "${badmode:-0}" = 0 ] || { grep -v ' 0$' "$T/toggle.rc"; tail -n 10 "$T/toggle.out"; } | sed 's/^/    | /'
check "(2) final mode sync" $A mode sync
check "(2) a FLUSH" qemu-io -f raw "$URI" -c flush
check "(2) the data areas are equal" $SAME
check_eq "(2) lag_bytes is 0" "$(field "$A" "d['lag_bytes']")" 0
synced "(2) the pair reports in sync" 30

# --- (5) verify + resync ---------------------------------------------------
pair_alive "before (5)"
check_eq "(5) no verify has run yet: status verify is null" "$(field "$A" "d['verify']")" None
check "(5) corrupt 7 bytes of beta's data at 5 MiB + 100, behind the daemons' back" \
	dd if=/dev/urandom of="$T/b.img" bs=1 seek=$((5 * MIB + 100)) count=7 conv=notrunc status=none
check_fails "(5) the data areas differ" $SAME
check "(5) verify on alpha" $A verify
vout=$(cat "$T/last.out" "$T/last.err")
tail -n 3 <<<"$vout" | sed 's/^/    | /'
check_eq "(5) verify says 1 extents differ" "$(grep -c '1 extents differ' <<<"$vout")" 1
check_eq "(5) status verify: not running, all compared, 1 extent differs" \
	"$(field "$A" "(d['verify']['running'], d['verify']['done_bytes'] == d['verify']['total_bytes'] == $size, d['verify']['differing_extents'])")" \
	"(False, True, 1)"
check_eq "(5) out_of_sync_bytes is one 64 KiB extent" "$(field "$A" "d['out_of_sync_bytes']")" 65536
check_fails "(5) verify on the secondary is refused" $Bn verify
err=$(cat "$T/last.out" "$T/last.err" | grep -m1 .)
check_eq "(5) ... with a clear line ($err)" "$(grep -ci 'primary' <<<"$err")" 1
check "(5) resync" $A resync
check_eq "(5) out_of_sync_bytes drops to 0" "$(wait_field "$A" "d['out_of_sync_bytes']" 0 20)" 0
check_eq "(5) resync ends (status resync null)" "$(wait_field "$A" "d['resync']" None 20)" None
synced "(5) the pair is in sync" 30
check "(5) the data areas are equal" $SAME
check "(5) a second verify finds nothing" $A verify
check_eq "(5) ... 0 extents differ" "$(cat "$T/last.out" "$T/last.err" | grep -c '0 extents differ')" 1

# --- (6) invalidate ----------------------------------------------------------
pair_alive "before (6)"
check_fails "(6) invalidate on the primary is refused" $A invalidate
err=$(cat "$T/last.out" "$T/last.err" | grep -m1 .)
check_eq "(6) ... with a clear message ($err)" "$(grep -ci 'primary' <<<"$err")" 1
check_eq "(6) alpha's disk is still uptodate" "$(field "$A" "d['disk']")" uptodate
before=$(field "$A" "d['stats']['resynced_bytes']")
check "(6) invalidate on beta" $Bn invalidate
synced "(6) the full resync finishes" 60
check_eq "(6) beta's disk is uptodate" "$(field "$Bn" "d['disk']")" uptodate
check_eq "(6) no resync on beta" "$(field "$Bn" "d['resync']")" None
after=$(field "$A" "d['stats']['resynced_bytes']")
delta=$((${after:-0} - ${before:-0}))
check_eq "(6) alpha resent the whole data area ($delta bytes >= $size)" \
	"$([ "$delta" -ge "$size" ] && echo yes)" yes
check "(6) the data areas are equal" $SAME

# --- (4) kill -9 of the primary in async mode: a prefix on beta -------------
# Two rounds, each on its own MiB (zeros until then): (4a) as is, (4b) with
# beta stopped (SIGSTOP) for the last second before the kill, so that alpha
# has acknowledged writes beta does not have; beta is let go after the kill.
cat >"$T/writer.py" <<'EOF'
# QD1 4 KiB pwrites to pseudo-random blocks among 256 in the MiB at BASE;
# each acknowledged seq goes to the log, one per line.
import nbd, random, struct, sys, time
uri, logf, secs, nmax, base = (sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]),
                               int(sys.argv[5]))

def block(seq, idx):
    return (struct.pack("<8sQQQ", b"BLKREPAS", seq, idx, seq * 2654435761 ^ idx)) * 128

h = nbd.NBD()
h.connect_uri(uri)
rng = random.Random(20240601)
seq = 0
end = time.monotonic() + secs
with open(logf, "w", buffering=1) as log:
    try:
        while seq < nmax and time.monotonic() < end:
            idx = rng.randrange(256)
            h.pwrite(block(seq + 1, idx), base + idx * 4096)
            seq += 1
            log.write("%d\n" % seq)
    except Exception as e:
        print("writer stopped after %d acknowledged writes: %s" % (seq, e))
        sys.exit(3)
print("writer ended after %d acknowledged writes" % seq)
EOF
cat >"$T/prefix.py" <<'EOF'
# Beta's MiB at BASE must be exactly the state after the first P writes of
# the writer's history, P being the highest seq found there.
import random, struct, sys
img, acked, base, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def block(seq, idx):
    return (struct.pack("<8sQQQ", b"BLKREPAS", seq, idx, seq * 2654435761 ^ idx)) * 128
with open(img, "rb") as f:
    f.seek(base)
    data = f.read(256 * 4096)
P = 0
for b in range(256):
    blk = data[b * 4096:(b + 1) * 4096]
    if blk[:8] == b"BLKREPAS":
        P = max(P, struct.unpack_from("<Q", blk, 8)[0])
print("%s highest seq on beta P = %d, acknowledged writes = %d" % (label, P, acked))
ok = lambda c, d: print(("ok - " if c else "FAIL - ") + label + " " + d)
ok(P > 0, "beta received some of the async writes (P = %d)" % P)
ok(P <= acked + 1, "P (%d) <= acknowledged (%d) + queue depth 1" % (P, acked))
rng = random.Random(20240601)
last = [0] * 256
for s in range(1, P + 1):
    last[rng.randrange(256)] = s
bad = []
for b in range(256):
    want = block(last[b], b) if last[b] else bytes(4096)
    got = data[b * 4096:(b + 1) * 4096]
    if got != want:
        gs = struct.unpack_from("<Q", got, 8)[0] if got[:8] == b"BLKREPAS" else None
        bad.append("block %d: want seq %d, has %s" % (b, last[b], gs if gs is not None else
                   ("zeros" if got == bytes(4096) else "garbage")))
ok(not bad, "beta's MiB is exactly the state after the first %d writes (%d of 256 blocks differ%s)"
   % (P, len(bad), ": " + "; ".join(bad[:5]) if bad else ""))
EOF

# crash_round LABEL BASE STOP-BETA(0|1)
crash_round() {
	local l=$1 base=$2 stop=$3 wpid apid bpid= acked at_stop= i
	pair_alive "before $l"
	check "$l mode async" $A mode async
	$PY "$T/writer.py" "$URI" "$T/writer.log" 20 1000000 "$base" >"$T/writer.out" 2>&1 &
	wpid=$!
	BG_PIDS+=("$wpid")
	if [ "$stop" = 1 ]; then
		sleep 1
		bpid=$(daemon_pid beta)
		check "$l SIGSTOP beta's daemon (pid '$bpid') while the writer runs" kill -STOP "$bpid"
		at_stop=$(tail -n 1 "$T/writer.log" 2>/dev/null)
		sleep 1
	else
		sleep 2
	fi
	msg "$l alpha's lag_bytes just before the kill: $(field "$A" "d['lag_bytes']")"
	apid=$(daemon_pid alpha)
	check "$l kill -9 alpha's daemon mid-stream (pid '$apid')" kill -9 "$apid"
	[ -n "$bpid" ] && check "$l SIGCONT beta" kill -CONT "$bpid"
	for i in $(seq 1 100); do
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	sed 's/^/    | /' "$T/writer.out"
	acked=$(tail -n 1 "$T/writer.log" 2>/dev/null)
	acked=${acked:-0}
	if [ "$stop" = 1 ]; then
		check_eq "$l async: writes were acknowledged while beta was stopped ($acked acknowledged, ${at_stop:-0} at the stop)" \
			"$([ "$acked" -gt "${at_stop:-0}" ] && echo yes)" yes
	fi
	check_eq "$l beta sees the peer gone" \
		"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
	sleep 0.5
	py_checks "$l prefix check" "$T/prefix.py" "$T/b.img" "$acked" "$base" "$l"
	check "$l up alpha again" $A up
	check_eq "$l alpha comes back primary" "$(wait_field "$A" "d['role']" primary 10)" primary
	check_eq "$l the pair reconnects" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
	synced "$l the resync after the crash finishes" 60
	pair_alive "after $l"
	check "$l mode sync" $A mode sync
	check "$l the data areas are equal" $SAME
}
crash_round "(4a)" $((2 * MIB)) 0
crash_round "(4b)" $((3 * MIB)) 1

# --- (3) max-lag = 1M: beta stopped, the writer stalls --------------------
pair_stop
pair_conf_extra "max-lag = 1M"
check "(3) up both with max-lag = 1M" sh -c "$A up && $Bn up"
check_eq "(3) connected" "$(wait_field "$A" "d['peer']['connection']" connected 20)" connected
check_eq "(3) alpha is primary" "$(wait_field "$A" "d['role']" primary 10)" primary
synced "(3) in sync" 30
pair_alive "before (3)"
check "(3) mode async" $A mode async
wcmds=()
for i in $(seq 0 15); do
	wcmds+=(-c "write -P 0x61 $((8 * MIB + i * 262144)) 256k")
done
silent0=$(cat "$T"/run/*.log 2>/dev/null | grep -c 'peer silent')
bpid=$(daemon_pid beta)
check "(3) SIGSTOP beta's daemon (pid '$bpid')" kill -STOP "$bpid"
tstop=$(date +%s%N)
(exec timeout -k 5 60 qemu-io -f raw "$URI" "${wcmds[@]}") >"$T/lagw.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
sleep 1.8
lag=$(field "$A" "d['lag_bytes']")
if kill -0 "$wpid" 2>/dev/null; then
	pass "(3) the 4 MiB writer has not completed 1.8 s after beta stopped"
else
	fail "(3) the 4 MiB writer completed while beta was stopped: max-lag not enforced"
fi
check_eq "(3) alpha's lag_bytes ($lag) is > 0 and <= 1 MiB + 256 KiB" \
	"$([ "${lag:-0}" -gt 0 ] && [ "$lag" -le $((MIB + 262144)) ] && echo yes)" yes
check "(3) SIGCONT beta ($((($(date +%s%N) - tstop) / 1000000)) ms after the stop)" kill -CONT "$bpid"
rc=timeout
for i in $(seq 1 100); do
	if ! kill -0 "$wpid" 2>/dev/null; then
		wait "$wpid"
		rc=$?
		break
	fi
	sleep 0.1
done
check_eq "(3) the writer completes within 10 s of SIGCONT" "$rc" 0
[ "$rc" = 0 ] || tail -n 5 "$T/lagw.out" | sed 's/^/    | /'
silent1=$(cat "$T"/run/*.log 2>/dev/null | grep -c 'peer silent')
if [ "$silent1" -gt "$silent0" ]; then
	msg "(3) the link dropped while beta was stopped: $(grep -h 'peer silent' "$T"/run/*.log | tail -n 1)"
else
	msg "(3) the link stayed up while beta was stopped"
fi
check "(3) mode sync" $A mode sync
synced "(3) the pair is in sync" 60
check "(3) the data areas are equal" $SAME
check "(3) beta holds the 4 MiB" qemu-io -U -r -f raw "$T/b.img" -c "read -P 0x61 8M 4M"
finish
