#!/usr/bin/env bash
# Every guest scenario, on the real kernel (tests/vm/run.sh boots one guest
# per scenario, run2.sh two for the power loss).  Prints one "vm: NAME
# PASS|FAIL (N s)" line per scenario, then "vm: N passed, N failed" and fails
# if any failed.
#
# VM_SKIP="name ..." leaves scenarios out (CI leaves out netem, for time:
# `make vm` runs every one).
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
# one NAME COMMAND...: runs one scenario's command, records its line.
one() {
	local name=$1 t=$SECONDS
	shift
	case " ${VM_SKIP:-} " in *" $name "*)
		times+=("$name SKIP (VM_SKIP)")
		return ;;
	esac
	if "$@"; then
		passed=$((passed + 1))
		times+=("$name PASS ($((SECONDS - t)) s)")
	else
		failed+=("$name")
		times+=("$name FAIL ($((SECONDS - t)) s)")
	fi
}
for s in tests/vm/smoke.sh \
	tests/vm/fs.sh tests/vm/modes.sh tests/vm/crash.sh tests/vm/restart.sh \
	tests/vm/attachkill.sh \
	tests/vm/linkdead.sh tests/vm/failover.sh tests/vm/splitbrain.sh \
	tests/vm/failback-save.sh; do
	one "$(basename "$s" .sh)" bash tests/vm/run.sh "$s"
done
# The replication link under netem, checked by the torture tool (make builds it).
one netem bash tests/vm/run.sh tests/vm/netem.sh build/nbdtorture
# Two guests, a network cable between them, and the primary's power cut.
one powerloss bash tests/vm/run2.sh tests/vm/powerloss-primary.sh tests/vm/powerloss-secondary.sh
printf 'vm: %s\n' "${times[@]}"
echo "vm: $passed passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})} in $((SECONDS - start)) s"
[ ${#failed[@]} -eq 0 ]
