#!/usr/bin/env bash
# Many clients at once: 8 qemu-io processes write different patterns to
# their own 8 MiB regions concurrently (plus 4 nbdcopy readers of an
# untouched region), then every region is checked.
. "$(dirname "$0")/lib.sh"
require_cmd qemu-io nbdcopy

make_pattern "$T/disk.img" 64
cp "$T/disk.img" "$T/ref.img"
start_server "$T/disk.img" || finish

pids=()
for i in 0 1 2 3 4 5 6 7; do
	base=$((i * 8))
	pat=$((0x40 + i))
	args=()
	for k in 0 1 2 3 4 5 6 7; do
		args+=(-c "aio_write -P $pat $((base + k))M 1M")
	done
	args+=(-c aio_flush)
	tmo qemu-io -f raw "$SRV_URI" "${args[@]}" >"$T/w.$i.out" 2>&1 &
	pids+=($!)
done
# Four whole-export readers (nbdcopy, 2 connections each) at the same time.
for r in 0 1 2 3; do
	tmo nbdcopy --connections=2 "$SRV_URI" "$T/r.$r.img" >"$T/r.$r.out" 2>&1 &
	pids+=($!)
done
i=0
for p in "${pids[@]}"; do
	if wait "$p"; then
		pass "client $i finished"
	else
		fail "client $i failed"
		f=$([ $i -lt 8 ] && echo "$T/w.$i.out" || echo "$T/r.$((i - 8)).out")
		tail -5 "$f" | sed 's/^/    | /'
	fi
	i=$((i + 1))
done

for i in 0 1 2 3 4 5 6 7; do
	qemu-io -f raw "$T/ref.img" -c "write -P $((0x40 + i)) $((i * 8))M 8M" >/dev/null
	check "region $i reads back pattern $((0x40 + i))" \
		qemu-io -r -f raw "$SRV_URI" -c "read -P $((0x40 + i)) $((i * 8))M 8M"
done
# Each concurrent full-disk read saw, per MiB, only bytes of the old or the
# new pattern, never anything else.
for r in 0 1 2 3; do
	py_checks "reader $r" - "$T/r.$r.img" "$T/disk.img" <<'PYEOF'
import sys
M = 1 << 20
a = open(sys.argv[1], "rb").read()
bad = []
for m in range(64):
    blk = a[m * M:(m + 1) * M]
    old = bytes([(m * 37 + 11) & 0xff or 1])
    new = bytes([0x40 + m // 8])
    # A read that overlaps a write in flight may see the write half done,
    # and the page cache does not make that half a whole sector: the server
    # reads with buffered I/O while the write's memcpy runs.  What must
    # never appear is a byte that is neither the old nor the new pattern.
    if blk.translate(None, old + new):
        bad.append(m)
print(("ok - " if not bad else "FAIL - ") + "concurrent reader saw only old or new data (bad MiB: %r)" % bad)
PYEOF
done
check "qemu-img compare export vs reference" qemu-img compare -f raw -F raw "$SRV_URI" "$T/ref.img"
stop_server && pass "server exits 0 on SIGTERM"
check "backing file equals the reference" cmp "$T/ref.img" "$T/disk.img"
finish
