#!/usr/bin/env bash
# Every guest scenario, on the real kernel (tests/vm/run.sh boots one guest
# per scenario).  Prints one "vm: NAME PASS|FAIL (N s)" line per scenario,
# then "vm: N passed, N failed" and fails if any failed.
#
# Each guest gets BLKREP_VM_TIMEOUT seconds (default here 150; the scenario
# 30 s less): a hung scenario fails alone instead of holding up the rest.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export BLKREP_VM_TIMEOUT=${BLKREP_VM_TIMEOUT:-150}
passed=0
failed=()
times=()
start=$SECONDS
for s in tests/vm/smoke.sh \
	tests/vm/fs.sh tests/vm/modes.sh tests/vm/crash.sh tests/vm/restart.sh \
	tests/vm/linkdead.sh tests/vm/failover.sh; do
	t=$SECONDS
	if bash tests/vm/run.sh "$s"; then
		passed=$((passed + 1))
		times+=("$(basename "$s" .sh) PASS ($((SECONDS - t)) s)")
	else
		failed+=("$(basename "$s")")
		times+=("$(basename "$s" .sh) FAIL ($((SECONDS - t)) s)")
	fi
done
printf 'vm: %s\n' "${times[@]}"
echo "vm: $passed passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})} in $((SECONDS - start)) s"
[ ${#failed[@]} -eq 0 ]
