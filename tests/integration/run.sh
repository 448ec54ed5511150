#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh (or the ones named on the command
# line), each under `timeout`, prints PASS/FAIL/SKIP per test and ends with
#   integration: N passed, N failed, N skipped
# Exit status: non-zero if any test failed.
#
# Environment: BLKREP (binary under test), SERVER (blkrep|nbdkit),
# TEST_TIMEOUT (seconds per test file, default 240), VERBOSE=1 (show every
# test's output, not only the output of failed ones), EXCLUDE="t_a t_b"
# (listed as skipped, with EXCLUDE_WHY).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
TEST_TIMEOUT=${TEST_TIMEOUT:-240}
export BLKREP=${BLKREP:-$(cd "$dir/../.." && pwd)/blkrep}
export SERVER=${SERVER:-blkrep}

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=("$dir"/t_*.sh)
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/blkrep-it-run.XXXXXX")
trap 'rm -rf "$out"' EXIT
passed=0 failed=0 skipped=0
failed_names=()
echo "integration: server=$SERVER binary=$BLKREP"
for t in "${tests[@]}"; do
	case $t in */*) ;; *) t=$dir/$t ;; esac
	case $t in *.sh) ;; *) t=$t.sh ;; esac
	name=$(basename "$t" .sh)
	log=$out/$name.log
	if [[ " ${EXCLUDE:-} " == *" $name "* ]]; then
		skipped=$((skipped + 1))
		printf 'SKIP %-24s %s\n' "$name" "${EXCLUDE_WHY:-excluded}"
		continue
	fi
	start=$(date +%s)
	timeout -k 10 "$TEST_TIMEOUT" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0)
		passed=$((passed + 1))
		printf 'PASS %-24s (%ss, %s checks)\n' "$name" "$secs" "$(grep -c '^ok - ' "$log")"
		[ "${VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$log"
		;;
	77)
		skipped=$((skipped + 1))
		printf 'SKIP %-24s %s\n' "$name" "$(grep -m1 '^SKIP - ' "$log" | sed 's/^SKIP - //')"
		;;
	*)
		failed=$((failed + 1))
		failed_names+=("$name")
		[ $rc -eq 124 ] && why="timed out after ${TEST_TIMEOUT}s" || why="exit $rc"
		printf 'FAIL %-24s (%ss, %s)\n' "$name" "$secs" "$why"
		# What failed first (a long log gets cut in the middle by CI
		# viewers), then the whole log.
		grep -v '^ok - ' "$log" | head -40 | sed 's/^/  ! /'
		sed 's/^/    /' "$log"
		;;
	esac
done
[ $failed -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "integration: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
