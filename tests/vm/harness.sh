# shellcheck shell=bash
# The host side shared by tests/vm/run.sh (one guest) and tests/vm/run2.sh
# (two guests joined by a socket netdev): the cached base initramfs, each
# guest's own archive (blkrep, its scenario, lib.sh), the qemu command line,
# the console filter and the result marker.  Sourced, never run; see run.sh
# for what the guest holds and for the environment variables.
#
#   . tests/vm/harness.sh
#   vm_prepare                     # kernel, base archive (locked), $work
#   vm_initrd DIR SCENARIO ENV [FILES...]   # DIR/initrd
#   vm_unlock_base                 # once every initrd is made
#   vm_qemu_args DIR/initrd        # the common qemu arguments, in QEMU_ARGS
#   ... qemu | vm_filter "| "; vm_report NAME CONSOLE QEMU-STATUS BOOT-START

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
harness=$here/harness.sh
export BLKREP_VM_CACHE=${BLKREP_VM_CACHE:-$repo/.cache/vm}
CACHE=$BLKREP_VM_CACHE
BLKREP=${BLKREP:-$repo/blkrep}
TIMEOUT=${BLKREP_VM_TIMEOUT:-300}
MEM=${BLKREP_VM_MEM:-1024}
SMP=${BLKREP_VM_SMP:-2}
NBDS_MAX=${BLKREP_VM_NBDS_MAX:-4}

log() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- helpers for filling a root directory -----------------------------------
# Copies binary $1 to $root/$2 (a path inside the guest) and every library
# ldd lists for it to the same path as on the host.
add_bin() {
	local root=$1 src=$2 dst=$3 lib
	mkdir -p "$root/$(dirname "$dst")"
	cp -L "$src" "$root/$dst"
	chmod 755 "$root/$dst"
	# "name => /path (addr)", "/path (addr)", or "name => not found"
	if ldd "$src" 2>/dev/null | grep -q 'not found'; then
		die "$src: $(ldd "$src" | grep 'not found' | tr -s '\t ' ' ' | tr '\n' ';')"
	fi
	for lib in $(ldd "$src" 2>/dev/null | awk '/=>/ { print $3; next } /^[[:space:]]*\// { print $1 }'); do
		[ -e "$lib" ] || continue
		add_file "$root" "$lib"
	done
}
# Copies host file $2 to the same path under $root (dereferencing links).
add_file() {
	local root=$1 f=$2
	[ -e "$root$f" ] && return 0
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
}
# Packs directory $1 into the newc cpio $2, files owned by root, gzipped
# unless $3 is "plain".
pack() {
	local z="gzip -1"
	[ "${3:-}" = plain ] && z=cat
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | $z >"$2.tmp"
	mv -f "$2.tmp" "$2"
}

# Host tools for the guest: "host-path guest-path [alias...]" (the aliases are
# symlinks next to guest-path; mke2fs and e2fsck pick the type from argv[0]).
host_tool() { command -v "$1" 2>/dev/null || PATH=/usr/sbin:/sbin:$PATH command -v "$1" 2>/dev/null || true; }

# vm_prepare: checks the host, fetches the kernel (kernel.sh), builds the
# base archive unless cached and holds its lock (fd 8) until
# vm_unlock_base; makes $work (removed at exit).  Sets t_start.
vm_prepare() {
	local t
	[ -x "$BLKREP" ] || die "no blkrep binary at $BLKREP (run make)"
	for t in qemu-system-x86_64 cpio gzip ldd busybox; do
		command -v "$t" >/dev/null || die "$t is missing (run tests/deps.sh)"
	done
	[ "$TIMEOUT" -gt 40 ] || die "BLKREP_VM_TIMEOUT must be > 40"

	t_start=$(now)
	mkdir -p "$CACHE"
	CACHE=$(cd "$CACHE" && pwd)

	# --- kernel, modules, nbd-client -------------------------------------
	kenv=$(bash "$here/kernel.sh") || die "kernel.sh failed"
	eval "$kenv"

	tools=(
		"$(host_tool bash) /bin/bash"
		"$(host_tool ip) /usr/local/sbin/ip"
		"$(host_tool tc) /usr/local/sbin/tc"
		"$(host_tool mke2fs) /usr/local/sbin/mke2fs mkfs.ext4 mkfs.ext3 mkfs.ext2"
		"$(host_tool e2fsck) /usr/local/sbin/e2fsck fsck.ext4 fsck.ext3 fsck.ext2"
		"$(host_tool dumpe2fs) /usr/local/sbin/dumpe2fs"
		"$(host_tool blkid) /usr/local/sbin/blkid"
		"$VM_NBD_CLIENT /usr/local/sbin/nbd-client"
		"$(host_tool fio) /usr/local/bin/fio"
		"$(host_tool cmp) /usr/local/bin/cmp"
	)
	for t in "${tools[@]}"; do
		case $t in /*) ;; *) die "a guest tool is missing on the host (${t# }); run tests/deps.sh" ;; esac
	done
	busybox=$(command -v busybox)
	ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: install busybox-static"

	# --- the base archive (cached) ---------------------------------------
	base_key=$(
		{
			cat "$harness"
			echo "$kenv"
			for t in "${tools[@]}" "$busybox"; do
				t=${t%% *}
				stat -L -c '%n %s %Y' "$t"
				ldd "$t" 2>/dev/null | awk '/=>/ { print $3 } /^[[:space:]]*\// { print $1 }' |
					xargs -r stat -L -c '%n %s %Y' 2>/dev/null  || true
			done
		} | sha256sum | cut -c1-16
	)
	base=$CACHE/base-$base_key.cpio
	base_list=$CACHE/base-$base_key.list

	exec 8>"$CACHE/.base.lock"
	flock 8
	if [ ! -s "$base" ] || [ ! -s "$base_list" ]; then
		t=$(now)
		build_base
		log "base initramfs: $(du -h "$base" | cut -f1) in $(since "$t")s"
	fi

	work=$(mktemp -d "${TMPDIR:-/tmp}/blkrep-vm.XXXXXX")
	trap vm_cleanup EXIT
}
# Runs at exit: vm_cleanup_hook (if the caller defines one), then $work goes.
vm_cleanup() {
	declare -F vm_cleanup_hook >/dev/null && vm_cleanup_hook
	rm -rf "$work"
}
vm_unlock_base() { flock -u 8; } # the base may be replaced from now on

build_base() {
	local root t lib m n
	root=$(mktemp -d "$CACHE/.base.XXXXXX")
	log "building the base initramfs ($base_key)"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/sbin,etc,proc,sys,dev,tmp,run,mnt,root,test,var/tmp,lib/modules}
	ln -s ../run "$root/var/run"

	# busybox and its applets (`busybox --install -s`, done ahead of boot).
	cp "$busybox" "$root/bin/busybox"
	"$busybox" --list-full | while read -r a; do
		[ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
	done

	local parts
	for t in "${tools[@]}"; do
		read -r -a parts <<<"$t"
		add_bin "$root" "${parts[0]}" "${parts[1]}"
		for n in "${parts[@]:2}"; do
			ln -sf "${parts[1]##*/}" "$root${parts[1]%/*}/$n"
		done
	done
	add_file "$root" /lib64/ld-linux-x86-64.so.2
	[ -e /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"

	# Modules, plain (busybox insmod reads no compressed ones), in load order.
	: >"$root/lib/modules/load"
	for m in $VM_MODULES; do
		n=$(basename "$m")
		case $n in
		*.ko.xz) n=${n%.xz}; xz -dc "$m" >"$root/lib/modules/$n"; log "decompressed $n.xz" ;;
		*.ko.zst) n=${n%.zst}; zstd -qdc "$m" >"$root/lib/modules/$n"; log "decompressed $n.zst" ;;
		*.ko.gz) n=${n%.gz}; gzip -dc "$m" >"$root/lib/modules/$n"; log "decompressed $n.gz" ;;
		*) cp "$m" "$root/lib/modules/$n" ;;
		esac
		echo "$n" >>"$root/lib/modules/load"
	done

	echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
	echo 'hosts: files' >"$root/etc/nsswitch.conf"
	echo blkrep-vm >"$root/etc/hostname"

	cat >"$root/init" <<'EOF'
#!/bin/sh
# /init of the blkrep test guest, written by tests/vm/harness.sh.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname -F /etc/hostname
ip link set lo up

# Written per run: SCENARIO, SCENARIO_TIMEOUT, NBDS_MAX, exported variables.
. /etc/blkrep-vm.conf
LD_LIBRARY_PATH=$(cat /etc/vm-libdirs/* 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH%:}

for m in $(cat /lib/modules/load); do
	case $m in
	nbd.ko) args="nbds_max=$NBDS_MAX" ;;
	*) args= ;;
	esac
	insmod "/lib/modules/$m" $args || echo "vm-init: insmod $m failed"
done

echo "vm-init: kernel $(uname -r), $(nproc) cpus, running $SCENARIO (limit ${SCENARIO_TIMEOUT}s)"
cd /test
start=$(date +%s)
if [ "$(head -c 2 "/test/$SCENARIO")" = '#!' ]; then
	timeout "$SCENARIO_TIMEOUT" "/test/$SCENARIO"
else
	timeout "$SCENARIO_TIMEOUT" /bin/sh "/test/$SCENARIO"
fi
rc=$?
secs=$(($(date +%s) - start))
if [ "$rc" -ge 128 ] && [ "$secs" -ge "$SCENARIO_TIMEOUT" ]; then
	echo "vm-init: scenario timed out after ${secs}s"
fi
if [ "$rc" -ne 0 ]; then
	echo "vm-init: last kernel messages:"
	dmesg | tail -n 40
fi
echo "BLKREP-VM-RESULT rc=$rc"
sync
poweroff -f
echo o >/proc/sysrq-trigger
EOF
	chmod 755 "$root/init"

	# Library directories, for LD_LIBRARY_PATH (the guest has no ld.so.cache).
	mkdir -p "$root/etc/vm-libdirs"
	(cd "$root" && find . -name '*.so*' -printf '/%h\n' | sed 's|^/\./|/|' | sort -u) >"$root/etc/vm-libdirs/base"

	(cd "$root" && find . -mindepth 1 | sed 's|^\.||') >"$base_list.tmp"
	pack "$root" "$base" plain
	mv -f "$base_list.tmp" "$base_list"
	rm -rf "$root"
	# Drop base archives of earlier keys.
	for old in "$CACHE"/base-*.cpio "$CACHE"/base-*.cpio.gz; do
		[ -e "$old" ] || continue
		[ "$old" = "$base" ] || rm -f "$old" "${old%.cpio*}.list"
	done
}

# vm_initrd DIR SCENARIO ENV [FILES...]: DIR/initrd, the base archive plus
# this guest's: blkrep, its extra libraries, SCENARIO, lib.sh and FILES in
# /test, and /etc/blkrep-vm.conf exporting BLKREP_VM_ENV and then ENV (both
# "NAME=value ..." lists).
vm_initrd() {
	local dir=$1 scenario=$2 env=$3 ov name lib f kv
	shift 3
	ov=$dir/root
	mkdir -p "$ov/usr/local/bin" "$ov/test" "$ov/etc/vm-libdirs"
	cp -L "$BLKREP" "$ov/usr/local/bin/blkrep"
	chmod 755 "$ov/usr/local/bin/blkrep"
	ldd "$BLKREP" | grep -q 'not found' && die "$BLKREP: missing libraries: $(ldd "$BLKREP" | grep 'not found')"
	for lib in $(ldd "$BLKREP" | awk '/=>/ { print $3; next } /^[[:space:]]*\// { print $1 }'); do
		[ -e "$lib" ] || continue
		grep -qxF "$lib" "$base_list" || add_file "$ov" "$lib"
	done
	(cd "$ov" && find . -name '*.so*' -printf '/%h\n' | sed 's|^/\./|/|' | sort -u) >"$ov/etc/vm-libdirs/run"

	name=$(basename "$scenario")
	cp "$scenario" "$ov/test/$name"
	chmod 755 "$ov/test/$name"
	# The scenarios' shared helpers (a pair between two network namespaces,
	# fio jobs, checks), for those that source /test/lib.sh.
	cp "$here/lib.sh" "$ov/test/lib.sh"
	for f in "$@"; do cp -a "$f" "$ov/test/"; done
	{
		printf 'SCENARIO=%q\n' "$name"
		printf 'SCENARIO_TIMEOUT=%d\n' $((TIMEOUT - 30))
		printf 'NBDS_MAX=%d\n' "$NBDS_MAX"
		echo 'export BLKREP=/usr/local/bin/blkrep BLKREP_VM=1'
		for kv in ${BLKREP_VM_ENV:-} $env; do
			case $kv in
			[A-Za-z_]*=*) printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" ;;
			*) die "BLKREP_VM_ENV: not NAME=value: $kv" ;;
			esac
		done
	} >"$ov/etc/blkrep-vm.conf"
	pack "$ov" "$dir/run.cpio.gz"
	# The kernel unpacks concatenated cpio archives (here a plain one, then
	# a gzipped one) in order; later files replace earlier ones.
	cat "$base" "$dir/run.cpio.gz" >"$dir/initrd"
}

# vm_qemu_args INITRD: the qemu arguments every guest has, in QEMU_ARGS
# (the caller adds its network: -nic none, or a socket netdev).
vm_qemu_args() {
	QEMU_ARGS=(
		-accel tcg -cpu max -m "$MEM" -smp "$SMP"
		-nographic -no-reboot
		-kernel "$VM_VMLINUZ" -initrd "$1"
		-append "console=ttyS0 quiet panic=-1"
	)
	# shellcheck disable=SC2206
	QEMU_ARGS+=(${BLKREP_VM_QEMU_ARGS:-})
}

# vm_filter PREFIX: the console, readable (no CRs, no terminal escapes),
# each line prefixed.
vm_filter() { sed -u 's/\r$//; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g; s/^/'"$1"'/'; }

# vm_marker CONSOLE: the status in the guest's result marker ("" if none).
vm_marker() { tr -d '\r' <"$1" | sed -n 's/^BLKREP-VM-RESULT rc=\([0-9]*\).*/\1/p' | tail -n 1; }

# vm_report NAME CONSOLE QEMU-STATUS BOOT-START: logs PASS or FAIL; returns
# the scenario's status, 1 without a marker.
vm_report() {
	local name=$1 console=$2 qrc=$3 t_run marker
	t_run=$(since "$4")
	marker=$(vm_marker "$console")
	if [ -z "$marker" ]; then
		if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
			log "FAIL: no result after ${TIMEOUT}s: qemu killed (boot+run ${t_run}s)"
		else
			log "FAIL: no result marker (qemu exit $qrc, boot+run ${t_run}s)"
		fi
		return 1
	fi
	if [ "$marker" = 0 ]; then
		log "PASS: $name rc=0 (boot+run ${t_run}s, total $(since "$t_start")s)"
	else
		log "FAIL: $name rc=$marker (boot+run ${t_run}s, total $(since "$t_start")s)"
	fi
	return "$marker"
}
