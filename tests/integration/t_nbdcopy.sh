#!/usr/bin/env bash
# nbdcopy round trips (parallel async requests): random data into the
# export and back out, over TCP with the empty name and with --name, and
# over a unix socket; plus a server listening on TCP and unix at once.
. "$(dirname "$0")/lib.sh"
require_cmd nbdcopy

make_random "$T/src" 48

roundtrip() { # LABEL URI
	local label=$1 uri=$2
	rm -f "$T/out"
	check "$label: nbdcopy src -> $uri" nbdcopy --flush "$T/src" "$uri"
	check "$label: nbdcopy $uri -> out" nbdcopy "$uri" "$T/out"
	check "$label: out equals src" cmp "$T/src" "$T/out"
	check "$label: backing file equals src" cmp "$T/src" "$T/disk.img"
}

truncate -s 48M "$T/disk.img"
start_server "$T/disk.img" || finish
roundtrip "tcp, empty name" "$SRV_URI"
# Overwrite with other data, through more connections and requests.
head -c 48M /dev/urandom >"$T/src"
check "tcp: nbdcopy --connections=4 --requests=16" \
	nbdcopy --connections=4 --requests=16 --request-size=1048576 "$T/src" "$SRV_URI"
check "tcp: nbdcopy back with 4 connections" nbdcopy --connections=4 "$SRV_URI" "$T/out2"
check "tcp: multi-connection round trip equal" cmp "$T/src" "$T/out2"
stop_server && pass "server exits 0 on SIGTERM"

truncate -s 0 "$T/disk.img"; truncate -s 48M "$T/disk.img"
head -c 48M /dev/urandom >"$T/src"
start_server "$T/disk.img" --name vol-a || finish
roundtrip "tcp, --name vol-a" "nbd://127.0.0.1:$SRV_PORT/vol-a"
check "tcp, empty name still answers" nbdcopy "nbd://127.0.0.1:$SRV_PORT/" "$T/out3"
check "tcp, empty name reads the same export" cmp "$T/src" "$T/out3"
stop_server && pass "server exits 0 on SIGTERM"

truncate -s 0 "$T/disk.img"; truncate -s 48M "$T/disk.img"
head -c 48M /dev/urandom >"$T/src"
start_server "$T/disk.img" --unix --name vol-u || finish
roundtrip "unix, --name vol-u" "nbd+unix:///vol-u?socket=$SRV_SOCK"
check "unix, empty name" nbdcopy "nbd+unix:///?socket=$SRV_SOCK" "$T/out4"
check "unix, empty name reads the same export" cmp "$T/src" "$T/out4"
stop_server && pass "server exits 0 on SIGTERM"
[ -e "$SRV_SOCK" ] && msg "note: unix socket $SRV_SOCK left behind after exit"

if [ "$SERVER" = blkrep ]; then
	truncate -s 0 "$T/disk.img"; truncate -s 48M "$T/disk.img"
	head -c 48M /dev/urandom >"$T/src"
	start_server "$T/disk.img" --tcp-and-unix || finish
	check "two listeners: write over TCP" nbdcopy "$T/src" "$SRV_URI"
	check "two listeners: read over unix" nbdcopy "$SRV_UNIX_URI" "$T/out5"
	check "two listeners: equal" cmp "$T/src" "$T/out5"
	stop_server && pass "server exits 0 on SIGTERM"
fi
finish
