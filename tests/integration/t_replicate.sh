#!/usr/bin/env bash
# Sync replication on a connected pair: right after writes through the
# primary's NBD export return, the two data areas are byte-identical, with
# no settling wait.  Writes, FUA writes, WRITE_ZEROES, TRIM, FLUSH, many
# clients at once, and overlapping writes (which must reach both replicas
# in the same order).
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io nbdcopy

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M

pair_start

check "qemu-io writes, FUA, zero, discard, aio" qemu-io -f raw "$URI" \
	-c 'write -P 0x11 0 1M' -c 'write -f -P 0x22 2M 64k' -c 'write -z 3M 1M' \
	-c 'write -P 0x33 5M 2M' -c 'discard 5M 512k' -c 'write -z -u 6M 256k' \
	-c 'aio_write -P 0x44 8M 64k' -c 'aio_write -P 0x45 9M 64k' -c aio_flush -c flush
check "replicas equal right after qemu-io returns" $SAME
make_random "$T/src" 16
check "nbdcopy 16 MiB with 4 connections" nbdcopy --connections=4 --flush "$T/src" "$URI"
check "replicas equal right after nbdcopy returns" $SAME
check "overlapping writes, many in flight" qemu-io -f raw "$URI" \
	-c 'aio_write -P 0x51 20M 1M' -c 'aio_write -P 0x52 20M 64k' -c 'aio_write -P 0x53 20M 512k' \
	-c 'aio_write -P 0x54 20736k 1M' -c 'aio_write -z 21M 64k' -c 'aio_write -P 0x55 20M 4k' \
	-c aio_flush
check "replicas equal after overlapping writes" $SAME
if command -v fio >/dev/null && fio --enghelp=nbd >/dev/null 2>&1; then
	check "fio: 4 jobs of random writes with verify" fio --name=r --ioengine=nbd --uri="$URI" \
		--rw=randwrite --bs=4k --iodepth=16 --numjobs=4 --size=8M --offset_increment=8M \
		--offset=24M --verify=crc32c --verify_fatal=1 --runtime=60
	check "replicas equal after fio" $SAME
	# More requests in flight (10 x 128) than the link's send queue holds:
	# they wait for room rather than go unreplicated.
	check "fio: 10 connections x QD128" fio --name=q --ioengine=nbd --uri="$URI" \
		--rw=randwrite --bs=4k --iodepth=128 --numjobs=10 --size=2M --offset_increment=2M \
		--offset=40M --verify=crc32c --verify_fatal=1 --runtime=60
	check "replicas equal after 1280 requests in flight" $SAME
fi
check_eq "status counts replicated bytes" "$(field "$A" "d['stats']['replicated_bytes'] > 16 << 20")" True
check "a last flush" qemu-io -f raw "$URI" -c flush
check_eq "connected and flushed: nothing out of sync" "$(field "$A" "d['out_of_sync_bytes']")" 0
check_synced "the pair reports in sync"

# Rule 2: acknowledged by the peer but not yet flushed there is not safe
# there; when the link goes, such a write counts as out of sync.
if command -v nbdsh >/dev/null && $PY -c 'import nbd' 2>/dev/null; then
	check "a write acknowledged by both, with no flush" \
		nbdsh -u "$URI" -c 'h.pwrite(b"\x77" * 65536, 10 << 20)'
	check_eq "... is not out of sync while connected" "$(field "$A" "d['out_of_sync_bytes']")" 0
	unflushed=65536
else
	unflushed=0
	msg "nbdsh missing: the unflushed-write case is not exercised"
fi
# Without the peer the primary goes on alone (on-peer-loss = continue).
check "beta down" $Bn down
check "writes go on without the peer" qemu-io -f raw "$URI" -c 'write -P 0x66 1M 64k' -c flush
check_fails "and the replicas now differ" $SAME
check_eq "exactly the unflushed and the new extent are out of sync" \
	"$(field "$A" "d['out_of_sync_bytes']")" $((65536 + unflushed))
check "beta up again" $Bn up
check_eq "beta knows it may lag: consistent, not uptodate" "$(field "$Bn" "d['disk']")" consistent
check "alpha down" $A down
check_fails "promoting beta without --force is refused" $Bn primary
grep -q -- "--force" "$T/last.err" && pass "... saying what may be missing and how to force" ||
	fail "refusal: $(cat "$T/last.err")"
check "primary --force promotes it" $Bn primary --force
finish
