#!/usr/bin/env bash
# systemd socket activation (LISTEN_FDS/LISTEN_PID): libnbd's
# `[ CMD ARGS ]` form starts the server on an inherited socket.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo nbdcopy

if [ "$SERVER" = nbdkit ]; then
	srv=(nbdkit file)
else
	[ -x "$BLKREP" ] || { fail "server binary $BLKREP is missing"; finish; }
	srv=("$BLKREP" serve)
fi

truncate -s 16M "$T/disk.img"
check "nbdinfo -- [ serve FILE ]" nbdinfo --json -- [ "${srv[@]}" "$T/disk.img" ]
grep -q '"export-size": 16777216' "$T/last.out" && pass "socket-activated export is 16 MiB" ||
	fail "socket-activated export size is not 16 MiB: $(grep export-size "$T/last.out")"
check "nbdinfo --size -- [ serve FILE ]" nbdinfo --size -- [ "${srv[@]}" "$T/disk.img" ]
check_eq "size" "$(cat "$T/last.out")" 16777216

make_random "$T/src" 16
check "nbdcopy src -> [ serve FILE ]" nbdcopy "$T/src" -- [ "${srv[@]}" "$T/disk.img" ]
check "backing file equals src" cmp "$T/src" "$T/disk.img"
check "nbdcopy [ serve FILE ] -> out" nbdcopy -- [ "${srv[@]}" "$T/disk.img" ] "$T/out"
check "out equals src" cmp "$T/src" "$T/out"
check_exit "socket-activated --read-only is read-only" 0 \
	nbdinfo --is read-only -- [ "${srv[@]}" "$T/disk.img" $([ "$SERVER" = nbdkit ] && echo -r || echo --read-only) ]
finish
