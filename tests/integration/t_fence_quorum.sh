#!/usr/bin/env bash
# fence-peer on a quorum resource (issue 18): two data nodes and a witness
# in their own network namespaces (trio.sh), on-peer-loss = freeze and a
# fence-peer command answering with the code in $T/fence.rc after 2 s.
# Under quorum a write needs a majority AND the command's answer:
#  (1) beta cut off, the command refuses (exit 1): alpha keeps quorum
#      (with the witness) yet a write issued at the cut stays unanswered,
#      `frozen` true; `outdate-peer` releases it; the heal resyncs.
#  (2) beta cut off again, the command says outdated (exit 4): the held
#      write completes, not before the command's end.
#  (3) alpha cut off from both under on-no-quorum = io-error: its write
#      fails (EIO) instead of waiting for a command that cannot help.
. "$(dirname "$0")/lib.sh"
require_cmd ip nsenter qemu-io nbdsh
. "$(dirname "$0")/trio.sh"
export BLKREP_SAVE_DIR=$T/saved
mkdir -p "$BLKREP_SAVE_DIR"

cat >"$T/fence.sh" <<EOF
#!/bin/sh
echo "\$BLKREP_NODE|\$BLKREP_PEERS" >>"$T/fence.log"
sleep 2
date +%s.%N >"$T/fence.end"
exit \$(cat "$T/fence.rc")
EOF
chmod +x "$T/fence.sh"
: >"$T/fence.log"
echo 1 >"$T/fence.rc"

TRIO_WITNESS=witness
TRIO_EXTRA="on-peer-loss = freeze
on-no-quorum = io-error
fence-peer = $T/fence.sh"
trio_init 64M alpha beta witness
A=$(trio_cmd alpha)

trio_step "up: alpha primary, in sync"
trio_start || exit 1

trio_step "(1) beta cut off, fence-peer refuses"
trio_cut_off beta
held_write "$(trio_uri alpha)" 0x5a 0
check_eq "(1) alpha ran fence-peer for beta and shows its refusal" \
	"$(trio_wait_field alpha "d['fence_peer']" "exit 1" 30)" "exit 1"
check_eq "(1) alpha has quorum (with the witness)" "$(trio_field alpha "d['quorum']")" True
held_wait 3
check_eq "(1) the write stays unanswered 3 s after the refusal, quorum or not" "$rc" pending
check_eq "(1) frozen" "$(trio_field alpha "d['frozen']")" True
check_eq "(1) fence-peer ran once" "$(wc -l <"$T/fence.log" | tr -d ' ')" 1
check "(1) outdate-peer releases it" $A outdate-peer
held_wait 10
check_eq "(1) the held write completes" "$rc" 0
trio_heal_all beta
check_trio_synced "(1) in sync after the heal" 60 alpha beta

trio_step "(2) beta cut off again, fence-peer says outdated"
echo 4 >"$T/fence.rc"
rm -f "$T/fence.end"
trio_cut_off beta
held_write "$(trio_uri alpha)" 0x5a 1048576
held_wait 40
check_eq "(2) the held write completes" "$rc" 0
if [ -s "$T/fence.end" ] && [ -s "$T/held.done" ] && ! trio_lt "$(cat "$T/held.done")" "$(cat "$T/fence.end")"; then
	pass "(2) ... not before fence-peer answered"
else
	fail "(2) the write ended before fence-peer answered (write $(cat "$T/held.done" 2>/dev/null), fence-peer $(cat "$T/fence.end" 2>/dev/null))"
fi
check_eq "(2) status shows the answer" "$(trio_field alpha "d['fence_peer']")" "exit 4"
trio_heal_all beta
check_trio_synced "(2) in sync after the heal" 60 alpha beta

trio_step "(3) alpha cut off from both: no quorum, io-error"
echo 1 >"$T/fence.rc"
trio_cut_off alpha
held_write "$(trio_uri alpha)" 0x5a 2097152
held_wait 30
if [ "$rc" != 0 ] && [ "$rc" != pending ]; then
	pass "(3) the write fails without quorum (exit $rc), not held for fence-peer"
else
	fail "(3) the write: $rc (want an error: no quorum under io-error)"
fi
trio_heal_all alpha
check_trio_synced "(3) in sync after the heal" 60 alpha beta
finish
