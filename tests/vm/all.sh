#!/usr/bin/env bash
# Every guest scenario, on the real kernel (tests/vm/run.sh boots one guest
# per scenario).  Prints "vm: N passed, N failed" and fails if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
passed=0
failed=()
for s in tests/vm/smoke.sh tests/vm/attach.sh; do
	if bash tests/vm/run.sh "$s"; then
		passed=$((passed + 1))
	else
		failed+=("$(basename "$s")")
	fi
done
echo "vm: $passed passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
