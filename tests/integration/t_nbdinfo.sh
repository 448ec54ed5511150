#!/usr/bin/env bash
# nbdinfo against `blkrep serve`: --json (size, name, flags, block sizes),
# --size under both names, --list, --can for every advertised feature,
# --is read-only / rotational.
. "$(dirname "$0")/lib.sh"
require_cmd nbdinfo

truncate -s 64M "$T/disk.img"
start_server "$T/disk.img" --name exp1 || finish

check "nbdinfo --json" nbdinfo --json "$SRV_URI" && cp "$T/last.out" "$T/info.json"
py_checks "nbdinfo --json fields" - "$T/info.json" "$SERVER" <<'PYEOF'
import json, sys
sys.path.insert(0, ".")
j = json.load(open(sys.argv[1]))
server = sys.argv[2]
def check(cond, desc, got=None):
    print(("ok - " if cond else "FAIL - ") + desc + ("" if cond else " (got %r)" % (got,)))
check(j.get("protocol") == "newstyle-fixed", "json: protocol is newstyle-fixed", j.get("protocol"))
check(j.get("structured") is True, "json: structured replies negotiated", j.get("structured"))
e = j["exports"][0]
check(e.get("export-name") == "exp1", "json: export-name is exp1", e.get("export-name"))
check(e.get("export-size") == 64 << 20, "json: export-size is 64 MiB", e.get("export-size"))
check("base:allocation" in e.get("contexts", []), "json: base:allocation context", e.get("contexts"))
check(e.get("is_read_only") is False, "json: is_read_only false", e.get("is_read_only"))
check(e.get("is_rotational") is False, "json: is_rotational false", e.get("is_rotational"))
for f in ("can_cache", "can_df", "can_fast_zero", "can_flush", "can_fua",
          "can_multi_conn", "can_trim", "can_zero"):
    if server == "nbdkit" and f == "can_fast_zero":
        continue
    check(e.get(f) is True, "json: %s true" % f, e.get(f))
if server == "blkrep":
    check(e.get("block_size_maximum") == 32 << 20,
          "json: block_size_maximum is 32 MiB (INFO_BLOCK_SIZE)", e.get("block_size_maximum"))
    mn, pr = e.get("block_size_minimum"), e.get("block_size_preferred")
    check(isinstance(mn, int) and isinstance(pr, int) and 1 <= mn <= pr <= 32 << 20,
          "json: block_size_minimum <= preferred <= maximum", (mn, pr))
PYEOF

base=nbd://127.0.0.1:$SRV_PORT
check "nbdinfo --size with the export name" nbdinfo --size "$base/exp1"
check_eq "size by name is 64 MiB" "$(cat "$T/last.out")" 67108864
check "nbdinfo --size with the empty name" nbdinfo --size "$base/"
check_eq "size by the empty name is 64 MiB" "$(cat "$T/last.out")" 67108864
check "nbdinfo --size with no name at all" nbdinfo --size "$base"
check_eq "size with no name is 64 MiB" "$(cat "$T/last.out")" 67108864
if [ "$SERVER" = blkrep ]; then
	check_fails "an unknown export name is refused" nbdinfo --size "$base/nosuch"
fi

check "nbdinfo --list" nbdinfo --list --json "$base/"
cp "$T/last.out" "$T/list.json"
py_checks "nbdinfo --list" - "$T/list.json" "$SERVER" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
names = [e.get("export-name") for e in j.get("exports", [])]
ok = "exp1" in names or sys.argv[2] == "nbdkit"
print(("ok - " if ok else "FAIL - ") + "--list names exp1 (got %r)" % (names,))
sizes = [e.get("export-size") for e in j.get("exports", [])]
ok = all(s == 64 << 20 for s in sizes) and sizes
print(("ok - " if ok else "FAIL - ") + "--list: every export is 64 MiB (got %r)" % (sizes,))
PYEOF
check "nbdinfo --list (text)" nbdinfo --list "$base/"

for c in flush fua trim zero fast-zero df multi-conn cache structured-reply; do
	[ "$SERVER" = nbdkit ] && [ $c = fast-zero ] && continue
	check_exit "nbdinfo --can $c is true" 0 nbdinfo --can "$c" "$SRV_URI"
done
check_exit "nbdinfo --can connect" 0 nbdinfo --can connect "$SRV_URI"
check_exit "nbdinfo --is read-only is false" 2 nbdinfo --is read-only "$SRV_URI"
check_exit "nbdinfo --is rotational is false" 2 nbdinfo --is rotational "$SRV_URI"
stop_server && pass "server exits 0 on SIGTERM"

# The same export, read-only.
start_server "$T/disk.img" --read-only || finish
check_exit "--read-only: nbdinfo --is read-only is true" 0 nbdinfo --is read-only "$SRV_URI"
check_exit "--read-only: nbdinfo --is rotational is false" 2 nbdinfo --is rotational "$SRV_URI"
check_exit "--read-only: nbdinfo --can flush still true" 0 nbdinfo --can flush "$SRV_URI"
check "--read-only: nbdinfo --json" nbdinfo --json "$SRV_URI"
grep -q '"is_read_only": true' "$T/last.out" && pass "--read-only: json is_read_only true" ||
	fail "--read-only: json is_read_only is not true"
check_eq "--read-only: file untouched" "$(file_size "$T/disk.img")" 67108864
finish
