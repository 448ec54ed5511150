#!/usr/bin/env bash
# fio's nbd engine (libnbd, many requests in flight): random writes from 4
# jobs at iodepth 16 with crc32c verification of everything written, then
# mixed block sizes with verify_backlog.  Zero errors, verify passes.
. "$(dirname "$0")/lib.sh"
require_cmd fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd engine"

truncate -s 64M "$T/disk.img"
start_server "$T/disk.img" || finish

fio_ok() { # LABEL JSON
	py_checks "$1: fio json" - "$2" "$1" <<'PYEOF'
import json, sys
txt = open(sys.argv[1]).read()
j = json.loads(txt[txt.index("{"):])
label = sys.argv[2]
jobs = j["jobs"]
errs = [x["error"] for x in jobs]
print(("ok - " if all(e == 0 for e in errs) else "FAIL - ") + "%s: %d jobs, errors %r" % (label, len(jobs), errs))
w = sum(x["write"]["io_bytes"] for x in jobs)
r = sum(x["read"]["io_bytes"] for x in jobs)
print(("ok - " if w > 0 and r > 0 else "FAIL - ") + "%s: wrote %d MiB, read back %d MiB to verify" % (label, w >> 20, r >> 20))
PYEOF
}

check "fio randwrite 4 jobs x 16 MiB, iodepth 16, verify=crc32c" \
	fio --name=randwrite --ioengine=nbd --uri="$SRV_URI" \
	--rw=randwrite --bs=4k --iodepth=16 --numjobs=4 --size=16M \
	--offset_increment=16M --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--runtime=60 --output-format=json
cp "$T/last.out" "$T/fio1.json"
fio_ok "randwrite" "$T/fio1.json"

check "fio randrw 2 jobs, bs 512-256k, iodepth 16, verify_backlog" \
	fio --name=mixed --ioengine=nbd --uri="$SRV_URI" \
	--rw=randwrite --bsrange=512-256k --bs_unaligned=0 --iodepth=16 --numjobs=2 \
	--size=24M --offset_increment=32M --verify=crc32c --verify_backlog=64 \
	--verify_fatal=1 --runtime=60 --output-format=json
cp "$T/last.out" "$T/fio2.json"
fio_ok "mixed sizes" "$T/fio2.json"

check "fio seq write 1M iodepth 8 with fsync every 16" \
	fio --name=seq --ioengine=nbd --uri="$SRV_URI" --rw=write --bs=1M \
	--iodepth=8 --size=64M --fsync=16 --verify=crc32c --verify_fatal=1 \
	--runtime=60 --output-format=json
cp "$T/last.out" "$T/fio3.json"
fio_ok "seq write + fsync" "$T/fio3.json"

# The data fio left must be readable through another client too.
if command -v nbdcopy >/dev/null; then
	check "nbdcopy the export out" nbdcopy "$SRV_URI" "$T/out"
	check "export equals backing file" cmp "$T/out" "$T/disk.img"
fi
stop_server && pass "server exits 0 on SIGTERM"
finish
