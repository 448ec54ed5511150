#!/usr/bin/env bash
# tests/pacemaker/run.sh [short|long]: blkrep under a real Pacemaker 2.1 /
# corosync 3 cluster of three nodes in namespaces on this machine (see
# cluster.sh).  short (default, CI): one kill -9 of the promoted node, under
# ~120 s.  long (`make pacemaker-long`): PCM_ROUNDS (default 4) rounds
# alternating a kill -9 and a cut of every link of the promoted node, then a
# kill -9 of the unpromoted one.
# Prints each check (ok/FAIL/SKIP lines), the figure: lines, then
#   pacemaker: PASS|FAIL|SKIP (N checks, S s)
# Exit status: 0 passed, 1 failed, 77 skipped.
# Environment: BLKREP (binary, default ./blkrep), KEEP_TMP=1 / KEEP_TMP_ON_FAIL=1,
# PCM_TIMEOUT (seconds, default 240 short, 1200 long).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
mode=${1:-short}
case $mode in
short) tmo=${PCM_TIMEOUT:-240} ;;
long) tmo=${PCM_TIMEOUT:-1200} ;;
*) echo "usage: $0 [short|long]" >&2; exit 2 ;;
esac
export BLKREP=${BLKREP:-$(cd "$dir/../.." && pwd)/blkrep}
start=$(date +%s)
PCM_MODE=$mode timeout -k 20 "$tmo" bash "$dir/t_failover.sh"
rc=$?
secs=$(($(date +%s) - start))
case $rc in
0) echo "pacemaker: PASS ($mode, ${secs} s)"; exit 0 ;;
77) echo "pacemaker: SKIP ($mode, ${secs} s)"; exit 77 ;;
124) echo "pacemaker: FAIL ($mode, timed out after ${tmo} s)" ;;
*) echo "pacemaker: FAIL ($mode, exit $rc, ${secs} s)" ;;
esac
exit 1
