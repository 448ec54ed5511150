#!/bin/bash
# make sim-mutants: each tests/sim/mutants/NAME.patch reintroduces one bug
# an earlier issue fixed.  For each, a copy of the tree (build/ included,
# so only the patched objects rebuild) gets the patch and its own
# simulator, which runs seeds until a violation or its share of the time.
# Prints "mutant NAME: found by seed S after K seeds" (or "SURVIVED"),
# then "mutants: N found, M survived"; exits 1 if any survived.
# Mutants run without quorum seeds (SIM_QUORUM=0) unless NAME.env says
# otherwise: its first line holds VAR=VALUE words for both simulators of
# that mutant (e.g. SIM_QUORUM=1: the quorum mutants run quorum seeds
# only); a second line "want REGEX", if any, counts only a violation that
# matches (the oracle the mutant is for), other seeds are passed over.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
budget=${MUTANT_SECONDS:-600}
first=${SEED:-1}
patches=("$root"/tests/sim/mutants/*.patch)
share=$((budget / ${#patches[@]}))
tmp=$(mktemp -d /tmp/blkrep-mutants.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
found=0 survived=0

make -C "$root" -s -j2 build/tests/sim/sim >/dev/null || exit 2
for p in "${patches[@]}"; do
	name=$(basename "$p" .patch)
	dir=$tmp/$name
	envs=(SIM_QUORUM=0) want=
	if [ -f "${p%.patch}.env" ]; then
		read -r -a more <"${p%.patch}.env"
		envs+=("${more[@]}")
		want=$(sed -n 's/^want //p' "${p%.patch}.env")
	fi
	mkdir -p "$dir"
	(cd "$root" && tar --exclude=.git -cf - .) | tar -C "$dir" -xf -
	if ! patch -s -d "$dir" -p1 <"$p" ||
	   ! make -C "$dir" -s -j2 build/tests/sim/sim >"$dir/build.log" 2>&1; then
		echo "mutant $name: does not apply or build (see the patch)"
		survived=$((survived + 1))
		continue
	fi
	# A seed counts only if the unmutated simulator passes it: one that
	# fails there too found a bug of today's code, not the mutant.
	start=$first end=$((SECONDS + share)) seed=
	while [ -z "$seed" ] && [ $SECONDS -lt $end ]; do
		out=$(cd "$dir" && env "${envs[@]}" SIM_SECONDS=$((end - SECONDS)) build/tests/sim/sim 0 "$start" 2>&1)
		s=$(sed -n 's/^sim: seed \([0-9]*\): .*/\1/p' <<<"$out" | head -1)
		[ -n "$s" ] || break
		if [ -n "$want" ] && ! grep -q "^sim: seed $s: .*$want" <<<"$out"; then
			echo "mutant $name: seed $s found something else: $(sed -n "s/^sim: seed $s: //p" <<<"$out" | head -1 | cut -c1-100)"
			start=$((s + 1))
			continue
		fi
		if env "${envs[@]}" "$root/build/tests/sim/sim" 1 "$s" >/dev/null 2>&1; then
			seed=$s
		else
			echo "mutant $name: seed $s fails unmutated too: a bug of today's code (${envs[*]} make sim SEEDS=1 SEED=$s)"
			start=$((s + 1))
		fi
	done
	if [ -n "$seed" ]; then
		why=$(sed -n 's/^sim: seed [0-9]*: //p' <<<"$out" | head -1)
		echo "mutant $name: found by seed $seed after $((seed - first + 1)) seeds ($why)"
		found=$((found + 1))
	else
		echo "mutant $name: SURVIVED from seed $first to $start and on"
		survived=$((survived + 1))
	fi
done
echo "mutants: $found found, $survived survived"
[ "$survived" -eq 0 ]
