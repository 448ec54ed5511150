# faultfs under a node's backing file, for the disk-failure and power-loss
# tests.  Source it after lib.sh and pair.sh, after pair_init:
#
#   . "$(dirname "$0")/faultfs.sh"
#   require_faultfs
#   faultfs_under b            # $T/b.img becomes a symlink to $T/b.fs/disk
#   faultfs_ctl b "fail eio"   # the disk fails writes from now on
#   faultfs_ctl a nofallocate  # ... or refuses fallocate,
#   faultfs_ctl a "delay-writes 20000"  # ... or is slow (20 ms a write)
#   faultfs_powerloss b        # kill -9 (held writes are lost), unmount
#
# The real file is $T/X.real (X = a or b); faultfs (build/faultfs, see
# tests/torture/faultfs.c) shows it as $T/X.fs/disk, and the node's
# `backing = $T/X.img` is a symlink to that, so data and internal metadata
# both go through it.  faultfs_cleanup (for the EXIT trap, after the
# daemons are stopped) stops the faultfs processes this test started.

FFS_PIDS=()

# require_faultfs: skips unless FUSE works here and faultfs is built.
require_faultfs() {
	local f
	[ -c /dev/fuse ] || skip "no /dev/fuse: faultfs cannot mount"
	for f in "${FAULTFS:-}" "$(dirname "$BLKREP")/faultfs" "$REPO/build/faultfs" \
		"$REPO/build-san/faultfs"; do
		[ -n "$f" ] && [ -x "$f" ] && FAULTFS=$f && return 0
	done
	skip "build/faultfs is not built (run make)"
}

# faultfs_under X [--crash]: node X's backing file through faultfs.
faultfs_under() {
	local x=$1 end=$((SECONDS + 10)) pid
	shift
	[ -e "$T/$x.real" ] || mv "$T/$x.img" "$T/$x.real"
	# For pair.sh's oracle: a --crash faultfs holds writes $T/X.real lacks.
	case " $* " in *" --crash "*) eval "FFS_CRASH_$x=1" ;; *) eval "FFS_CRASH_$x=" ;; esac
	mkdir -p "$T/$x.fs"
	"$FAULTFS" "$@" "$T/$x.real" "$T/$x.fs" 2>>"$T/faultfs-$x.log" &
	pid=$!
	FFS_PIDS+=("$pid")
	eval "FFS_PID_$x=$pid"
	while [ ! -e "$T/$x.fs/ctl" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			skip "faultfs cannot mount here: $(tail -n 3 "$T/faultfs-$x.log" | tr '\n' ' ')"
		fi
		[ $SECONDS -ge $end ] && { fail "faultfs on $T/$x.fs not up within 10 s"; return 1; }
		sleep 0.05
	done
	ln -sfn "$T/$x.fs/disk" "$T/$x.img"
}

# faultfs_ctl X COMMAND: "fail eio", "fail enospc [after N]", "heal";
# "nofallocate" (fallocate answers EOPNOTSUPP, so the daemon zeroes by
# writing; "allocate" undoes it); "delay-writes USEC" (every write to the
# disk sleeps USEC microseconds first, a slow disk; 0 stops it).
faultfs_ctl() {
	printf '%s\n' "$2" >"$T/$1.fs/ctl"
}

# faultfs_stat X: faultfs's counters line.
faultfs_stat() {
	cat "$T/$1.fs/ctl"
}

# faultfs_powerloss X: SIGKILL faultfs of X (what it held is lost) and
# detach its dead mount.
faultfs_powerloss() {
	local pid
	eval "pid=\${FFS_PID_$1:-}"
	[ -n "$pid" ] || return 1
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	umount -l "$T/$1.fs" 2>/dev/null
	return 0
}

faultfs_cleanup() {
	local pid d
	local end=$((SECONDS + 5))
	for pid in "${FFS_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${FFS_PIDS[@]}"; do
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for d in "$T"/a.fs "$T"/b.fs; do
		[ -d "$d" ] && mountpoint -q "$d" && umount -l "$d" 2>/dev/null
	done
	return 0
}
