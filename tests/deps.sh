#!/usr/bin/env bash
# Installs every Debian package that blkrep's build, tests and benchmarks use.
# Idempotent: does nothing when all are present.
set -euo pipefail
pkgs=(
	build-essential pkg-config make gcc clang libclang-rt-14-dev
	liburing-dev libnl-3-dev libnl-genl-3-dev libbsd-dev libcriterion-dev
	libinih-dev libxxhash-dev libssl-dev libfuse3-dev fuse3
	libnbd-bin python3-libnbd nbdkit nbd-server qemu-utils fio
	iproute2 util-linux e2fsprogs procps psmisc
	openssl
	scdoc systemd man-db groff-base
	libmicrohttpd-dev curl prometheus
	qemu-system-x86 cpio busybox-static
	pacemaker pacemaker-cli-utils corosync pcs resource-agents libxml2-utils kmod
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
# No service starts at install (corosync, pacemaker, prometheus, nbd-server):
# the tests start their own, in namespaces.  A policy-rc.d already there
# is left as it is.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
	$SUDO chmod 755 $policy
fi
rc=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
[ -z "$policy" ] || $SUDO rm -f "$policy"
[ $rc -eq 0 ] || exit $rc
echo "deps: done"
