#!/usr/bin/env bash
# blkrep create and dump-md from a shared config: internal and external
# metadata, refusal to overwrite without --force, corrupt metadata refused
# with a clear message and left as it is, bad configs refused with
# FILE:LINE.
. "$(dirname "$0")/lib.sh"

B=$BLKREP
truncate -s 256M "$T/a.img" "$T/b.img"
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret"
chmod 600 "$T/secret"
cat >"$T/r0.conf" <<CONF
[resource]
name = r0
secret-file = $T/secret
[node alpha]
address = 127.0.0.1:7789
backing = $T/a.img
[node beta]
address = 127.0.0.1:7790
backing = $T/b.img
meta = $T/b.meta
CONF
C="-c $T/r0.conf"

check_fails "dump-md before create fails" $B $C --node alpha dump-md
grep -q "no blkrep metadata here" "$T/last.err" && pass "... saying there is no metadata" ||
	fail "dump-md before create: $(cat "$T/last.err")"
check "create (internal metadata)" $B $C --node alpha create
check "create --zeroed (external metadata, created)" $B $C --node beta create --zeroed
check "external meta file exists and is private" test -f "$T/b.meta" -a "$(stat -c %a "$T/b.meta")" = 600
check "dump-md (alpha)" $B $C --node alpha dump-md
grep -q "disk: *inconsistent" "$T/last.out" && pass "fresh node is inconsistent" ||
	fail "fresh node state: $(cat "$T/last.out")"
check "dump-md after the subcommand's options (--node after it)" $B $C dump-md --node beta
grep -q "flags: *zeroed" "$T/last.out" && grep -q "disk: *uptodate" "$T/last.out" &&
	pass "--zeroed node is uptodate and flagged zeroed" || fail "zeroed node: $(cat "$T/last.out")"
size_a=$(sed -n 's/^data_bytes: *//p' "$T/last.out")
check_eq "external metadata leaves the whole backing store to data" "$size_a" $((256 << 20))

sum=$(md5sum <"$T/a.img")
check_fails "create again without --force is refused" $B $C --node alpha create
grep -q "already holds metadata of r0/alpha" "$T/last.err" && pass "... naming what is there" ||
	fail "refusal message: $(cat "$T/last.err")"
check_eq "refused create changed nothing" "$(md5sum <"$T/a.img")" "$sum"

# Corrupt both superblock copies (the metadata sits at the end of a.img).
$PY - "$T/a.img" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
# find the superblocks by their magic near the end and flip a byte in each
tail = size - (1 << 20)
os.lseek(fd, tail, 0)
buf = os.read(fd, 1 << 20)
i = buf.find(b"BLKREPMD")
while i >= 0:
    os.pwrite(fd, bytes([buf[i + 100] ^ 0xff]), tail + i + 100)
    i = buf.find(b"BLKREPMD", i + 1)
os.close(fd)
PY
sum=$(md5sum <"$T/a.img")
check_fails "dump-md of corrupt metadata fails" $B $C --node alpha dump-md
grep -q "checksum mismatch" "$T/last.err" && [ "$(wc -l <"$T/last.err")" -eq 1 ] &&
	pass "... with one line naming the corruption" || fail "corrupt message: $(cat "$T/last.err")"
check_fails "create over corrupt metadata without --force is refused" $B $C --node alpha create
check_eq "nothing was overwritten" "$(md5sum <"$T/a.img")" "$sum"
check "create --force replaces corrupt metadata" $B $C --node alpha create --force
check "dump-md works again" $B $C --node alpha dump-md

# Bad configs and node names.
printf '[resource]\nname = r0\nmode = fast\n' >"$T/bad.conf"
check_fails "bad config value refused" $B -c "$T/bad.conf" --node alpha dump-md
grep -q "bad.conf:3:" "$T/last.err" && pass "... with FILE:LINE" || fail "bad config: $(cat "$T/last.err")"
check_fails "unknown node refused" $B $C --node gamma dump-md
grep -q "no node gamma" "$T/last.err" && pass "... naming the node" || fail "node: $(cat "$T/last.err")"
check_fails "missing config file refused" $B -c "$T/none.conf" --node alpha dump-md
check_fails "create with an unknown option refused" $B $C --node alpha create --frobnicate
finish
