# A three-node Pacemaker 2.1 / corosync 3 cluster on this machine, no
# guests, for blkrep's Pacemaker test (issue 18).  Source it after
# tests/integration/lib.sh and trio.sh:
#
#   . "$TESTS_DIR/trio.sh"; . "$PCM_DIR/cluster.sh"
#   pcm_init                   # namespaces, links, per-node dirs, corosync.conf
#   pcm_boot alpha; ...        # a node: holder, corosync -f, pacemakerd
#   pcm_wait_online 60 alpha beta gamma
#
# How the Pacemaker test works
# ----------------------------
# The nodes are alpha and beta (blkrep's data nodes) and gamma (the host of
# blkrep's witness, so that the cluster and blkrep both have a third vote).
#
# Network: trio.sh's: node i has the address 10.99.0.i on the loopback of
# its own network namespace (blkrep-tPID-NODE), every two nodes are joined
# by their own veth pair, so cutting a node's links (trio_cut_off) is a real
# partition for corosync and blkrep alike.  Corosync 3 runs knet over udp on
# those addresses with a 1000 ms token, so a lost node is noticed in about
# 2-3 s.
#
# A node is one long-lived "holder" process: `nsenter --net=NETNS unshare
# --mount --uts --propagation private --fork`, which sets the hostname to the
# node's name (Pacemaker's node name and blkrep's default --node), mounts
# the node's private state, writes its pid and sleeps.  Every command of the
# node runs in the holder's namespaces: `nsenter -t HOLDER -m -u -n` (pcm_x).
# The private state, so nothing on the host changes:
#   tmpfs on /run (corosync's pid file, libqb, /run/blkrep: the daemon's
#     control socket and its FUSE volume for attach=loop), /dev/shm (libqb's
#     ring buffers), /var/lib/corosync, /var/log/cluster when it exists,
#     /dev/blkrep (the agent's link /dev/blkrep/r0) and /usr/lib/ocf/resource.d
#     (links to the host's heartbeat and pacemaker providers plus a `blkrep`
#     provider holding only a link to the repo's contrib/ocf/blkrep);
#   binds of $T/NODE/etc-corosync on /etc/corosync (corosync.conf, authkey),
#     $T/NODE/pacemaker on /var/lib/pacemaker (cib, pengine, blackbox, cores
#     owned hacluster:haclient as the package makes them), $T/NODE/log on
#     /var/log/pacemaker and $T/NODE/varlib-blkrep on /var/lib/blkrep (where a
#     primary that comes back saves its own writes): these survive the node's
#     death, as a disk would; $T/NODE/blkrep-run.BOOT on /run/blkrep (a new one
#     per boot, kept for the logs).
# /dev/blkrep and /var/lib/blkrep must exist on the host to be mount points:
# if one does not, pcm_init creates the empty directory and the cleanup
# removes it (the only trace on the host, and only while the test runs).
# Two runs at once (or with tests/integration/t_ocf_agent.sh, which does the
# same with /dev/blkrep) can race on that: the suites run one after another.
#
# Daemons: `corosync -f` and `pacemakerd` (always in the foreground in 2.1),
# both started in the node's namespaces with their output in $T/NODE/*.log;
# Pacemaker logs to /var/log/pacemaker/pacemaker.log ($T/NODE/log).  The
# cluster options are set at once when the cluster is up (pcm_props):
# stonith-enabled=false (TESTS ONLY: nothing here can fence a node, and a
# real cluster must have fencing), no-quorum-policy=stop, dc-deadtime=5s,
# cluster-recheck-interval=30s.
#
# The test (t_failover.sh) makes its resources with `pcs -f` on a CIB file
# taken with `cibadmin -Q` (pcs needs no pcsd for that), run in alpha's
# namespaces so that pcs finds ocf:blkrep:blkrep's meta-data, and pushes it
# with `cibadmin --replace`.  The agent and the handlers are the repo's
# contrib/ocf (PCM_OCF_DIR overrides it, e.g. to try another checkout's).
#
# A node's death (pcm_kill9 NODE): kill -9 of every process whose mount
# namespace is the holder's (corosync, the Pacemaker daemons, blkrep's
# daemon, the holder itself), so its mounts (the ext4 on the device, the
# FUSE volume) go with the namespace.  pcm_boot NODE again makes a new
# holder (new mount and UTS namespaces, the same network namespace) and
# starts corosync and Pacemaker there: the node rejoins.
#
# Cleanup (pcm_cleanup, in the EXIT trap, also on failure): every process
# of every node killed (-9), loop devices over a blkrep FUSE volume that
# appeared during the test detached, the namespaces deleted, /dev/blkrep
# removed if the test made it.

# Where the agent and the handlers come from (the repo's, unless told).
PCM_OCF_DIR=${PCM_OCF_DIR:-$REPO/contrib/ocf}
PCM_NODES="alpha beta gamma"
PCM_LOOPS_BEFORE=
PCM_MADE_DEVDIR=0
PCM_MADE_LIBDIR=0

# pcm_holder NODE: the pid of NODE's holder (empty if it is not running).
pcm_holder() {
	local p
	p=$(cat "$T/$1/holder.pid" 2>/dev/null) || return 0
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
	return 0
}

# pcm_x NODE CMD...: CMD in NODE's namespaces (network, mount, UTS).
pcm_x() {
	local h
	h=$(pcm_holder "$1")
	[ -n "$h" ] || { echo "pcm: node $1 has no holder" >&2; return 125; }
	shift
	nsenter -t "$h" -m -u -n -- "$@"
}

# pcm_corosync_conf FILE: corosync.conf for $PCM_NODES.
pcm_corosync_conf() {
	local n
	{
		cat <<EOF
totem {
	version: 2
	cluster_name: blkrep-pcm
	transport: knet
	token: 1000
	token_coefficient: 0
	crypto_cipher: aes256
	crypto_hash: sha256
	interface {
		linknumber: 0
		knet_transport: udp
	}
}
logging {
	to_stderr: yes
	to_logfile: no
	to_syslog: no
	timestamp: on
}
quorum {
	provider: corosync_votequorum
}
nodelist {
EOF
		for n in $PCM_NODES; do
			printf '\tnode {\n\t\tname: %s\n\t\tnodeid: %s\n\t\tring0_addr: %s\n\t}\n' \
				"$n" "$(trio_index "$n")" "$(trio_ip "$n")"
		done
		echo "}"
	} >"$1"
}

# pcm_init: skip unless the tools are there; the namespaces and links
# (trio_net), each node's directories under $T/NODE, corosync.conf and one
# authkey for all, and the EXIT trap.
pcm_init() {
	local n d
	require_cmd corosync pacemakerd cibadmin crm_mon crm_attribute crm_resource pcs nsenter unshare ip losetup
	[ "$(id -u)" = 0 ] || skip "needs root (namespaces, mounts)"
	id hacluster >/dev/null 2>&1 || skip "no hacluster user (pacemaker is not installed as a package)"
	[ -d /usr/lib/ocf/resource.d/heartbeat ] || skip "resource-agents is not installed"
	TRIO_ALL=$PCM_NODES
	TRIO_NET=$PCM_NODES
	TRIO_NETNS=
	PCM_LOOPS_BEFORE=$(timeout -k 1 10 losetup -n -O NAME 2>/dev/null | tr '\n' ' ')
	trap '[ $FAILS -gt 0 ] && pcm_show_logs; pcm_cleanup; _cleanup' EXIT
	chmod 711 "$T"
	trio_net
	head -c 256 /dev/urandom >"$T/authkey"
	chmod 400 "$T/authkey"
	pcm_corosync_conf "$T/corosync.conf"
	pcm_seed_cib "$T/seed-cib.xml" || skip "cannot make a CIB file (cibadmin --empty, crm_attribute on it)"
	if [ ! -e /dev/blkrep ]; then
		mkdir /dev/blkrep && PCM_MADE_DEVDIR=1
	fi
	if [ ! -e /var/lib/blkrep ]; then
		mkdir -m 700 /var/lib/blkrep && PCM_MADE_LIBDIR=1
	fi
	for n in $PCM_NODES; do
		d=$T/$n
		mkdir -p "$d/etc-corosync" "$d/log" "$d/mnt" "$d/host-ocf" "$d/varlib-blkrep" \
			"$d/pacemaker/cib" "$d/pacemaker/pengine" "$d/pacemaker/blackbox" "$d/pacemaker/cores"
		chmod 711 "$d"
		cp "$T/corosync.conf" "$T/authkey" "$d/etc-corosync/"
		cp "$T/seed-cib.xml" "$d/pacemaker/cib/cib.xml"
		chmod 600 "$d/pacemaker/cib/cib.xml"
		chown -R hacluster:haclient "$d/pacemaker" "$d/log"
		chmod 750 "$d/pacemaker"/*
		chmod 770 "$d/log"
	done
}

# pcm_holder_start NODE: a new holder for NODE (new mount and UTS
# namespaces in NODE's network namespace) with its private mounts; waits
# (10 s) until it is ready.
pcm_holder_start() {
	local n=$1 d=$T/$1 i boot
	rm -f "$d/holder.pid"
	boot=$(($(cat "$d/boots" 2>/dev/null || echo 0) + 1))
	echo $boot >"$d/boots"
	mkdir -m 700 "$d/blkrep-run.$boot"
	(nsenter --net="/run/netns/$(trio_ns "$n")" \
		unshare --mount --uts --propagation private --fork \
		/bin/bash -c '
set -e
n=$1 d=$2 ocf=$3 brun=$4
hostname "$n"
mount -t tmpfs -o mode=755 pcm-run /run
mkdir -m 1777 /run/lock
mount -t tmpfs -o mode=1777 pcm-shm /dev/shm
mount -t tmpfs -o mode=755 pcm-corosync /var/lib/corosync
[ -d /var/log/cluster ] && mount -t tmpfs -o mode=755 pcm-log /var/log/cluster
mount --bind "$d/etc-corosync" /etc/corosync
mount --bind "$d/pacemaker" /var/lib/pacemaker
mount --bind "$d/log" /var/log/pacemaker
mkdir -p /dev/blkrep /var/lib/blkrep
mount -t tmpfs -o mode=755 pcm-dev /dev/blkrep
mount --bind "$d/varlib-blkrep" /var/lib/blkrep
mount --bind /usr/lib/ocf/resource.d "$d/host-ocf"
mount -t tmpfs -o mode=755 pcm-ocf /usr/lib/ocf/resource.d
for p in heartbeat pacemaker; do ln -s "$d/host-ocf/$p" "/usr/lib/ocf/resource.d/$p"; done
mkdir /usr/lib/ocf/resource.d/blkrep
ln -s "$ocf/blkrep" /usr/lib/ocf/resource.d/blkrep/blkrep
mkdir -m 700 /run/blkrep
mount --bind "$brun" /run/blkrep
echo $$ >"$d/holder.pid.new"
mv "$d/holder.pid.new" "$d/holder.pid"
exec sleep infinity
' pcm-holder "$n" "$d" "$PCM_OCF_DIR" "$d/blkrep-run.$boot" </dev/null >>"$d/holder.log" 2>&1 &)
	for i in $(seq 1 100); do
		[ -s "$d/holder.pid" ] && return 0
		sleep 0.1
	done
	echo "pcm: holder of $n did not start:" >&2
	cat "$d/holder.log" >&2
	return 1
}

# pcm_boot NODE: a new holder, then corosync -f and pacemakerd in it.
pcm_boot() {
	local n=$1 d=$T/$1 i
	pcm_holder_start "$n" || return 1
	pcm_note_ns "$n"
	(pcm_x "$n" setsid corosync -f </dev/null >>"$d/corosync.log" 2>&1 &)
	for i in $(seq 1 100); do
		pcm_x "$n" corosync-cfgtool -s >/dev/null 2>&1 && break
		sleep 0.1
	done
	pcm_x "$n" corosync-cfgtool -s >/dev/null 2>&1 || {
		echo "pcm: corosync on $n did not start" >&2
		tail -n 20 "$d/corosync.log" >&2
		return 1
	}
	(pcm_x "$n" env PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
		PCMK_stderr=no setsid pacemakerd </dev/null >>"$d/pacemakerd.log" 2>&1 &)
	return 0
}

# pcm_pids NODE: every process in NODE's mount namespace (the holder's, or
# the last one's if the holder is gone).
pcm_pids() {
	local ns p
	ns=$(cat "$T/$1/mntns" 2>/dev/null) || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
	done
	return 0
}

# pcm_note_ns NODE: remember the holder's mount namespace (for pcm_pids).
pcm_note_ns() {
	local h
	h=$(pcm_holder "$1")
	[ -n "$h" ] && readlink "/proc/$h/ns/mnt" >"$T/$1/mntns"
}

# pcm_kill9 NODE: kill -9 every process of NODE (its mount namespace),
# until none is left (10 s at most each step).  Returns 1 if some survive.
# Two steps: every process but the holder (corosync, Pacemaker, blkrep's
# daemon, the agents: all at once), then, once they are gone, the holder.
# Why: the last process of a mount namespace unmounts its filesystems as it
# exits; if that is blkrep's daemon with attach=loop, the ext4 on the loop
# device flushes to the daemon's own FUSE file while the daemon's /dev/fuse
# is not closed yet (both are deferred work of its exit), and the exit hangs
# in D state for good (seen on 6.18: cleanup_mnt -> ext4_sync_fs ->
# blkdev_issue_flush; only an abort in /sys/fs/fuse/connections ended it).
# The holder stands for the node's kernel: it goes last, as a machine's
# mounts go with it.
pcm_kill9() {
	local i p h
	pcm_note_ns "$1"
	h=$(cat "$T/$1/holder.pid" 2>/dev/null)
	for i in $(seq 1 50); do
		p=$(pcm_pids "$1" | grep -vx "${h:-none}")
		[ -z "$p" ] && break
		kill -KILL $p 2>/dev/null
		sleep 0.1
	done
	[ -z "$p" ] || return 1
	for i in $(seq 1 50); do
		p=$(pcm_pids "$1")
		[ -z "$p" ] && return 0
		kill -KILL $p 2>/dev/null
		sleep 0.1
	done
	[ -z "$(pcm_pids "$1")" ]
}

# pcm_crm NODE: crm_mon's XML as seen from NODE (bounded).
pcm_crm() { pcm_x "$1" timeout -k 1 5 crm_mon -1 --output-as=xml 2>/dev/null; }

# pcm_online NODE: the nodes NODE's Pacemaker sees online, space separated
# (empty if it does not answer), then " quorum" if its partition has quorum.
pcm_online() {
	pcm_crm "$1" | $PY -c '
import sys, xml.etree.ElementTree as E
try:
    r = E.fromstring(sys.stdin.read())
except Exception:
    sys.exit(0)
on = sorted(n.get("name") for n in r.iter("node") if n.get("online") == "true" and n.get("name"))
dc = r.find("summary/current_dc")
q = dc is not None and dc.get("with_quorum") == "true"
print(" ".join(on) + (" quorum" if q else ""))'
}

# pcm_wait_online SECS NODE...: until the first node sees exactly the nodes
# named online, with quorum (prints the last view).
pcm_wait_online() {
	local end=$((SECONDS + $1)) want s
	shift
	want="$(printf '%s\n' "$@" | sort | tr '\n' ' ')quorum"
	while :; do
		s=$(pcm_online "$1")
		[ "$s" = "$want" ] && break
		[ $SECONDS -ge "$end" ] && break
		sleep 0.5
	done
	echo "${s:-no answer}"
	[ "$s" = "$want" ]
}

# The cluster options (see the top).
PCM_PROPS="stonith-enabled=false no-quorum-policy=stop dc-deadtime=5s cluster-recheck-interval=30s"

# pcm_seed_cib FILE: an empty CIB with the cluster options, every node's
# first cib.xml (no .sig: Pacemaker takes it as it is), so that the first
# election already waits dc-deadtime=5s, not 20 s.
pcm_seed_cib() {
	local kv
	cibadmin --empty >"$1" || return 1
	for kv in $PCM_PROPS; do
		CIB_file=$1 crm_attribute -t crm_config -n "${kv%%=*}" -v "${kv#*=}" || return 1
	done
}

# pcm_props_ok NODE: the live cluster has every option of $PCM_PROPS
# (queried from NODE); prints the ones that differ.
pcm_props_ok() {
	local kv v bad=
	for kv in $PCM_PROPS; do
		v=$(pcm_x "$1" timeout -k 1 10 crm_attribute -t crm_config -n "${kv%%=*}" -G -q 2>/dev/null)
		[ "$v" = "${kv#*=}" ] || bad="$bad ${kv%%=*}=$v"
	done
	[ -z "$bad" ] || { echo "differ:$bad"; return 1; }
}

# pcm_show_logs: the tail of every node's logs (after a failure).
pcm_show_logs() {
	local n f
	for n in $PCM_NODES; do
		for f in "$T/$n/corosync.log" "$T/$n/pacemakerd.log" "$T/$n/log/pacemaker.log" "$T/$n"/blkrep-run.*/*.log; do
			[ -s "$f" ] || continue
			echo "=== $f (last 30 lines)"
			tail -n 30 "$f" | sed 's/^/    /'
		done
	done
}

# pcm_cleanup: every process of every node killed, new loop devices over a
# blkrep FUSE volume detached, the namespaces deleted, the daemons' logs
# checked for sanitizer reports, /dev/blkrep and /var/lib/blkrep removed if
# pcm_init made them.  For the EXIT trap.
pcm_cleanup() {
	local n l f
	for n in $PCM_NODES; do
		[ -d "$T/$n" ] || continue
		pcm_kill9 "$n" || echo "pcm: processes of $n survive kill -9: $(pcm_pids "$n")" >&2
	done
	for l in $(timeout -k 1 10 losetup -n -O NAME 2>/dev/null); do
		case " $PCM_LOOPS_BEFORE " in *" $l "*) continue ;; esac
		f=$(timeout -k 1 5 losetup -n -O BACK-FILE "$l" 2>/dev/null)
		# Seen from the host, a volume in a node's mount namespace that is
		# gone shows as "/volume".
		case $f in *.fuse/volume* | /volume) timeout -k 1 5 losetup -d "$l" 2>/dev/null ;; esac
	done
	trio_net_del
	# The daemons' logs (lib.sh's cleanup looks under $T/run and $T/*/run only).
	for f in "$T"/*/blkrep-run.*/*.log; do
		[ -f "$f" ] && check_sanitizer "$f"
	done
	[ "$PCM_MADE_DEVDIR" = 1 ] && rmdir /dev/blkrep 2>/dev/null
	[ "$PCM_MADE_LIBDIR" = 1 ] && rmdir /var/lib/blkrep 2>/dev/null
	PCM_MADE_DEVDIR=0 PCM_MADE_LIBDIR=0
	return 0
}

# --- blkrep in the cluster ---------------------------------------------------

# pcm_blk NODE ARGS...: blkrep (bounded, 20 s) in NODE's namespaces, with
# the test's config; its default run directory there is the node's own.
pcm_blk() {
	local n=$1
	shift
	pcm_x "$n" timeout -k 2 20 "$BLKREP" -c "$T/r0.conf" --node "$n" "$@"
}

# pcm_json NODE EXPR: EXPR (python, d = NODE's status --json, peer(NAME) its
# entry for that peer) printed; "unavailable" if the status fails.
pcm_json() {
	local j
	j=$(pcm_blk "$1" status --json 2>/dev/null | tr -d '\n')
	[ -n "$j" ] || { echo unavailable; return 0; }
	printf '%s' "$j" | $PY -c "$TRIO_PEER_PY"'
import json, sys
d = json.load(sys.stdin)
peer = lambda n: peer_of(d, n)
print(eval(sys.argv[1]))' "$2" 2>/dev/null || echo unavailable
}

# pcm_rsc NODE: the resources as NODE's Pacemaker sees them, one line:
# "promoted=N1 unpromoted=N2,N3 mounted=N4" (names empty when none),
# "no answer" when crm_mon fails.
pcm_rsc() {
	local x
	x=$(pcm_crm "$1") || { echo "no answer"; return 0; }
	printf '%s' "$x" | $PY -c '
import sys, xml.etree.ElementTree as E
try:
    r = E.fromstring(sys.stdin.read())
except Exception:
    print("no answer"); sys.exit(0)
pro, unp, mnt = [], [], []
for res in r.iter("resource"):
    nodes = [n.get("name") for n in res.findall("node")]
    if res.get("active") != "true" or res.get("failed") == "true":
        continue
    if res.get("id") == "blkrep-r0":
        (pro if res.get("role") == "Promoted" else unp).extend(nodes)
    elif res.get("id") == "fs-r0" and res.get("role") == "Started":
        mnt.extend(nodes)
print("promoted=%s unpromoted=%s mounted=%s" % (",".join(sorted(pro)), ",".join(sorted(unp)), ",".join(sorted(mnt))))'
}

# pcm_wait_rsc SECS NODE PATTERN: until pcm_rsc NODE matches the shell
# PATTERN (prints the last state).
pcm_wait_rsc() {
	local end=$((SECONDS + $1)) s
	while :; do
		s=$(pcm_rsc "$2")
		# shellcheck disable=SC2254
		case $s in $3) echo "$s"; return 0 ;; esac
		[ $SECONDS -ge "$end" ] && break
		sleep 0.3
	done
	echo "$s"
	return 1
}

# pcm_fence_constraint NODE: blkrep-fence-r0 as NODE's CIB has it: "none",
# "only=X" when it is the contract's constraint (the clone, role Promoted,
# -INFINITY where #uname ne X), else "bad: XML", or "no answer".
pcm_fence_constraint() {
	local x
	x=$(pcm_x "$1" timeout -k 1 10 cibadmin -Q -o constraints 2>/dev/null) || { echo "no answer"; return 0; }
	printf '%s' "$x" | $PY -c '
import sys, xml.etree.ElementTree as E
r = E.fromstring(sys.stdin.read())
c = [l for l in r.iter("rsc_location") if l.get("id") == "blkrep-fence-r0"]
if not c:
    print("none"); sys.exit(0)
c = c[0]
rules = c.findall("rule")
ex = rules[0].findall("expression") if len(rules) == 1 else []
if (c.get("rsc") == "blkrep-r0-clone" and len(rules) == 1 and rules[0].get("role") in ("Promoted", "Master")
        and rules[0].get("score") == "-INFINITY" and len(ex) == 1 and ex[0].get("attribute") == "#uname"
        and ex[0].get("operation") == "ne"):
    print("only=%s" % ex[0].get("value"))
else:
    print("bad: " + E.tostring(c, encoding="unicode").replace("\n", " "))'
}
