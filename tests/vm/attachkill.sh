#!/bin/bash
# Guest scenario (tests/vm/run.sh tests/vm/attachkill.sh): kill -9 of the
# primary's daemon in the middle of `blkrep attach`, on the real kernel NBD
# client, round after round; after each kill `blkrep up` again.
#
# alpha (root network namespace) and beta (namespace b) replicate over a
# veth pair (see lib.sh); alpha is primary.  Before the rounds: attach,
# mkfs.ext4, files of known md5, umount, detach.  Each round starts with
# nothing attached and no /dev/nbdN connected, starts `blkrep attach` in
# the background and kill -9s alpha's daemon after a delay (ATTACHKILL_DELAYS,
# milliseconds; "c" means: as soon as the kernel shows a connected
# /dev/nbdN, i.e. right after the netlink CONNECT), so that kills land
# before the CONNECT, between it and the reply, and after the reply.  Where
# it landed is told by what `attach` printed, whether the kernel holds a
# connected device (/sys/block/nbdN/pid) and whether the daemon logged
# "attached as" (it does after recording the device in its metadata).
# Then `up`:
#  - a device the kernel holds is reattached ("reattached /dev/nbdN" in
#    the output of `up`, status shows it); a device recorded in the
#    metadata that the kernel does not hold is forgotten with the line
#    "cannot reattach ... forgetting it"; with neither, `up` names no
#    device and status shows none;
#  - no /dev/nbdN is left connected to nobody: every device with a pid
#    file is the one status names;
#  - alpha comes back primary.
# Then the volume is used: the reattached device, or a fresh `attach`; the
# file system made before the rounds mounts, every file written before
# (the first files and one per earlier round) has its md5 (read from the
# device), a new file is written and synced, no new "I/O error", "Buffer
# I/O error" or "EXT4-fs error" in the kernel log; umount, `detach` (the
# device reads size 0 and has no pid file).
# At the end: attach, mount, the files intact; the pair resyncs, the data
# areas of both replicas are equal, fsck.ext4 -fn clean, `down --detach`;
# no /dev/nbdN is connected and every one the test used reads size 0.
# Prints one line per round: delay, when the kill came (ms after starting
# `attach`), where it landed, what `up` did, and how long `up` took.
# A kill that lands before `attach` reached the control socket costs ~10 s:
# the client retries a refused connect until its deadline.
# A kill between the kernel's CONNECT and node_save_sb() leaves /dev/nbdN
# connected to a dead socket with nothing in the metadata (found by this
# test): `up` must find it by its backend id, say so ("in the middle of
# attach") and reattach it.  The "c" round and the 50..80 ms delays hit
# that window sometimes.
NAME=ATTACHKILL
. /test/lib.sh

# (commas or spaces: BLKREP_VM_ENV=ATTACHKILL_DELAYS=55,60,c)
DELAYS=${ATTACHKILL_DELAYS:-"0 55 65 c 75 c 400"}
DELAYS=${DELAYS//,/ }
# ATTACHKILL_ORPHANS=tolerate (diagnostics): a device left connected to
# nobody is reported, disconnected by hand and the rounds go on; the
# scenario still fails at the end.
ORPHANS=${ATTACHKILL_ORPHANS:-fail}
n_orphans=0

# connected_devs: the /dev/nbdN the kernel holds connected (a pid file),
# space-separated.
connected_devs() {
	local f d out=
	for f in /sys/block/nbd*/pid; do
		[ -e "$f" ] || continue
		d=${f#/sys/block/}
		out="$out${out:+ }/dev/${d%/pid}"
	done
	echo "$out"
}
any_connected() {
	local f
	for f in /sys/block/nbd*/pid; do [ -e "$f" ] && return 0; done
	return 1
}
# no_orphan WHEN: every connected /dev/nbdN is the device alpha's status
# names (empty: none may be connected).
no_orphan() {
	local d sdev
	sdev=$(json device)
	[ "$sdev" = null ] && sdev=
	for d in $(connected_devs); do
		[ "$d" = "$sdev" ] ||
			fail "$1: $d is connected (pid file: $(cat "/sys/block/${d#/dev/}/pid" 2>/dev/null)," \
				"size $(cat "/sys/block/${d#/dev/}/size")) but alpha's status names '${sdev:-no device}'" \
				"(alpha's daemon is $(daemon_pid alpha)): a device connected to nobody"
	done
}
# lap NAME: appends "NAME <ms since tl>" to laps, tl set to now.
lap() { laps="$laps${laps:+, }$1 $(ms_since "$tl")"; tl=$EPOCHREALTIME; }
# log_since LINES: alpha's log after its first LINES lines.
log_since() { tail -n +$(($1 + 1)) "$W/run/r0-alpha.log" 2>/dev/null; }
log_lines() { wc -l <"$W/run/r0-alpha.log" 2>/dev/null || echo 0; }
# detach_dev: umount, detach, the device reads size 0 and is not connected.
detach_dev() {
	umount "$MNT" || fail "umount"
	$A detach >"$W/detach.out" 2>&1 || fail "detach $DEV: $(cat "$W/detach.out")"
	[ "$(cat "/sys/block/${DEV#/dev/}/size")" -eq 0 ] || fail "$DEV has size $(cat "/sys/block/${DEV#/dev/}/size") after detach"
	[ -e "/sys/block/${DEV#/dev/}/pid" ] && fail "$DEV still connected after detach"
	[ "$(json device)" = null ] || fail "status device after detach: $(json device)"
	USED="$USED $DEV"
}

USED=
mkfifo /tmp/attachkill.tick || fail "mkfifo"
exec 9<>/tmp/attachkill.tick	# read -t on it: a sleep without a fork

step "a zeroed pair over a veth: alpha in the root namespace, beta in netns b"
net_up
pair_up 64M
[ -z "$(ip netns identify "$(daemon_pid alpha)")" ] || fail "alpha's daemon is not in the root namespace"
ok "connected over 10.0.0.1 <-> 10.0.0.2, alpha primary"

step "attach, mkfs.ext4, mount, files with known sums, umount, detach"
t=$EPOCHREALTIME
DEV=$($A attach) || fail "attach"
attach_ms=$(ms_since "$t")
case $DEV in /dev/nbd[0-9]*) ;; *) fail "attach printed '$DEV'" ;; esac
mkfs.ext4 -q -F "$DEV" >"$W/mkfs.out" 2>&1 || fail "mkfs.ext4: $(cat "$W/mkfs.out")"
mount -t ext4 "$DEV" "$MNT" || fail "mount"
write_files 3
detach_dev
no_orphan "before the rounds"
base=$(io_errors)
ok "an undisturbed attach took ${attach_ms} ms; 3 files on $DEV; detached"

r=0
SUMMARY=()
for d in $DELAYS; do
	r=$((r + 1))
	step "round $r: attach, kill -9 alpha's daemon $([ "$d" = c ] && echo "at the kernel's CONNECT" || echo "after $d ms"), up"
	[ -z "$(connected_devs)" ] || fail "connected before the round: $(connected_devs)"
	pid=$(daemon_pid alpha)
	kill -0 "$pid" || fail "alpha's daemon $pid is not running"
	l0=$(log_lines)
	t0=$EPOCHREALTIME
	$A attach >"$W/attach-$r.out" 2>&1 &
	apid=$!
	if [ "$d" = c ]; then
		# until the kernel shows a connected device or attach is done, <= 20 s
		lim=$((SECONDS + 20))
		until any_connected || ! kill -0 "$apid" 2>/dev/null || [ $SECONDS -ge $lim ]; do :; done
	elif [ "$d" -gt 0 ]; then
		read -r -t "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 1000 }')" -u 9
	fi
	kill -9 "$pid" || fail "kill -9 $pid"
	kill_ms=$(ms_since "$t0")
	wait "$apid"
	arc=$?
	ret_ms=$(ms_since "$t0")
	wait_for 50 eval '! kill -0 "$pid"' || fail "alpha's daemon $pid alive 5 s after kill -9"
	dead_ms=$(ms_since "$t0")
	[ $arc -eq 124 ] && fail "attach did not return after the daemon died"
	kdev=$(connected_devs)
	[ "$(wc -w <<<"$kdev")" -le 1 ] || fail "several devices connected by one attach: $kdev"
	# Whether the metadata names the device: read it, not the log, since
	# the kill can land between the superblock write and the log line.
	saved=no
	$A dump-md 2>/dev/null | grep -qE '^nbd: +/dev/nbd' && saved=yes
	aout=$(head -c 300 "$W/attach-$r.out")
	if [ $arc -eq 0 ]; then
		case $aout in /dev/nbd[0-9]*) ;; *) fail "attach exited 0 printing '$aout'" ;; esac
		[ "$kdev" = "$aout" ] || fail "attach printed $aout, the kernel holds '${kdev:-nothing}'"
		landed="after the reply ($aout)"
	elif [ -n "$kdev" ]; then
		[ $saved = yes ] && landed="after CONNECT and the metadata, before the reply ($kdev)" ||
			landed="after CONNECT, before the metadata ($kdev)"
	else
		[ $saved = yes ] && fail "alpha's metadata names a device ($($A dump-md 2>/dev/null | grep '^nbd:')) but the kernel holds none"
		landed="before CONNECT"
	fi
	echo "  kill at ${kill_ms} ms (attach returned at $ret_ms ms, daemon gone at $dead_ms ms): $landed; attach exited $arc: $(tr '\n' ' ' <<<"$aout")"

	t_up=$EPOCHREALTIME
	$A up >"$W/up-$r.out" 2>&1 || fail "up after kill -9: $(cat "$W/up-$r.out")"
	up_ms=$(ms_since "$t_up")
	tl=$EPOCHREALTIME
	laps=
	read -r role sdev <<<"$(status_fields "$A" role device)"
	lap status
	[ "$role" = primary ] || fail "alpha came back as $role"
	[ "$sdev" = null ] && sdev=
	if [ -n "$kdev" ] && ! grep -q "reattached $kdev" "$W/up-$r.out"; then
		why="the kernel holds $kdev (connected by the killed daemon, pid file"
		why="$why $(cat "/sys/block/${kdev#/dev/}/pid" 2>/dev/null), backend"
		why="$why '$(cat "/sys/block/${kdev#/dev/}/backend" 2>/dev/null)'), up did not reattach it"
		why="$why (status device '${sdev:-none}'; up said: $(tr '\n' ' ' <"$W/up-$r.out"))"
		[ "$ORPHANS" = tolerate ] || fail "$why"
		# diagnostics only: note it, disconnect it by hand, go on
		echo "  ORPHAN: $why"
		echo "  alpha's log from the attach on:"
		log_since "$l0" | head -n 8 | sed 's/^/    /'
		echo "  kernel:"
		dmesg | grep -i nbd | tail -n 4 | sed 's/^/    /'
		nbd-client -d "$kdev" >/dev/null 2>&1 || fail "nbd-client -d $kdev"
		wait_for 50 eval '[ ! -e "/sys/block/${kdev#/dev/}/pid" ]' || fail "$kdev still connected after nbd-client -d"
		USED="$USED $kdev"
		n_orphans=$((n_orphans + 1))
		did="ORPHANED $kdev (disconnected by hand with nbd-client -d)"
	elif [ -n "$kdev" ]; then
		[ "$sdev" = "$kdev" ] || fail "reattached $kdev, status device '$sdev'"
		did="reattached $kdev"
		if [ $saved = no ]; then
			grep -q 'middle of attach' "$W/up-$r.out" ||
				fail "up reattached $kdev, which the metadata did not name, without saying why"
			did="$did (found by its backend id: the metadata did not name it)"
		fi
	elif grep -q 'forgetting it' "$W/up-$r.out"; then
		[ -z "$sdev" ] || fail "forgot a device, status still names $sdev"
		did="forgot: $(grep -o 'cannot reattach.*' "$W/up-$r.out" | head -1)"
	else
		grep -q 'reattached' "$W/up-$r.out" && fail "up reattached with no device connected: $(cat "$W/up-$r.out")"
		[ -z "$sdev" ] || fail "no device connected, status names $sdev"
		did="no device to reattach"
	fi
	no_orphan "round $r after up"
	lap "orphan check"
	echo "  up in ${up_ms} ms: $did"

	if [ -n "$sdev" ]; then
		DEV=$sdev
	else
		DEV=$($A attach) || fail "attach after up"
		case $DEV in /dev/nbd[0-9]*) ;; *) fail "attach printed '$DEV'" ;; esac
	fi
	[ "$(cat "/sys/block/${DEV#/dev/}/size")" -gt 0 ] || fail "$DEV has no size"
	lap attach
	mount -t ext4 "$DEV" "$MNT" || fail "mount $DEV: $(dmesg | tail -3)"
	lap mount
	files_intact
	lap md5
	head -c $((512 * 1024 + r * 4099)) /dev/urandom >"$MNT/files/r$r" || fail "write r$r"
	sync || fail "sync"
	(cd "$MNT/files" && md5sum "r$r") >>"$W/sums" || fail "md5sum r$r"
	lap write+sync
	files_intact
	[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(io_error_lines)"
	detach_dev
	no_orphan "round $r after detach"
	lap md5+umount+detach
	ok "$DEV: files intact, r$r written, detached ($laps ms; alpha connection, resync: $(status_fields "$A" connection resync))"
	SUMMARY+=("round $r ($([ "$d" = c ] && echo "at CONNECT" || echo "delay $d ms")): kill at ${kill_ms} ms, $landed; up ${up_ms} ms, $did")
done

step "attach, the files intact; the pair resyncs; replicas equal; fsck; down --detach"
DEV=$($A attach) || fail "attach"
mount -t ext4 "$DEV" "$MNT" || fail "mount $DEV"
files_intact
[ "$(io_errors)" -eq "$base" ] || fail "I/O errors in the kernel log: $(io_error_lines)"
grep -q 'without a clean shutdown' "$W"/up-[0-9]*.out || fail "alpha never noticed a crash"
finish_pair wait
USED="$USED $DEV"
[ -z "$(connected_devs)" ] || fail "still connected at the end: $(connected_devs)"
for d in $(tr ' ' '\n' <<<"$USED" | sort -u); do
	[ "$(cat "/sys/block/${d#/dev/}/size")" -eq 0 ] || fail "$d has size $(cat "/sys/block/${d#/dev/}/size") at the end"
done
[ "$n_orphans" -eq 0 ] || fail "$n_orphans device(s) left connected to nobody: $(printf '%s; ' "${SUMMARY[@]}")"
ok "synced, $SIZE bytes equal, fsck clean, detached ($FINISH_TIMES); used:$(tr ' ' '\n' <<<"$USED" | sort -u | tr '\n' ' ')"
printf '  %s\n' "${SUMMARY[@]}"
echo "$NAME PASSED ($n steps, $(elapsed) s)"
