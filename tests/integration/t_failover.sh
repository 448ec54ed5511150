#!/usr/bin/env bash
# Failover: promotion rules, failback, save files and split-brain repair.
#  (F) Failback in sync mode: alpha primary writes, is killed (kill -9);
#      beta (consistent: it lost its primary under on-peer-loss =
#      continue) refuses a plain `primary` with a one-line reason and is
#      promoted with --force, timed from the command to the first write
#      through its export (< 1 s); a new generation.  alpha comes back
#      (`up`), finds beta primary, steps back to secondary (its log says
#      so) and receives only what changed (a few 4 MiB extents, not the
#      data area); the replicas end equal.  A connected primary peer makes
#      `primary` refused even with --force --discard-unknown.
#  (U) An uptodate secondary whose peer (a secondary) died is promoted by
#      plain `primary`, with a new generation.
#  (I) An inconsistent secondary (invalidate while the peer is down):
#      `primary` and `primary --force` are refused, the message names
#      --force --discard-unknown, which promotes it.
#  (Z) on-peer-loss = freeze: a secondary that loses its primary stays
#      uptodate, so plain `primary` promotes it, and writes go on at once:
#      promoting a node whose peer is gone is the operator's word that the
#      peer is down (as `outdate-peer` is).
#  (S) Failback in async mode with a save file: alpha acknowledges writes
#      beta never received (beta stopped with SIGSTOP, alpha killed), beta
#      is promoted and writes elsewhere; alpha comes back, steps back and
#      first saves its own writes (BLKRSAVE file in BLKREP_SAVE_DIR, named
#      in its log); the pair ends equal with beta's data; restore-saved on
#      beta writes alpha's data back.  (Whether beta's own later write
#      inside alpha's saved 4 MiB extent survives the restore is printed as
#      a NOTE, not checked: the save file holds whole extents.)
#  (B) Split brain: both sides write as primary after a disconnect; the
#      connection is refused on both (status splitbrain, last_error says
#      split brain), nothing is overwritten; `resolve --discard-local
#      --save-to FILE` on alpha saves its changes and lets beta's win;
#      restore-saved brings them back.  Bad usage of resolve is refused.
#  (D) after-split-brain: both nodes promoted alone (both move to new
#      generations), only beta writes: with the default the pair stays
#      split; with discard-zero-changes it connects and alpha (no changes)
#      is the target.  If both wrote, it stays split even then.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io cmp timeout
$PY -c 'import ctypes; ctypes.CDLL("libxxhash.so.0")' 2>/dev/null ||
	skip "libxxhash.so.0 is not loadable from python (save file checksums)"

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
MIB=1048576
export BLKREP_SAVE_DIR=$T/saved
mkdir -p "$BLKREP_SAVE_DIR"
BURI="nbd+unix:///r0?socket=$T/beta.nbd"
# Every blkrep command is bounded, status polls in the helpers included.
A="timeout -k 2 15 $A"
Bn="timeout -k 2 15 $Bn"
T_START=$SECONDS

# alive NODE: NODE's pid file names a live blkrep process.
alive() {
	local pid
	pid=$(daemon_pid "$1")
	[ -n "$pid" ] || return 1
	case $(readlink "/proc/$pid/exe" 2>/dev/null) in
	"$(readlink -f "$BLKREP")"*) return 0 ;;
	esac
	return 1
}

# stop_pair: `down` on each live daemon (never on a dead one: a command to
# a dead daemon waits), SIGCONT first in case it is stopped, then kill -9
# what is left and wait for it to be gone.
stop_pair() {
	local n pid i
	for n in alpha beta; do
		alive $n && kill -CONT "$(daemon_pid $n)" 2>/dev/null
	done
	for n in alpha beta; do
		alive $n && timeout -k 2 20 $BLKREP -c "$T/r0.conf" --node $n down >/dev/null 2>&1
	done
	for n in alpha beta; do
		alive $n || continue
		pid=$(daemon_pid $n)
		kill -KILL "$pid" 2>/dev/null
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
}
# The daemons' logs are checked for sanitizer reports too (a build with
# SANITIZE=address,undefined as BLKREP).
trap '[ $FAILS -gt 0 ] && show_logs 30; stop_pair
for f in "$T"/run/*.log; do check_sanitizer "$f"; done; _cleanup' EXIT

# synced DESC [SECS]: pass once the pair is connected and in sync.
synced() {
	local st
	if st=$(wait_synced "${2:-30}"); then
		pass "$1"
	else
		fail "$1: $st"
	fi
}

# kill9 NODE: kill -9 NODE's daemon and wait until it is gone.
kill9() {
	local pid i
	pid=$(daemon_pid "$1")
	alive "$1" || { fail "kill -9 $1: its daemon (pid '$pid') is not running"; return 1; }
	kill -KILL "$pid"
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	pass "kill -9 $1's daemon (pid $pid)"
}

# fresh_pair LABEL [CONF-LINE...]: a new zeroed 64 MiB pair with these
# extra [resource] lines, connected, alpha primary.
fresh_pair() {
	local l=$1
	shift
	stop_pair
	PAIR_EXTRA=
	pair_conf_extra "$@"
	rm -f "$T/a.img" "$T/b.img"
	truncate -s 64M "$T/a.img" "$T/b.img"
	pair_start "$l${1:+ ($*)}" --force
}

# last_msg: the refused command's message (stdout and stderr together).
last_msg() { cat "$T/last.out" "$T/last.err" | tr '\n' ' ' | sed 's/ *$//' | head -c 300; }
last_lines() { cat "$T/last.out" "$T/last.err" | grep -c .; }

# img_is FILE OFF LEN BYTE [FILE OFF LEN BYTE]...: each FILE holds BYTE
# (0x..) all over OFF..OFF+LEN; BYTE "not:0x.." means not all of it is.
cat >"$T/imgis.py" <<'EOF'
import sys
a, rc = sys.argv[1:], 0
for i in range(0, len(a), 4):
    f, off, ln, b = a[i], int(a[i + 1]), int(a[i + 2]), a[i + 3]
    neg = b.startswith("not:")
    b = int(b[4:] if neg else b, 16)
    with open(f, "rb") as fh:
        fh.seek(off)
        d = fh.read(ln)
    if (d == bytes([b]) * ln) == neg:
        got = sorted(set(d))[:4]
        print("%s at %d+%d: want %s0x%02x, has bytes %s" % (f, off, ln, "not " if neg else "", b,
              ["0x%02x" % x for x in got]))
        rc = 1
sys.exit(rc)
EOF
img_is() { $PY "$T/imgis.py" "$@"; }


# log_mark NODE / log_since NODE MARK: the log lines NODE's daemon wrote
# since the mark.
log_mark() { cat "$T/run/r0-$1.log" 2>/dev/null | wc -l; }
log_since() { tail -n +$(($2 + 1)) "$T/run/r0-$1.log" 2>/dev/null; }

# The save file checker: header, records, the sum of each (XXH64 seeded
# with the record's offset, by libxxhash), and
# that the bytes at OFF..OFF+LEN are BYTE in the records covering them.
cat >"$T/savecheck.py" <<'EOF'
import ctypes, struct, sys
path, off, ln, byte, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 16), sys.argv[5]
xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH64.restype = ctypes.c_uint64
xx.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
ok = lambda c, d: print(("ok - " if c else "FAIL - ") + label + " " + d)
data = open(path, "rb").read()
ok(len(data) >= 128 and data[:8] == b"BLKRSAVE", "save file starts with magic BLKRSAVE")
ver, nrec = struct.unpack_from("<II", data, 8)
created, dbytes = struct.unpack_from("<QQ", data, 16)
res = data[32:80].rstrip(b"\0").decode(errors="replace")
node = data[80:128].rstrip(b"\0").decode(errors="replace")
print("%s header: version %d, %d records, %d data bytes, resource %r, node %r" % (label, ver, nrec, dbytes, res, node))
ok(ver == 2, "version is 2 (got %d)" % ver)
pos, recs, badsum, total = 128, [], 0, 0
for i in range(nrec):
    if pos + 20 > len(data):
        break
    o, l, h = struct.unpack_from("<QIQ", data, pos)
    d = data[pos + 20:pos + 20 + l]
    if len(d) != l:
        break
    if xx.XXH64(d, l, o) != h:
        badsum += 1
    recs.append((o, l, d))
    total += l
    pos += 20 + l
print("%s records (offset, length): %s" % (label, ", ".join("%d+%d" % (o, l) for o, l, _ in recs[:12])))
ok(len(recs) == nrec and pos == len(data),
   "%d records parse and end exactly at the end of the file (%d of %d read, at byte %d of %d)" % (nrec, len(recs), nrec, pos, len(data)))
ok(badsum == 0, "every record's sum matches its data and offset (%d mismatches)" % badsum)
ok(dbytes == total, "header data bytes (%d) = sum of record lengths (%d)" % (dbytes, total))
cover = bytearray(ln)
good = True
for o, l, d in recs:
    a, b = max(o, off), min(o + l, off + ln)
    if a < b:
        seg = d[a - o:b - o]
        if seg != bytes([byte]) * (b - a):
            good = False
        cover[a - off:b - off] = b"\1" * (b - a)
ok(all(cover), "records cover %d..%d (%d of %d bytes covered)" % (off, off + ln, sum(cover), ln))
ok(good and all(cover), "the data saved at %d..%d is 0x%02x" % (off, off + ln, byte))
EOF

# ====================================================================
# (F) failback in sync mode; promotion of a consistent disk; timing
# ====================================================================
fresh_pair "(F)"
check "(F) write 0x31 at 0 (1 MiB) and 0x32 at 20M through alpha" qemu-io -f raw "$URI" \
	-c 'write -P 0x31 0 1M' -c 'write -P 0x32 20M 1M' -c flush
check "(F) replicated: the data areas are equal" $SAME
genA=$(field "$A" "d['generation']")
kill9 alpha
check_eq "(F) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check_eq "(F) beta (lost its primary, continue) is consistent" "$(field "$Bn" "d['disk']")" consistent
check_fails "(F) plain primary on consistent beta is refused" $Bn primary
m=$(last_msg)
check_eq "(F) ... in one line saying what may be missing ($m)" \
	"$([ "$(last_lines)" = 1 ] && grep -qiE 'lack|missing' <<<"$m" && grep -q -- '--force' <<<"$m" && echo yes)" yes
check_eq "(F) beta is still secondary" "$(field "$Bn" "d['role']")" secondary
t0=$(date +%s%N)
check "(F) primary --force on beta" $Bn primary --force
t1=$(date +%s%N)
ok=0
for i in $(seq 1 50); do
	if tmo -t 5 qemu-io -f raw "$BURI" -c 'write -P 0x42 8M 1M' >"$T/qw.out" 2>&1; then
		ok=1
		break
	fi
	sleep 0.05
done
t2=$(date +%s%N)
cmd_ms=$(((t1 - t0) / 1000000))
prom_ms=$(((t2 - t0) / 1000000))
msg "(F) promotion: primary --force returned in ${cmd_ms} ms, first write through beta's export done ${prom_ms} ms after the command"
check_eq "(F) a write through beta's export succeeds (0x42 at 8M)" "$ok" 1
[ "$ok" = 1 ] || sed 's/^/    | /' "$T/qw.out"
# A figure, not an assertion (the machine is noisy): the target is < 1 s.
msg "(F) promotion time, command to first written reply: ${prom_ms} ms (target < 1000 ms)"
genB=$(field "$Bn" "d['generation']")
check_eq "(F) beta has a new generation ($genA -> $genB)" "$([ -n "$genB" ] && [ "$genB" != "$genA" ] && echo yes)" yes
check_eq "(F) beta is primary, disk uptodate" "$(field "$Bn" "(d['role'], d['disk'])")" "('primary', 'uptodate')"
rs0=$(field "$Bn" "d['stats']['resynced_bytes']")
mark=$(log_mark alpha)
$A up >"$T/F-up.out" 2>&1
check_eq "(F) up alpha again: it says it is up as secondary, beta being primary" \
	"$(grep -c 'up as secondary (beta is primary)' "$T/F-up.out")" 1
check_eq "(F) alpha steps back to secondary" "$(wait_field "$A" "d['role']" secondary 10)" secondary
synced "(F) the pair connects and the resync finishes" 30
check_eq "(F) alpha's log says beta became primary while it was down" \
	"$(log_since alpha "$mark" | grep -c 'became primary while this node was down')" 1
# A normal failback is not a split brain, and no log says it is; nor
# does either log call the step back an error.
check_eq "(F) neither log has an error line about the step back" \
	"$(log_since alpha "$mark" | grep -ci 'error.*\(steps back\|came back as primary\)')$(grep -ci 'error.*came back as primary' "$BLKREP_RUN_DIR/r0-beta.log")" 00
check_eq "(F) alpha's log does not call the failback a split brain" \
	"$(log_since alpha "$mark" | grep -c 'split brain')" 0
check_eq "(F) alpha is secondary, beta primary" \
	"$(field "$A" "d['role']") $(field "$Bn" "d['role']")" "secondary primary"
rs1=$(field "$Bn" "d['stats']['resynced_bytes']")
rs=$((${rs1:-0} - ${rs0:-0}))
msg "(F) beta resynced $rs bytes to alpha (data area $size)"
check_eq "(F) beta resent only what changed: $rs bytes, > 0 and <= 3 x 4 MiB activity-log extents + 1 MiB" \
	"$([ "$rs" -gt 0 ] && [ "$rs" -le $((12 * MIB + MIB)) ] && echo yes)" yes
check "(F) the data areas are equal" $SAME
check "(F) alpha holds beta's write (0x42 at 8M) and the old ones" \
	$PY "$T/imgis.py" $T/a.img $((8 * MIB)) $MIB 0x42 \
		$T/a.img 0 $MIB 0x31 \
		$T/a.img $((20 * MIB)) $MIB 0x32
ls "$T/saved" >"$T/saved.F"
msg "(F) save files after the sync failback: $(tr '\n' ' ' <"$T/saved.F")"

# Refused outright while the peer is a connected primary.
check_fails "(F) primary on alpha while beta is a connected primary is refused" $A primary
check_fails "(F) ... also with --force --discard-unknown" $A primary --force --discard-unknown
m=$(last_msg)
check_eq "(F) ... saying the peer is primary ($m)" "$(grep -ci 'peer is primary' <<<"$m")" 1
check_eq "(F) alpha is still secondary" "$(field "$A" "d['role']")" secondary

# ====================================================================
# (U) uptodate secondary, its peer (a secondary) died: plain primary
# ====================================================================
check "(U) beta secondary" $Bn secondary
check_eq "(U) alpha sees beta secondary" "$(wait_field "$A" "d['peer']['connection'] == 'connected' and d['role']" secondary 5)" secondary
sleep 0.3
kill9 alpha
check_eq "(U) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check_eq "(U) beta (its peer was a secondary) is uptodate" "$(field "$Bn" "d['disk']")" uptodate
g0=$(field "$Bn" "d['generation']")
check "(U) plain primary on uptodate beta" $Bn primary
g1=$(field "$Bn" "d['generation']")
check_eq "(U) beta has a new generation ($g0 -> $g1)" "$([ -n "$g1" ] && [ "$g1" != "$g0" ] && echo yes)" yes
check "(U) a write through beta's export" qemu-io -f raw "$BURI" -c 'write -P 0x43 12M 64k' -c flush

# ====================================================================
# (I) inconsistent secondary: --force --discard-unknown
# ====================================================================
check "(I) up alpha (secondary)" $A up
synced "(I) the pair connects and is in sync" 30
check_eq "(I) alpha is secondary" "$(field "$A" "d['role']")" secondary
check "(I) down beta (the primary)" $Bn down
check_eq "(I) alpha sees the link lost" \
	"$(wait_field "$A" "d['peer']['connection'] != 'connected'" True 10)" True
check "(I) invalidate alpha while the peer is down" $A invalidate
check_eq "(I) alpha's disk is inconsistent" "$(field "$A" "d['disk']")" inconsistent
check_fails "(I) plain primary is refused" $A primary
check_fails "(I) primary --force is refused" $A primary --force
m=$(last_msg)
check_eq "(I) ... with one line naming --force --discard-unknown ($m)" \
	"$([ "$(last_lines)" = 1 ] && grep -q -- '--force --discard-unknown' <<<"$m" && echo yes)" yes
check_eq "(I) alpha is still secondary and inconsistent" "$(field "$A" "(d['role'], d['disk'])")" "('secondary', 'inconsistent')"
g0=$(field "$A" "d['generation']")
check "(I) primary --force --discard-unknown promotes it" $A primary --force --discard-unknown
check_eq "(I) alpha is primary, disk uptodate" "$(field "$A" "(d['role'], d['disk'])")" "('primary', 'uptodate')"
g1=$(field "$A" "d['generation']")
check_eq "(I) alpha has a new generation ($g0 -> $g1)" "$([ -n "$g1" ] && [ "$g1" != "$g0" ] && echo yes)" yes
check "(I) a write through alpha's export" qemu-io -f raw "$URI" -c 'write -P 0x44 16M 64k' -c flush

# ====================================================================
# (Z) on-peer-loss = freeze: the secondary stays uptodate
# ====================================================================
fresh_pair "(Z)" "on-peer-loss = freeze"
check "(Z) write through alpha" qemu-io -f raw "$URI" -c 'write -P 0x51 0 1M' -c flush
genA=$(field "$A" "d['generation']")
kill9 alpha
check_eq "(Z) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check_eq "(Z) beta (lost its primary under freeze) stays uptodate" "$(field "$Bn" "d['disk']")" uptodate
check "(Z) plain primary on beta" $Bn primary
g1=$(field "$Bn" "d['generation']")
check_eq "(Z) beta is primary with a new generation ($genA -> $g1)" \
	"$(field "$Bn" "d['role']") $([ -n "$g1" ] && [ "$g1" != "$genA" ] && echo new)" "primary new"
check_eq "(Z) beta's export reads alpha's write" \
	"$(timeout -k 2 5 qemu-io -f raw "$BURI" -c 'read -P 0x51 0 1M' >/dev/null 2>&1 && echo yes)" yes
# Promoted with its peer gone, the new primary is not frozen: the
# promotion was the operator's word that the peer is down.
check_eq "(Z) the new primary is not frozen" "$(field "$Bn" "d['frozen']")" False
check "(Z) a write to the new primary completes" \
	timeout -k 2 10 qemu-io -f raw "$BURI" -c 'write -P 0x52 2M 64k'
check "(Z) beta's export reads the write" qemu-io -f raw "$BURI" -c 'read -P 0x52 2M 64k'
check "(Z) up alpha again" $A up
check_eq "(Z) alpha steps back to secondary" "$(wait_field "$A" "d['role']" secondary 10)" secondary
synced "(Z) the failback resync finishes" 30
check "(Z) the data areas are equal" $SAME

# ====================================================================
# (S) async failback: alpha's unreplicated writes are saved
# ====================================================================
fresh_pair "(S)"
check "(S) mode async on alpha" $A mode async
bpid=$(daemon_pid beta)
check "(S) SIGSTOP beta's daemon (pid '$bpid')" kill -STOP "$bpid"
tstop=$SECONDS
# 16 MiB first, more than the socket buffers between the nodes hold, so
# that the 0x5c write is still in alpha's queue when alpha dies.
check "(S) async writes through alpha while beta is stopped: 0xf1 at 32M (16 MiB), then 0x5c at 3M (256 KiB)" \
	timeout -k 2 10 qemu-io -f raw "$URI" -c 'write -P 0xf1 32M 16M' -c 'write -P 0x5c 3M 256k'
lag=$(field "$A" "d['lag_bytes']")
check_eq "(S) alpha's lag_bytes ($lag) > 0" "$([ "${lag:-0}" -gt 0 ] && echo yes)" yes
check_eq "(S) alpha still connected (link not yet timed out)" "$(field "$A" "d['peer']['connection']")" connected
kill9 alpha
check "(S) SIGCONT beta ($((SECONDS - tstop)) s after the stop)" kill -CONT "$bpid"
check_eq "(S) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check_eq "(S) beta is consistent" "$(field "$Bn" "d['disk']")" consistent
check "(S) primary --force on beta" $Bn primary --force
check "(S) beta lacks alpha's last write (3M is not 0x5c)" sh -c "! qemu-io -f raw '$BURI' -c 'read -P 0x5c 3M 256k' >/dev/null"
check "(S) write 0x77 at 10M through beta, and 0x78 at 3.5M (in alpha's 4 MiB activity-log extent, not written by alpha)" \
	qemu-io -f raw "$BURI" -c 'write -P 0x77 10M 256k' -c 'write -P 0x78 3584k 64k' -c flush
mark=$(log_mark alpha)
nsaved=$(ls "$T/saved" | wc -l)
check "(S) up alpha again" $A up
check_eq "(S) alpha steps back to secondary" "$(wait_field "$A" "d['role']" secondary 10)" secondary
synced "(S) the failback resync finishes" 30
log_since alpha "$mark" >"$T/S.log"
check_eq "(S) alpha's log says beta became primary while it was down" \
	"$(grep -c 'became primary while this node was down' "$T/S.log")" 1
sline=$(grep -m1 'saved [0-9]* bytes' "$T/S.log")
msg "(S) alpha's log: $sline"
sfile=$(sed -n 's/.*saved [0-9]* bytes.* to \([^ ]*\) (blkrep restore-saved.*/\1/p' <<<"$sline")
check_eq "(S) alpha's log names a save file in \$BLKREP_SAVE_DIR ($sfile)" \
	"$([ -n "$sfile" ] && [ "$(dirname "$sfile")" = "$T/saved" ] && [ -f "$sfile" ] && echo yes)" yes
check_eq "(S) exactly one new file in $T/saved" "$(ls "$T/saved" | wc -l)" $((nsaved + 1))
[ -f "$sfile" ] || sfile=$(ls -t "$T"/saved/* 2>/dev/null | head -n 1)
if [ -f "$sfile" ]; then
	py_checks "(S) save file" "$T/savecheck.py" "$sfile" $((3 * MIB)) 262144 0x5c "(S) save file:"
fi
check "(S) mode sync on beta" $Bn mode sync
check "(S) the data areas are equal" $SAME
check "(S) beta's data won: alpha's image has 0x77 at 10M, 0x78 at 3.5M, and not 0x5c at 3M" \
	$PY "$T/imgis.py" $T/a.img $((10 * MIB)) 262144 0x77 \
		$T/a.img $((3 * MIB)) 262144 not:0x5c \
		$T/a.img $((3584 * 1024)) 65536 0x78
if [ -f "$sfile" ]; then
	check "(S) restore-saved on beta" $Bn restore-saved "$sfile"
	msg "(S) restore-saved: $(last_msg)"
	check "(S) beta's export now reads 0x5c at 3M, and still 0x77 at 10M" qemu-io -f raw "$BURI" \
		-c 'read -P 0x5c 3M 256k' -c 'read -P 0x77 10M 256k'
	if qemu-io -f raw "$BURI" -c 'read -P 0x78 3584k 64k' >/dev/null 2>&1; then
		msg "(S) NOTE: beta's own later write at 3.5M (0x78) survived the restore"
	else
		msg "(S) NOTE: restore-saved overwrote beta's later write at 3.5M (0x78), which alpha never wrote: the save file holds whole extents ($(od -An -tx1 -j $((3584 * 1024)) -N 1 "$T/b.img" | tr -d ' ') there now)"
	fi
	synced "(S) in sync after the restore" 30
	check "(S) the data areas are equal" $SAME
fi

# ====================================================================
# (B) split brain, resolve --discard-local, restore-saved
# ====================================================================
fresh_pair "(B)"
check "(B) disconnect alpha" $A disconnect
check_eq "(B) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check "(B) primary --force on beta" $Bn primary --force
check "(B) 0x11 at 0 through alpha" qemu-io -f raw "$URI" -c 'write -P 0x11 0 64k' -c flush
check "(B) 0x22 at 1M through beta" qemu-io -f raw "$BURI" -c 'write -P 0x22 1M 64k' -c flush
check_fails "(B) resolve --discard-local on a primary is refused" $A resolve --discard-local
msg "(B) refusal: $(last_msg)"
check "(B) alpha secondary" $A secondary
check "(B) alpha connect" $A connect
check_eq "(B) alpha: peer connection splitbrain" "$(wait_field "$A" "d['peer']['connection']" splitbrain 10)" splitbrain
check_eq "(B) beta: peer connection splitbrain" "$(wait_field "$Bn" "d['peer']['connection']" splitbrain 10)" splitbrain
ea=$(field "$A" "d['peer']['last_error']")
eb=$(field "$Bn" "d['peer']['last_error']")
check_eq "(B) alpha's last_error mentions split brain ($ea)" "$(grep -c 'split brain' <<<"$ea")" 1
check_eq "(B) beta's last_error mentions split brain ($eb)" "$(grep -c 'split brain' <<<"$eb")" 1
sleep 1
check "(B) nothing overwritten: alpha's image 0x11 at 0 and zeros at 1M" \
	$PY "$T/imgis.py" $T/a.img 0 65536 0x11 \
		$T/a.img $MIB 65536 0x00
check "(B) nothing overwritten: beta's image 0x22 at 1M and zeros at 0" \
	$PY "$T/imgis.py" $T/b.img $MIB 65536 0x22 \
		$T/b.img 0 65536 0x00
check_fails "(B) resolve without a flag is refused" $A resolve
m=$(last_msg)
check_eq "(B) ... with a usage line ($m)" "$([ "$(last_lines)" = 1 ] && grep -qi 'usage' <<<"$m" && echo yes)" yes
check_fails "(B) resolve --save-to without --discard-local is refused" $A resolve --save-to "$T/x.saved"
check_eq "(B) ... and wrote no file" "$([ -e "$T/x.saved" ] && echo yes || echo no)" no
check_eq "(B) still split" "$(field "$A" "d['peer']['connection']")" splitbrain
check "(B) resolve --discard-local --save-to on alpha" $A resolve --discard-local --save-to "$T/alpha.saved"
msg "(B) resolve: $(last_msg)"
synced "(B) the pair connects and alpha resyncs from beta" 30
check "(B) the data areas are equal" $SAME
check "(B) beta's data won: alpha's image has zeros at 0 and 0x22 at 1M" \
	$PY "$T/imgis.py" $T/a.img 0 65536 0x00 \
		$T/a.img $MIB 65536 0x22
if [ -f "$T/alpha.saved" ]; then
	pass "(B) the save file exists"
	py_checks "(B) save file" "$T/savecheck.py" "$T/alpha.saved" 0 65536 0x11 "(B) save file:"
else
	fail "(B) the save file $T/alpha.saved exists"
fi
check_fails "(B) resolve --discard-local while connected is refused" $A resolve --discard-local
msg "(B) refusal: $(last_msg)"
check "(B) restore-saved on beta" $Bn restore-saved "$T/alpha.saved"
msg "(B) restore-saved: $(last_msg)"
check "(B) beta reads 0x11 at 0 and 0x22 at 1M" qemu-io -f raw "$BURI" \
	-c 'read -P 0x11 0 64k' -c 'read -P 0x22 1M 64k'
synced "(B) in sync after the restore" 30
check "(B) the data areas are equal" $SAME

# ====================================================================
# (D) after-split-brain: default, then discard-zero-changes
# ====================================================================
fresh_pair "(D)"
check "(D) disconnect alpha" $A disconnect
check_eq "(D) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
g0=$(field "$A" "d['generation']")
check "(D) alpha secondary, then primary alone (a new generation), then secondary, writing nothing" \
	sh -c "$A secondary >/dev/null && $A primary >/dev/null && $A secondary >/dev/null"
g1=$(field "$A" "d['generation']")
check_eq "(D) alpha moved to a new generation ($g0 -> $g1)" "$([ -n "$g1" ] && [ "$g1" != "$g0" ] && echo yes)" yes
check "(D) primary --force on beta" $Bn primary --force
check_eq "(D) beta moved to a new generation too" "$([ "$(field "$Bn" "d['generation']")" != "$g0" ] && echo yes)" yes
check "(D) 0x33 at 2M through beta (only beta writes)" qemu-io -f raw "$BURI" -c 'write -P 0x33 2M 64k' -c flush
check_eq "(D) alpha has no changes (out_of_sync_bytes 0)" "$(field "$A" "d['out_of_sync_bytes']")" 0
check "(D) alpha connect" $A connect
check_eq "(D) default after-split-brain: alpha sees splitbrain" "$(wait_field "$A" "d['peer']['connection']" splitbrain 10)" splitbrain
check_eq "(D) default: beta sees splitbrain" "$(wait_field "$Bn" "d['peer']['connection']" splitbrain 10)" splitbrain
check "(D) default: nothing overwritten (alpha zeros at 2M)" \
	$PY "$T/imgis.py" $T/a.img $((2 * MIB)) 65536 0x00
# Same data, restarted with after-split-brain = discard-zero-changes.
stop_pair
PAIR_EXTRA=
pair_conf_extra "after-split-brain = discard-zero-changes"
check "(D) up both with after-split-brain = discard-zero-changes" sh -c "$A up && $Bn up"
check_eq "(D) beta came back primary, alpha secondary" \
	"$(wait_field "$Bn" "d['role']" primary 5) $(field "$A" "d['role']")" "primary secondary"
synced "(D) discard-zero-changes: the pair connects by itself and syncs" 30
check_eq "(D) alpha (no changes) was the target: it holds beta's 0x33 at 2M" \
	"$(img_is "$T/a.img" $((2 * MIB)) 65536 0x33 >/dev/null && echo yes)" yes
check "(D) the data areas are equal" $SAME
rs=$(field "$Bn" "d['stats']['resynced_bytes']")
msg "(D) beta resynced $rs bytes"
grep -h 'connected to' "$T"/run/r0-*.log | tail -n 2 | sed 's/^/    log: /'
# Both wrote: still split brain under discard-zero-changes.
check "(D) disconnect alpha" $A disconnect
check_eq "(D) beta sees the link lost" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True
check "(D) alpha primary --force alone, write 0x44 at 3M, secondary" \
	sh -c "$A primary --force >/dev/null && qemu-io -f raw '$URI' -c 'write -P 0x44 3M 64k' -c flush >/dev/null && $A secondary >/dev/null"
check "(D) beta (still primary) writes 0x55 at 4M" qemu-io -f raw "$BURI" -c 'write -P 0x55 4M 64k' -c flush
check "(D) alpha connect" $A connect
check_eq "(D) both changed: split brain even with discard-zero-changes (alpha)" \
	"$(wait_field "$A" "d['peer']['connection']" splitbrain 10)" splitbrain
check_eq "(D) ... (beta)" "$(wait_field "$Bn" "d['peer']['connection']" splitbrain 10)" splitbrain
check "(D) nothing overwritten: alpha 0x44 at 3M, zeros at 4M; beta 0x55 at 4M, zeros at 3M" \
	$PY "$T/imgis.py" $T/a.img $((3 * MIB)) 65536 0x44 \
		$T/a.img $((4 * MIB)) 65536 0x00 \
		$T/b.img $((4 * MIB)) 65536 0x55 \
		$T/b.img $((3 * MIB)) 65536 0x00

msg "total $((SECONDS - T_START)) s"
finish
