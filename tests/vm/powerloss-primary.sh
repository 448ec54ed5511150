#!/bin/bash
# Guest scenario, the primary's half of the two-guest power loss:
#
#   tests/vm/run2.sh tests/vm/powerloss-primary.sh tests/vm/powerloss-secondary.sh
#
# alpha, alone in this guest, replicates over eth0 to beta in the other
# guest (sync mode, on-peer-loss = freeze).  It attaches the volume, makes
# ext4, mounts it, writes files f1..f4 and syncs them, then the MANIFEST of
# their names, sizes and md5 sums (written and synced after them), starts
# fio on the file system and, once fio has written, prints
#   BLKREP-POWERLOSS-READY
# The host then SIGKILLs this guest's qemu: the power loss.  This script
# never ends well by itself: if it is still running 60 s after the marker,
# it fails.
NAME=POWERLOSS-PRIMARY
. /test/lib.sh

step "alpha up on eth0, connected to beta in the other guest, primary"
guest_node alpha 256M "on-peer-loss = freeze"
wait_for 900 peer_connected || fail "not connected to beta after 90 s: $(status_fields "$A" connection)"
$A primary >/dev/null || fail "primary"
[ "$(json mode)" = sync ] || fail "mode $(json mode)"
ok "primary, $(status_fields "$A" mode on_peer_loss disk), beta $(status_fields "$A" connection)"

step "ext4 on the replicated device, files and their MANIFEST synced"
attach_mount
write_manifest 4
ok "$DEV mounted, f1..f4 and MANIFEST synced"

step "fio writing into the file system, then the marker for the power loss"
mkdir -p "$MNT/fio"
r0=$(json replicated_bytes)
# shellcheck disable=SC2046
start_fio run 100 $(fio_jobs "$MNT/fio" 64M --rate=,2m)
# Until fio's writes (and the buffered job's fsyncs, which commit the
# journal) have gone 8 MiB through the pair.
wait_for 600 eval '[ $(($(json replicated_bytes) - r0)) -ge 8388608 ]' ||
	fail "fio replicated $(($(json replicated_bytes) - r0)) bytes in 60 s"
fio_running || fail "fio exited: $(tail -5 "$W/fio-run.out")"
ok "fio running (pid $FIO_PID), $(($(json replicated_bytes) - r0)) bytes replicated since it started"
echo "BLKREP-POWERLOSS-READY"

wait_for 600 false
fail "still running 60 s after the marker: the host did not cut the power"
