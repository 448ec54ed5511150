#!/usr/bin/env bash
# Bad command lines: each gets one clear line on stderr and a non-zero exit
# (2 for usage, 1 for an operation that failed), and nothing is left running.
. "$(dirname "$0")/lib.sh"

# expect_error DESC WANT_RC PATTERN ARGS...: run blkrep ARGS, want exit
# WANT_RC and exactly one stderr line matching PATTERN.
expect_error() {
	local desc=$1 want=$2 pat=$3 rc lines
	shift 3
	tmo -t 10 "$BLKREP" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	lines=$(grep -v '^blkrep: listening' "$T/err" | wc -l)
	if [ $rc -eq "$want" ] && [ "$lines" -eq 1 ] && grep -qE -e "$pat" "$T/err"; then
		pass "$desc"
	else
		fail "$desc (exit $rc, want $want; stderr: $(tr '\n' '|' <"$T/err"))"
	fi
}

truncate -s 1M "$T/disk.img"
mkdir "$T/dir"
expect_error "no command" 2 "no command given"
expect_error "unknown command" 2 "unknown command 'frobnicate'" frobnicate
expect_error "serve without a file" 2 "serve: missing argument FILE-OR-DEVICE" serve
expect_error "serve with two files" 2 "serve: unexpected argument" serve "$T/disk.img" "$T/disk.img"
expect_error "serve a missing file" 1 "No such file" serve "$T/missing.img" --listen "unix:$T/s1"
expect_error "serve a directory" 1 "Is a directory|not a regular file or block device" serve "$T/dir" --listen "unix:$T/s2"
expect_error "bad --listen address" 1 "expected HOST:PORT" serve "$T/disk.img" --listen nonsense
expect_error "unresolvable --listen host" 1 "no.such.host.invalid" serve "$T/disk.img" --listen no.such.host.invalid:1
expect_error "--pool-mib too small" 2 "pool-mib 1: expected" serve "$T/disk.img" --pool-mib 1
expect_error "--pool-mib not a number" 2 "pool-mib x: expected" serve "$T/disk.img" --pool-mib x
expect_error "unknown serve option" 2 "unknown option .--bogus." serve "$T/disk.img" --bogus
expect_error "serve option without its value" 2 "--listen needs a value" serve "$T/disk.img" --listen
expect_error "-c without a value" 2 "needs a value" serve -c
expect_error "--node without a value" 2 "needs a value" version --node
check "version prints" "$BLKREP" version
check "help prints" "$BLKREP" help
finish
