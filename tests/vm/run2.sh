#!/usr/bin/env bash
# Two guests joined by a network cable, and a power loss:
#
#   tests/vm/run2.sh PRIMARY.sh SECONDARY.sh [FILES...]
#   tests/vm/run2.sh tests/vm/powerloss-primary.sh tests/vm/powerloss-secondary.sh
#
# Boots two guests as run.sh does (the same cached base archive, each with
# its own run archive: blkrep, lib.sh, FILES, and PRIMARY.sh in the guest
# "alpha", SECONDARY.sh in the guest "beta"; BLKREP_VM_GUEST=alpha|beta in
# their environment), each with one virtio-net NIC (eth0 in the guest), the
# two joined only by qemu's socket netdev over the host's 127.0.0.1: beta's
# qemu listens on a free port, alpha's connects to it.  No user-mode or
# bridged network: the guests see each other and nothing else.
#
# When alpha's console shows the line BLKREP-POWERLOSS-READY, its qemu gets
# SIGKILL: the power loss.  Then beta's scenario runs to its end.  Prints both
# consoles as they come (prefixed "alpha| " and "beta| "), the times of the
# boot, the marker and the kill, and exits with beta's scenario status (1 if
# beta has no result marker, if alpha's guest ended or failed before its
# marker, or at the deadline: BLKREP_VM_TIMEOUT seconds from the boot, when
# both qemus are killed).
#
# Environment as for run.sh, except: BLKREP_VM_SMP defaults to 1 (two guests
# share the host's cores), BLKREP_VM_LOG saves the consoles as LOG.alpha and
# LOG.beta.
set -euo pipefail

# shellcheck source=tests/vm/harness.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness.sh"
SMP=${BLKREP_VM_SMP:-1}
MARK="BLKREP-POWERLOSS-READY"

[ $# -ge 2 ] || die "usage: $0 PRIMARY.sh SECONDARY.sh [FILES...]"
declare -A scenario=([alpha]=$1 [beta]=$2)
shift 2
for g in alpha beta; do [ -f "${scenario[$g]}" ] || die "no scenario ${scenario[$g]}"; done
for f in "$@"; do [ -e "$f" ] || die "no file $f"; done
command -v ss >/dev/null || die "ss (iproute2) is missing: it finds a free port"

# Processes this script started: "timeout" around each qemu, and each
# console printer.
declare -A job=() printer=()
qemu_pid() { cat "$work/$1/qemu.pid" 2>/dev/null; }
alive() { [ -n "${job[$1]:-}" ] && kill -0 "${job[$1]}" 2>/dev/null; }
# kill_guest NAME: SIGKILL to its qemu (the power cord); its subshell and
# timeout then end.  (A qemu that has not written its pid file yet: up to 2 s
# for it, else the subshell goes, and timeout still bounds qemu.)
kill_guest() {
	local p
	for _ in $(seq 20); do
		p=$(qemu_pid "$1") && [ -n "$p" ] && break
		alive "$1" || return 0
		sleep 0.1
	done
	if [ -n "$p" ]; then
		kill -KILL "$p" 2>/dev/null
	else
		kill -KILL "${job[$1]}" 2>/dev/null
	fi
	return 0
}
vm_cleanup_hook() {
	local g
	for g in "${!job[@]}"; do alive "$g" && kill_guest "$g"; done
	for g in "${!printer[@]}"; do kill "${printer[$g]}" 2>/dev/null; done
	return 0
}

vm_prepare
# One secret for both guests: it is the link's TLS key.
secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
for g in alpha beta; do
	mkdir -p "$work/$g"
	vm_initrd "$work/$g" "${scenario[$g]}" "BLKREP_VM_GUEST=$g BLKREP_VM_SECRET=$secret" "$@"
done
vm_unlock_base
log "booting $VM_KVER twice: alpha ${scenario[alpha]##*/}, beta ${scenario[beta]##*/} (timeout ${TIMEOUT}s, ${SMP} cpu each, initramfs ready in $(since "$t_start")s)"

# boot NAME NETDEV-OPTIONS MAC: the guest's qemu in the background.
boot() {
	local g=$1 con=$work/$1/console.log
	vm_qemu_args "$work/$g/initrd"
	: >"$con"
	rm -f "$work/$g/qemu.pid" "$work/$g/qemu.rc"
	# In a subshell that leaves qemu's status in qemu.rc (its stderr, with
	# bash's "Killed" after the power loss, goes).
	(
		timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" \
			-netdev "socket,id=n0,$2" -device "virtio-net-pci,netdev=n0,mac=$3,romfile=" \
			-pidfile "$work/$g/qemu.pid" </dev/null >"$con" 2>&1
		echo $? >"$work/$g/qemu.rc"
	) 2>/dev/null &
	job[$g]=$!
	tail -n +1 -f --pid="${job[$g]}" "$con" | vm_filter "$g| " &
	printer[$g]=$!
}
listening() { [ -n "$(ss -Htln "sport = :$1")" ]; }

t_boot=$(now)
deadline=$((SECONDS + TIMEOUT))
# beta listens on a free port of 127.0.0.1; should another process take the
# port first, beta's qemu fails to bind and exits: another port.
port=
for try in 1 2 3 4 5; do
	p=$((20000 + RANDOM % 40000))
	listening "$p" && continue
	boot beta "listen=127.0.0.1:$p" 52:54:00:b1:00:02
	until listening "$p" || ! alive beta || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
	if alive beta && listening "$p"; then
		port=$p
		break
	fi
	kill_guest beta
	wait "${job[beta]}" 2>/dev/null || true
	log "beta's qemu could not listen on 127.0.0.1:$p (try $try)"
done
[ -n "$port" ] || die "no free port for the socket netdev"
boot alpha "connect=127.0.0.1:$port" 52:54:00:a1:00:01
log "guests joined by a socket netdev on 127.0.0.1:$port"

# Alpha's marker, then the power loss; then beta to its end; all by the
# deadline.
cut=
fail_why=
while alive beta; do
	if [ -z "$cut" ]; then
		if tr -d '\r' <"$work/alpha/console.log" | grep -q "$MARK"; then
			pid=$(qemu_pid alpha)
			[ -n "$pid" ] && kill -KILL "$pid" || die "cannot kill alpha's qemu (pid '$pid')"
			cut=$(since "$t_boot")
			log "power loss: alpha's qemu (pid $pid) killed with SIGKILL at +${cut}s"
		elif ! alive alpha; then
			fail_why="alpha's guest ended before $MARK (rc=$(vm_marker "$work/alpha/console.log"))"
			break
		fi
	fi
	if [ $SECONDS -ge $deadline ]; then
		fail_why="deadline: ${TIMEOUT}s"
		break
	fi
	sleep 0.2
done
for g in alpha beta; do alive "$g" && kill_guest "$g"; done
wait "${job[beta]}" "${job[alpha]}" || true
qrc=$(cat "$work/beta/qemu.rc" 2>/dev/null || echo 137)
# The printers end within a second of their qemu.
for g in alpha beta; do wait "${printer[$g]}" 2>/dev/null || true; done
printer=()
if [ -n "${BLKREP_VM_LOG:-}" ]; then
	for g in alpha beta; do cp "$work/$g/console.log" "$BLKREP_VM_LOG.$g"; done
fi
if [ -n "$fail_why" ]; then
	log "FAIL: $fail_why (after $(since "$t_boot")s)"
	exit 1
fi
rc=0
vm_report "beta ${scenario[beta]##*/} (power cut at +${cut:-?}s)" "$work/beta/console.log" "$qrc" "$t_boot" || rc=$?
if [ -z "$cut" ] && [ "$rc" = 0 ]; then
	log "FAIL: beta passed, but alpha never printed $MARK: no power loss happened"
	exit 1
fi
exit "$rc"
