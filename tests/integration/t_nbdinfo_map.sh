#!/usr/bin/env bash
# nbdinfo --map (base:allocation from SEEK_DATA/SEEK_HOLE): on a sparse
# file, write data through NBD, trim part of it, and check which ranges
# are reported as data and which as holes; reads of the trimmed part
# return zeros.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo
require_nbdsh

truncate -s 64M "$T/disk.img"
start_server "$T/disk.img" || finish

check "map of an empty sparse file" nbdinfo --map --json "$SRV_URI"
cp "$T/last.out" "$T/map0.json"

# Data at [4M, 8M) and [16M, 17M); then trim [5M, 6M) and [16M, 17M).
check "write 4M+4M and 16M+1M, trim 5M+1M and 16M+1M" nbdsh -u "$SRV_URI" \
	-c 'h.pwrite(b"\xab" * (4 << 20), 4 << 20)' \
	-c 'h.pwrite(b"\xcd" * (1 << 20), 16 << 20)' \
	-c 'h.flush()' \
	-c 'h.trim(1 << 20, 5 << 20)' \
	-c 'h.trim(1 << 20, 16 << 20)' \
	-c 'h.flush()' \
	-c 'assert h.pread(1 << 20, 5 << 20) == bytes(1 << 20), "trimmed range not zero"' \
	-c 'assert h.pread(1 << 20, 16 << 20) == bytes(1 << 20), "trimmed range not zero"' \
	-c 'assert h.pread(1 << 20, 4 << 20) == b"\xab" * (1 << 20)' \
	-c 'assert h.pread(2 << 20, 6 << 20) == b"\xab" * (2 << 20)'
check "map after writes and trims" nbdinfo --map --json "$SRV_URI"
cp "$T/last.out" "$T/map1.json"
check "map --totals" nbdinfo --map --totals "$SRV_URI"

py_checks "map contents" - "$T/map0.json" "$T/map1.json" <<'PYEOF'
import json, sys
M = 1 << 20
def load(p):
    return json.load(open(p))
def typ_at(m, off):
    for e in m:
        if e["offset"] <= off < e["offset"] + e["length"]:
            return e["type"]
    return None
def check(cond, desc):
    print(("ok - " if cond else "FAIL - ") + desc)
m0, m1 = load(sys.argv[1]), load(sys.argv[2])
for m, name in ((m0, "empty"), (m1, "written")):
    end = max(e["offset"] + e["length"] for e in m)
    check(end == 64 * M, "%s map covers the 64 MiB export (ends at %d)" % (name, end))
    offs = sorted(e["offset"] for e in m)
    check(offs[0] == 0, "%s map starts at 0" % name)
check(all(e["type"] == 3 for e in m0), "empty file maps as hole,zero only: %r" % m0)
HOLE = 3
want = {0: HOLE, 3 * M: HOLE, 4 * M: 0, int(4.5 * M): 0, 5 * M: HOLE,
        int(5.5 * M): HOLE, 6 * M: 0, 8 * M - 1: 0, 8 * M: HOLE,
        16 * M: HOLE, 17 * M: HOLE, 63 * M: HOLE}
for off, t in sorted(want.items()):
    got = typ_at(m1, off)
    # A data extent may also carry ZERO (2) only if it reads as zeros.
    okk = (got == t) if t == HOLE else (got is not None and got & 1 == 0)
    check(okk, "offset %g MiB is %s (got type %r)" % (off / M, "hole" if t == HOLE else "data", got))
PYEOF
finish
