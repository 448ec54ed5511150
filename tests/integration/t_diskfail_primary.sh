#!/usr/bin/env bash
# The primary's own disk failing.  alpha's backing file is under faultfs
# (tests/torture/faultfs.c), failing only the data area ("below" the
# metadata at the end), as a bad region does.
#  What a user of DRBD's on-io-error=pass_on expects, and what blkrep
#  promises (README, "the primary's disk fails a write"): the client gets
#  the error (the write is not acknowledged), the daemon keeps serving, and
#  because the peer may have applied the write that alpha's disk refused,
#  the range is recorded out of sync, in the metadata, until a resync
#  copies it.  Neither side lost an acknowledged write: both stay uptodate.
#  (S) sync mode, EIO: a WRITE and a FUA WRITE fail with EIO; reads and other
#      connections go on; status and log say what failed (the log once);
#      beta holds the write alpha failed; the bitmap survives a restart of
#      alpha (dump-md), and the resync at the reconnect makes the data
#      areas equal.
#  (A) async mode, ENOSPC: the same error reaches the client;
#      `blkrep resync` copies the range and clears the disk error.
#  (F) sync mode, the whole disk failing: a client's FLUSH gets EIO; status
#      and log say so and name the way out (a failover to beta); healed,
#      a FLUSH works again and clears the error; the data areas are still
#      equal.
#  (M) the whole disk failing, metadata too: a write to an extent that is
#      not in the activity log waits (the log cannot be written), status
#      says why, the daemon retries once a second rather than in a busy
#      loop (faultfs counts the failed writes), and once healed the write
#      completes without an error and the pair is equal.
. "$(dirname "$0")/lib.sh"
require_nbdsh
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
. "$(dirname "$0")/faultfs.sh"
require_faultfs
trap 'pair_stop; faultfs_cleanup; _cleanup' EXIT
MIB=1048576

# request_fails DESC ERRNO-NAME PYTHON: PYTHON (an nbdsh call on h) must fail
# with ERRNO-NAME; then the same connection still reads region 0.
request_fails() {
	check "$1" nbdsh -u "$URI" -c "
try:
    $3
    print('the request succeeded')
    raise SystemExit(1)
except nbd.Error as e:
    print('error:', e.string, 'errno', e.errno)
    if e.errno != '$2':  # libnbd gives the errno's name
        raise SystemExit(1)
assert h.pread($MIB, 0) == b'\x11' * $MIB, 'region 0 reads back wrong'
print('then region 0 reads back')"
	sed 's/^/    /' "$T/last.out"
}

# region_of FILE OFF: the first byte of the MiB at OFF (MiB) of FILE, in hex.
region_of() {
	od -An -tx1 -j $(($2 * MIB)) -N 1 "$1" | tr -d ' '
}

# expect_error TAG TEXT: alpha's status shows a disk error naming TEXT;
# alpha is still the uptodate primary, beta uptodate and connected.
expect_error() {
	local err
	err=$(field "$A" "d['disk_error']")
	check_eq "($1) alpha's status names the failed client write ('$err')" \
		"$(case $err in "client "*" on this node: $2") echo yes ;; esac)" yes
	check_eq "($1) alpha is the uptodate primary, beta uptodate and connected" \
		"$(field "$A" "d['role'] + ' ' + d['disk'] + ' ' + d['peer']['connection']") $(field "$Bn" "d['disk']")" \
		"primary uptodate connected uptodate"
	oos=$(field "$A" "d['out_of_sync_bytes']")
	check_eq "($1) alpha records the range out of sync ($oos bytes)" \
		"$([ "${oos:-0}" -gt 0 ] && echo yes)" yes
	check_eq "($1) beta holds the write alpha's disk refused (16 MiB: alpha $(region_of "$T/a.real" 16), beta $(region_of "$T/b.img" 16))" \
		"$(region_of "$T/b.img" 16)" "$3"
}

faultfs_under a || exit 1
pair_start
check "write 8 MiB of 0x11 through alpha" nbdsh -u "$URI" \
	-c "for o in range(0, 8 * $MIB, $MIB): h.pwrite(b'\x11' * $MIB, o)" -c "h.flush()"
if st=$(wait_synced 30); then pass "synced before the fault"; else fail "not synced: $st"; fi

# --- (S) sync mode, EIO --------------------------------------------------
faultfs_ctl a "fail eio below $size" && pass "(S) alpha's data area fails writes with EIO" ||
	fail "(S) faultfs ctl"
request_fails "(S) a 1 MiB WRITE at 16 MiB gets EIO" EIO "h.pwrite(b'\xab' * $MIB, 16 * $MIB)"
request_fails "(S) a FUA WRITE at 18 MiB gets EIO" EIO \
	"h.pwrite(b'\xab' * 4096, 18 * $MIB, nbd.CMD_FLAG_FUA)"
check "(S) another connection reads meanwhile" nbdsh -u "$URI" \
	-c "assert h.pread(8 * $MIB, 0) == b'\x11' * 8 * $MIB"
expect_error S "Input/output error" ab
check "(S) text status" $A status
grep -q "disk error: client .* on this node: Input/output error" "$T/last.out" &&
	pass "(S) ... has a 'disk error' line" || fail "(S) text status: $(cat "$T/last.out")"
n=$(grep -c "disk failed a client" "$T/run/r0-alpha.log")
check_eq "(S) alpha's log says so, once for the two failures" "$n" 1
grep "disk failed a client" "$T/run/r0-alpha.log" | sed 's/^/    | /'
faultfs_ctl a heal && pass "(S) heal alpha's disk" || fail "(S) cannot heal alpha's disk"
check "(S) alpha down (a restart: --keep-role)" $A down --keep-role
check "(S) dump-md on alpha" $A dump-md
grep -qE '^bitmap: [1-9][0-9]* of ' "$T/last.out" && pass "(S) the metadata keeps the range out of sync" ||
	fail "(S) dump-md: $(grep bitmap "$T/last.out")"
check "(S) alpha up, primary" sh -c "$A up && $A primary"
if st=$(wait_synced 60); then pass "(S) the reconnect resyncs"; else fail "(S) no resync: $st"; fi
check "(S) the data areas are equal" $SAME

# --- (A) async mode, ENOSPC -----------------------------------------------
check "(A) mode async" $A mode async
faultfs_ctl a "fail enospc below $size" && pass "(A) alpha's data area fails with ENOSPC" ||
	fail "(A) faultfs ctl"
request_fails "(A) a 1 MiB WRITE at 16 MiB gets ENOSPC" ENOSPC "h.pwrite(b'\xcd' * $MIB, 16 * $MIB)"
check "(A) a FLUSH after it" nbdsh -u "$URI" -c "h.flush()"
expect_error A "No space left on device" cd
faultfs_ctl a heal && pass "(A) heal alpha's disk" || fail "(A) cannot heal alpha's disk"
check "(A) blkrep resync" $A resync
if st=$(wait_synced 60); then pass "(A) the resync ran"; else fail "(A) no resync: $st"; fi
check_eq "(A) no disk error left on alpha" "[$(field "$A" "d['disk_error']")]" "[]"
check "(A) the data areas are equal" $SAME
grep -q "the resync repaired what the disk error left out" "$T/run/r0-alpha.log" &&
	pass "(A) alpha's log says the resync repaired it" || fail "(A) nothing in alpha's log"

# --- (F) sync mode, a FLUSH fails ----------------------------------------
check "(F) mode sync" $A mode sync
faultfs_ctl a "fail eio" && pass "(F) alpha's whole disk fails writes and fsyncs with EIO" ||
	fail "(F) faultfs ctl"
request_fails "(F) a FLUSH gets EIO" EIO "h.flush()"
err=$(field "$A" "d['disk_error']")
check_eq "(F) alpha's status names the failed FLUSH ('$err')" "$err" \
	"client FLUSH on this node: Input/output error"
check_eq "(F) alpha is the primary, beta uptodate and connected" \
	"$(field "$A" "d['role'] + ' ' + d['peer']['connection']") $(field "$Bn" "d['disk']")" \
	"primary connected uptodate"
grep -q "disk failed a client FLUSH on this node.*make this node secondary and beta primary" \
	"$T/run/r0-alpha.log" && pass "(F) alpha's log names the way out" ||
	fail "(F) alpha's log: $(grep FLUSH "$T/run/r0-alpha.log" | tail -n 2)"
faultfs_ctl a heal && pass "(F) heal alpha's disk" || fail "(F) cannot heal alpha's disk"
check "(F) a FLUSH works again" nbdsh -u "$URI" -c "h.flush()"
check_eq "(F) ... and clears the disk error" "[$(field "$A" "d['disk_error']")]" "[]"
if st=$(wait_synced 30); then pass "(F) still synced"; else fail "(F) not synced: $st"; fi
check "(F) the data areas are equal" $SAME
# --- (M) the metadata fails too: writes wait --------------------------------
faultfs_ctl a "fail eio" && pass "(M) alpha's whole disk fails writes with EIO" || fail "(M) faultfs ctl"
(exec timeout -k 5 60 nbdsh -u "$URI" -c "h.pwrite(b'\x5a' * 4096, 44 * $MIB)" \
	-c "h.flush()") >"$T/m.out" 2>&1 &
mpid=$!
BG_PIDS+=("$mpid")
err=$(wait_field "$A" "d['disk_error']" "writing the activity log: Input/output error" 10)
check_eq "(M) status says the activity log cannot be written" "$err" \
	"writing the activity log: Input/output error"
failed_at() { sed -n 's/.* failed \([0-9]*\) .*/\1/p' "$T/a.fs/ctl"; }
f1=$(failed_at)
sleep 2
f2=$(failed_at)
check_eq "(M) a write to a new extent waits (not answered)" "$(kill -0 "$mpid" 2>/dev/null && echo waiting)" waiting
check_eq "(M) retried about once a second, no busy loop ($((f2 - f1)) failed writes in 2 s)" \
	"$([ $((f2 - f1)) -lt 50 ] && echo yes)" yes
n=$(grep -c "writing the activity log: Input/output error" "$T/run/r0-alpha.log")
check_eq "(M) alpha's log says so once" "$n" 1
faultfs_ctl a heal && pass "(M) heal alpha's disk" || fail "(M) cannot heal alpha's disk"
wait "$mpid"
check_eq "(M) the waiting write completes without an error ($(tail -n 1 "$T/m.out"))" "$?" 0
check_eq "(M) no disk error left" "[$(field "$A" "d['disk_error']")]" "[]"
grep -q "the activity log is written again" "$T/run/r0-alpha.log" &&
	pass "(M) alpha's log says the activity log is written again" || fail "(M) nothing in alpha's log"
if st=$(wait_synced 30); then pass "(M) synced"; else fail "(M) not synced: $st"; fi
check "(M) the data areas are equal" $SAME
finish
