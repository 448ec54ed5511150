#!/usr/bin/env bash
# The strict CLI: for every command, an unknown option and an extra
# argument are refused with exit 2 and one line, before any config is read
# (-c names a missing file here); `help CMD`, `CMD --help` and `CMD -h`
# print every option of the command without a config; and the messages
# that say what to do next (no daemon: run blkrep up, and its log; no
# metadata: run blkrep create).
. "$(dirname "$0")/lib.sh"

NOCONF="-c $T/missing.conf"

# one_line DESC WANT_RC PATTERN ARGS...: blkrep ARGS exits WANT_RC with
# exactly one stderr line matching PATTERN.
one_line() {
	local desc=$1 want=$2 pat=$3 rc
	shift 3
	tmo -t 30 "$BLKREP" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -eq "$want" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qE -e "$pat" "$T/err"; then
		pass "$desc"
	else
		fail "$desc (exit $rc, want $want; stderr: $(tr '\n' '|' <"$T/err"))"
	fi
}

cmds=$("$BLKREP" help --commands)
[ "$(echo "$cmds" | wc -l)" -ge 20 ] && pass "help --commands lists the commands" ||
	fail "help --commands: $cmds"
for c in $cmds; do
	one_line "$c: an unknown option is refused" 2 \
		"$c: unknown option '--no-such-option' \(try: blkrep help $c\)" \
		$NOCONF "$c" --no-such-option
	# As many arguments as it takes (a choice where it names them), then one more.
	args=()
	while IFS= read -r name; do
		[ -n "$name" ] && args+=("${name%%|*}")
	done < <("$BLKREP" help --args "$c")
	[ "$c" = help ] && args=(status)
	one_line "$c: an extra argument is refused" 2 "$c: unexpected argument 'extra-word'" \
		$NOCONF "$c" "${args[@]}" extra-word

	check "help $c needs no config" "$BLKREP" $NOCONF help "$c"
	cp "$T/last.out" "$T/help.out"
	missing=
	while read -r opt _; do
		grep -qE -e "^  $opt( |$)" "$T/help.out" || missing+=" $opt"
	done < <("$BLKREP" help --options "$c" | grep -v '^--help$')
	grep -q "^usage: blkrep $c" "$T/help.out" && [ -z "$missing" ] &&
		pass "help $c: its usage and every option" || fail "help $c: missing${missing:- usage}"
	check "$c --help" "$BLKREP" $NOCONF "$c" --help
	cmp -s "$T/last.out" "$T/help.out" && pass "... is help $c" || fail "$c --help differs from help $c"
	check "$c -h" "$BLKREP" $NOCONF "$c" -h
done

one_line "an unknown command" 2 "unknown command 'frobnicate' \(try: blkrep help\)" frobnicate
one_line "a missing argument" 2 "mode: missing argument sync\|async" $NOCONF mode
one_line "a wrong choice" 2 "mode: 'fast' is not one of sync\|async" $NOCONF mode fast
one_line "an option's missing value" 2 "resolve: --save-to needs a value" $NOCONF resolve --save-to
one_line "a global option after the bad one still refuses first" 2 "unknown option '--forse'" \
	primary --forse -c "$T/missing.conf" --node alpha
one_line "help of an unknown command" 2 "help: unknown command 'frob'" help frob
check "--opt=VALUE is split before the check" "$BLKREP" help --options=primary
grep -qx -e "--force" "$T/last.out" && pass "... and answered" || fail "help --options=: $(cat "$T/last.out")"

# What to do next: a pair's config (pair.sh), nothing created, no daemon.
. "$(dirname "$0")/pair.sh"
pair_init 64M 64M
NODE_A="-c $T/r0.conf --node alpha"
one_line "dump-md before create says run: blkrep create" 1 \
	"no blkrep metadata here; run: blkrep create" $NODE_A dump-md
one_line "up before create says run: blkrep create" 1 \
	"no blkrep metadata here; run: blkrep create" $NODE_A up
one_line "status without a daemon says run: blkrep up and where its log is" 1 \
	"no blkrep daemon is running .*; run: blkrep up \(the daemon's log: $T/run/r0-alpha.log\)" \
	$NODE_A status
check "check-config names the node" "$BLKREP" $NODE_A check-config
grep -q "this node alpha" "$T/last.out" && pass "... alpha" || fail "check-config: $(cat "$T/last.out")"
finish
