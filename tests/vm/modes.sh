#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/modes.sh): `blkrep mode async`
# and `blkrep mode sync` back and forth while fio writes and verifies
# through a mounted file system on the replicated /dev/nbdN.
#
# alpha (root network namespace) and beta (namespace b) replicate over a
# veth pair (see lib.sh) with 5 ms of netem delay towards beta; alpha is
# primary, its volume carries an ext4 with
# files of known md5.  fio runs two verifying writers (O_DIRECT random
# 4k..64k, buffered sequential with fsync; crc32c; writes rate-limited so
# that the job outlasts the switching on any machine) while the primary
# switches sync -> async -> sync, ~0.5-1 s apart, for at least 3 rounds:
#  - every `mode` command succeeds, status shows the new mode at once, and
#    the moment `mode sync` returns lag_bytes is 0 (it waits for the lag);
#  - fio exits 0 with err= 0 in every job and no verify failure;
#  - no "I/O error", "Buffer I/O error" or "EXT4-fs error" in dmesg;
#  - after the final `mode sync`, sync and umount, the data areas of both
#    replicas are equal at once (and stay so once the pair reports synced);
#    fsck.ext4 -fn is clean; the files written first are intact.
NAME=MODES
. /test/lib.sh
ROUNDS_MIN=3
ROUNDS_MAX=6

step "a zeroed pair over a veth: alpha in the root namespace, beta in netns b"
net_up
pair_up 160M
[ "$(ip netns identify "$(daemon_pid beta)")" = b ] || fail "beta's daemon is not in netns b"
[ "$(json mode)" = sync ] || fail "a new pair is in $(json mode) mode"
# A link with some latency, so that async mode builds a lag for `mode sync`
# to drain.
tc qdisc add dev va root netem delay 5ms || fail "netem on va"
ok "connected over 10.0.0.1 <-> 10.0.0.2 (5 ms one way), alpha primary, sync mode"

step "attach, mkfs.ext4, mount, files with known sums"
attach_mount
write_files 4
ok "$DEV mounted, 4 files synced"

step "fio writes and verifies while the mode switches sync -> async -> sync"
base=$(io_errors)
# shellcheck disable=SC2046
start_fio modes 90 $(fio_jobs "$MNT" 48M --rate=,3m)
sleep 1
fio_running || fail "fio ended at once: $(tail -5 "$W/fio-modes.out")"
rounds=0
max_lag=0
sync_ms=
while [ $rounds -lt $ROUNDS_MAX ] && fio_running; do
	r=$((rounds + 1))
	$A mode async >"$W/mode.out" 2>&1 || fail "mode async (round $r): $(cat "$W/mode.out")"
	read -r mode lag <<<"$(status_fields "$A" mode lag_bytes)"
	[ "$mode" = async ] || fail "mode async returned, status says $mode"
	sleep 0.5
	read -r mode lag <<<"$(status_fields "$A" mode lag_bytes)"
	[ "$lag" != - ] && [ "$lag" -gt "$max_lag" ] && max_lag=$lag
	t=$EPOCHREALTIME
	$A mode sync >"$W/mode.out" 2>&1 || fail "mode sync (round $r): $(cat "$W/mode.out")"
	sync_ms="$sync_ms $(ms_since "$t")"
	read -r mode lag <<<"$(status_fields "$A" mode lag_bytes)"
	[ "$mode" = sync ] || fail "mode sync returned, status says $mode"
	[ "$lag" = 0 ] || fail "mode sync returned with lag_bytes $lag"
	# Only rounds that fio outlived count.
	fio_running && rounds=$r
	sleep 0.5
done
[ $rounds -ge $ROUNDS_MIN ] ||
	fail "only $rounds switching rounds while fio ran (want $ROUNDS_MIN): $(tail -5 "$W/fio-modes.out")"
ok "$rounds rounds during fio; largest lag seen in async ${max_lag} bytes; mode sync took (ms):$sync_ms"

step "fio finishes: err= 0, verified; no I/O error in the kernel log"
wait_fio modes
[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(io_error_lines)"
ok "fio passed"

step "a final mode sync; the files written first are intact"
$A mode sync >"$W/mode.out" 2>&1 || fail "final mode sync: $(cat "$W/mode.out")"
[ "$(json mode)" = sync ] && [ "$(json lag_bytes)" = 0 ] || fail "after mode sync: mode $(json mode), lag $(json lag_bytes)"
files_intact
ok "sync mode, lag 0, md5 match"

step "umount: the replicas' data areas are equal at once; fsck clean"
finish_pair now
ok "$SIZE bytes equal, synced, fsck clean, detached ($FINISH_TIMES)"

echo "$NAME PASSED ($n steps, $(elapsed) s)"
