#!/usr/bin/env bash
# Runs libFuzzer harnesses: usage: run.sh SECONDS BINARY...
#
# For each harness (named by its binary, e.g. build-fuzz/fuzz_handshake):
#  1. runs it once over every input in tests/fuzz/regressions/<harness>/,
#     the crashes found before, so a fixed bug stays fixed;
#  2. fuzzes for SECONDS on a scratch copy of tests/fuzz/corpus/<harness>/
#     (the checked-in seeds are never modified).
# Prints one line per harness.  A crash, leak, timeout or OOM input is
# saved into the regressions directory so that it becomes a seed for every
# later run; the full log stays in build-fuzz/logs/.  Exits non-zero if any
# harness failed.
set -uo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 SECONDS BINARY..." >&2
	exit 2
fi
seconds=$1
shift

here=$(cd "$(dirname "$0")" && pwd)
logdir=${FUZZ_LOG_DIR:-build-fuzz/logs}
mkdir -p "$logdir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# UBSan only reports and continues by default: make undefined behaviour a
# crash, or libFuzzer would never keep the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# The line of a libFuzzer log that says what went wrong.
why() {
	grep -m1 -E 'invariant failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY:|Test unit written' "$1" ||
		echo "exited with status $2 (see log)"
}

# Moves new artifacts into the regressions directory; prints their names.
keep_artifacts() {
	local from=$1 to=$2 f
	mkdir -p "$to"
	for f in "$from"/crash-* "$from"/leak-* "$from"/timeout-* "$from"/oom-*; do
		[ -e "$f" ] || continue
		cp "$f" "$to/"
		echo -n " $(realpath --relative-to="$PWD" "$to/$(basename "$f")")"
	done
}

run_regressions() {
	local bin=$1 dir=$2 log=$3
	local inputs=("$dir"/*)
	[ -e "${inputs[0]}" ] || return 0
	"$bin" -timeout=10 "${inputs[@]}" >"$log" 2>&1
}

fuzz_one() {
	local bin=$1 name work log nreg status runs saved
	name=$(basename "$bin")
	work=$scratch/$name
	log=$logdir/$name.log
	local seeds=$here/corpus/$name regress=$here/regressions/$name

	if [ ! -x "$bin" ]; then
		echo "$name: FAILED: $bin is not an executable (build it first)"
		return 1
	fi
	nreg=$(find "$regress" -type f 2>/dev/null | wc -l)
	if ! run_regressions "$bin" "$regress" "$logdir/$name.regressions.log"; then
		echo "$name: FAILED on a regression input: $(why "$logdir/$name.regressions.log" 1)" \
		     "(log: $logdir/$name.regressions.log)"
		return 1
	fi

	mkdir -p "$work/corpus" "$work/artifacts"
	[ -d "$seeds" ] && cp -r "$seeds/." "$work/corpus/"
	"$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
	status=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	saved=$(keep_artifacts "$work/artifacts" "$regress")
	if [ $status -ne 0 ] || [ -n "$saved" ]; then
		echo "$name: CRASH after ${runs:-?} runs: $(why "$log" $status);" \
		     "saved as regression seed:${saved:- (none)} (log: $log)"
		return 1
	fi
	echo "$name: ${runs:-?} runs, no crash" \
	     "(corpus $(find "$seeds" -type f 2>/dev/null | wc -l) -> $(find "$work/corpus" -type f | wc -l)," \
	     "$nreg regression inputs pass)"
}

failed=0
for bin in "$@"; do
	fuzz_one "$bin" || failed=1
done
exit $failed
