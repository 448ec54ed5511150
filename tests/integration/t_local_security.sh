#!/usr/bin/env bash
# Local hardening (issue 14, items 3 and 4): what a local user who is not
# the daemon's cannot do, and what an operator's mistake no longer does.
#  (R) the run directory: created 0700 under umask 0; an existing one that
#      is group/other-writable or owned by another user is refused, naming
#      it; a symlink planted as the pid file is refused, not followed (as the
#      log file: the daemon runs without one, and says so to `up`);
#  (S) the secret file: a weak one (11 characters) is refused saying how to
#      make one, accepted with allow-weak-secret = yes; one owned by another
#      user is refused;
#  (U) the Unix export: mode 0600 under umask 0, given to nbd-user (nobody),
#      who gets the NBD greeting; another uid that reaches the socket (its
#      mode loosened by hand) is closed by SO_PEERCRED, with one log line
#      a second at most;
#  (H) a client that stays in the handshake is dropped after 10 s;
#  (A) 130 idle clients in transmission: 120 are served, the rest refused,
#      and `attach --loop` and `restore-saved` (adopted sockets) still work;
#  (F) restore-saved of another resource's save file, given by a relative
#      path from another directory: refused naming both, written with
#      --force;
#  (G) a superblock whose data_bytes was edited (checksum recomputed):
#      `up` refuses it naming the field, and the image is unchanged.
. "$(dirname "$0")/lib.sh"
require_cmd setpriv
$PY -c 'import ctypes; ctypes.CDLL("libxxhash.so.0")' 2>/dev/null ||
	skip "libxxhash.so.0 is not loadable from python (save file and superblock checksums)"
[ "$(id -u)" = 0 ] || skip "needs root (other users' files and sockets)"

. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
HOLD_PID=
HS_PID=
LOOPDEV=
ls_cleanup() {
	[ -n "$HOLD_PID" ] && kill -KILL "$HOLD_PID" 2>/dev/null
	[ -n "$HS_PID" ] && kill -KILL "$HS_PID" 2>/dev/null
	[ -n "$LOOPDEV" ] && timeout -k 2 20 $A detach >/dev/null 2>&1
	return 0
}
trap '[ $FAILS -gt 0 ] && show_logs 25; ls_cleanup; pair_stop; _cleanup' EXIT
A="timeout -k 2 30 $A"
Bn="timeout -k 2 30 $Bn"
RUN=$BLKREP_RUN_DIR
ALOG=$RUN/r0-alpha.log
NOBODY=$(id -u nobody)
# err_has TEXT: the last command's stderr has TEXT.
err_has() { grep -qF -- "$1" "$T/last.err"; }

check "create both --zeroed" sh -c "$A create --zeroed && $Bn create --zeroed"

# --- (R) the run directory ---------------------------------------------------
(umask 0 && exec $A up) >"$T/last.out" 2>"$T/last.err" && pass "(R) up under umask 0" ||
	fail "(R) up under umask 0: $(cat "$T/last.err")"
check_eq "(R) the run directory was created 0700" "$(stat -c %a "$RUN")" 700
check "(R) down" $A down
chmod 0777 "$RUN"
check_fails "(R) up with a run directory of mode 0777 is refused" $A up
err_has "run directory $RUN: writable by group or others (mode 0777)" &&
	pass "(R) ... naming it and what is wrong" || fail "(R) message: $(cat "$T/last.err")"
chmod 0700 "$RUN"
chown "$NOBODY" "$RUN"
check_fails "(R) up with a run directory owned by nobody is refused" $A up
err_has "run directory $RUN: owned by uid $NOBODY, not by this process's user (uid 0)" &&
	pass "(R) ... naming the owner" || fail "(R) message: $(cat "$T/last.err")"
chown 0 "$RUN"
ln -s "$T/victim" "$RUN/r0-alpha.pid"
check_fails "(R) up with a symlink planted as the pid file is refused" $A up
err_has "$RUN/r0-alpha.pid: a symbolic link: refusing to follow it" &&
	pass "(R) ... saying so" || fail "(R) message: $(cat "$T/last.err")"
[ -e "$T/victim" ] && fail "(R) the symlink was followed" || pass "(R) the symlink was not followed"
rm -f "$RUN/r0-alpha.pid"
rm -f "$ALOG"
ln -s "$T/victim" "$ALOG"
check "(R) up with a symlink planted as the log file runs, without a log file" $A up
err_has "$ALOG: a symbolic link: refusing to follow it" && pass "(R) ... and says so to up" ||
	fail "(R) message: $(cat "$T/last.err")"
[ -e "$T/victim" ] && fail "(R) the log symlink was followed" || pass "(R) the log symlink was not followed"
check "(R) down" $A down
rm -f "$ALOG"

# --- (S) the secret file -----------------------------------------------------
printf 'pair-secret\n' >"$T/weak.secret"
chmod 600 "$T/weak.secret"
pair_conf "$T/weak.conf" r0 "$T/weak.secret" beta
W="timeout -k 2 30 $B -c $T/weak.conf --node alpha"
check_fails "(S) up with an 11-character secret is refused" $W up
err_has "secret is too weak: 128 bits are needed" && err_has "openssl rand -hex 32" &&
	pass "(S) ... saying how to make a good one" || fail "(S) message: $(cat "$T/last.err")"
PAIR_EXTRA="allow-weak-secret = yes" pair_conf "$T/weak.conf" r0 "$T/weak.secret" beta
check "(S) accepted with allow-weak-secret = yes" $W up
check "(S) down" $W down
cp "$T/secret" "$T/other.secret"
chown "$NOBODY" "$T/other.secret"
pair_conf "$T/other.conf" r0 "$T/other.secret" beta
check_fails "(S) a secret file owned by nobody is refused" $B -c "$T/other.conf" --node alpha up
err_has "secret file is owned by uid $NOBODY, not by this daemon's user (uid 0): chown it" &&
	pass "(S) ... naming the owner" || fail "(S) message: $(cat "$T/last.err")"

# --- (U) the Unix export -----------------------------------------------------
pair_conf_extra "nbd-user = nobody"
chmod 0711 "$T" # nobody may reach the socket's directory, not list it
(umask 0 && exec $A up) >"$T/last.out" 2>"$T/last.err" && pass "(U) up alpha under umask 0" ||
	fail "(U) up alpha: $(cat "$T/last.err")"
check "(U) up beta" $Bn up
check_eq "(U) connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
check "(U) alpha primary" $A primary
SOCK=$T/alpha.nbd
check_eq "(U) the export's socket is 0600, owned by nbd-user" "$(stat -c '%a %U' "$SOCK")" \
	"600 nobody"
# greet UID: what a client of that uid gets: "greeting", "closed" or "EACCES".
greet() {
	setpriv --reuid="$1" --regid="$1" --clear-groups $PY -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit()
d = s.recv(8)
print("greeting" if d == b"NBDMAGIC" else "closed")' "$SOCK"
}
check_eq "(U) nbd-user (nobody) gets the NBD greeting" "$(greet "$NOBODY")" greeting
check_eq "(U) another uid cannot reach the 0600 socket" "$(greet 12345)" EACCES
chmod 0666 "$SOCK"
t0=$SECONDS
check_eq "(U) with the mode loosened by hand, SO_PEERCRED closes uid 12345" "$(greet 12345)" closed
for i in $(seq 20); do greet 12345 >/dev/null; done
took=$((SECONDS - t0))
chmod 0600 "$SOCK"
n=$(grep -c "refusing a client: uid 12345 may not use this export" "$ALOG")
[ "$n" -ge 1 ] && [ "$n" -le $((took + 2)) ] &&
	pass "(U) 21 refusals in about $took s logged in $n line(s) (one a second at most)" ||
	fail "(U) 21 refusals in about $took s logged in $n lines"

# --- (H) a client that never finishes the handshake -------------------------
$PY - "$SOCK" >"$T/hs.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
t0 = time.monotonic()
s.settimeout(20)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
print("%.1f" % (time.monotonic() - t0))
PY
HS_PID=$!

# --- (A) idle clients and the adopted connections ----------------------------
$PY - "$SOCK" "$T/hold.out" <<'PY' &
import socket, sys, time
ok = refused = 0
conns = []
for i in range(130):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sys.argv[1])
    # The greeting, then NBD_OPT_GO for the default export: transmission.
    try:
        g = b""
        while len(g) < 18:
            d = s.recv(18 - len(g))
            if not d:
                raise ConnectionError
            g += d
        s.sendall((3).to_bytes(4, "big"))  # client flags: fixed newstyle, no zeroes
        s.sendall(b"IHAVEOPT" + (7).to_bytes(4, "big") + (6).to_bytes(4, "big") +
                  (0).to_bytes(4, "big") + (0).to_bytes(2, "big"))
        while True:
            h = s.recv(20, socket.MSG_WAITALL)
            if len(h) < 20:
                raise ConnectionError
            n = int.from_bytes(h[16:20], "big")
            if n:
                s.recv(n, socket.MSG_WAITALL)
            if int.from_bytes(h[12:16], "big") == 1:  # NBD_REP_ACK
                break
        ok += 1
        conns.append(s)
    except (ConnectionError, OSError):
        refused += 1
with open(sys.argv[2], "w") as f:
    f.write("%d %d\n" % (ok, refused))
time.sleep(60)
PY
HOLD_PID=$!
for i in $(seq 100); do [ -s "$T/hold.out" ] && break; sleep 0.1; done
held=0 refused=0
read -r held refused <"$T/hold.out" || true
msg "(A) idle clients in transmission: $held, refused: $refused"
[ "$held" -le 120 ] && [ "$held" -ge 115 ] && [ $((held + refused)) -eq 130 ] &&
	pass "(A) at most 120 accepted clients ($held idle in transmission, $refused refused)" ||
	fail "(A) $held clients served, $refused refused (want <= 120, the rest refused)"
grep -q "refusing a client: 120 clients connected already" "$ALOG" &&
	pass "(A) ... the refusal logged" || fail "(A) no refusal in the log"

if [ -c /dev/fuse ] && [ -e /dev/loop-control ] && losetup -f >/dev/null 2>&1; then
	check "(A) attach --loop works beside them" $A attach --loop
	LOOPDEV=$(cat "$T/last.out")
	check "(A) ... and reads" dd if="$LOOPDEV" of=/dev/null bs=1M count=4 iflag=direct status=none
	check "(A) detach" $A detach && LOOPDEV=
else
	msg "(A) SKIP attach --loop: no /dev/fuse or free loop device"
fi

# --- (F) restore-saved of another resource's file, by a relative path --------
mkdir -p "$T/sub"
$PY - "$T/sub/other.saved" <<'PY'
import ctypes, struct, sys, time
xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH64.restype = ctypes.c_uint64
xx.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
off, data = 1 << 20, b"\x5a" * 65536
h = b"BLKRSAVE" + struct.pack("<IIQQ", 2, 1, int(time.time()), len(data))
h += b"r9".ljust(48, b"\0") + b"gamma".ljust(48, b"\0")
rec = struct.pack("<QIQ", off, len(data), xx.XXH64(data, len(data), off))
open(sys.argv[1], "wb").write(h + rec + data)
PY
byte_at_1m() { od -An -tx1 -j $((1 << 20)) -N 1 "$T/a.img" | tr -d ' '; }
before=$(byte_at_1m)
SUBA="timeout -k 2 30 $B -c ../r0.conf --node alpha"
(cd "$T/sub" && exec $SUBA restore-saved other.saved) >"$T/last.out" 2>"$T/last.err" &&
	fail "(F) restore-saved of r9/gamma's file was accepted" ||
	pass "(F) restore-saved of another resource's file is refused"
err_has "$T/sub/other.saved holds data saved by r9/gamma, not by a node of r0 (alpha, beta)" &&
	err_has "--force" && pass "(F) ... naming both, the relative path made absolute" ||
	fail "(F) message: $(cat "$T/last.err")"
check_eq "(F) nothing was written" "$(byte_at_1m)" "$before"
(cd "$T/sub" && exec $SUBA restore-saved --force other.saved) >"$T/last.out" 2>"$T/last.err" &&
	pass "(F) restore-saved --force, from another directory, while the idle clients stay" ||
	fail "(F) restore-saved --force: $(cat "$T/last.out" "$T/last.err")"
check_eq "(F) ... wrote the saved data" "$(byte_at_1m)" 5a

kill -KILL "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
HOLD_PID=
wait "$HS_PID" 2>/dev/null
HS_PID=
secs=$(cat "$T/hs.out")
$PY -c "import sys; sys.exit(not 9 <= float('$secs') <= 14)" 2>/dev/null &&
	pass "(H) a client idle in the handshake was dropped after ${secs} s" ||
	fail "(H) handshake client: '$secs' (want dropped after 10-12 s)"
grep -q "no NBD handshake within 10 s" "$ALOG" && pass "(H) ... with a log line" ||
	fail "(H) no log line"

# --- (G) a superblock with an edited geometry --------------------------------
check "(G) down both" sh -c "$A down && $Bn down"
chmod 0700 "$T"
$PY - "$T/a.img" <<'PY'
import ctypes, os, struct, sys
xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH64.restype = ctypes.c_uint64
xx.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
tail = size - (1 << 20)
buf = os.pread(fd, 1 << 20, tail)
i = buf.find(b"BLKREPMD")
while i >= 0:
    if i % 4096 == 0:
        blk = bytearray(buf[i:i + 4096])
        (data_bytes,) = struct.unpack_from("<Q", blk, 152)
        struct.pack_into("<Q", blk, 152, data_bytes + 64 * 4096)  # over the metadata
        blk[4088:4096] = b"\0" * 8
        struct.pack_into("<Q", blk, 4088, xx.XXH64(bytes(blk), 4096, 0))
        os.pwrite(fd, bytes(blk), tail + i)
    i = buf.find(b"BLKREPMD", i + 1)
os.close(fd)
PY
sum=$(md5sum <"$T/a.img")
check_fails "(G) up with a superblock whose data_bytes was edited is refused" $A up
err_has "metadata does not match its device: data_bytes (the data area's size): superblock says" &&
	pass "(G) ... naming the field" || fail "(G) message: $(cat "$T/last.err")"
check_eq "(G) nothing was written" "$(md5sum <"$T/a.img")" "$sum"
finish
