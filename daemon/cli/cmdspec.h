/* A command line checked against its command's spec (the options and
 * positional words of struct command, daemon/cli/commands.h): pure, used
 * by the CLI before it loads a config or calls a daemon, and by the
 * daemon on every request. */
#ifndef BLKREP_CMDSPEC_H
#define BLKREP_CMDSPEC_H

#include <stdbool.h>
#include <stddef.h>

struct command;
struct command_opt;

enum cmdspec_verdict {
	CMDSPEC_OK,
	CMDSPEC_HELP,	/* -h or --help is among the words */
	CMDSPEC_BAD,	/* why says what is wrong */
};

/* Checks argv[1..argc) (argv[0] is the command's name): every word that
 * starts with '-' is an option of c (one that takes a value is followed by
 * it), the others are c's positional words, as many as it takes, each one
 * of the choices its name lists if it lists any.  On CMDSPEC_BAD, why
 * holds one line without the command's name ("unknown option '--forse'"). */
enum cmdspec_verdict cmdspec_check(const struct command *c, int argc, char *const *argv,
				   char *why, size_t len);

/* c's option called name ("--force"), or NULL. */
const struct command_opt *cmdspec_opt(const struct command *c, const char *name);

/* Splits every "--opt=VALUE" of an option of c that takes a value into two
 * words, in place: out (room for 2 * argc + 1 pointers) gets the words and
 * a NULL; the '=' in argv's string becomes a NUL.  Returns the number of
 * words in out. */
int cmdspec_split_values(const struct command *c, int argc, char **argv, char **out);

/* Whether the word flag stands among argv[1..argc). */
bool cmdspec_has_flag(int argc, char *const *argv, const char *flag);

/* The i-th positional name of c ("FILE"), written to buf; false past
 * max_args (or the last name repeated for any further ones). */
bool cmdspec_arg_name(const struct command *c, int i, char *buf, size_t len);

#endif
