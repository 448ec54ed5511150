#!/bin/bash
# Guest benchmark, not a test (bench/README.md: `bash tests/vm/run.sh
# tests/vm/tlsbench.sh`): the replication link three ways, over the veth
# between the root namespace (alpha, primary) and netns b (beta), sync
# mode: the kernel's TLS records (kTLS), TLS in userspace
# (BLKREP_NO_KTLS=1) and plain TCP (allow-unencrypted = yes).  fio on the
# attached /dev/nbdN, O_DIRECT: 1 MiB sequential writes at QD8 and 4k random
# writes at QD32, $TLSBENCH_SECONDS (5) each.  One line per way:
#   TLSBENCH kernel seq_MiBps=... rand4k_iops=...
# The guest runs under TCG (no KVM here): AES-NI is emulated, so compare
# the three ways with each other, never with the host's figures.
NAME=TLSBENCH
. /test/lib.sh
SECS=${TLSBENCH_SECONDS:-5}

fio_one() { # RW BS QD: prints write bandwidth (KiB/s) and IOPS
	fio --name=b --filename="$DEV" --rw="$1" --bs="$2" --iodepth="$3" --ioengine=libaio \
		--direct=1 --time_based --runtime="$SECS" --size=200M --output-format=terse \
		--terse-version=3 2>/dev/null | awk -F';' '{ print $48, $49 }'
}

one() { # LABEL [RESOURCE-LINE]
	local label=$1 seq rnd
	shift
	rm -f "$W/a.img" "$W/b.img"
	pair_up 256M "$@"
	DEV=$($A attach) || fail "attach ($label)"
	seq=$(fio_one write 1M 8)
	rnd=$(fio_one randwrite 4k 32)
	echo "TLSBENCH $label seq_MiBps=$(( ${seq% *} / 1024 )) rand4k_iops=${rnd#* } offload=$(json tls_offload)"
	$A down --detach >/dev/null || fail "down ($label)"
	$IN_B $BN down >/dev/null || fail "beta down ($label)"
	sleep 1
}

step "kernel TLS, userspace TLS, plain TCP"
net_up
one kernel
export BLKREP_NO_KTLS=1
one userspace
unset BLKREP_NO_KTLS
one plain "allow-unencrypted = yes"
echo "TLSBENCH done"
