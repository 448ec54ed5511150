#!/usr/bin/env bash
# The OCF resource agent (contrib/ocf/blkrep) and the Pacemaker handlers
# (contrib/ocf/crm-fence-peer, crm-unfence-peer), without a cluster:
# - the agent's meta-data: the installed ra-api-1.dtd finds nothing but the
#   two OCF 1.1 additions it predates (reload-agent, reloadable), the DTD
#   with those validates it, crm_resource --show-metadata reads it, and
#   `pcs -f CIB resource create ... promotable` accepts it without --force;
# - ocf-tester runs the agent on node alpha of a pair whose beta is up;
# - every exit code of monitor (9 with alpha's disk under faultfs), a
#   refused promotion, attach=loop making
#   and removing /dev/blkrep/r0, the promotion score tiers (crm_attribute
#   replaced by a recorder);
# - the handlers against a CIB file (CIB_file): the fence constraint, once,
#   removed by unfence; no quorum refused; another node's constraint not
#   replaced; exit 5 vs 4; then run by the
#   daemon (a blkrep with the fence-peer key): a killed primary banned by
#   the new primary's crm-fence-peer, the ban lifted after its resync.
# Everything runs in a private mount namespace: the agent is put under
# /usr/lib/ocf/resource.d/blkrep by an overlay, /dev/blkrep is a tmpfs,
# nothing reaches the host's /usr or /dev.

# The outer process: make the mount point /dev/blkrep if it is missing
# (removed afterwards), then run the test in a private mount namespace.
if [ "${OCF_TEST_INNER:-}" != 1 ]; then
	if ! unshare --mount true 2>/dev/null; then
		echo "SKIP - unshare --mount is not permitted here"
		exit 77
	fi
	made_dev_dir=0
	if [ ! -e /dev/blkrep ]; then
		mkdir /dev/blkrep && made_dev_dir=1
	fi
	OCF_TEST_INNER=1 unshare --mount --propagation private bash "$0" "$@"
	rc=$?
	[ $made_dev_dir = 1 ] && rmdir /dev/blkrep 2>/dev/null
	exit $rc
fi

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pair.sh"

require_cmd ocf-tester xmllint crm_resource cibadmin crm_simulate pcs losetup
[ -r /usr/share/resource-agents/ra-api-1.dtd ] || skip "resource-agents' ra-api-1.dtd is missing"
[ -r /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs ] || skip "resource-agents' ocf-shellfuncs is missing"
[ -d /usr/lib/ocf/resource.d ] || skip "/usr/lib/ocf/resource.d is missing"

AGENT_SRC=$REPO/contrib/ocf/blkrep
FENCE=$REPO/contrib/ocf/crm-fence-peer
UNFENCE=$REPO/contrib/ocf/crm-unfence-peer
AGENT=/usr/lib/ocf/resource.d/blkrep/blkrep

pair_init 64M 64M
. "$(dirname "$0")/faultfs.sh"
# Both daemons (and the witness) down, alpha's loop device detached, faultfs stopped,
# then the usual cleanup; the namespace's mounts go with the namespace.
trap 'timeout -k 2 20 $A detach >/dev/null 2>&1; pair_stop; [ -e "$T/w.conf" ] &&
	timeout -k 2 20 "$BLKREP" -c "$T/w.conf" --node witness down >/dev/null 2>&1
	faultfs_cleanup; _cleanup' EXIT
# alpha's disk under faultfs, for monitor's 9 (a primary whose disk fails);
# without FUSE or faultfs, that one check is left out.
HAVE_FFS=0
if (require_faultfs) >/dev/null 2>&1; then
	require_faultfs
	faultfs_under a && HAVE_FFS=1
else
	msg "faultfs cannot run here: monitor's 9 (a failed primary disk) is not checked"
fi

# --- the private OCF root and /dev/blkrep -------------------------------------
mkdir -p "$T/ocf/blkrep" "$T/dtd"
install -m 0755 "$AGENT_SRC" "$T/ocf/blkrep/blkrep"
chmod 0755 "$T" "$T/ocf" "$T/ocf/blkrep" # ocf-tester runs meta-data as nobody
check "overlay: the agent under /usr/lib/ocf/resource.d/blkrep" \
	mount -t overlay overlay -o "lowerdir=$T/ocf:/usr/lib/ocf/resource.d" /usr/lib/ocf/resource.d
[ -x "$AGENT" ] || skip "cannot put the agent under the OCF root: $(cat "$T/last.err")"
check "a tmpfs on /dev/blkrep" mount -t tmpfs -o mode=0755,size=1M blkrep-test /dev/blkrep
mountpoint -q /dev/blkrep || skip "no private /dev/blkrep"

export OCF_ROOT=/usr/lib/ocf
# $T/ra ACTION: the agent run with the environment Pacemaker gives it, for
# node alpha (no cluster: the score is skipped, unless a recorder stands in
# for crm_attribute).  RA_CONFIG, RA_NODE, RA_ATTACH, RA_INTERVAL,
# RA_RESOURCE and RA_BINARY change a parameter.
cat >"$T/ra" <<EOF
#!/bin/sh
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=blk OCF_RA_VERSION_MAJOR=1 OCF_RA_VERSION_MINOR=1
export OCF_RESKEY_config="\${RA_CONFIG-$T/r0.conf}" OCF_RESKEY_node="\${RA_NODE-alpha}"
export OCF_RESKEY_binary="\${RA_BINARY-$BLKREP}" OCF_RESKEY_attach="\${RA_ATTACH-loop}"
export OCF_RESKEY_CRM_meta_interval="\${RA_INTERVAL-10000}"
[ -n "\${RA_RESOURCE:-}" ] && export OCF_RESKEY_resource="\$RA_RESOURCE"
exec $AGENT "\$@"
EOF
chmod 0755 "$T/ra"
RA=$T/ra

# --- meta-data ------------------------------------------------------------------
check "meta-data exits 0" $RA meta-data
cp "$T/last.out" "$T/meta.xml"
DTD=/usr/share/resource-agents/ra-api-1.dtd
xmllint --noout --dtdvalid "$DTD" "$T/meta.xml" >"$T/dtd.out" 2>&1
others=$(grep 'validity error' "$T/dtd.out" |
	grep -v -e 'No declaration for attribute reloadable of element parameter' \
		-e 'Value "reload-agent" for attribute name of action is not among the enumerated set')
check_eq "the installed ra-api-1.dtd finds only the OCF 1.1 additions (reloadable, reload-agent)" \
	"${others:-none}" none
grep -q 'reload-agent' "$T/dtd.out" && pass "... and does see reload-agent (it really validates)" ||
	fail "the DTD did not complain about reload-agent: $(cat "$T/dtd.out")"
# The DTD with the two OCF 1.1 additions, for xmllint and for ocf-tester
# (which validates against /usr/share/resource-agents/ra-api-1.dtd).
sed -e 's/|validate-all)/|validate-all|reload-agent)/' \
	-e 's/^\(        unique  (1|0)   "0"\)>/\1\n        reloadable (1|0) "0">/' "$DTD" >"$T/dtd/ra-api-1.dtd"
cmp -s "$DTD" "$T/dtd/ra-api-1.dtd" && fail "the OCF 1.1 DTD is the installed one (sed matched nothing)"
check "the meta-data validates against ra-api-1.dtd with OCF 1.1's additions" \
	xmllint --noout --dtdvalid "$T/dtd/ra-api-1.dtd" "$T/meta.xml"
check "bind the OCF 1.1 DTD over the installed one (this namespace only)" \
	mount --bind "$T/dtd/ra-api-1.dtd" "$DTD"
check "crm_resource --show-metadata ocf:blkrep:blkrep" crm_resource --show-metadata ocf:blkrep:blkrep
$PY - "$T/last.out" <<'EOF' >"$T/md.out" 2>&1 && pass "its meta-data: OCF 1.1, the parameters, monitors at 9 s (Promoted) and 10 s (Unpromoted)" || fail "meta-data: $(cat "$T/md.out")"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == "resource-agent" and r.get("name") == "blkrep" and r.get("version") == "1.1", r.attrib
assert r.findtext("version") == "1.1", r.findtext("version")
params = {p.get("name"): p for p in r.find("parameters")}
for n in ("config", "resource", "node", "binary", "attach", "adjust_promotion_score"):
    assert n in params, n
assert params["config"].find("content").get("default") == "/etc/blkrep/blkrep.conf"
assert params["adjust_promotion_score"].find("content").get("default") == "5 1000 10000"
assert params["adjust_promotion_score"].get("reloadable") == "1"
acts = [(a.get("name"), a.get("interval"), a.get("role")) for a in r.find("actions")]
for a in ("start", "stop", "promote", "demote", "notify", "meta-data", "validate-all", "reload-agent"):
    assert a in [x[0] for x in acts], a
assert ("monitor", "9s", "Promoted") in acts and ("monitor", "10s", "Unpromoted") in acts, acts
EOF

# pcs, offline on a CIB file: accepts the agent without --force.
check "cibadmin --empty: a CIB file" sh -c "cibadmin --empty >'$T/pcs-cib.xml'"
check "pcs -f CIB resource create ... promotable notify=true (no --force)" \
	pcs -f "$T/pcs-cib.xml" resource create blkrep-r0 ocf:blkrep:blkrep config="$T/r0.conf" \
	attach=loop promotable notify=true
$PY - "$T/pcs-cib.xml" <<'EOF' >"$T/pcs.out" 2>&1 && pass "the CIB has the promotable clone of ocf:blkrep:blkrep ($(cat "$T/pcs.out"))" || fail "pcs's CIB: $(cat "$T/pcs.out")"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
clones = r.findall("./configuration/resources/clone")
assert len(clones) == 1, ET.tostring(r.find("./configuration/resources"))
c = clones[0]
meta = {n.get("name"): n.get("value") for n in c.iter("nvpair") if n.get("id", "").startswith(c.get("id") + "-meta")}
assert meta.get("promotable") == "true", meta
assert meta.get("notify") == "true", meta
p = c.find("primitive")
assert (p.get("class"), p.get("provider"), p.get("type")) == ("ocf", "blkrep", "blkrep"), p.attrib
ops = [(o.get("name"), o.get("interval"), o.get("role")) for o in p.iter("op")]
assert ("monitor", "9s", "Promoted") in ops and ("monitor", "10s", "Unpromoted") in ops, ops
print("clone %s, primitive %s, monitors from the meta-data" % (c.get("id"), p.get("id")))
EOF
# The README's Filesystem and constraints, as written there.
check "pcs -f: a Filesystem on /dev/blkrep/r0" pcs -f "$T/pcs-cib.xml" resource create fs-r0 \
	ocf:heartbeat:Filesystem device=/dev/blkrep/r0 directory=/srv/data fstype=ext4
check "pcs -f: colocation fs-r0 with Promoted blkrep-r0-clone" pcs -f "$T/pcs-cib.xml" \
	constraint colocation add fs-r0 with Promoted blkrep-r0-clone INFINITY
check "pcs -f: order promote blkrep-r0-clone then start fs-r0" pcs -f "$T/pcs-cib.xml" \
	constraint order promote blkrep-r0-clone "then" start fs-r0
$PY - "$T/pcs-cib.xml" <<'EOF' >"$T/pcs.out" 2>&1 && pass "the constraints: $(cat "$T/pcs.out")" || fail "pcs's constraints: $(cat "$T/pcs.out")"
import sys, xml.etree.ElementTree as ET
c = ET.parse(sys.argv[1]).getroot().find("./configuration/constraints")
col = c.findall("rsc_colocation")
assert len(col) == 1 and (col[0].get("rsc"), col[0].get("with-rsc"), col[0].get("with-rsc-role"), col[0].get("score")) == ("fs-r0", "blkrep-r0-clone", "Promoted", "INFINITY"), ET.tostring(c)
o = c.findall("rsc_order")
assert len(o) == 1 and (o[0].get("first"), o[0].get("first-action"), o[0].get("then"), o[0].get("then-action")) == ("blkrep-r0-clone", "promote", "fs-r0", "start"), ET.tostring(c)
print("fs-r0 with the Promoted clone; promote, then start fs-r0")
EOF

# --- the pair: beta up as alpha's peer ------------------------------------------------
check "create both --zeroed" sh -c "$A create --zeroed && $Bn create --zeroed"
check "up beta (alpha's peer)" $Bn up

# --- ocf-tester on alpha --------------------------------------------------------------
tmo -t 300 ocf-tester -v -n blk -o config="$T/r0.conf" -o node=alpha -o binary="$BLKREP" \
	-o attach=loop "$AGENT" >"$T/ocf-tester.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q 'passed all tests' "$T/ocf-tester.out"; then
	pass "ocf-tester: $(tail -n1 "$T/ocf-tester.out")"
else
	fail "ocf-tester exited $rc"
	tail -n 40 "$T/ocf-tester.out" | sed 's/^/    | /'
fi

# --- exit codes, attach=loop, the promotion score ------------------------------------
# A recorder in crm_attribute's place: each call appends its arguments.
mkdir -p "$T/fakebin"
printf '#!/bin/sh\necho "$*" >>%s\n' "$T/score.log" >"$T/fakebin/crm_attribute"
chmod 0755 "$T/fakebin/crm_attribute"
: >"$T/score.log"
SRA="env PATH=$T/fakebin:$PATH $RA" # the agent with the recorder
last_score() { tail -n1 "$T/score.log"; }
alpha_pid() { daemon_pid alpha; }

check_exit "monitor: alpha down: 7 (not running)" 7 $RA monitor
check_exit "probe (interval 0): alpha down: 7" 7 env RA_INTERVAL=0 $RA monitor
check_exit "start: 0" 0 $SRA start
check_eq "alpha reconnects to beta: disk uptodate" "$(wait_field "$A" "d['disk']" uptodate 15)" uptodate
check_exit "monitor: secondary: 0" 0 $SRA monitor
check_eq "score: up to date, every peer connected: the 3rd value" "$(last_score)" "--promotion -v 10000"
check_exit "notify: 0" 0 $SRA notify
check_exit "reload-agent (blkrep adjust) while running: 0" 0 env OCF_RESKEY_adjust_promotion_score="7 77 777" $SRA reload-agent
check_eq "reload-agent: the new scores apply" "$(last_score)" "--promotion -v 777"

check_exit "promote (attach=loop): 0" 0 $SRA promote
dev=$(field "$A" "d['device']")
link=$(readlink /dev/blkrep/r0)
check_eq "promote: /dev/blkrep/r0 links to the attached device" "$link" "$dev"
[ -b "$link" ] && losetup "$link" >/dev/null 2>&1 && pass "... a loop device ($link)" ||
	fail "/dev/blkrep/r0 -> '$link' is not an attached loop device"
check_exit "monitor: primary: 8" 8 $SRA monitor
check_exit "probe: primary: 8" 8 env RA_INTERVAL=0 $SRA monitor
check_eq "score: primary: the 3rd value" "$(last_score)" "--promotion -v 10000"
check_exit "promote again: 0" 0 $SRA promote
check_eq "... the same device" "$(readlink /dev/blkrep/r0)" "$dev"
# What is written to /dev/blkrep/r0 is the replicated volume.
check "write 4 MiB to /dev/blkrep/r0" dd if=/dev/urandom of=/dev/blkrep/r0 bs=1M count=4 seek=3 \
	oflag=direct conv=fsync status=none
size=$(field "$A" "d['size_bytes']")
check_synced "beta holds what went to /dev/blkrep/r0"

# A primary whose disk fails a write: 9, and no promotion score.
if [ $HAVE_FFS = 1 ]; then
	faultfs_ctl a "fail eio below $size" && pass "alpha's data area fails writes (EIO)" ||
		fail "faultfs ctl"
	check_fails "a write to /dev/blkrep/r0 fails" dd if=/dev/zero of=/dev/blkrep/r0 bs=64k count=1 \
		seek=10 oflag=direct conv=fsync status=none
	check_eq "alpha's status has a disk error" "$(field "$A" "'yes' if d['disk_error'] else 'no'")" yes
	check_exit "monitor: primary with a failed disk: 9" 9 $SRA monitor
	grep -q 'ocf-exit-reason:primary with a failed disk: .*[a-z]' "$T/last.err" &&
		pass "... saying so: $(grep -m1 ocf-exit-reason "$T/last.err")" || fail "no reason: $(cat "$T/last.err")"
	check_eq "score: a failed disk: deleted" "$(last_score)" "--promotion -D"
	faultfs_ctl a heal && pass "heal alpha's disk" || fail "faultfs heal"
	check "blkrep resync (copies the range back, clears the error)" $A resync
	check_eq "the disk error is gone" "$(wait_field "$A" "d['disk_error']" "" 15)" ""
	check_exit "monitor: primary again: 8" 8 $SRA monitor
fi

check_exit "demote: 0" 0 $SRA demote
[ ! -e /dev/blkrep/r0 ] && [ ! -L /dev/blkrep/r0 ] && pass "demote removed /dev/blkrep/r0" ||
	fail "demote left /dev/blkrep/r0 -> $(readlink /dev/blkrep/r0)"
check_eq "demote detached the device" "$(field "$A" "d['device']")" None
check_eq "alpha is secondary" "$(field "$A" "d['role']")" secondary
check_exit "monitor: secondary: 0" 0 $SRA monitor
check_exit "demote again: 0" 0 $SRA demote

# A daemon that comes back primary (down --keep-role, as after a crash):
# start leaves it secondary, as Pacemaker expects of a start.
check "alpha primary (by hand), then down --keep-role" sh -c "$A primary && $A down --keep-role"
check_exit "start: 0" 0 $SRA start
grep -q 'came up as primary: stepping back to secondary' "$T/last.err" &&
	pass "alpha came back primary, and start stepped it back" || fail "start: $(cat "$T/last.err")"
check_eq "start left alpha secondary" "$(field "$A" "d['role']")" secondary
check_exit "monitor: 0" 0 $SRA monitor
check_eq "alpha reconnects to beta: disk uptodate" "$(wait_field "$A" "d['disk']" uptodate 15)" uptodate

# A promotion blkrep refuses: an error with blkrep's reason, never --force.
check "beta primary" $Bn primary
t0=$SECONDS
check_exit "promote while beta is primary: 1 (blkrep refuses, after retrying)" 1 $SRA promote
check_eq "... it retried for about 15 s (the peer may be lost unnoticed yet)" \
	"$([ $((SECONDS - t0)) -ge 14 ] && [ $((SECONDS - t0)) -le 25 ] && echo yes)" yes
grep -q 'ocf-exit-reason:promote failed: .*primary' "$T/last.err" &&
	pass "the exit reason is blkrep's: $(grep -m1 ocf-exit-reason "$T/last.err")" ||
	fail "no exit reason naming blkrep's refusal: $(cat "$T/last.err")"
check_eq "alpha stays secondary" "$(field "$A" "d['role']")" secondary
[ ! -e /dev/blkrep/r0 ] && pass "nothing linked" || fail "/dev/blkrep/r0 exists after a refused promotion"
check "beta secondary" $Bn secondary

# The score tiers without beta: up to date alone, then consistent alone.
check "beta down" $Bn down
check_eq "alpha sees beta gone" "$(wait_field "$A" "d['peer']['connection']" connecting 10)" connecting
check_exit "monitor: beta down: 0" 0 $SRA monitor
check_eq "score: up to date, a peer not connected: the 2nd value" "$(last_score)" "--promotion -v 1000"
check_exit "stop: 0" 0 $SRA stop
check_eq "stop: the score is deleted" "$(last_score)" "--promotion -D"
check_exit "monitor after stop: 7" 7 $SRA monitor
check_exit "start with beta down: 0" 0 $SRA start
check_eq "alpha alone after a restart is consistent" "$(field "$A" "d['disk']")" consistent
check_exit "monitor: 0" 0 $SRA monitor
check_eq "score: consistent: the 1st value" "$(last_score)" "--promotion -v 5"
check_exit "promote on a consistent disk: 1 (blkrep refuses, no --force)" 1 $SRA promote
grep -q 'ocf-exit-reason:promote failed' "$T/last.err" &&
	pass "the exit reason: $(grep -m1 ocf-exit-reason "$T/last.err")" ||
	fail "no exit reason: $(cat "$T/last.err")"
check_eq "alpha stays secondary" "$(field "$A" "d['role']")" secondary
check "beta up again" $Bn up
# Both were down while the other may have written: neither is up to date
# now, so neither may be promoted (a human's primary --force decides).
check_eq "alpha, beta back: still consistent" "$(wait_field "$A" "d['peer']['connection']" connected 15) $(field "$A" "d['disk']")" "connected consistent"
check_exit "monitor: 0" 0 $SRA monitor
check_eq "score: consistent: the 1st value" "$(last_score)" "--promotion -v 5"

# Parameters that are wrong.
check_exit "validate-all: 0" 0 $RA validate-all
check_exit "validate-all: resource= not the config's: 6" 6 env RA_RESOURCE=r9 $RA validate-all
check_exit "monitor: resource= not the config's: 6" 6 env RA_RESOURCE=r9 $RA monitor
check_exit "validate-all: resource= the config's: 0" 0 env RA_RESOURCE=r0 $RA validate-all
check_exit "validate-all: a missing config: 2" 2 env RA_CONFIG=$T/none.conf $RA validate-all
check_exit "monitor: a missing config: 2" 2 env RA_CONFIG=$T/none.conf $RA monitor
check_exit "probe: a missing config: 7" 7 env RA_CONFIG=$T/none.conf RA_INTERVAL=0 $RA monitor
printf '[resource]\nname = r0\nbogus-key = 1\n' >"$T/bad.conf"
check_exit "validate-all: a config blkrep refuses: 6" 6 env RA_CONFIG=$T/bad.conf $RA validate-all
check_exit "validate-all: a missing binary: 5" 5 env RA_BINARY=$T/no-blkrep $RA validate-all
check_exit "probe: a missing binary: 7" 7 env RA_BINARY=$T/no-blkrep RA_INTERVAL=0 $RA monitor
check_exit "validate-all: attach=/dev/sda: 6" 6 env RA_ATTACH=/dev/sda $RA validate-all
check_exit "validate-all: adjust_promotion_score=\"5 x\": 6" 6 env OCF_RESKEY_adjust_promotion_score="5 x" $RA validate-all
check_exit "an unknown action: 3" 3 $RA migrate_to

check_exit "stop: 0" 0 $SRA stop
pid=$(alpha_pid)
[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null && pass "alpha's daemon is gone" || fail "alpha's daemon $pid still runs"
check_exit "stop again: 0" 0 $SRA stop
check_exit "monitor: 7" 7 $SRA monitor

# A witness (a third cluster node without data): the clone runs there too,
# without a promotion score, and a promotion is refused.
{
	printf '[resource]\nname = w0\nsecret-file = %s\n' "$T/secret"
	printf '[node alpha]\naddress = 127.0.0.1:%s\nbacking = %s\n' "$(free_port)" "$T/wa.img"
	printf '[node beta]\naddress = 127.0.0.1:%s\nbacking = %s\n' "$(free_port)" "$T/wb.img"
	printf '[node witness]\naddress = 127.0.0.1:%s\nwitness = yes\nstate-file = %s\n' \
		"$(free_port)" "$T/w.state"
} >"$T/w.conf"
WRA="env RA_CONFIG=$T/w.conf RA_NODE=witness RA_ATTACH=none $SRA"
check_exit "witness: monitor: 7" 7 $WRA monitor
check_exit "witness: start: 0" 0 $WRA start
check_exit "witness: monitor: 0" 0 $WRA monitor
check_eq "witness: no promotion score" "$(last_score)" "--promotion -D"
check_exit "witness: promote: 1 (blkrep refuses)" 1 $WRA promote
grep -q 'ocf-exit-reason:promote failed: .*witness' "$T/last.err" &&
	pass "... saying why: $(grep -m1 ocf-exit-reason "$T/last.err")" || fail "witness promote: $(cat "$T/last.err")"
check_exit "witness: stop: 0" 0 $WRA stop
check_exit "witness: monitor: 7" 7 $WRA monitor

# --- crm-fence-peer / crm-unfence-peer on a CIB file -------------------------------------
export CIB_file=$T/cib.xml
check "a CIB file" sh -c "cibadmin --empty >'$CIB_file'"
check "pcs -f: the clone blkrep-r0-clone" pcs -f "$CIB_file" resource create blkrep-r0 ocf:blkrep:blkrep \
	config="$T/r0.conf" resource=r0 attach=loop promotable notify=true
# stonith-enabled=false: a test without fencing devices (never in production).
check "stonith-enabled=false (test only)" crm_attribute -t crm_config -n stonith-enabled -v false
i=1
for n in alpha beta; do
	s=1000
	[ $n = alpha ] && s=10000
	check "node $n online, promotion score $s" cibadmin -C -o nodes -X "<node id=\"$i\" uname=\"$n\"/>"
	cibadmin -C -o status -X "<node_state id=\"$i\" uname=\"$n\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"><transient_attributes id=\"$i\"><instance_attributes id=\"status-$i\"><nvpair id=\"status-$i-master-blkrep-r0\" name=\"master-blkrep-r0\" value=\"$s\"/></instance_attributes></transient_attributes></node_state>" ||
		fail "node_state $n"
	i=$((i + 1))
done
promoted() { # the node crm_simulate would promote r0 on (on a copy: -S writes to CIB_file)
	cp "$CIB_file" "$T/sim.xml"
	env -u CIB_file crm_simulate -x "$T/sim.xml" -S 2>/dev/null |
		sed -n 's/^ *\* Promote *blkrep-r0:[0-9]* *( *Stopped -> Promoted \([^ ]*\) *)$/\1/p'
}
check "the partition has quorum (have-quorum=1)" cibadmin --modify -X '<cib have-quorum="1"/>'
check_eq "crm_simulate without a constraint promotes alpha (the higher score)" "$(promoted)" alpha
cons() { # the fence constraints, one line each
	cibadmin -Q -o constraints | grep -c 'rsc_location id="blkrep-fence-r0"'
}
fence="env BLKREP_RESOURCE=r0 BLKREP_CONFIG=$T/r0.conf"

cibadmin --modify -X '<cib have-quorum="0"/>'
check_exit "fence without quorum: 1" 1 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
grep -q 'no quorum' "$T/last.err" && pass "... saying so: $(cat "$T/last.err")" || fail "no reason: $(cat "$T/last.err")"
check_eq "... and places nothing" "$(cons)" 0
cibadmin --modify -X '<cib have-quorum="1"/>'

check_exit "fence on beta, alpha online: 4 (peer outdated)" 4 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_eq "one constraint" "$(cons)" 1
$PY - <<'EOF' >"$T/c.out" 2>&1 && pass "the constraint: $(cat "$T/c.out")" || fail "the constraint: $(cat "$T/c.out")"
import subprocess, xml.etree.ElementTree as ET
c = ET.fromstring(subprocess.check_output(["cibadmin", "-Q", "-o", "constraints"]))
locs = [l for l in c.findall("rsc_location") if l.get("id") == "blkrep-fence-r0"]
assert len(locs) == 1 and len(c) == 1, ET.tostring(c)
l = locs[0]
assert l.get("rsc") == "blkrep-r0-clone", l.attrib
rules = l.findall("rule")
assert len(rules) == 1 and rules[0].get("role") == "Promoted" and rules[0].get("score") == "-INFINITY", ET.tostring(l)
ex = rules[0].findall("expression")
assert len(ex) == 1 and (ex[0].get("attribute"), ex[0].get("operation"), ex[0].get("value")) == ("#uname", "ne", "beta"), ET.tostring(l)
print("rsc_location on blkrep-r0-clone, role Promoted, -INFINITY where #uname ne beta")
EOF
check_eq "crm_simulate now promotes beta" "$(promoted)" beta
check "crm_resource --constraints" crm_resource --constraints -r blkrep-r0-clone
grep -q 'Node alpha (score=-INFINITY, id=blkrep-fence-r0-rule, rsc=blkrep-r0-clone)' "$T/last.out" &&
	pass "crm_resource sees alpha banned from the clone's Promoted role" || fail "crm_resource: $(cat "$T/last.out")"
check_exit "fence again: 4" 4 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_eq "still one constraint" "$(cons)" 1

cibadmin --modify -X '<node_state id="1" uname="alpha" crmd="offline" in_ccm="false"/>' -o status ||
	fail "alpha offline"
check_exit "fence with alpha offline: 5 (peer down)" 5 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_eq "one constraint" "$(cons)" 1
# Another node's constraint is not replaced: beta fenced alpha, so alpha's
# fence-peer (for beta) is refused and changes nothing.
cp "$CIB_file" "$T/cib.before"
check_exit "fence from alpha while beta's constraint is there: 1" 1 \
	$fence BLKREP_NODE=alpha BLKREP_PEERS=beta "$FENCE"
grep -q "beta fenced this resource's peers: not replacing its constraint" "$T/last.err" &&
	[ "$(wc -l <"$T/last.err")" = 1 ] && pass "... in one line: $(cat "$T/last.err")" ||
	fail "the refusal: $(cat "$T/last.err")"
check_eq "... beta's constraint unchanged" \
	"$(cibadmin -Q -o constraints | grep -c 'operation="ne" value="beta"') $(cons)" "1 1"
check_eq "... the CIB not written (epoch)" "$(grep -o ' epoch="[0-9]*"' "$CIB_file")" \
	"$(grep -o ' epoch="[0-9]*"' "$T/cib.before")"

check_exit "unfence: 0" 0 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$UNFENCE"
check_eq "the constraint is gone" "$(cons)" 0
check_exit "unfence with none there: 0" 0 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$UNFENCE"
check_exit "fence from alpha now (beta online): 4" 4 $fence BLKREP_NODE=alpha BLKREP_PEERS=beta "$FENCE"
check_exit "fence from alpha again: 4" 4 $fence BLKREP_NODE=alpha BLKREP_PEERS=beta "$FENCE"
check_eq "one constraint, alpha's" "$(cibadmin -Q -o constraints | grep -c 'operation="ne" value="alpha"') $(cons)" "1 1"
check_exit "unfence: 0" 0 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$UNFENCE"
check_eq "the constraint is gone" "$(cons)" 0

# Which clone: resource= picks one of two blkrep clones.
check "a second blkrep clone (resource r1)" pcs -f "$CIB_file" resource create blkrep-r1 ocf:blkrep:blkrep \
	config="$T/r1.conf" resource=r1 promotable notify=true
check_exit "fence r0 with two clones (alpha offline): 5" 5 $fence BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_eq "on blkrep-r0-clone" "$(cibadmin -Q -o constraints | grep -c 'id="blkrep-fence-r0" rsc="blkrep-r0-clone"')" 1
check_exit "fence for a resource no clone runs: 1" 1 env BLKREP_RESOURCE=r7 BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_exit "fence without its environment: 1" 1 env -u BLKREP_RESOURCE "$FENCE"

# Unreachable CIB: exit 1 for both.
check_exit "fence, CIB unreachable: 1" 1 $fence CIB_file=$T/no-cib.xml BLKREP_NODE=beta BLKREP_PEERS=alpha "$FENCE"
check_exit "unfence, CIB unreachable: 1" 1 $fence CIB_file=$T/no-cib.xml BLKREP_NODE=beta "$UNFENCE"
unset CIB_file

# --- the handlers run by the daemon (fence-peer, unfence-peer keys) ---------------------
# The cluster is a CIB file that the daemons' environment names (CIB_file):
# alpha, the primary, is killed; `primary` on beta runs crm-fence-peer,
# which bans alpha from the Promoted role (exit 5: the CIB says alpha is
# offline); alpha comes back, resyncs from beta and its crm-unfence-peer
# removes the ban.
check "beta down" $Bn down
pair_conf_extra "on-peer-loss = freeze" "fence-peer = $FENCE" "unfence-peer = $UNFENCE"
if ! $A check-config >"$T/cc.out" 2>&1; then
	msg "this blkrep has no fence-peer key yet ($(head -n1 "$T/cc.out")): the handlers under the daemon are not checked"
else
	export BLKREP_SAVE_DIR=$T/saved # a killed primary that comes back saves its own writes
	E2E=$T/e2e.xml
	check "a CIB file: the clone, alpha and beta online, quorum" sh -c "
		cibadmin --empty >'$E2E' && export CIB_file='$E2E' &&
		pcs -f '$E2E' resource create blkrep-r0 ocf:blkrep:blkrep config='$T/r0.conf' promotable notify=true &&
		cibadmin --modify -X '<cib have-quorum=\"1\"/>' &&
		for i in 1 2; do n=alpha; [ \$i = 2 ] && n=beta
			cibadmin -C -o nodes -X \"<node id='\$i' uname='\$n'/>\" &&
			cibadmin -C -o status -X \"<node_state id='\$i' uname='\$n' in_ccm='true' crmd='online' join='member' expected='member'/>\" || exit 1
		done"
	e2e_cons() { CIB_file=$E2E cibadmin -Q -o constraints | grep -c 'rsc_location id="blkrep-fence-r0"'; }
	check "up alpha and beta (CIB_file in their environment)" sh -c "CIB_file='$E2E' $A up && CIB_file='$E2E' $Bn up"
	check_eq "connected" "$(wait_field "$A" "d['peer']['connection']" connected 15)" connected
	# Both are consistent since the restarts above: a human's choice, once.
	check "alpha primary --force" $A primary --force
	check_eq "beta up to date" "$(wait_field "$Bn" "d['disk']" uptodate 15)" uptodate
	check_eq "no constraint while connected" "$(e2e_cons)" 0
	# The cluster sees alpha go, and alpha's daemon dies.
	CIB_file=$E2E cibadmin --modify -o status -X '<node_state id="1" uname="alpha" crmd="offline" in_ccm="false"/>' ||
		fail "alpha offline in the CIB"
	check "kill -9 alpha" kill -KILL "$(daemon_pid alpha)"
	v=$(wait_field "$Bn" "'gone' if d['peer']['connection'] != 'connected' else 'connected'" gone 10)
	check_eq "beta sees alpha gone" "$v" gone
	check "beta primary (freeze: it missed nothing)" $Bn primary
	check_eq "beta's fence-peer (crm-fence-peer) answered 5: alpha is offline" \
		"$(wait_field "$Bn" "d.get('fence_peer')" "exit 5" 20)" "exit 5"
	check_eq "the CIB bans every node but beta from Promoted" \
		"$(CIB_file=$E2E cibadmin -Q -o constraints | grep -c 'operation="ne" value="beta"')" 1
	CIB_file=$E2E cibadmin --modify -o status -X '<node_state id="1" uname="alpha" crmd="online" in_ccm="true"/>' ||
		fail "alpha online in the CIB"
	check "alpha up again (it steps back: beta is primary)" env CIB_file="$E2E" $A up
	end=$((SECONDS + 30))
	while [ "$(e2e_cons)" != 0 ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
	check_eq "alpha resynced from beta, and its unfence-peer (crm-unfence-peer) removed the ban" \
		"$(e2e_cons)" 0
	check_eq "alpha is an up-to-date secondary" "$(field "$A" "d['role'] + ' ' + d['disk']")" "secondary uptodate"

	# Pacemaker promotes alpha when it learns beta is gone, before blkrep
	# does: promote retries while blkrep still sees beta primary.
	RA_ATTACH=none $SRA promote >"$T/retry.out" 2>&1 &
	rpid=$!
	BG_PIDS+=("$rpid")
	sleep 2
	check "kill -9 beta (primary) while alpha's promote retries" kill -KILL "$(daemon_pid beta)"
	wait "$rpid"
	rc=$?
	check_eq "promote succeeds once blkrep sees beta gone" "$rc" 0
	grep -q 'the peer is primary.*retrying for up to 15 s' "$T/retry.out" &&
		pass "it logged the retry once ($(grep -c 'retrying' "$T/retry.out"))" ||
		fail "promote's log: $(cat "$T/retry.out")"
	check_eq "alpha is primary" "$(field "$A" "d['role']")" primary
	check_eq "alpha's crm-fence-peer answered 4 (beta is online in the CIB)" \
		"$(wait_field "$A" "d.get('fence_peer')" "exit 4" 20)" "exit 4"
	check "beta up again (steps back: alpha is primary)" env CIB_file="$E2E" $Bn up
	end=$((SECONDS + 30))
	while [ "$(e2e_cons)" != 0 ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
	check_eq "beta resynced, and its crm-unfence-peer removed the ban" "$(e2e_cons)" 0
	check_eq "beta is an up-to-date secondary" "$(field "$Bn" "d['role'] + ' ' + d['disk']")" "secondary uptodate"
	check_exit "demote alpha: 0" 0 env RA_ATTACH=none $SRA demote
fi

finish
