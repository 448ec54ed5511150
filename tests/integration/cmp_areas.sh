#!/usr/bin/env bash
# cmp_areas.sh SIZE FILE-A FILE-B [MAX]: are the first SIZE bytes (a data
# area) of the two files byte-identical?  Exit 0 if they are, silently.
# If not, exit 1 with one line on stdout naming the first differing byte
# and the 4 MiB extents (the activity log's and the bitmap's unit of
# thought) that differ: how many, and the first MAX (default 8) of them,
# e.g.
#   data areas differ: 3 of 16 4-MiB extents (#2 [8M,12M) #5 [20M,24M) #9 [36M,40M)), first at byte 8392705
# Exit 2 if a file cannot be read.  One implementation for the in-sync
# oracle (pair.sh's sync_state), the tests' $SAME and the torture driver.
set -u
size=$1 fa=$2 fb=$3 max=${4:-8}
EXT=4194304
for f in "$fa" "$fb"; do
	[ -r "$f" ] || { echo "cannot read $f"; exit 2; }
done
out=$(cmp -n "$size" "$fa" "$fb" 2>&1)
case $? in
0) exit 0 ;;
1) ;;
*) echo "cmp failed: $out"; exit 2 ;;
esac
# "A B differ: byte N, line L" (or "EOF on A after byte N" for a short one)
first=$(sed -n 's/.* differ: \(char\|byte\) \([0-9]*\),.*/\2/p' <<<"$out")
n=0 total=0 list=
for ((off = 0; off < size; off += EXT)); do
	len=$EXT
	[ $((off + len)) -gt "$size" ] && len=$((size - off))
	total=$((total + 1))
	cmp -s -i "$off:$off" -n "$len" "$fa" "$fb" && continue
	n=$((n + 1))
	[ $n -le "$max" ] &&
		list="$list${list:+ }#$((off / EXT)) [$((off / 1048576))M,$(((off + len) / 1048576))M)"
done
[ $n -gt "$max" ] && list="$list ..."
echo "data areas differ: $n of $total 4-MiB extents ($list), first at byte ${first:-?: $out}"
exit 1
