#!/usr/bin/env bash
# Boots Debian's cloud kernel (with nbd.ko) in a qemu TCG guest and runs one
# scenario script there as root:
#
#   tests/vm/run.sh SCENARIO.sh [FILES...]
#
# The guest is an initramfs: busybox-static, bash, iproute2's ip and tc,
# e2fsprogs (mkfs.ext4, fsck.ext4, e2fsck, dumpe2fs), blkid, nbd-client,
# Debian's fio, GNU cmp (busybox's compares a byte at a time: 6x slower),
# the project's blkrep (in /usr/local/bin), every library they link (fio
# alone pulls ~60: ceph, gluster, rdma, icu... about 80 MB, so the base
# archive is left uncompressed: the kernel copies it faster than it would
# gunzip it), and the modules kernel.sh resolved (nbd, veth, sch_netem,
# sch_tbf, virtio_pci and virtio_net for run2.sh's NICs). Its /init mounts proc, sys, devtmpfs, devpts, tmpfs on /tmp and
# /run, brings up lo, insmods the modules, runs /test/SCENARIO.sh (cwd
# /test, FILES and tests/vm/lib.sh, the scenarios' helpers, next to it)
# under a time limit and prints
#   BLKREP-VM-RESULT rc=<exit status>
# on the serial console, then powers off. The guest has no network device
# (run2.sh joins two guests with one).
#
# Prints the guest console (prefixed "| "), how long the boot and run took,
# and exits with the scenario's status: 1 if the marker is missing (guest
# crashed or timed out).
#
# The base archive (everything but blkrep and the scenario) is cached in
# $BLKREP_VM_CACHE (default <repo>/.cache/vm) and rebuilt when this script,
# the kernel or a host binary changes; blkrep and the scenario are packed
# fresh on every run into a second cpio appended to it.
#
# Environment:
#   BLKREP              binary under test (default <repo>/blkrep, built by make)
#   BLKREP_VM_TIMEOUT   seconds for the whole boot and run (default 300); the
#                       scenario gets this minus 30
#   BLKREP_VM_MEM       guest memory in MiB (default 1024)
#   BLKREP_VM_SMP       guest CPUs (default 2)
#   BLKREP_VM_NBDS_MAX  /dev/nbdN devices to create (default 4)
#   BLKREP_VM_ENV       "NAME=value ..." exported to the scenario
#   BLKREP_VM_LOG       also save the raw console output to this file
#   BLKREP_VM_QEMU_ARGS extra qemu arguments (word-split)
#
# The host side shared with run2.sh (base archive, per-run archive, qemu
# arguments, console and marker) is in harness.sh.
set -euo pipefail

# shellcheck source=tests/vm/harness.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness.sh"

[ $# -ge 1 ] || die "usage: $0 SCENARIO.sh [FILES...]"
scenario=$1
shift
[ -f "$scenario" ] || die "no scenario $scenario"
for f in "$@"; do [ -e "$f" ] || die "no file $f"; done

vm_prepare
vm_initrd "$work" "$scenario" "" "$@"
vm_unlock_base
t_prep=$(since "$t_start")
name=$(basename "$scenario")

# --- boot --------------------------------------------------------------------
log "booting $VM_KVER with $name (timeout ${TIMEOUT}s, initramfs ready in ${t_prep}s)"
console=$work/console.log
t_boot=$(now)
vm_qemu_args "$work/initrd"
set +e
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" -nic none </dev/null 2>&1 |
	tee "$console" | vm_filter "| "
qrc=${PIPESTATUS[0]}
set -e
[ -n "${BLKREP_VM_LOG:-}" ] && cp "$console" "$BLKREP_VM_LOG"
rc=0
vm_report "$name" "$console" "$qrc" "$t_boot" || rc=$?
exit "$rc"
