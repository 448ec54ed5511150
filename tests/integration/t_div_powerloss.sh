#!/usr/bin/env bash
# Issue 12, bug 4: the activity log drops an extent once the peer has
# flushed it, while the primary's own copy is still only in its page cache
# (DESIGN.md rule 8).
#
# An extent leaves the activity log when a peer FLUSH covers its writes;
# nothing flushes the primary's own data area first (the activity-log
# snapshot is RWF_DSYNC on the metadata only, which with external metadata
# is another file).  A power loss of the primary then loses writes the
# pair believes both sides hold, and the crashed primary's resync (of the
# extents its log still names) does not cover them.
#
# Scenario: external metadata for both nodes (PAIR_META_A/B: the data
# areas are then the whole backing files, equal in size), alpha's backing
# file on faultfs --crash (a write reaches the real file only with an
# fsync: SIGKILL of faultfs is a power loss); al-extents = 16.
#  - W: 64 KiB at 8 MiB (extent #2) through nbdsh, no FLUSH (nbdsh, not
#    qemu-io: qemu flushes at close); faultfs holds it;
#  - 2.5 s: the daemon's idle tick sends its peer FLUSH (once a second
#    while writes wait for one), beta flushes W;
#  - 4 KiB into each of 20 other extents (#3-#22), no FLUSH: W's extent
#    (and, after the next peer FLUSH, four more) leaves the log;
#  - power loss of alpha: kill -9 its daemon, then its faultfs (W and the
#    20 writes were never flushed there: gone); faultfs back, `up` alpha
#    (it comes back primary, crashed); beta stayed up; wait for the pair
#    to settle.
# What it proves (the oracle): once both report in sync, the data areas
# are byte-identical, and W (acknowledged, and flushed on the peer) is on
# both.  On the code before the fix: in sync, 5 extents differ (#2 and the
# four other extents evicted from the log) and W is not on alpha.
. "$(dirname "$0")/lib.sh"
require_cmd cmp
require_nbdsh
. "$(dirname "$0")/pair.sh"
pair_init 128M 128M
. "$(dirname "$0")/faultfs.sh"
require_faultfs
trap '[ $FAILS -gt 0 ] && show_logs 20; pair_stop; faultfs_cleanup; _cleanup' EXIT
pair_bounded
MIB=1048576
W_OFF=$((8 * MIB))

PAIR_META_A=$T/a.meta
PAIR_META_B=$T/b.meta
pair_conf_extra "al-extents = 16"
faultfs_under a --crash || exit 1
pair_start
check_eq "external metadata: the data area is the whole backing file" "$size" $((128 * MIB))
need_synced || exit 1

check "W: 64 KiB at 8 MiB, no FLUSH" \
	nbdsh -u "$URI" -c "h.pwrite(b'\\x57' * 65536, $W_OFF)"
held=$(sed -n 's/.* held_bytes \([0-9]*\).*/\1/p' "$T/a.fs/ctl")
check_eq "W is held by alpha's faultfs, not on its real file ($held bytes held)" \
	"$([ "${held:-0}" -ge 65536 ] && echo yes)" yes
sleep 2.5 # the idle tick's peer FLUSH
check "4 KiB into each of 20 other extents (#3-#22), no FLUSH" \
	nbdsh -u "$URI" -c "
for k in range(3, 23):
    h.pwrite(bytes([0x60 + k]) * 4096, k * 4 * 1024 * 1024)"
check_al_left 2 "W's extent #2 has left the activity log"
msg "alpha's faultfs before the power loss: $(faultfs_stat a)"

apid=$(daemon_pid alpha)
check_kill9 "power loss of alpha: kill -9 its daemon (pid '$apid')" "$apid"
faultfs_powerloss a && pass "... then its faultfs (what it held is lost)" ||
	fail "alpha's faultfs was not running"
cmp -s -n 65536 -i "$W_OFF:0" "$T/a.real" <(head -c 65536 /dev/zero | tr '\0' '\127') &&
	msg "W is on alpha's real file after the power loss" ||
	msg "W is not on alpha's real file after the power loss (never flushed there)"
check_eq "beta lost its primary" \
	"$(wait_field "$Bn" "d['peer']['connection'] != 'connected'" True 10)" True

faultfs_under a --crash || exit 1
check_up_crashed "" "up alpha after the power loss"
check_eq "alpha is primary" "$(field "$A" "d['role']")" primary
check_settles
check "W is on alpha" cmp -n 65536 -i "$W_OFF:0" "$T/a.img" <(head -c 65536 /dev/zero | tr '\0' '\127')
check "W is on beta" cmp -n 65536 -i "$W_OFF:0" "$T/b.img" <(head -c 65536 /dev/zero | tr '\0' '\127')
finish
