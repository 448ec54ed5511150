#!/usr/bin/env bash
# blkrep under a real Pacemaker 2.1 / corosync 3 cluster (issue 18): the
# promotable clone ocf:blkrep:blkrep on alpha and beta, an ext4 Filesystem
# on /dev/blkrep/r0 with the promoted instance, blkrep's witness on gamma
# (started by the test, not by Pacemaker), on-peer-loss = freeze with the
# repo's crm-fence-peer / crm-unfence-peer, on-no-quorum = io-error.  See cluster.sh for the cluster.
#
# Short (PCM_MODE=short, CI): Pacemaker promotes one node and mounts; files
# written and synced there; kill -9 of every process of that node; the other
# data node is promoted and mounts within 30 s with every synced file intact;
# the fence constraint blkrep-fence-r0 is there (only the new primary may be
# promoted); the killed node comes back, rejoins unpromoted, resyncs, and the
# constraint is gone once its resync is done; the replicas are byte-identical,
# no split brain.  Prints
#   figure: kill_to_promoted=S kill_to_mounted=S resync_to_unfence=S
# (resync_to_unfence: from the killed node's return until the constraint is
# gone, the resync included).
# Long (PCM_MODE=long): PCM_ROUNDS (default 4) rounds alternating kill -9 of
# the promoted node and a cut of all its links (then the heal), then one
# round killing the unpromoted data node while the primary writes.
. "$(dirname "$0")/../integration/lib.sh"
. "$TESTS_DIR/trio.sh"
. "$(dirname "$0")/cluster.sh"

MODE=${PCM_MODE:-short}
ROUNDS=${PCM_ROUNDS:-4}
MNT=$T/mnt

[ -x "$PCM_OCF_DIR/blkrep" ] || skip "no agent at $PCM_OCF_DIR/blkrep"
[ -x "$PCM_OCF_DIR/crm-fence-peer" ] && [ -x "$PCM_OCF_DIR/crm-unfence-peer" ] ||
	skip "no crm-fence-peer/crm-unfence-peer in $PCM_OCF_DIR"
require_cmd mkfs.ext4 sha256sum
unset BLKREP_RUN_DIR
pcm_init
mkdir -p "$MNT"
TRIO_T0=$SECONDS
TRIO_STEP_T0=$SECONDS

# check_is DESC GOT WANT: check_eq that returns 1 when it fails.
check_is() {
	check_eq "$@"
	[ "$2" = "$3" ]
}

# --- blkrep's config: alpha, beta (data), gamma (witness) ---------------------
TRIO_WITNESS=gamma
TRIO_EXTRA="on-peer-loss = freeze
on-no-quorum = io-error
fence-peer = $PCM_OCF_DIR/crm-fence-peer
unfence-peer = $PCM_OCF_DIR/crm-unfence-peer"
for n in alpha beta; do truncate -s 32M "$(trio_img "$n")"; done
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$T/secret"
chmod 600 "$T/secret"
trio_conf "$T/r0.conf" alpha beta gamma

# --- the cluster, no resources yet -------------------------------------------
trio_step "cluster"
for n in $PCM_NODES; do
	trio_run "boot $n (holder, corosync -f, pacemakerd)" pcm_boot "$n" || exit 1
done
s=$(pcm_wait_online 60 alpha beta gamma)
check_is "the three nodes are online with quorum" "$s" "alpha beta gamma quorum" || exit 1
trio_run "cluster options: $PCM_PROPS" pcm_props_ok alpha

# --- blkrep by hand: created, in sync, ext4 made, then down ------------------
trio_step "blkrep set up by hand"
trio_run "create alpha" pcm_blk alpha create --zeroed
trio_run "create beta" pcm_blk beta create --zeroed
for n in alpha beta gamma; do trio_run "blkrep up on $n" pcm_blk "$n" up || exit 1; done

pcm_synced() { # alpha and beta connected, both uptodate, no resync, nothing out of sync
	local a b
	a=$(pcm_json alpha "d['disk'] == 'uptodate' and peer('beta').get('connection') == 'connected' and peer('beta').get('resync') is None and not peer('beta').get('out_of_sync_bytes') and peer('gamma').get('connection') == 'connected'")
	b=$(pcm_json beta "d['disk'] == 'uptodate' and peer('alpha').get('connection') == 'connected' and peer('alpha').get('resync') is None and not peer('alpha').get('out_of_sync_bytes') and peer('gamma').get('connection') == 'connected'")
	[ "$a $b" = "True True" ]
}
wait_until() { # SECS CMD...: until CMD succeeds (polls every 0.3 s)
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge "$end" ] && return 1
		sleep 0.3
	done
}
trio_run "alpha, beta, gamma connected" wait_until 20 pcm_synced
trio_run "alpha primary --force (first time)" pcm_blk alpha primary --force || exit 1
trio_run "alpha and beta in sync" wait_until 30 pcm_synced || exit 1
size=$(pcm_json alpha "d['size_bytes']")
trio_run "attach --loop on alpha" pcm_blk alpha attach --loop || exit 1
dev=$(tr -d '\n' <"$T/last.out")
trio_run "mkfs.ext4 on $dev" pcm_x alpha mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev"
trio_run "detach on alpha" pcm_blk alpha detach
trio_run "alpha secondary" pcm_blk alpha secondary
trio_run "alpha down" pcm_blk alpha down
trio_run "beta down" pcm_blk beta down

# --- the resources, with pcs on a CIB file pushed with cibadmin --replace ----
trio_step "resources"
cibfile=$T/cib-edit.xml
pcs_f() { pcm_x alpha timeout -k 1 30 pcs -f "$cibfile" "$@"; }
pcm_x alpha timeout -k 1 10 cibadmin -Q >"$cibfile"
trio_run "pcs: blkrep-r0, a promotable clone (notify, 2 instances)" pcs_f resource create blkrep-r0 \
	ocf:blkrep:blkrep config="$T/r0.conf" binary="$BLKREP" attach=loop \
	promotable notify=true clone-max=2 || exit 1
trio_run "pcs: never on gamma (no probe there: gamma runs blkrep's witness)" pcs_f constraint location add \
	blkrep-r0-not-gamma blkrep-r0-clone gamma -INFINITY resource-discovery=never
trio_run "pcs: fs-r0, ext4 on /dev/blkrep/r0" pcs_f resource create fs-r0 ocf:heartbeat:Filesystem \
	device=/dev/blkrep/r0 directory="$MNT" fstype=ext4 || exit 1
trio_run "pcs: fs-r0 with the Promoted role" pcs_f constraint colocation add fs-r0 with Promoted blkrep-r0-clone INFINITY
trio_run "pcs: promote, then start fs-r0" pcs_f constraint order promote blkrep-r0-clone then start fs-r0
trio_run "cibadmin --replace" pcm_x alpha timeout -k 1 30 cibadmin --replace --xml-file "$cibfile" || exit 1

s=$(pcm_wait_rsc 60 alpha "promoted=?* unpromoted=?* mounted=?*")
P=$(sed -n 's/^promoted=\([a-z]*\) .*/\1/p' <<<"$s")
M=$(sed -n 's/.* mounted=\([a-z]*\)$/\1/p' <<<"$s")
check_is "Pacemaker promotes one node, the other unpromoted, fs-r0 mounted on the promoted one ($s)" \
	"$([ -n "$P" ] && [ "$P" = "$M" ] && echo yes)" yes || exit 1

other() { [ "$1" = alpha ] && echo beta || echo alpha; }
now() { date +%s.%N; }
secs() { $PY -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
NFILES=0

# write_files NODE COUNT: COUNT more files of 256 KiB on NODE's mounted fs,
# synced, their checksums appended to $T/sums.
write_files() {
	local i
	for i in $(seq $((NFILES + 1)) $((NFILES + $2))); do
		pcm_x "$1" timeout -k 1 30 sh -c "head -c 262144 /dev/urandom >'$MNT/f$i' && cd '$MNT' && sha256sum f$i" >>"$T/sums" || return 1
	done
	NFILES=$((NFILES + $2))
	pcm_x "$1" timeout -k 1 20 sync -f "$MNT"
}

# files_ok NODE: every file of $T/sums is on NODE's fs with its checksum.
files_ok() { pcm_x "$1" timeout -k 1 30 sh -c "cd '$MNT' && sha256sum --quiet -c '$T/sums'"; }

# no_split_brain: neither data node reports a split brain with the other.
no_split_brain() {
	local a b
	a=$(pcm_json alpha "bool(peer('beta').get('split_brain')) or peer('beta').get('connection') == 'splitbrain'")
	b=$(pcm_json beta "bool(peer('alpha').get('split_brain')) or peer('alpha').get('connection') == 'splitbrain'")
	[ "$a $b" = "False False" ] || { echo "split brain? alpha: $a, beta: $b"; return 1; }
}

# identical: after a sync on the primary, alpha's and beta's data areas
# are byte-identical (a few tries: a write may be in flight).
identical() {
	local i out
	for i in 1 2 3 4 5; do
		pcm_x "$1" timeout -k 1 20 sync -f "$MNT"
		out=$("$TESTS_DIR/cmp_areas.sh" "$size" "$(trio_img alpha)" "$(trio_img beta)") && return 0
		sleep 1
	done
	echo "$out"
	return 1
}

# after_return BACK PRIMARY T_BACK: BACK came back: unpromoted, resynced, the
# constraint gone only once the resync is done, files there, replicas
# identical, no split brain.  Sets UNFENCE (seconds since T_BACK).
after_return() {
	local back=$1 pri=$2 t_back=$3 s c d
	s=$(pcm_wait_rsc 60 "$pri" "promoted=$pri unpromoted=$back mounted=$pri")
	check_eq "$back rejoins unpromoted, $pri stays promoted and mounted" "$s" \
		"promoted=$pri unpromoted=$back mounted=$pri"
	# Until the constraint is gone: it must never name $back (a stale node
	# fencing the live primary), and $pri must stay promoted and mounted.
	local end=$((SECONDS + 60)) bad_c= bad_r= r
	while :; do
		c=$(pcm_fence_constraint "$pri")
		r=$(pcm_rsc "$pri")
		case $c in none | "only=$pri" | "no answer") ;; *) bad_c="${bad_c:-$c}" ;; esac
		case $r in "promoted=$pri "*"mounted=$pri" | "no answer") ;; *) bad_r="${bad_r:-$r}" ;; esac
		[ "$c" = none ] || [ $SECONDS -ge "$end" ] && break
		sleep 0.3
	done
	UNFENCE=$(secs "$t_back" "$(now)")
	d=$(pcm_json "$back" "d['disk']")
	check_eq "the fence constraint is gone (${UNFENCE} s after $back's return)" "$c" none
	check_eq "meanwhile the constraint never let another node than $pri be promoted" "${bad_c:-ok}" ok
	check_eq "meanwhile $pri stayed promoted with fs-r0 mounted" "${bad_r:-ok}" ok
	check_eq "when it went, $back was up to date (unfence-peer ran after the resync)" "$d" uptodate
	trio_run "alpha and beta in sync" wait_until 30 pcm_synced
	trio_run "alpha's and beta's data areas are byte-identical" identical "$pri"
	trio_run "no split brain" no_split_brain
	trio_run "every synced file is there on $pri" files_ok "$pri"
}

# takeover NEW WHAT T0: after WHAT (kill, cut) at T0, NEW is promoted and
# mounted within 30 s, with every synced file, and the fence constraint lets
# only NEW be promoted.  Sets KP and KM: seconds from T0 to promoted, mounted.
takeover() {
	local new=$1 what=$2 s t1= t2= end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ]; do
		s=$(pcm_rsc "$new")
		case $s in promoted=$new*) [ -n "$t1" ] || t1=$(now) ;; esac
		case $s in promoted=$new*mounted=$new) t2=$(now); break ;; esac
		sleep 0.2
	done
	check_is "$new promoted and mounted after the $what ($s)" "${t1:+p}${t2:+m}" pm || return 1
	KP=$(secs "$3" "$t1")
	KM=$(secs "$3" "$t2")
	check_eq "promoted within 30 s of the $what (${KP} s; mounted ${KM} s)" \
		"$($PY -c "print(float('$KP') <= 30)")" True
	trio_run "every synced file is on $new with its checksum" files_ok "$new"
	s=$(pcm_fence_constraint "$new")
	check_eq "the fence constraint only lets $new be promoted" "$s" "only=$new"
}

# round_kill_promoted: kill -9 the promoted node P, the other one takes
# over within 30 s with the files; P comes back.  Sets P to the new one.
round_kill_promoted() {
	local old=$P new s t0 st
	new=$(other "$old")
	trio_step "round: kill -9 of the promoted node $old"
	trio_run "files written and synced on $old" write_files "$old" 4 || return 1
	t0=$(now)
	trio_run "kill -9 every process of $old" pcm_kill9 "$old" || return 1
	takeover "$new" kill "$t0" || return 1
	st=$(pcm_json "$new" "'%s frozen=%s io_suspended=%s fence_peer=%s' % (d['role'], d.get('frozen'), d.get('io_suspended'), d.get('fence_peer'))")
	msg "$new: $st"
	check_eq "$new is primary, writes not held" "${st%% fence_peer=*}" "primary frozen=False io_suspended=False"
	trio_run "more files written on $new alone" write_files "$new" 2
	local tb
	tb=$(now)
	trio_run "$old back (new mount/UTS namespaces, corosync, pacemakerd)" pcm_boot "$old" || return 1
	after_return "$old" "$new" "$tb"
	printf 'figure: kill_to_promoted=%s kill_to_mounted=%s resync_to_unfence=%s\n' "$KP" "$KM" "$UNFENCE"
	P=$new
}

# round_cut_promoted: every link of the promoted node P cut: it loses quorum
# (no-quorum-policy=stop), the other one takes over; the links healed.
round_cut_promoted() {
	local old=$P new s t0 tb
	new=$(other "$old")
	trio_step "round: every link of the promoted node $old cut"
	trio_run "files written and synced on $old" write_files "$old" 4 || return 1
	t0=$(now)
	trio_cut_off "$old" || return 1
	takeover "$new" cut "$t0" || return 1
	# Alone without quorum (no-quorum-policy=stop): Pacemaker there stops
	# fs-r0 and demotes; with on-no-quorum = io-error its held writes fail,
	# so the unmount can finish (under suspend-io it would wait for the heal).
	s=$(pcm_wait_rsc 30 "$old" "promoted= *mounted=")
	check_eq "$old, alone without quorum, is neither promoted nor mounted ($s)" \
		"$(sed 's/ unpromoted=[a-z,]*//' <<<"$s")" "promoted= mounted="
	s=$(pcm_json "$old" "'%s frozen=%s io_suspended=%s quorum=%s' % (d['role'], d.get('frozen'), d.get('io_suspended'), d.get('quorum'))")
	msg "$old while alone: $s"
	trio_run "more files written on $new alone" write_files "$new" 2
	tb=$(now)
	trio_heal_all "$old" || return 1
	after_return "$old" "$new" "$tb"
	printf 'figure: cut_to_promoted=%s cut_to_mounted=%s heal_to_unfence=%s\n' "$KP" "$KM" "$UNFENCE"
	P=$new
}

# round_kill_unpromoted: kill -9 the unpromoted data node while the
# primary writes: the primary's fence-peer places the constraint, writes go
# on; the node comes back, the constraint goes after its resync.
round_kill_unpromoted() {
	local old new=$P s tb
	old=$(other "$new")
	trio_step "round: kill -9 of the unpromoted node $old"
	trio_run "kill -9 every process of $old" pcm_kill9 "$old" || return 1
	trio_run "files written and synced on $new alone (writes resume)" write_files "$new" 4
	s=$(pcm_fence_constraint "$new")
	check_eq "the primary's fence-peer placed the constraint" "$s" "only=$new"
	s=$(pcm_json "$new" "'%s frozen=%s io_suspended=%s fence_peer=%s' % (d['role'], d.get('frozen'), d.get('io_suspended'), d.get('fence_peer'))")
	msg "$new: $s"
	tb=$(now)
	trio_run "$old back" pcm_boot "$old" || return 1
	after_return "$old" "$new" "$tb"
	printf 'figure: unpromoted_back_to_unfence=%s\n' "$UNFENCE"
}

round_kill_promoted || exit 1
if [ "$MODE" = long ]; then
	for r in $(seq 2 "$ROUNDS"); do
		if [ $((r % 2)) = 0 ]; then round_cut_promoted || exit 1; else round_kill_promoted || exit 1; fi
	done
	round_kill_unpromoted || exit 1
fi
trio_step "done"
finish
