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
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
