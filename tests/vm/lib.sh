# shellcheck shell=bash
# Helpers for the guest scenarios that run a replicated pair between two
# "hosts" (tests/vm/run.sh always ships this file as /test/lib.sh):
#
#   #!/bin/bash
#   NAME=MYSCENARIO     # for "MYSCENARIO PASSED" / "MYSCENARIO FAILED at step n"
#   . /test/lib.sh
#   step "..."; net_up; pair_up; attach_mount; write_files 4; ok "..."
#   ...; finish_pair now
#
# The two hosts: alpha's daemon runs in the guest's root network namespace,
# beta's in the namespace "b", joined by the veth pair va (10.0.0.1/24, root)
# <-> vb (10.0.0.2/24, in b); replication runs over that link and nothing
# else (each node listens on its own address only).
#
# Why alpha is not in a namespace of its own: `blkrep attach` is carried out
# by the daemon itself over generic netlink, and this kernel (6.1) registers
# the "nbd" genetlink family for the initial network namespace only (no
# netnsok).  From alpha's daemon in a namespace "a" the family is invisible,
# blkrep silently falls back to the NBD ioctls (NBD_DO_IT in a thread,
# always /dev/nbd0), and that device dies with the daemon: after kill -9
# the file system sees I/O errors and `up` logs "cannot reattach /dev/nbd0:
# the kernel has no NBD netlink interface to reconfigure with".  So the node
# that attaches lives in the root namespace.  The control and NBD sockets
# are file system paths, so every `blkrep` command works from the root
# namespace for both nodes; only beta's `up` needs `ip netns exec b`.
#
# Every command that could block is bounded (`timeout`: CMD_TIMEOUT, default
# 40 s, for blkrep commands), so a hung daemon fails a step instead of
# eating the scenario's whole time limit.  fail prints both daemons' logs,
# the output of `up` and fio, and the kernel's last messages.
set -u

B=${BLKREP:-blkrep}
W=/tmp/pair
MNT=/mnt/vol
CONF=$W/r0.conf
export BLKREP_RUN_DIR=$W/run
A="timeout -k 2 ${CMD_TIMEOUT:-40} $B -c $CONF --node alpha"
BN="timeout -k 2 ${CMD_TIMEOUT:-40} $B -c $CONF --node beta"
IN_B="ip netns exec b"
NAME=${NAME:-SCENARIO}
DEV=
n=0
BG_PIDS=()
FIO_PID=
T0=$EPOCHREALTIME

step() { n=$((n + 1)); echo "STEP $n: $* [$(elapsed)s]"; }
ok() { echo "  ok: $*"; }
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# ms_since START: milliseconds from $EPOCHREALTIME value START until now.
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

fail() {
	local f
	echo "  FAIL: $*"
	for f in alpha beta; do
		echo "--- $f log:"
		tail -n 40 "$W/run/r0-$f.log" 2>/dev/null
	done
	for f in "$W"/up*.out; do
		[ -s "$f" ] && { echo "--- $(basename "$f"):"; cat "$f"; }
	done
	for f in "$W"/fio-*.out; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f"):"
		tail -n 25 "$f"
	done
	echo "--- kernel:"
	dmesg | tail -n 20
	stop_bg
	echo "$NAME FAILED at step $n"
	exit 1
}
stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	BG_PIDS=()
}

# json FIELD [NODE-CMD]: the first "FIELD": value in status --json (no jq in
# the guest; "connection" is the peer's).
json() {
	${2:-$A} status --json 2>/dev/null | grep -o "\"$1\": [^,}]*" | head -1 | sed 's/.*: //; s/"//g'
}
# status_fields NODE-CMD FIELD...: one status --json, the FIELDs' values on
# one line, space-separated ("-" for a missing one).
status_fields() {
	local out f v line=
	out=$(${1} status --json 2>/dev/null)
	shift
	for f in "$@"; do
		v=$(printf '%s' "$out" | grep -o "\"$f\": [^,}]*" | head -1 | sed 's/.*: //; s/"//g')
		line="$line${line:+ }${v:--}"
	done
	echo "$line"
}
io_errors() { dmesg | grep -c -E "I/O error|Buffer I/O error|EXT4-fs error" || true; }
io_error_lines() { dmesg | grep -E "I/O error|Buffer I/O error|EXT4-fs error" | tail -n "${1:-5}"; }

# wait_for TENTHS CMD...: until CMD succeeds, at most TENTHS/10 seconds by
# the clock (however long each try of CMD takes).
tenths_now() { echo $((${EPOCHREALTIME/./} / 100000)); }
wait_for() {
	local end=$(($(tenths_now) + $1))
	shift
	until "$@" 2>/dev/null; do
		[ "$(tenths_now)" -ge $end ] && return 1
		sleep 0.1
	done
}

# net_up: namespace b, veth va (root, 10.0.0.1) <-> vb (b, 10.0.0.2).
net_up() {
	ip netns add b || fail "ip netns add b"
	ip link add va type veth peer name vb || fail "veth pair"
	ip link set vb netns b || fail "move vb into b"
	ip addr add 10.0.0.1/24 dev va && ip link set va up || fail "va up"
	$IN_B ip addr add 10.0.0.2/24 dev vb && $IN_B ip link set vb up &&
		$IN_B ip link set lo up || fail "vb up"
	wait_for 50 ping -c 1 -W 1 10.0.0.2 >/dev/null || fail "no ping from root to b"
}

# pair_conf [RESOURCE-LINE...]: the secret and $CONF, alpha at 10.0.0.1 and
# beta at 10.0.0.2 (backing $W/a.img and $W/b.img).
pair_conf() {
	local l
	mkdir -p "$W" "$MNT"
	# Two guests (run2.sh) share theirs; one guest makes its own.
	if [ -n "${BLKREP_VM_SECRET:-}" ]; then
		printf '%s' "$BLKREP_VM_SECRET" >"$W/secret"
	else
		od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$W/secret"
	fi
	chmod 600 "$W/secret"
	{
		printf '[resource]\nname = r0\nsecret-file = %s\n' "$W/secret"
		for l in "$@"; do printf '%s\n' "$l"; done
		cat <<EOF
[node alpha]
address = 10.0.0.1:7789
backing = $W/a.img
[node beta]
address = 10.0.0.2:7789
backing = $W/b.img
EOF
	} >"$CONF"
}

# pair_up [SIZE] [RESOURCE-LINE...]: a zeroed pair over the veth, alpha
# (root namespace) primary, beta (namespace b) secondary, connected.
pair_up() {
	local size=${1:-160M}
	shift || true
	pair_conf "$@"
	truncate -s "$size" "$W/a.img" "$W/b.img"
	$A create --zeroed >/dev/null && $BN create --zeroed >/dev/null || fail "create"
	$A up >"$W/up-alpha.out" 2>&1 || fail "alpha up: $(cat "$W/up-alpha.out")"
	$IN_B $BN up >"$W/up-beta.out" 2>&1 || fail "beta up (netns b): $(cat "$W/up-beta.out")"
	wait_for 100 connected || fail "not connected after 10 s: alpha $(json connection), beta $(json connection "$BN")"
	# The guest kernel has kTLS: the link's records are the kernel's
	# (unless the scenario asked for userspace TLS or plain TCP).
	if [ -z "${BLKREP_NO_KTLS:-}" ] && ! grep -q '^allow-unencrypted = yes' "$CONF"; then
		[ "$(json tls_offload)" = kernel ] && [ "$(json tls_offload "$BN")" = kernel ] ||
			fail "the link is not in kernel TLS: alpha $(json tls_offload), beta $(json tls_offload "$BN")"
	fi
	$A primary >/dev/null || fail "primary"
	# The replication link is the veth: beta's daemon cannot even see
	# 10.0.0.1 as a local address.
	$IN_B ip -o addr show | grep -q '10.0.0.1/' && fail "netns b has alpha's address"
}
connected() { [ "$(json connection)" = connected ] && [ "$(json connection "$BN")" = connected ]; }

# sync_line: both nodes' role, disk, connection, out-of-sync bytes, resync
# and lag, for messages.
sync_line() {
	echo "alpha $(status_fields "$A" role disk connection out_of_sync_bytes resync lag_bytes)," \
		"beta $(status_fields "$BN" role disk connection out_of_sync_bytes resync lag_bytes)"
}

# synced: connected, no resync, nothing out of sync and no async lag on
# either node, both disks uptodate.
synced() {
	local x
	connected || return 1
	for x in "$A" "$BN"; do
		[ "$(json out_of_sync_bytes "$x")" = 0 ] && [ "$(json resync "$x")" = null ] &&
			[ "$(json lag_bytes "$x")" = 0 ] && [ "$(json disk "$x")" = uptodate ] || return 1
	done
}

# attach_mount: `blkrep attach` on alpha, mkfs.ext4, mount on $MNT; sets DEV.
attach_mount() {
	DEV=$($A attach) || fail "attach"
	case $DEV in /dev/nbd[0-9]*) ;; *) fail "attach printed '$DEV'" ;; esac
	[ "$(cat "/sys/block/${DEV#/dev/}/size")" -gt 0 ] || fail "$DEV has no size"
	[ "$(json device)" = "$DEV" ] || fail "status device: $(json device)"
	mkfs.ext4 -q -F "$DEV" >"$W/mkfs.out" 2>&1 || fail "mkfs.ext4: $(cat "$W/mkfs.out")"
	mount -t ext4 "$DEV" "$MNT" || fail "mount"
}

# write_files N: N files of random data (1..N MiB plus a few odd bytes) in
# $MNT/files, synced, their md5 sums in $W/sums.
write_files() {
	local i
	mkdir -p "$MNT/files"
	for i in $(seq "$1"); do
		head -c $((i * 1048576 + i * 4099)) /dev/urandom >"$MNT/files/f$i" || fail "write f$i"
	done
	sync || fail "sync"
	(cd "$MNT/files" && md5sum f*) >"$W/sums" || fail "md5sum"
}

# files_intact: the files of write_files, read from the device (not from
# the page cache), still have their sums.
files_intact() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	(cd "$MNT/files" && md5sum -c "$W/sums" >"$W/md5.out" 2>&1) ||
		fail "checksums differ: $(grep -v ': OK$' "$W/md5.out" | head -3)"
}

# start_fio TAG SECS FIO-ARGS...: fio in the background, from /tmp (its
# verify state files land in the cwd), bounded by SECS; output in
# $W/fio-TAG.out, pid in FIO_PID.
start_fio() {
	local tag=$1 secs=$2
	shift 2
	(cd /tmp && exec timeout -k 5 "$secs" fio "$@" >"$W/fio-$tag.out" 2>&1) &
	FIO_PID=$!
	BG_PIDS+=("$FIO_PID")
}
fio_running() { kill -0 "$FIO_PID" 2>/dev/null; }

# fio_jobs DIR SIZE [GLOBAL-OPTION...]: the job options the scenarios share
# (print them, for start_fio): two verifying writers of SIZE each on the
# mounted file system, with psync:
#  - "direct": O_DIRECT random writes of 4k..64k, so every write is a
#    request to the device while it runs (and waits in the kernel while
#    the daemon is away); verify_backlog reads back each 256 blocks on the
#    way, then all of it is verified at the end;
#  - "buffered": sequential 64k buffered writes with an fsync every 8,
#    verified at the end.
# Both verify with crc32c and stop at the first mismatch.  The extra
# options (like --rate=,3m) apply to both.
fio_jobs() {
	local dir=$1 size=$2
	shift 2
	echo --directory="$dir" --ioengine=psync --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--exitall_on_error=1 "$@" \
		--name=direct --rw=randwrite --direct=1 --bsrange=4k-64k --size="$size" \
		--verify_backlog=256 \
		--name=buffered --rw=write --bs=64k --size="$size" --fsync=8
}

# wait_fio TAG: waits for the background fio; fails unless it exited 0 and
# every job reports err= 0.
wait_fio() {
	local tag=$1 rc jobs good
	wait "$FIO_PID"
	rc=$?
	FIO_PID=
	BG_PIDS=()
	[ $rc -eq 124 ] && fail "fio ($tag) did not finish in time"
	[ $rc -eq 0 ] || fail "fio ($tag) exited $rc"
	jobs=$(grep -c '(groupid=' "$W/fio-$tag.out")
	good=$(grep '(groupid=' "$W/fio-$tag.out" | grep -c 'err= 0:')
	[ "$jobs" -ge 1 ] && [ "$jobs" = "$good" ] ||
		fail "fio ($tag): $good of $jobs jobs with err= 0: $(grep '(groupid=' "$W/fio-$tag.out")"
	grep -qiE 'verify: bad|bad magic|crc32c: verify failed' "$W/fio-$tag.out" &&
		fail "fio ($tag) reports verify failures"
	return 0
}

# fio_on_fs TAG: the start the restart scenarios share (crash.sh,
# restart.sh): a zeroed pair over the veth, alpha primary; /dev/nbdN
# attached, ext4 mounted, 4 files synced; then fio's two verifying writers
# (fio_jobs, rate-limited so that the job outlasts a restart) running.
# Sets base (the kernel log's I/O errors so far).
fio_on_fs() {
	step "a zeroed pair over a veth: alpha in the root namespace, beta in netns b"
	net_up
	pair_up 160M
	[ "$(ip netns identify "$(daemon_pid beta)")" = b ] || fail "beta's daemon is not in netns b"
	[ -z "$(ip netns identify "$(daemon_pid alpha)")" ] ||
		fail "alpha's daemon is not in the root namespace"
	ok "connected over 10.0.0.1 <-> 10.0.0.2, alpha primary"

	step "attach, mkfs.ext4, mount, files with known sums"
	attach_mount
	write_files 4
	ok "$DEV mounted, 4 files synced"

	step "fio starts: two verifying writers on the file system"
	base=$(io_errors)
	# shellcheck disable=SC2046
	start_fio "$1" 90 $(fio_jobs "$MNT" 24M --rate=,3m)
	sleep 2.5
	fio_running || fail "fio ended before the restart: $(tail -5 "$W/fio-$1.out")"
	ok "fio pid $FIO_PID running"
}

# reattached_check: after `$A up` (its output in $W/up.out) under a
# running fio: the same device reattached, fio alive, alpha primary.
reattached_check() {
	grep -q "reattached $DEV" "$W/up.out" || fail "up did not reattach $DEV: $(cat "$W/up.out")"
	fio_running || fail "fio did not outlast the restart: $(tail -5 "$W/fio-$1.out")"
	[ "$(json role)" = primary ] || fail "alpha came back as $(json role)"
	[ "$(json device)" = "$DEV" ] || fail "status device after up: '$(json device)'"
}

# fio_finished TAG: fio exits clean, the kernel log has no new I/O error,
# and the files written at the start are intact.
fio_finished() {
	step "fio finishes: err= 0, verified; no I/O error in the kernel log"
	wait_fio "$1"
	[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(io_error_lines)"
	ok "fio passed; longest write: direct $(fio_max_lat_ms "$1" direct) ms," \
		"buffered $(fio_max_lat_ms "$1" buffered) ms;" \
		"$(dmesg | grep -c 'Connection timed out') kernel request timeout(s)"

	step "the files written before the restart are intact"
	files_intact
	ok "md5 match (read from $DEV)"
}

# fio_max_lat_ms TAG JOB: the longest write completion latency (clat max) of
# JOB in fio's report, in ms.
fio_max_lat_ms() {
	awk -v job="$2" '
		$1 == job ":" && /groupid=/ { in_job = 1; next }
		/groupid=/ { in_job = 0 }
		in_job && /^ *write:/ { in_write = 1; next }
		in_job && /^ *read *:/ { in_write = 0 }
		in_job && in_write && /^ *clat \(/ {
			unit = $2; sub(/\(/, "", unit); sub(/\):/, "", unit)
			v = $0; sub(/.*max=/, "", v); sub(/,.*/, "", v)
			mul = 1
			if (v ~ /k$/) { mul = 1000; sub(/k$/, "", v) }
			if (v ~ /M$/) { mul = 1000000; sub(/M$/, "", v) }
			v = v * mul
			if (unit == "nsec") v /= 1000000; else if (unit == "usec") v /= 1000; else if (unit == "sec") v *= 1000
			printf "%d\n", v
			exit
		}' "$W/fio-$1.out"
}

# extents_differ SIZE FILE-A FILE-B: prints which 4 MiB extents of the
# first SIZE bytes differ ("N of M 4-MiB extents (#i [aM,bM) ...)", the
# first 8), as tests/integration/cmp_areas.sh does on the host.
extents_differ() {
	local size=$1 off len n=0 total=0 list= ext=4194304
	for ((off = 0; off < size; off += ext)); do
		len=$ext
		[ $((off + len)) -gt "$size" ] && len=$((size - off))
		total=$((total + 1))
		cmp -s -i "$off:$off" -n "$len" "$2" "$3" && continue
		n=$((n + 1))
		[ $n -le 8 ] && list="$list${list:+ }#$((off / ext)) [$((off / 1048576))M,$(((off + len) / 1048576))M)"
	done
	[ $n -gt 8 ] && list="$list ..."
	echo "$n of $total 4-MiB extents ($list)"
}

# data_areas_equal: (the file system unmounted) the first size_bytes, the
# data area, of both backing files are equal; if not, fail naming the 4 MiB
# extents that differ.  Sets SIZE.
data_areas_equal() {
	SIZE=$(json size_bytes)
	[ -n "$SIZE" ] && [ "$SIZE" -gt 0 ] || fail "no size_bytes in status"
	[ "$(json size_bytes "$BN")" = "$SIZE" ] || fail "beta's size_bytes $(json size_bytes "$BN") != $SIZE"
	cmp -n "$SIZE" "$W/a.img" "$W/b.img" >"$W/cmp.out" 2>&1 ||
		fail "the data areas differ: $(head -1 "$W/cmp.out"); $(extents_differ "$SIZE" "$W/a.img" "$W/b.img")"
}

# synced_equal [TENTHS]: the in-sync oracle (../shared/DESIGN.md rule 11),
# for a pair with nothing mounted and no writer: wait (default 30 s) until
# it reports in sync, then its data areas must be byte-equal, and it must
# still report in sync after the comparison (so that the two looked at the
# same state).
synced_equal() {
	wait_for "${1:-300}" synced || fail "not synced after $((${1:-300} / 10)) s: $(sync_line)"
	data_areas_equal
	synced || fail "the pair left the synced state during the comparison: $(sync_line)"
}

# daemon_pid NODE
daemon_pid() { cat "$W/run/r0-$1.pid" 2>/dev/null; }

# wait_synced: up to 30 s for synced, or fail.
wait_synced() {
	wait_for 300 synced || fail "not synced after 30 s: alpha $(json connection), oos $(json out_of_sync_bytes), resync $(json resync), disk $(json disk); beta oos $(json out_of_sync_bytes "$BN"), disk $(json disk "$BN")"
}

# finish_pair now|wait: umount; with "now" the data areas are compared at
# once (in sync mode every acknowledged write is on the secondary), with
# "wait" once the pair is synced (a resync after a crash); then the pair
# must be synced, the data areas equal (SIZE), fsck.ext4 -fn clean, and
# `down --detach` takes the device away; beta goes down; both daemons exit
# without a sanitizer report.  FINISH_TIMES says how long each part took.
finish_pair() {
	local t=$EPOCHREALTIME pids
	umount "$MNT" || fail "umount"
	[ "$1" = wait ] && wait_synced
	data_areas_equal
	synced_equal
	FINISH_TIMES="umount+compare $(ms_since "$t") ms"
	t=$EPOCHREALTIME
	fsck.ext4 -fn "$DEV" >"$W/fsck.out" 2>&1 || fail "fsck.ext4 -fn $DEV: $(tail -5 "$W/fsck.out")"
	FINISH_TIMES="$FINISH_TIMES, fsck $(ms_since "$t") ms"
	t=$EPOCHREALTIME
	pids="$(daemon_pid alpha) $(daemon_pid beta)"
	$A down --detach >/dev/null || fail "down --detach"
	[ "$(cat "/sys/block/${DEV#/dev/}/size")" -eq 0 ] || fail "$DEV still attached after down --detach"
	$BN down >/dev/null || fail "beta down"
	daemons_exit $pids
	FINISH_TIMES="$FINISH_TIMES, down $(ms_since "$t") ms"
}

# daemons_exit PID...: each is gone within 15 s, and neither daemon log
# holds a sanitizer report (BLKREP=build-san/blkrep; LeakSanitizer reports
# at exit).
daemons_exit() {
	local p f
	for p in "$@"; do
		wait_for 150 eval "! kill -0 $p" || fail "daemon $p still running 15 s after down"
	done
	for f in "$W"/run/*.log; do
		grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" &&
			fail "sanitizer report in $(basename "$f"): $(grep -m 3 -E -A 6 'ERROR: |runtime error:' "$f")"
	done
	return 0
}

# beta_fs_final DEV DIR SUMS GONE: the file system on beta's DEV holds the
# shared files (files_intact), DIR's files as SUMS lists them and no GONE;
# fsck is clean; then beta goes down detaching DEV, alpha goes down, and
# both daemons exit cleanly.
beta_fs_final() {
	local pids
	mount -t ext4 "$1" "$MNT" || fail "mount $1"
	files_intact
	(cd "$MNT/$2" && md5sum -c "$3" >"$W/md5.out" 2>&1) || fail "beta's files: $(cat "$W/md5.out")"
	[ -e "$MNT/$4" ] && fail "$4 is on beta's file system"
	umount "$MNT" || fail "umount"
	fsck.ext4 -fn "$1" >"$W/fsck.out" 2>&1 || fail "fsck: $(tail -5 "$W/fsck.out")"
	pids="$(daemon_pid alpha) $(daemon_pid beta)"
	$BN down --detach >/dev/null || fail "beta down --detach"
	$A down >/dev/null || fail "alpha down"
	daemons_exit $pids
}

# --- save files (splitbrain.sh, failback-save.sh) ----------------------------
# wait_secs SECS CMD...: wait_for in seconds.
wait_secs() {
	local secs=$1
	shift
	wait_for $((secs * 10)) "$@"
}

# save_parse FILE: FILE is a BLKRSAVE file (daemon/meta/savefile.h: a 128-byte
# header, then records of offset u64, length u32, sum u64 and the data)
# whose records end exactly at its end and add up to the header's data
# bytes; "OFFSET LENGTH DATA-POSITION" per record goes to $W/save.recs.
# Sets SAVE_RECORDS, SAVE_BYTES and SAVE_NODE (the header's node).  The
# sums are not checked (no xxhash tool in the guest): the scenarios
# compare the data itself with the images.
save_parse() {
	local f=$1 size pos=128 i lo hi len total=0
	size=$(stat -c %s "$f") || fail "no save file $f"
	[ "$size" -ge 128 ] && [ "$(head -c 8 "$f")" = BLKRSAVE ] || fail "$f: no BLKRSAVE header"
	read -r i SAVE_RECORDS <<<"$(od -An -tu4 -j8 -N8 "$f")"
	[ "$i" = 2 ] || fail "$f: version $i"
	SAVE_BYTES=$(od -An -tu8 -j24 -N8 "$f" | tr -d ' ')
	SAVE_NODE=$(dd if="$f" bs=48 skip=80 count=48 iflag=skip_bytes,count_bytes 2>/dev/null | tr -d '\0')
	: >"$W/save.recs"
	for ((i = 0; i < SAVE_RECORDS; i++)); do
		[ $((pos + 20)) -le "$size" ] || fail "$f: record $((i + 1)) of $SAVE_RECORDS starts past the end"
		read -r lo hi len <<<"$(od -An -tu4 -j$pos -N12 "$f")"
		[ "${len:-0}" -gt 0 ] && [ $((pos + 20 + len)) -le "$size" ] ||
			fail "$f: record $((i + 1)) (length '$len' at byte $pos) does not fit"
		echo "$((lo + hi * 4294967296)) $len $((pos + 20))" >>"$W/save.recs"
		total=$((total + len))
		pos=$((pos + 20 + len))
	done
	[ "$pos" -eq "$size" ] || fail "$f: its $SAVE_RECORDS records end at byte $pos of $size"
	[ "$total" = "$SAVE_BYTES" ] || fail "$f: records hold $total bytes, the header says $SAVE_BYTES"
}

# save_apply FILE IMG: writes the records of FILE (save_parse first) into
# the image file IMG at their offsets, as `restore-saved` would.
save_apply() {
	local off len dpos
	while read -r off len dpos; do
		dd if="$1" of="$2" bs=64k skip="$dpos" seek="$off" count="$len" conv=notrunc \
			iflag=skip_bytes,count_bytes oflag=seek_bytes 2>/dev/null || fail "apply $off+$len to $2"
	done <"$W/save.recs"
}

# scratch_mount IMG DIR: IMG served by `blkrep serve` on a unix socket,
# attached as /dev/nbd3 by nbd-client, mounted on DIR (a file system that
# was not unmounted gets its journal replayed, in the scratch copy);
# scratch_umount undoes it and checks fsck.ext4 -fn on the way.
scratch_mount() {
	mkdir -p "$2"
	[ "$(cat /sys/block/nbd3/size)" -eq 0 ] || fail "/dev/nbd3 is in use"
	$B serve "$1" --name scratch --listen "unix:$W/scratch.sock" >"$W/scratch.log" 2>&1 &
	SCRATCH_PID=$!
	wait_for 100 [ -S "$W/scratch.sock" ] || fail "blkrep serve $1: $(cat "$W/scratch.log")"
	nbd-client -unix "$W/scratch.sock" /dev/nbd3 -name scratch -timeout 30 >"$W/scratch-nbd.out" 2>&1 ||
		fail "nbd-client: $(cat "$W/scratch-nbd.out")"
	mount -t ext4 /dev/nbd3 "$2" || fail "mount the scratch copy $1"
	SCRATCH_MNT=$2
}
scratch_umount() {
	umount "$SCRATCH_MNT" || fail "umount $SCRATCH_MNT"
	fsck.ext4 -fn /dev/nbd3 >"$W/fsck-scratch.out" 2>&1 ||
		fail "fsck.ext4 -fn on the scratch copy: $(tail -5 "$W/fsck-scratch.out")"
	nbd-client -d /dev/nbd3 >/dev/null 2>&1 || fail "nbd-client -d /dev/nbd3"
	kill "$SCRATCH_PID" && wait "$SCRATCH_PID"
}

# --- two guests (tests/vm/run2.sh) -------------------------------------------
# Each guest runs one node of the pair, in its root network namespace; the
# replication link is the guests' eth0 (virtio-net), joined by a qemu socket
# netdev on the host's 127.0.0.1 and nothing else: alpha 10.0.0.1, beta
# 10.0.0.2, the addresses of pair_conf.

# guest_node NODE SIZE [RESOURCE-LINE...]: eth0 up with NODE's address, the
# config, NODE's zeroed backing file of SIZE, its daemon up.  Sets ME (the
# command for NODE: $A or $BN).
guest_node() {
	local node=$1 size=$2 addr img
	shift 2
	case $node in
	alpha) addr=10.0.0.1 img=a.img ME=$A ;;
	beta) addr=10.0.0.2 img=b.img ME=$BN ;;
	*) fail "guest_node: no node $node" ;;
	esac
	wait_for 100 [ -e /sys/class/net/eth0 ] || fail "no eth0: $(ls /sys/class/net)"
	ip addr add "$addr/24" dev eth0 && ip link set eth0 up || fail "eth0 up"
	pair_conf "$@"
	truncate -s "$size" "$W/$img"
	$ME create --zeroed >/dev/null || fail "create"
	$ME up >"$W/up-$node.out" 2>&1 || fail "$node up: $(cat "$W/up-$node.out")"
}
# peer_connected: this guest's node ($ME) is connected to the other.
peer_connected() { [ "$(json connection "$ME")" = connected ]; }

# manifest_size NAME: the size of write_manifest's file NAME (fN: N MiB
# plus N*4099 bytes), so that the other guest knows it from the name.
manifest_size() { local i=${1#f}; echo $((i * 1048576 + i * 4099)); }

# write_manifest N: files f1..fN of random data in $MNT/files, synced; then
# $MNT/files/MANIFEST ("md5  size  name" per file), synced after them: what
# the other guest checks with manifest_intact N.
write_manifest() {
	local i
	mkdir -p "$MNT/files"
	for i in $(seq "$1"); do
		head -c "$(manifest_size "f$i")" /dev/urandom >"$MNT/files/f$i" || fail "write f$i"
	done
	sync || fail "sync"
	(cd "$MNT/files" && for i in $(seq "$1"); do
		echo "$(md5sum <"f$i" | cut -d' ' -f1)  $(wc -c <"f$i")  f$i"
	done) >"$MNT/files/MANIFEST.tmp" || fail "manifest"
	mv "$MNT/files/MANIFEST.tmp" "$MNT/files/MANIFEST" && sync || fail "sync the manifest"
}

# manifest_intact N: $MNT/files/MANIFEST names exactly f1..fN, and each file
# has its size (from its name) and its md5, read from the device.
manifest_intact() {
	local i sum size name got
	sync
	echo 3 >/proc/sys/vm/drop_caches
	[ -f "$MNT/files/MANIFEST" ] || fail "no MANIFEST: $(ls -la "$MNT/files" 2>&1 | head -5)"
	[ "$(awk '{ print $3 }' "$MNT/files/MANIFEST" | tr '\n' ' ')" = "$(for i in $(seq "$1"); do printf 'f%d ' "$i"; done)" ] ||
		fail "MANIFEST lists: $(awk '{ print $3 }' "$MNT/files/MANIFEST" | tr '\n' ' ')"
	while read -r sum size name; do
		[ "$size" = "$(manifest_size "$name")" ] || fail "MANIFEST: $name has $size bytes"
		got=$(wc -c <"$MNT/files/$name") || fail "no $name"
		[ "$got" = "$size" ] || fail "$name has $got bytes, not $size"
		got=$(md5sum <"$MNT/files/$name" | cut -d' ' -f1)
		[ "$got" = "$sum" ] || fail "$name: md5 $got, not $sum"
	done <"$MNT/files/MANIFEST"
}
