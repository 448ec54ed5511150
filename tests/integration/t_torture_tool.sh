#!/usr/bin/env bash
# The torture tool (build/nbdtorture, tests/torture/): its writer and its
# checker, against a plain server and a replicated pair.
#  (1) `blkrep serve` on a 64 MiB file: 4 connections, QD 8, ~3 s, stopped
#      with SIGTERM (exit 0, every write answered); `check --mode sync`
#      finds every acked write (ok, counts > 0).  Then copies of the image,
#      each corrupted on purpose, must fail the check (exit 1) with the
#      right counter: an acked block zeroed (lost), a block copied onto
#      another (stale), one byte flipped in a written block (torn), random
#      bytes in a never-written block (garbage, on the image of a short
#      second run that leaves most blocks unwritten).  A run with
#      --area-offset writes only above it and checks with --image-offset.
#  (2) A sync pair: the writer on alpha's export, alpha's daemon killed with
#      kill -9 mid-run: the writer stops on the lost connection (exit 0,
#      "stopped: connection lost") and beta's backing file (the data area
#      starts at its offset 0) holds every acknowledged write.
# The writer's IOPS against each is printed.
. "$(dirname "$0")/lib.sh"
require_cmd timeout dd
NT=${NBDTORTURE:-$REPO/build/nbdtorture}
[ -x "$NT" ] || skip "$NT is not built (run make)"
BS=4096

# jfield FILE KEY: a field of check --json's object in FILE.
jfield() {
	$PY -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null
}

# summary FILE N: the Nth number of the writer's summary line (1 issued,
# 2 acked, 3 failed; IOPS by name).
summary() {
	sed -n 's/^nbdtorture write: writes issued \([0-9]*\) acked \([0-9]*\) failed \([0-9]*\),.*IOPS \([0-9]*\),.*/\1 \2 \3 \4/p' "$1" |
		cut -d' ' -f"$2"
}

# wait_gone PID SECS: wait (bounded by the clock) for a child to exit;
# sets WAIT_RC (124 if it did not).
wait_gone() {
	local end=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt "$end" ]; do
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		WAIT_RC=124
	else
		wait "$1"
		WAIT_RC=$?
	fi
}

# nt_check DESC WANT-EXIT JSON-OUT ARGS...: nbdtorture check --json.
nt_check() {
	local desc=$1 want=$2 out=$3 rc
	shift 3
	tmo "$NT" check --json "$@" >"$out" 2>"$out.err"
	rc=$?
	if [ $rc -eq "$want" ]; then
		pass "$desc (exit $rc)"
	else
		fail "$desc (exit $rc, want $want)"
		sed 's/^/    | /' "$out" "$out.err" | tail -n 15
	fi
}

# block_is_written IMG N: block N starts with the tool's magic.
block_is_written() {
	[ "$(dd if="$1" bs=$BS skip="$2" count=1 status=none | head -c 8)" = BLKRTORT ]
}

# --- (1) blkrep serve ----------------------------------------------------
truncate -s 64M "$T/s.img"
start_server "$T/s.img" --unix || exit 1
"$NT" write --socket "$SRV_SOCK" --log "$T/s.log" --conns 4 --qd 8 --seconds 60 \
	>"$T/w1.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
sleep 3
kill -TERM "$wpid"
wait_gone "$wpid" 20
check_eq "(1) the writer exits 0 after SIGTERM" "$WAIT_RC" 0
sed 's/^/    | /' "$T/w1.out"
grep -q 'stopped: signal' "$T/w1.out" && pass "(1) it says it stopped on the signal" ||
	fail "(1) no 'stopped: signal' in its summary"
issued=$(summary "$T/w1.out" 1)
acked=$(summary "$T/w1.out" 2)
IOPS_SERVE=$(summary "$T/w1.out" 4)
check_eq "(1) writes were issued and every one was acked (issued '$issued', acked '$acked')" \
	"$([ "${issued:-0}" -gt 1000 ] && [ "$issued" = "$acked" ] && echo yes)" yes
stop_server
cp --sparse=always "$T/s.img" "$T/orig.img"

nt_check "(1) check --mode sync on the image" 0 "$T/c0.json" \
	--image "$T/s.img" --log "$T/s.log" --mode sync
checked=$(jfield "$T/c0.json" writes_checked)
check_eq "(1) it checked every acked write ($checked) and all 16384 blocks ($(jfield "$T/c0.json" blocks_checked))" \
	"$checked $(jfield "$T/c0.json" blocks_checked) $(jfield "$T/c0.json" ok)" "$acked 16384 True"
check_eq "(1) no lost, stale, torn or garbage" \
	"$(jfield "$T/c0.json" lost) $(jfield "$T/c0.json" stale) $(jfield "$T/c0.json" torn) $(jfield "$T/c0.json" garbage)" \
	"0 0 0 0"
nt_check "(1) check --mode durable and async pass too" 0 "$T/c0d.json" \
	--image "$T/s.img" --log "$T/s.log" --mode durable
nt_check "(1) check --mode async passes with --max-lag 0" 0 "$T/c0a.json" \
	--image "$T/s.img" --log "$T/s.log" --mode async --max-lag 0

# Two written blocks to corrupt (after 3 s nearly every block is written).
X= Y=
for b in 100 101 102 103 104 105 106 107; do
	block_is_written "$T/orig.img" $b || continue
	if [ -z "$X" ]; then X=$b; elif [ -z "$Y" ]; then Y=$b; fi
done
check_eq "(1) two written blocks to corrupt (X=$X Y=$Y)" "$([ -n "$X" ] && [ -n "$Y" ] && echo yes)" yes
: "${X:=100}" "${Y:=101}"

cp "$T/orig.img" "$T/k.img"
dd if=/dev/zero of="$T/k.img" bs=$BS seek="$X" count=1 conv=notrunc status=none
nt_check "(1) an acked block zeroed fails the check" 1 "$T/c1.json" \
	--image "$T/k.img" --log "$T/s.log" --mode sync
# Every acked write of that block's history is gone from it: each counts.
lost=$(jfield "$T/c1.json" lost)
check_eq "(1) ... as lost writes ('$lost'), each missing one block, nothing else" \
	"$([ "${lost:-0}" -ge 1 ] && echo yes) $(jfield "$T/c1.json" lost_blocks) $(jfield "$T/c1.json" stale) $(jfield "$T/c1.json" torn)" \
	"yes $lost 0 0"

cp "$T/orig.img" "$T/k.img"
dd if="$T/orig.img" of="$T/k.img" bs=$BS skip="$X" seek="$Y" count=1 conv=notrunc status=none
nt_check "(1) block $X copied onto block $Y fails the check" 1 "$T/c2.json" \
	--image "$T/k.img" --log "$T/s.log" --mode sync
check_eq "(1) ... as 1 stale block" \
	"$(jfield "$T/c2.json" stale) $(jfield "$T/c2.json" torn) $(jfield "$T/c2.json" garbage)" "1 0 0"

cp "$T/orig.img" "$T/k.img"
$PY -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x10]))' "$T/k.img" $((X * BS + 1000))
nt_check "(1) one byte flipped inside block $X fails the check" 1 "$T/c3.json" \
	--image "$T/k.img" --log "$T/s.log" --mode sync
check_eq "(1) ... as 1 torn block" \
	"$(jfield "$T/c3.json" torn) $(jfield "$T/c3.json" stale) $(jfield "$T/c3.json" garbage)" "1 0 0"

# A short second run leaves most blocks never written.
truncate -s 0 "$T/s.img"
truncate -s 64M "$T/s.img"
start_server "$T/s.img" --unix || exit 1
check "(1) a short second run (300 writes)" "$NT" write --socket "$SRV_SOCK" --log "$T/s2.log" \
	--writes 300 --seed 42
stop_server
Z=
for b in 5000 5001 5002 5003 5004 5005 5006 5007 5008 5009; do
	[ -z "$(dd if="$T/s.img" bs=$BS skip=$b count=1 status=none | tr -d '\0' | head -c 1)" ] &&
		{ Z=$b; break; }
done
check_eq "(1) a never-written block to fill (Z=$Z)" "$([ -n "$Z" ] && echo yes)" yes
: "${Z:=5000}"
nt_check "(1) the short run's image passes" 0 "$T/c4.json" \
	--image "$T/s.img" --log "$T/s2.log" --mode sync
head -c $BS /dev/urandom | dd of="$T/s.img" bs=$BS seek="$Z" count=1 conv=notrunc status=none
nt_check "(1) random bytes in never-written block $Z fail the check" 1 "$T/c5.json" \
	--image "$T/s.img" --log "$T/s2.log" --mode sync
check_eq "(1) ... as 1 garbage block" \
	"$(jfield "$T/c5.json" garbage) $(jfield "$T/c5.json" stale) $(jfield "$T/c5.json" torn) $(jfield "$T/c5.json" lost)" \
	"1 0 0 0"
nt_check "(1) the first run's log does not fit the second run's image" 1 "$T/c6.json" \
	--image "$T/s.img" --log "$T/s.log" --mode sync

# --area-offset: a run whose area starts at 32 MiB writes nothing below it,
# and the checker finds it with --image-offset (so runs can share an export).
truncate -s 0 "$T/s.img"
truncate -s 64M "$T/s.img"
start_server "$T/s.img" --unix || exit 1
check "(1) a run with --area-offset 32M --area-blocks 1024 (300 writes)" "$NT" write \
	--socket "$SRV_SOCK" --log "$T/s3.log" --writes 300 --seed 43 --area-offset 32M --area-blocks 1024
check_fails "(1) --area-offset 1000 (not a block multiple) is refused" "$NT" write \
	--socket "$SRV_SOCK" --log "$T/s4.log" --writes 1 --area-offset 1000
stop_server
check "(1) ... nothing below 32 MiB" cmp -n $((32 << 20)) "$T/s.img" /dev/zero
nt_check "(1) ... every acked write is there with --image-offset 32M" 0 "$T/c7.json" \
	--image "$T/s.img" --image-offset $((32 << 20)) --log "$T/s3.log" --mode sync
check_eq "(1) ... all 300 checked" "$(jfield "$T/c7.json" writes_checked)" 300

# --- (2) a sync pair, the primary killed -----------------------------------
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
check "(2) create both --zeroed" sh -c "$A create --zeroed >/dev/null && $Bn create --zeroed >/dev/null"
check "(2) up both" sh -c "timeout -k 2 30 $A up && timeout -k 2 30 $Bn up"
check_eq "(2) connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
check "(2) alpha primary" timeout -k 2 15 $A primary
ready=0
for i in $(seq 1 100); do
	nbd_ready unix "$T/alpha.nbd" && { ready=1; break; }
	sleep 0.1
done
check_eq "(2) alpha's export answers" "$ready" 1
"$NT" write --socket "$T/alpha.nbd" --log "$T/p.log" --conns 4 --qd 8 --seconds 60 \
	>"$T/w2.out" 2>&1 &
wpid=$!
BG_PIDS+=("$wpid")
sleep 2.5
apid=$(daemon_pid alpha)
check "(2) kill -9 alpha's daemon mid-run (pid '$apid')" kill -KILL "$apid"
wait_gone "$wpid" 30
check_eq "(2) the writer exits 0 on the lost connection" "$WAIT_RC" 0
sed 's/^/    | /' "$T/w2.out"
grep -q 'stopped: connection lost' "$T/w2.out" && pass "(2) it says 'stopped: connection lost'" ||
	fail "(2) no 'stopped: connection lost' in its summary"
packed=$(summary "$T/w2.out" 2)
IOPS_PAIR=$(summary "$T/w2.out" 4)
check_eq "(2) writes were acked ('$packed')" "$([ "${packed:-0}" -gt 100 ] && echo yes)" yes
# Nothing more arrives once beta has seen its peer go.
st=$(wait_field "$Bn" "'gone' if d['peer']['connection'] != 'connected' else 'connected'" gone 20)
check_eq "(2) beta sees alpha gone" "$st" gone
nt_check "(2) beta's backing file holds every acked write (--mode sync)" 0 "$T/p.json" \
	--image "$T/b.img" --log "$T/p.log" --mode sync
check_eq "(2) ... checked them all, 0 lost, 0 stale, 0 torn, 0 garbage" \
	"$(jfield "$T/p.json" writes_checked) $(jfield "$T/p.json" lost) $(jfield "$T/p.json" stale) $(jfield "$T/p.json" torn) $(jfield "$T/p.json" garbage)" \
	"$packed 0 0 0 0"

msg "writer IOPS (4 conns x QD 8, 4-32 KiB writes): blkrep serve ${IOPS_SERVE:-?}, sync pair ${IOPS_PAIR:-?}"
finish
