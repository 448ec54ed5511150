#!/usr/bin/env bash
# Resync: what a secondary is missing is copied to it from the primary,
# and only that.
#  (a) Full initial sync.  A pair created without --zeroed, holding
#      different data on each side, started with `primary --force` on
#      alpha: beta goes from inconsistent to uptodate, the data areas end
#      byte-identical, and alpha reports having sent the whole data area.
#  (b) Secondary killed under load.  fio writes randomly through alpha
#      while beta is killed with kill -9: no write fails (on-peer-loss =
#      continue), alpha's out-of-sync bytes cover at most the region fio
#      wrote, and once beta is up again alpha sends exactly what was out of
#      sync (plus at most 1 MiB) and the replicas end equal.
#  (c) Throttled resync.  With resync-rate = 20M a 64 MiB full sync takes
#      seconds and reports a rate near the limit while it runs; writes made
#      while it runs reach beta and are not overwritten by older data.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
trap 'pair_stop; _cleanup' EXIT
MIB=1048576

# fio_bg OUT FIO-ARGS...: fio (bounded to 40 s) in the background, from $T
# so that nothing lands in the caller's directory; sets FIO_PID.
fio_bg() {
	local out=$1
	shift
	(cd "$T" && exec timeout -k 5 40 fio "$@") >"$out" 2>&1 &
	FIO_PID=$!
	BG_PIDS+=("$FIO_PID")
}

# --- (a) full initial sync -------------------------------------------
check "(a) create both without --zeroed" sh -c "$A create && $Bn create"
check "(a) random data in alpha's first 32 MiB" \
	dd if=/dev/urandom of="$T/a.img" bs=1M count=32 conv=notrunc status=none
check "(a) other random data in beta's" \
	dd if=/dev/urandom of="$T/b.img" bs=1M count=32 conv=notrunc status=none
check "(a) up both" sh -c "$A up && $Bn up"
check_eq "(a) connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
check_eq "(a) beta's disk is inconsistent before its first sync" "$(field "$Bn" "d['disk']")" inconsistent
size=$(field "$A" "d['size_bytes']")
SAME="$TESTS_DIR/cmp_areas.sh $size $T/a.img $T/b.img"
check_fails "(a) the data areas differ before the sync" $SAME
$A primary >"$T/a-plain.out" 2>&1
check_eq "(a) plain primary on a new pair is refused, naming primary --force (not --discard-unknown)" \
	"$(grep -c 'a new pair.*run primary --force' "$T/a-plain.out")$(grep -c 'discard-unknown' "$T/a-plain.out")" 10
check "(a) primary --force on alpha starts the pair" $A primary --force
if st=$(wait_synced 60); then
	pass "(a) the full initial sync finishes"
else
	fail "(a) the full initial sync did not finish: $st"
fi
check_eq "(a) beta's disk is uptodate" "$(field "$Bn" "d['disk']")" uptodate
check_eq "(a) alpha sees beta uptodate" "$(field "$A" "d['peer']['disk']")" uptodate
check_eq "(a) no resync running on alpha" "$(field "$A" "d['resync']")" None
check "(a) the data areas are equal" $SAME
sent=$(field "$A" "d['stats']['resynced_bytes']")
check_eq "(a) alpha sent the whole data area: resynced_bytes ($sent) in [$size, $size + 1 MiB]" \
	"$([ "$sent" -ge "$size" ] && [ "$sent" -le $((size + MIB)) ] && echo yes)" yes
check "(a) writes after the sync replicate" qemu-io -f raw "$URI" \
	-c 'write -P 0x21 40M 1M' -c flush
check "(a) ... and the replicas stay equal" $SAME

# --- (b) secondary killed during load --------------------------------
pair_stop
# --zeroed promises zeros: make it true.
truncate -s 0 "$T/a.img" "$T/b.img"
truncate -s 64M "$T/a.img" "$T/b.img"
pair_start "(b)" --force
check_eq "(b) nothing out of sync at the start" "$(field "$A" "d['out_of_sync_bytes']")" 0
fio_bg "$T/fio-b.out" --name=load --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
	--iodepth=16 --offset=0 --size=8M --time_based --runtime=6
sleep 2
bpid=$(daemon_pid beta)
check "(b) kill -9 beta's daemon mid-load (pid '$bpid')" kill -9 "$bpid"
wait "$FIO_PID"
rc=$?
check_eq "(b) fio finished with no failed write (on-peer-loss = continue)" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/    | /' "$T/fio-b.out" | tail -n 15
check_eq "(b) alpha is still primary" "$(field "$A" "d['role']")" primary
check_fails "(b) the replicas differ now" $SAME
oos=$(field "$A" "d['out_of_sync_bytes']")
check_eq "(b) out of sync ($oos) is > 0 and <= fio's 8 MiB region (+ one 64K extent)" \
	"$([ "${oos:-0}" -gt 0 ] && [ "$oos" -le $((8 * MIB + 65536)) ] && echo yes)" yes
before=$(field "$A" "d['stats']['resynced_bytes']")
check "(b) beta up again" $Bn up
if st=$(wait_synced 60); then
	pass "(b) the resync finishes"
else
	fail "(b) the resync did not finish: $st"
fi
check_eq "(b) beta's disk is uptodate" "$(field "$Bn" "d['disk']")" uptodate
check "(b) the data areas are equal" $SAME
after=$(field "$A" "d['stats']['resynced_bytes']")
delta=$((${after:-0} - ${before:-0}))
check_eq "(b) alpha resent what was out of sync: $delta bytes in [$oos, $oos + 1 MiB]" \
	"$([ "$delta" -ge "${oos:-0}" ] && [ "$delta" -le $((${oos:-0} + MIB)) ] && echo yes)" yes

# --- (c) throttled full sync, writes while it runs -------------------
pair_stop
pair_conf_extra "resync-rate = 20M"
check "(c) create both again without --zeroed" sh -c "$A create --force && $Bn create --force"
check "(c) random data in beta's first 32 MiB (stale, to be replaced)" \
	dd if=/dev/urandom of="$T/b.img" bs=1M count=32 conv=notrunc status=none
check "(c) up both" sh -c "$A up && $Bn up"
check_eq "(c) connected" "$(wait_field "$A" "d['peer']['connection']" connected)" connected
size=$(field "$A" "d['size_bytes']")
SAME="$TESTS_DIR/cmp_areas.sh $size $T/a.img $T/b.img"
t0=$(date +%s%N)
check "(c) primary --force on alpha" $A primary --force
# Sample alpha's resync every 0.25 s (at most 60 s; give up after 15 s if
# no resync is ever seen).  The first time one is seen running, write 1 MiB
# patches spread over the area, some ahead of the resync, some behind it.
: >"$T/rate.samples"
seen=0 wrote=0 synced=0 elapsed_ms=0
for i in $(seq 1 240); do
	s=$(field "$A" "'%d %d' % (d['resync']['bytes_per_second'], d['resync']['done_bytes']) if d['resync'] else 'none'" 2>/dev/null)
	now_ms=$((($(date +%s%N) - t0) / 1000000))
	if [ -n "$s" ] && [ "$s" != none ]; then
		seen=1
		echo "$now_ms $s" >>"$T/rate.samples"
		if [ $wrote = 0 ]; then
			wrote=1
			check "(c) writes while the resync runs" qemu-io -f raw "$URI" \
				-c 'aio_write -P 0x61 1M 1M' -c 'aio_write -P 0x62 16M 1M' \
				-c 'aio_write -P 0x63 32M 1M' -c 'aio_write -P 0x64 48M 1M' \
				-c 'aio_write -P 0x65 60M 1M' -c aio_flush
		fi
	elif [[ $(sync_state) == synced* ]]; then
		synced=1
		elapsed_ms=$now_ms
		break
	fi
	[ $seen = 0 ] && [ "$now_ms" -gt 15000 ] && break
	sleep 0.25
done
sed 's/^/    sample ms bytes_per_second done_bytes: /' "$T/rate.samples" | head -n 40
check_eq "(c) a resync was seen running" "$seen" 1
check_eq "(c) the throttled full sync finishes within 60 s" "$synced" 1
check_eq "(c) it takes >= 2 s (64 MiB at 20 MiB/s: ~3.2 s; took ${elapsed_ms} ms)" \
	"$([ "$elapsed_ms" -ge 2000 ] && echo yes)" yes
# The rate reported after the first second stays near the limit.
maxrate=$(awk '$1 >= 1000 && $2 > m { m = $2 } END { print m + 0 }' "$T/rate.samples")
check_eq "(c) reported bytes_per_second after 1 s (max $maxrate) is in (0, 30 MiB]" \
	"$([ "$maxrate" -gt 0 ] && [ "$maxrate" -le $((30 * MIB)) ] && echo yes)" yes
check "(c) the data areas are equal" $SAME
if [ $wrote = 1 ]; then
	check "(c) beta holds the writes made during the resync" qemu-io -U -r -f raw "$T/b.img" \
		-c 'read -P 0x61 1M 1M' -c 'read -P 0x62 16M 1M' -c 'read -P 0x63 32M 1M' \
		-c 'read -P 0x64 48M 1M' -c 'read -P 0x65 60M 1M'
fi
sent=$(field "$A" "d['stats']['resynced_bytes']")
check_eq "(c) alpha sent at least the whole data area ($sent bytes)" \
	"$([ "${sent:-0}" -ge "$size" ] && echo yes)" yes
finish
