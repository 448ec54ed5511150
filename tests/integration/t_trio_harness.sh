#!/usr/bin/env bash
# The N-node harness (trio.sh) on what the daemon does today.  Its network
# of three namespaces: each reaches the others; a cut link cuts exactly one
# pair; trio_shape puts tbf on the links towards one node.  Then two nodes,
# alpha and beta, each in its own network namespace, joined by their own
# veth pair.  Connected over it, from their configured addresses
# (peer-address-only = yes); fio with crc32c verify through alpha's
# export, then in sync and byte-identical; status answers from the host
# namespace too; trio_shape slows the link to beta (a 4 MiB sync write
# takes seconds, and a moment without); trio_cut: both sides see the peer
# gone, alpha writes alone; trio_heal: they reconnect, alpha sends beta a
# resync of what it missed (not the whole device), identical again;
# trio_kill9 beta and `up` it again in its namespace: back in sync.
. "$(dirname "$0")/lib.sh"
require_cmd ip tc nsenter fio qemu-io
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd engine"
. "$(dirname "$0")/trio.sh"
MIB=1048576

# peer-address-only: each node must connect from its own configured address
# (trio.sh's routes name it as the source), not from a veth's.  The network
# has a third node, gamma, without a daemon: the topology t_three.sh needs.
TRIO_EXTRA="peer-address-only = yes"
TRIO_NET="alpha beta gamma"
trio_init 64M alpha beta

# reach X>Y...: trio_reach for each pair named, "yes" or "no" each.
reach() {
	local p
	for p in "$@"; do printf '%s ' "$(trio_reach "${p%>*}" "${p#*>}")"; done
}
trio_step "the network: three namespaces, a link per two"
check_eq "every namespace reaches every other one" \
	"$(reach 'alpha>beta' 'alpha>gamma' 'beta>alpha' 'beta>gamma' 'gamma>alpha' 'gamma>beta')" \
	"yes yes yes yes yes yes "
trio_cut alpha gamma
check_eq "alpha-gamma cut: neither reaches the other, and no other way round; beta reaches both" \
	"$(reach 'alpha>gamma' 'gamma>alpha' 'alpha>beta' 'beta>gamma')" "no no yes yes "
trio_heal alpha gamma
check_eq "alpha-gamma healed: they reach each other" "$(reach 'alpha>gamma' 'gamma>alpha')" "yes yes "
trio_shape gamma 8mbit
check_eq "gamma shaped: tbf on alpha's and beta's link to gamma, not on alpha-beta" \
	"$(for l in alpha:gamma beta:gamma alpha:beta; do
		tc -n "$(trio_ns "${l%:*}")" qdisc show dev "to-${l#*:}" | grep -c '^qdisc tbf'
	done | tr '\n' ' ')" "1 1 0 "
trio_unshape gamma
check_eq "unshaped" "$(tc -n "$(trio_ns alpha)" qdisc show dev to-gamma | grep -c '^qdisc tbf')" 0

trio_step "start two nodes"
trio_start || exit 1
check_eq "status answers from the host namespace too (its control socket is a path)" \
	"$(field "$BLKREP -c $T/r0.conf --node beta" "d['role']")" secondary
check_eq "alpha sees beta connected (peer('beta'))" \
	"$(trio_field alpha "peer('beta')['connection']")" connected
check_eq "beta sees alpha connected" "$(trio_field beta "peer('alpha')['connection']")" connected

trio_step "fio with verify through alpha's export"
check "fio randwrite 2 jobs x 8 MiB, iodepth 16, verify=crc32c" \
	fio --name=w --ioengine=nbd --uri="$(trio_uri alpha)" --rw=randwrite --bs=4k \
	--iodepth=16 --numjobs=2 --size=8M --offset_increment=8M --verify=crc32c \
	--do_verify=1 --verify_fatal=1 --runtime=60
check_trio_synced "after fio, alpha and beta" 30
trio_identical alpha beta

trio_step "shape the link to beta (tbf 16mbit)"
t0=$(date +%s%N)
check "a 4 MiB write, link not shaped" qemu-io -f raw "$(trio_uri alpha)" -c 'write -P 0x31 16M 4M' -c flush
fast=$((($(date +%s%N) - t0) / 1000000))
trio_shape beta 16mbit
t0=$(date +%s%N)
check "a 4 MiB write, link shaped" qemu-io -f raw "$(trio_uri alpha)" -c 'write -P 0x32 20M 4M' -c flush
slow=$((($(date +%s%N) - t0) / 1000000))
check_eq "the shaped link slows sync writes down (4 MiB: $fast ms, then $slow ms; 2 s at 16 Mbit/s)" \
	"$([ "$slow" -ge 1500 ] && [ "$slow" -ge $((fast * 3)) ] && echo yes)" yes
trio_unshape beta

trio_step "cut the alpha-beta link"
trio_cut alpha beta
t0=$SECONDS
check_eq "alpha sees beta gone" \
	"$(trio_wait_field alpha "peer('beta').get('connection') != 'connected'" True 15)" True
check_eq "beta sees alpha gone ($((SECONDS - t0)) s after the cut)" \
	"$(trio_wait_field beta "peer('alpha').get('connection') != 'connected'" True 15)" True
check "alpha writes 2 MiB alone" qemu-io -f raw "$(trio_uri alpha)" -c 'write -P 0x33 40M 2M' -c flush
oos=$(trio_field alpha "peer('beta')['out_of_sync_bytes']")
check_eq "alpha counts them out of sync for beta ($oos bytes)" "$([ "${oos:-0}" -ge $((2 * MIB)) ] && echo yes)" yes
check_fails "the data areas differ while the link is cut" \
	"$TESTS_DIR/cmp_areas.sh" "$size" "$(trio_img alpha)" "$(trio_img beta)"

trio_step "heal the link"
# Today's daemon counts stats.resynced_bytes on the resync source (the
# N-node one also on the target: t_three.sh reads the target's).
rs0=$(trio_field alpha "d['stats']['resynced_bytes']")
trio_heal alpha beta
m=$(trio_wait_mesh 20 alpha beta)
check_eq "they reconnect within 20 s ($m)" "$m" connected
check_trio_synced "after the heal, the resync" 60
rs=$(($(trio_field alpha "d['stats']['resynced_bytes']") - rs0))
msg "alpha resynced $rs bytes of $size to beta"
check_eq "alpha sent beta what it missed by resync, not the device ($rs bytes)" \
	"$([ "$rs" -ge $((2 * MIB)) ] && [ "$rs" -lt $((size / 4)) ] && echo yes)" yes
trio_identical alpha beta "after the heal, identical"

trio_step "kill -9 beta, up again"
trio_kill9 beta
check_eq "alpha sees beta gone" \
	"$(trio_wait_field alpha "peer('beta').get('connection') != 'connected'" True 15)" True
check "alpha writes 1 MiB alone" qemu-io -f raw "$(trio_uri alpha)" -c 'write -P 0x34 48M 1M' -c flush
check "up beta again in its namespace" $TRIO_B up
check_trio_synced "beta back" 60
trio_identical alpha beta "beta back, identical"
trio_step "done"
finish
