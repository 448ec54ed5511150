#!/usr/bin/env bash
# contrib/bash-completion/blkrep: commands, each command's options (from
# `blkrep help --commands` and `help --options CMD`), choices and file
# names, checked by calling its function as bash does (COMP_WORDS,
# COMP_CWORD) and reading COMPREPLY.
. "$(dirname "$0")/lib.sh"
export LC_ALL=C
. "$REPO/contrib/bash-completion/blkrep"

# complete LINE: the completions for LINE (its last word is completed; a
# trailing blank means an empty word), sorted, on one line.
complete_line() {
	local -a COMP_WORDS COMPREPLY
	local COMP_CWORD COMP_LINE=$1
	read -r -a COMP_WORDS <<<"$1"
	[[ $1 == *" " ]] && COMP_WORDS+=("")
	COMP_WORDS[0]=$BLKREP
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_blkrep
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

# expect_completion DESC LINE WANT
expect_completion() {
	check_eq "$1" "$(complete_line "$2")" "$3"
}

touch "$T/r0.conf" "$T/r0.saved" "$T/other"
expect_completion "a command from its start" "blkrep pri" primary
expect_completion "commands starting alike" "blkrep re" "resolve restore-saved resync"
expect_completion "after a global option" "blkrep -c $T/r0.conf --node alpha sta" status
expect_completion "a global option's file" "blkrep -c $T/r0.c" "$T/r0.conf"
expect_completion "a command's options" "blkrep primary --" "--config --discard-unknown --force --help --no-quorum --node"
expect_completion "an option from its start" "blkrep status --j" --json
expect_completion "the choices of mode" "blkrep mode " "async sync"
expect_completion "nothing after mode's one argument" "blkrep mode sync " ""
expect_completion "mode --peer takes a node's name: none offered" "blkrep mode --peer " ""
expect_completion "mode's choices after --peer NAME" "blkrep mode --peer gamma " "async sync"
expect_completion "restore-saved takes a FILE" "blkrep restore-saved --force $T/r0.s" "$T/r0.saved"
expect_completion "--save-to takes a FILE" "blkrep resolve --discard-local --save-to $T/o" "$T/other"
expect_completion "serve's FILE-OR-DEVICE" "blkrep serve --read-only $T/oth" "$T/other"
expect_completion "serve's --listen takes no file" "blkrep serve --listen $T/oth" ""
expect_completion "help names commands" "blkrep help dump" dump-md
expect_completion "help --options names commands" "blkrep help --options outd" outdate-peer
expect_completion "a command that takes nothing" "blkrep secondary " ""

# Every command completes exactly the options `help --options` lists.
for cmd in $("$BLKREP" help --commands); do
	want=$( ("$BLKREP" help --options "$cmd" | cut -d' ' -f1; printf '%s\n' -c --config --node) |
		sort | tr '\n' ' ' | sed 's/ $//')
	expect_completion "$cmd: every option" "blkrep $cmd -" "$want"
done
finish
