#!/usr/bin/env bash
# Prometheus metrics: a pair with `metrics = 127.0.0.1:PORT` on each node,
# alpha primary in sync mode.  Writes through alpha's export (qemu-io);
# then GET /metrics on alpha (curl) and `blkrep metrics` both pass
# `promtool check metrics` (Prometheus's own linter of the exposition
# format) and say: the writes counter grew by the writes made, role
# primary is 1, the replicated bytes counter grew, the histograms of the
# local write and of the peer's ACK counted them, the pair is connected
# and in sync (out-of-sync 0, split brain 0).  beta's /metrics says
# secondary.  Other paths get 404.  A bad `metrics` value is a one-line
# config error, and a port already taken a one-line refusal of `up`.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io curl timeout promtool

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
A="timeout -k 2 15 $A"
Bn="timeout -k 2 15 $Bn"
MA=$(free_port)
MB=$(free_port)
sed -i -e "s|^nbd = unix:$T/alpha.nbd\$|&\nmetrics = 127.0.0.1:$MA|" \
	-e "s|^nbd = unix:$T/beta.nbd\$|&\nmetrics = 127.0.0.1:$MB|" "$T/r0.conf"
trap '[ $FAILS -gt 0 ] && show_logs 30; pair_stop
for f in "$T"/run/*.log; do check_sanitizer "$f"; done; _cleanup' EXIT

pair_start "" --force
check_eq "in sync" "$(wait_field "$A" "d['peer']['disk']" uptodate 20)" uptodate

# value FILE SERIES: the value of the sample line that starts with SERIES.
value() { grep -F "$2 " "$1" | head -1 | awk '{print $NF}'; }
L='resource="r0",node="alpha"'
LP='resource="r0",node="alpha",peer="beta"'

# GET PORT FILE: GET /metrics (a command for check).
GET="curl -sf --max-time 5 -o"

sleep 1.2
check "GET /metrics on alpha" $GET "$T/m0.txt" "http://127.0.0.1:$MA/metrics"
w0=$(value "$T/m0.txt" "blkrep_writes_total{$L}")
r0=$(value "$T/m0.txt" "blkrep_replicated_bytes_total{$LP}")
check "8 writes of 1 MiB and a flush through alpha" qemu-io -f raw "$URI" \
	-c 'write -P 0x11 0 1M' -c 'write -P 0x12 1M 1M' -c 'write -P 0x13 2M 1M' \
	-c 'write -P 0x14 3M 1M' -c 'write -P 0x15 8M 1M' -c 'write -P 0x16 9M 1M' \
	-c 'write -P 0x17 10M 1M' -c 'write -P 0x18 11M 1M' -c flush
sleep 1.2 # the next tick renders the HTTP text again
check "GET /metrics on alpha again" $GET "$T/m1.txt" "http://127.0.0.1:$MA/metrics"
check "blkrep metrics on alpha" sh -c "$A metrics >'$T/m2.txt'"
check "GET /metrics on beta" $GET "$T/mb.txt" "http://127.0.0.1:$MB/metrics"
check_eq "the content type is Prometheus text 0.0.4" \
	"$(curl -s --max-time 5 -o /dev/null -w '%{content_type}' "http://127.0.0.1:$MA/metrics")" \
	"text/plain; version=0.0.4; charset=utf-8"
check_eq "another path is 404" \
	"$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MA/")" 404

# promtool is Debian's package prometheus (make deps installs it).
for f in m1 m2 mb; do
	check "promtool check metrics accepts $f" sh -c "promtool check metrics <'$T/$f.txt'"
done

for f in m1 m2; do
	w1=$(value "$T/$f.txt" "blkrep_writes_total{$L}")
	r1=$(value "$T/$f.txt" "blkrep_replicated_bytes_total{$LP}")
	check_eq "$f: the writes counter grew by 8 ($w0 -> $w1)" "$((${w1:-0} - ${w0:-0}))" 8
	check_eq "$f: replicated bytes grew by 8 MiB" "$((${r1:-0} - ${r0:-0}))" $((8 << 20))
	check_eq "$f: role primary is 1" "$(value "$T/$f.txt" "blkrep_role{$L,role=\"primary\"}")" 1
	check_eq "$f: role secondary is 0" "$(value "$T/$f.txt" "blkrep_role{$L,role=\"secondary\"}")" 0
	check_eq "$f: connected" \
		"$(value "$T/$f.txt" "blkrep_connection_state{$LP,state=\"connected\"}")" 1
	check_eq "$f: disk uptodate" \
		"$(value "$T/$f.txt" "blkrep_disk_state{$L,state=\"uptodate\"}")" 1
	check_eq "$f: split brain 0, disk error 0" \
		"$(value "$T/$f.txt" "blkrep_split_brain{$LP}") $(value "$T/$f.txt" "blkrep_disk_error{$L}")" "0 0"
	lc=$(value "$T/$f.txt" "blkrep_local_write_duration_seconds_count{$L}")
	ac=$(value "$T/$f.txt" "blkrep_peer_ack_duration_seconds_count{$LP}")
	check_eq "$f: the local write histogram counted the writes ($lc >= 8)" \
		"$([ "${lc:-0}" -ge 8 ] && echo yes)" yes
	check_eq "$f: the peer ACK histogram counted the writes ($ac >= 8)" \
		"$([ "${ac:-0}" -ge 8 ] && echo yes)" yes
	check_eq "$f: +Inf bucket = count" \
		"$(value "$T/$f.txt" "blkrep_peer_ack_duration_seconds_bucket{$LP,le=\"+Inf\"}")" "$ac"
	check_eq "$f: the activity log was written (> 0)" \
		"$([ "$(value "$T/$f.txt" "blkrep_activity_log_writes_total{$L}")" -gt 0 ] && echo yes)" yes
done
msg "alpha: local write count $(value "$T/m2.txt" "blkrep_local_write_duration_seconds_count{$L}"), sum $(value "$T/m2.txt" "blkrep_local_write_duration_seconds_sum{$L}") s; peer ACK sum $(value "$T/m2.txt" "blkrep_peer_ack_duration_seconds_sum{$LP}") s"
check_eq "beta: role secondary is 1" \
	"$(value "$T/mb.txt" "blkrep_role{resource=\"r0\",node=\"beta\",role=\"secondary\"}")" 1

# A port already taken: `up` refuses in one line (alpha's port for beta).
pair_stop
sed "s|^metrics = 127.0.0.1:$MB\$|metrics = 127.0.0.1:$MA|" "$T/r0.conf" >"$T/taken.conf"
check "up alpha again" $A up
check_fails "up beta with alpha's metrics port is refused" \
	timeout -k 2 15 $BLKREP -c "$T/taken.conf" --node beta up
check_eq "... in one line naming the address ($(cat "$T/last.err"))" \
	"$(grep -c . "$T/last.err") $(grep -c "127.0.0.1:$MA" "$T/last.err")" "1 1"

# A bad value: one line, the file and line named.
sed "s|^metrics = 127.0.0.1:$MA\$|metrics = localhost|" "$T/r0.conf" >"$T/bad.conf"
check_fails "a config with metrics = localhost is refused" \
	$BLKREP -c "$T/bad.conf" --node alpha status
check_eq "... in one line ($(cat "$T/last.err"))" \
	"$(grep -c . "$T/last.err") $(grep -c "bad.conf:[0-9]*: bad metrics 'localhost'" "$T/last.err")" "1 1"
finish
