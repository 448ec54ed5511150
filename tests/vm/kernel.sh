#!/usr/bin/env bash
# Fetches what the test guest needs from Debian's archive, into a git-ignored
# cache ($BLKREP_VM_CACHE, default <repo>/.cache/vm):
#   - the current cloud kernel: linux-image-6.1.0-NN-cloud-amd64, NN from
#     `apt-cache depends linux-image-cloud-amd64` (override the package with
#     $BLKREP_VM_KERNEL_PKG), unpacked with `dpkg -x`; the package ships no
#     modules.dep (depmod runs at install time), so one is made here from each
#     module's `depends=` field;
#   - nbd-client (the guest's reference NBD attach tool; not installed on the
#     host, only unpacked).
# Then it resolves the modules the guest loads ($BLKREP_VM_MODULES, default
# "nbd veth sch_netem sch_tbf virtio_pci virtio_net tls ctr gcm ghash_generic
# aesni_intel": kTLS and the AES-GCM it needs for the link; virtio_* drive the
# NIC of run2.sh's guests; both are modules in the cloud kernel, and virtio_net
# pulls in net_failover and failover) and their dependencies, in load order.
#
# Prints shell assignments for `eval "$(tests/vm/kernel.sh)"`, also kept in
# $BLKREP_VM_CACHE/kernel.env:
#   VM_KVER VM_VMLINUZ VM_MODDIR VM_NBD_KO VM_MODULES (paths, load order)
#   VM_NBD_CLIENT
# Cached: while kernel.env is newer than apt's lists (no `apt-get update`
# since) and names the same modules, a run just prints it. Otherwise apt's
# local lists say which kernel is current (no network needed unless it
# changed; falls back to the cached kernel if apt knows none).
# Progress messages go to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${BLKREP_VM_CACHE:-$repo/.cache/vm}
MODULES=${BLKREP_VM_MODULES:-nbd veth sch_netem sch_tbf virtio_pci virtio_net tls ctr gcm ghash_generic aesni_intel}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

log() { echo "vm-kernel: $*" >&2; }
die() { echo "vm-kernel: error: $*" >&2; exit 1; }

# One fetcher at a time (parallel test runs share the cache).
exec 9>"$CACHE/.kernel.lock"
flock 9

# Fast path: nothing changed since the last run.
env_file=$CACHE/kernel.env
if [ -s "$env_file" ] && [ "$env_file" -nt /var/lib/apt/lists ] &&
	grep -qxF "VM_WANT=$(printf '%q' "$MODULES")" "$env_file"; then
	ok=1
	# shellcheck disable=SC1090
	(. "$env_file" && for f in "$VM_VMLINUZ" $VM_MODULES "$VM_NBD_CLIENT"; do [ -e "$f" ] || exit 1; done) || ok=0
	[ $ok = 1 ] && { cat "$env_file"; exit 0; }
fi

# Downloads package $1 (version $2) and unpacks it into $3, unless done.
fetch_deb() {
	local pkg=$1 ver=$2 dest=$3 tmp deb
	[ -e "$dest/.unpacked" ] && return 0
	command -v apt-get >/dev/null || die "apt-get is needed to fetch $pkg"
	log "downloading $pkg $ver"
	tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
	# apt-get download writes into the current directory.
	(cd "$tmp" && apt-get download -q "$pkg=$ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
		{ rm -rf "$tmp"; die "apt-get download $pkg=$ver failed (apt-get update first?)"; }
	deb=$(ls "$tmp"/*.deb)
	rm -rf "$dest"
	mkdir -p "$dest"
	dpkg -x "$deb" "$dest"
	rm -rf "$tmp"
	touch "$dest/.unpacked"
}

# Candidate version of package $1 from apt's local lists ("" if unknown).
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# apt-get update, once, when apt's lists know nothing and nothing is cached.
updated=0
apt_update() {
	[ $updated = 0 ] || return 1
	updated=1
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	log "apt knows no $1: apt-get update"
	$sudo apt-get update -qq >&2 || true
}

# --- the kernel -------------------------------------------------------------
find_kernel() {
	kpkg=${BLKREP_VM_KERNEL_PKG:-}
	if [ -z "$kpkg" ]; then
		kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true)
	fi
	kver_pkg=
	[ -z "$kpkg" ] || kver_pkg=$(candidate "$kpkg")
}
find_kernel
if [ -z "$kver_pkg" ] && ! ls -d "$CACHE"/kernel/*/ >/dev/null 2>&1; then
	apt_update linux-image-cloud-amd64 && find_kernel
fi
if [ -n "$kpkg" ] && [ -n "$kver_pkg" ]; then
	kdir=$CACHE/kernel/${kpkg}_${kver_pkg//:/_}
	fetch_deb "$kpkg" "$kver_pkg" "$kdir"
	# Keep only the current kernel.
	for old in "$CACHE"/kernel/*; do
		[ "$old" = "$kdir" ] || { log "removing old $(basename "$old")"; rm -rf "$old"; }
	done
else
	# apt knows no cloud kernel (no lists): use whatever is cached.
	kdir=$(ls -d "$CACHE"/kernel/*/ 2>/dev/null | tail -n 1 || true)
	[ -n "$kdir" ] || die "apt-cache knows no ${BLKREP_VM_KERNEL_PKG:-linux-image-cloud-amd64} and nothing is cached; run apt-get update"
	kdir=${kdir%/}
	log "apt knows no cloud kernel; using cached $(basename "$kdir")"
fi

vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kdir/boot"
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/lib/modules/$kver
[ -d "$moddir/kernel" ] || die "no modules in $moddir"

# --- modules.dep ------------------------------------------------------------
# Same format as depmod's ("kernel/a.ko: kernel/b.ko ..."), direct
# dependencies only; the resolver below follows them recursively, so a real
# depmod-made file works as well.
if [ ! -s "$moddir/modules.dep" ]; then
	log "making modules.dep for $kver"
	tmpdep=$(mktemp "$CACHE/.dep.XXXXXX")
	(
		cd "$moddir"
		# name<TAB>path<TAB>depends (comma list) for every module.
		{
			# Plain .ko: the .modinfo strings are NUL-separated, grep -z reads them.
			find kernel -name '*.ko' -print0 |
				xargs -0 -r grep -a -z -H '^depends=' |
				tr '\0' '\n' | sed -n 's/^\(.*\.ko\):depends=/\1\t/p'
			# Compressed modules: decompress each on the fly.
			find kernel \( -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) -print |
				while read -r f; do
					case $f in
					*.xz) d="xz -dc" ;; *.zst) d="zstd -qdc" ;; *.gz) d="gzip -dc" ;;
					esac
					printf '%s\t%s\n' "$f" "$($d "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n 1)"
				done
		} | awk -F '\t' '
			{ path[NR] = $1; deps[NR] = $2
			  n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n)
			  byname[n] = $1 }
			END {
				for (i = 1; i <= NR; i++) {
					line = path[i] ":"
					k = split(deps[i], d, ",")
					for (j = 1; j <= k; j++) {
						m = d[j]; gsub(/-/, "_", m)
						if (m in byname) line = line " " byname[m]
					}
					print line
				}
			}'
	) >"$tmpdep"
	mv -f "$tmpdep" "$moddir/modules.dep"
fi

# --- resolve the wanted modules, dependencies first ------------------------
declare -A dep_of=() path_of=() done_mod=()
while IFS= read -r line; do
	p=${line%%:*}
	n=${p##*/}; n=${n%%.ko*}; n=${n//-/_}
	path_of[$n]=$p
	dep_of[$p]=${line#*:}
done <"$moddir/modules.dep"

order=()
visit() { # $1: module path relative to $moddir
	local p=$1 d
	[ -n "${done_mod[$p]:-}" ] && return 0
	done_mod[$p]=1
	for d in ${dep_of[$p]}; do visit "$d"; done
	order+=("$moddir/$p")
}
for m in $MODULES; do
	m=${m//-/_}
	[ -n "${path_of[$m]:-}" ] || die "module $m not found in $kver"
	visit "${path_of[$m]}"
done
nbd_ko=$moddir/${path_of[nbd]:-}
[ -n "${path_of[nbd]:-}" ] || die "nbd module not found in $kver"

# --- nbd-client, unpacked for the guest only --------------------------------
nver=$(candidate nbd-client)
if [ -z "$nver" ] && ! ls -d "$CACHE"/debs/nbd-client_*/ >/dev/null 2>&1; then
	apt_update nbd-client && nver=$(candidate nbd-client)
fi
if [ -n "$nver" ]; then
	ndir=$CACHE/debs/nbd-client_${nver//:/_}
	fetch_deb nbd-client "$nver" "$ndir"
	for old in "$CACHE"/debs/nbd-client_*; do
		[ "$old" = "$ndir" ] || rm -rf "$old"
	done
else
	ndir=$(ls -d "$CACHE"/debs/nbd-client_*/ 2>/dev/null | tail -n 1 || true)
	[ -n "$ndir" ] || die "apt-cache knows no nbd-client and nothing is cached; run apt-get update"
	ndir=${ndir%/}
fi
nbd_client=
for c in "$ndir/sbin/nbd-client" "$ndir/usr/sbin/nbd-client"; do
	[ -x "$c" ] && nbd_client=$c && break
done
[ -n "$nbd_client" ] || die "no nbd-client binary in $ndir"

# --- report ----------------------------------------------------------------
{
	printf 'VM_KVER=%q\n' "$kver"
	printf 'VM_VMLINUZ=%q\n' "$vmlinuz"
	printf 'VM_MODDIR=%q\n' "$moddir"
	printf 'VM_NBD_KO=%q\n' "$nbd_ko"
	printf 'VM_MODULES=%q\n' "${order[*]}"
	printf 'VM_NBD_CLIENT=%q\n' "$nbd_client"
	printf 'VM_WANT=%q\n' "$MODULES"
} >"$env_file.tmp"
mv -f "$env_file.tmp" "$env_file"
cat "$env_file"
