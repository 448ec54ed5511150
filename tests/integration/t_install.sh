#!/usr/bin/env bash
# `make install PREFIX=/usr DESTDIR=D`: every file where it belongs, each
# systemd unit verified by systemd-analyze (with its ExecStart pointed into
# D), the man pages rendered without a warning and documenting every
# command and config key, the bash completion (when contrib/ has one)
# parsed and sourced, the OCF agent and the Pacemaker handlers executable
# where the contract puts them; then `make uninstall` leaves no file behind.
. "$(dirname "$0")/lib.sh"

require_cmd make scdoc groff systemd-analyze
D=$T/dest
mkdir -p "$D"
check "make install DESTDIR PREFIX=/usr" make -s -C "$REPO" install DESTDIR="$D" PREFIX=/usr
UNITDIR=$(pkg-config systemd --variable=systemdsystemunitdir 2>/dev/null || echo /usr/lib/systemd/system)
MAN=$D/usr/share/man
for f in usr/sbin/blkrep share/man/man8/blkrep.8 share/man/man5/blkrep.conf.5 \
	"$UNITDIR/blkrep@.service" "$UNITDIR/blkrep-serve@.service" \
	"$UNITDIR/blkrep-serve@.socket" etc/blkrep/blkrep.conf.example; do
	case $f in share/*) f=usr/$f ;; /*) f=${f#/} ;; esac
	[ -s "$D/$f" ] && pass "installed /$f" || fail "missing /$f"
done
[ -x "$D/usr/sbin/blkrep" ] && pass "the binary is executable" || fail "/usr/sbin/blkrep is not executable"

# systemd-analyze verify: a copy of each unit whose blkrep is the installed
# one (ExecStart must name an executable), its man pages found in D.
verify_unit() { # FILE INSTANCE: prints what systemd-analyze says, fails on anything
	local name out
	name=$(basename "$1")
	sed "s|/usr/sbin/blkrep|$D/usr/sbin/blkrep|g" "$1" >"$T/units/$name"
	out=$(cd "$T/units" && MANPATH=$MAN timeout 30 systemd-analyze verify \
		"$T/units/${name/@./@$2.}" 2>&1) && [ -z "$out" ] && return 0
	echo "$out"
	return 1
}
mkdir -p "$T/units"
cp "$D/${UNITDIR#/}"/blkrep-serve@.socket "$T/units/"
for u in "$D/${UNITDIR#/}"/*.service "$D/${UNITDIR#/}"/*.socket; do
	out=$(verify_unit "$u" r0) && pass "systemd-analyze verify $(basename "$u")" ||
		fail "systemd-analyze verify $(basename "$u"): $out"
done
# ... which would see a broken unit: it really verifies.
sed 's/^Type=notify/Type=notifyy/' "$D/${UNITDIR#/}/blkrep@.service" >"$T/broken@.service"
out=$(verify_unit "$T/broken@.service" r0) && fail "a broken unit passes verification" ||
	pass "a broken unit does not pass (${out%%$'\n'*})"
rm -f "$T/units/broken@.service"
grep -q "^ExecStart=/usr/sbin/blkrep -c /etc/blkrep/%i.conf up --foreground$" \
	"$D/${UNITDIR#/}/blkrep@.service" && pass "blkrep@.service runs /usr/sbin/blkrep up --foreground" ||
	fail "blkrep@.service: $(grep ExecStart "$D/${UNITDIR#/}/blkrep@.service")"

# The man pages: rendered with every warning on, and complete.
for m in "$MAN/man8/blkrep.8" "$MAN/man5/blkrep.conf.5"; do
	out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$m" 2>&1)
	[ -z "$out" ] && pass "groff -ww renders $(basename "$m") without a warning" ||
		fail "$(basename "$m"): $out"
	if command -v mandoc >/dev/null; then
		out=$(mandoc -Tlint -W warning "$m" 2>&1)
		[ -z "$out" ] && pass "mandoc -Tlint: $(basename "$m")" || fail "mandoc: $out"
	fi
done
page8=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$MAN/man8/blkrep.8" 2>/dev/null | col -b)
missing=
for c in $("$BLKREP" help --commands); do
	grep -qE "^ +$c( |$)" <<<"$page8" || missing="$missing $c"
done
check_eq "blkrep(8) describes every command of blkrep help" "${missing:-none}" none
missing=
for o in $(for c in $("$BLKREP" help --commands); do "$BLKREP" help --options "$c"; done |
	awk '{print $1}' | sort -u) --config --node; do
	grep -qe "$o" <<<"$page8" || missing="$missing $o"
done
check_eq "... and every option of every command (blkrep help --options)" "${missing:-none}" none
page5=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$MAN/man5/blkrep.conf.5" 2>/dev/null | col -b)
missing=
for k in $(sed -n 's/^\t\[[RN]K_[A-Z_]*\] = "\([a-z-]*\)",$/\1/p' "$REPO/daemon/config.c"); do
	grep -qE "^ +$k = " <<<"$page5" || missing="$missing $k"
done
check_eq "blkrep.conf(5) describes every key of daemon/config.c" "${missing:-none}" none

# The example config is the README's, and blkrep reads it.
BLKREP_RUN_DIR=$T/run tmo "$BLKREP" -c "$D/etc/blkrep/blkrep.conf.example" --node alpha \
	status >"$T/last.out" 2>&1
grep -q "no blkrep daemon is running" "$T/last.out" && pass "blkrep reads the example config" ||
	fail "the example config: $(cat "$T/last.out")"

# The bash completion, when another part of blkrep provides it.
comp=$D/usr/share/bash-completion/completions/blkrep
if [ -e "$REPO/contrib/bash-completion/blkrep" ]; then
	check "bash -n on the completion" bash -n "$comp"
	check "the completion sources" bash -c "set -e; . '$comp'; complete -p blkrep"
else
	msg "contrib/bash-completion/blkrep does not exist: none installed, none checked"
	[ ! -e "$comp" ] && pass "no completion installed" || fail "a completion appeared: $comp"
fi

# The Pacemaker parts: the OCF agent (ocf:blkrep:blkrep) and the handlers.
for f in usr/lib/ocf/resource.d/blkrep/blkrep usr/lib/blkrep/crm-fence-peer \
	usr/lib/blkrep/crm-unfence-peer; do
	if [ -x "$D/$f" ] && [ -s "$D/$f" ]; then
		pass "installed /$f (executable)"
		check "bash -n /$f" bash -n "$D/$f"
	else
		fail "missing or not executable: /$f"
	fi
done
if [ -r /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs ] && command -v xmllint >/dev/null; then
	check "the installed agent's meta-data is well-formed XML" sh -c \
		"OCF_ROOT=/usr/lib/ocf '$D/usr/lib/ocf/resource.d/blkrep/blkrep' meta-data | xmllint --noout -"
else
	msg "resource-agents or xmllint missing: the installed agent's meta-data not run"
fi

check "make uninstall DESTDIR PREFIX=/usr" make -s -C "$REPO" uninstall DESTDIR="$D" PREFIX=/usr
left=$(find "$D" ! -type d | sed "s|^$D||")
check_eq "uninstall leaves no file" "${left:-none}" none
finish
