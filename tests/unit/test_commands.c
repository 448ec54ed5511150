/* daemon/commands: the one command table, and command lines checked
 * against its specs (daemon/cli/cmdspec). */
#include <criterion/criterion.h>
#include <string.h>

#include "daemon/cli/cmdspec.h"
#include "daemon/cli/commands.h"

Test(commands, lookups)
{
	const struct command *c = command_find("mode");

	cr_assert_not_null(c);
	cr_assert_not_null(c->cli);
	cr_assert_not_null(c->request);
	cr_assert_eq(c->min_args, 1);
	cr_assert_eq(c->max_args, 1);
	cr_assert_null(command_find("nope"));
	cr_assert_null(command_find(""));
	c = command_find("ping");
	cr_assert_not_null(c);
	cr_assert_null(c->cli, "sent by the CLI itself, not a command");
	cr_assert(c->while_stopping);
	cr_assert(command_find("status")->while_stopping);
	cr_assert_not(command_find("primary")->while_stopping);
	cr_assert_null(command_find("serve")->request, "the CLI alone");
}

Test(commands, every_entry_is_complete)
{
	static const char *const names[] = { "serve", "create", "up", "down", "status", "primary",
					      "secondary", "connect", "disconnect", "outdate-peer",
					      "attach", "detach", "mode", "verify", "resync",
					      "invalidate", "resolve", "restore-saved", "dump-md",
					      "version", "help", "ping", "progress", "check-config" };
	const struct command *c;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_not_null(command_find(names[i]), "%s", names[i]);
	for (unsigned i = 0; (c = command_at(i)); i++) {
		cr_assert(c->cli || c->request, "%s runs something", c->name);
		cr_assert_eq(strncmp(c->usage, c->name, strlen(c->name)), 0,
			     "%s: usage starts with the name", c->name);
		cr_assert_leq(c->min_args, c->max_args, "%s", c->name);
		cr_assert(!c->max_args || c->args, "%s names its arguments", c->name);
		cr_assert(!c->cli || c->help, "%s: a command has a help line", c->name);
		for (int k = 0; k < COMMAND_OPTS_MAX && c->opts[k].name; k++) {
			cr_assert_eq(strncmp(c->opts[k].name, "--", 2), 0, "%s", c->name);
			cr_assert_not_null(c->opts[k].help, "%s %s", c->name, c->opts[k].name);
			cr_assert_eq(cmdspec_opt(c, c->opts[k].name), &c->opts[k],
				     "%s: %s once", c->name, c->opts[k].name);
		}
	}
}

/* The CLI sends these commands' file names absolute. */
Test(commands, which_take_paths)
{
	cr_assert(command_takes_paths("restore-saved"));
	cr_assert(command_takes_paths("resolve"));
	cr_assert_not(command_takes_paths("attach"));
	cr_assert_not(command_takes_paths("status"));
	cr_assert_not(command_takes_paths("nope"));
}

static enum cmdspec_verdict check(const char *name, int argc, char *const *argv, char *why)
{
	return cmdspec_check(command_find(name), argc, argv, why, 256);
}

#define CHECK(name, ...)                                                                   \
	check(name, (int)(sizeof((char *const[]){ name, __VA_ARGS__ }) / sizeof(char *)),  \
	      (char *const[]){ name, __VA_ARGS__ }, why)

Test(cmdspec, accepts_what_the_spec_says)
{
	char why[256];

	cr_assert_eq(check("status", 1, (char *const[]){ "status" }, why), CMDSPEC_OK);
	cr_assert_eq(CHECK("status", "--json"), CMDSPEC_OK);
	cr_assert_eq(CHECK("primary", "--force", "--discard-unknown"), CMDSPEC_OK);
	cr_assert_eq(CHECK("primary", "--force", "--no-quorum"), CMDSPEC_OK);
	cr_assert_eq(CHECK("resolve", "--discard-local", "--save-to", "/x"), CMDSPEC_OK);
	cr_assert_eq(CHECK("resolve", "--save-to", "-odd-name", "--discard-local"), CMDSPEC_OK,
		     "an option's value may start with '-'");
	cr_assert_eq(CHECK("restore-saved", "--force", "f.saved"), CMDSPEC_OK);
	cr_assert_eq(CHECK("mode", "async"), CMDSPEC_OK);
	cr_assert_eq(CHECK("attach", "/dev/nbd3"), CMDSPEC_OK);
	cr_assert_eq(CHECK("progress", "restore-saved"), CMDSPEC_OK);
	cr_assert_eq(CHECK("serve", "disk.img", "--listen", "unix:/s", "--listen", "h:1"),
		     CMDSPEC_OK);
}

Test(cmdspec, refuses_with_one_reason)
{
	char why[256];

	cr_assert_eq(CHECK("primary", "--forse"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "unknown option '--forse'");
	cr_assert_eq(CHECK("secondary", "now"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "unexpected argument 'now'");
	cr_assert_eq(CHECK("attach", "/dev/nbd0", "/dev/nbd1"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "unexpected argument '/dev/nbd1'");
	cr_assert_eq(check("mode", 1, (char *const[]){ "mode" }, why), CMDSPEC_BAD);
	cr_assert_str_eq(why, "missing argument sync|async");
	cr_assert_eq(CHECK("mode", "syn"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "'syn' is not one of sync|async");
	cr_assert_eq(CHECK("resolve", "--discard-local", "--save-to"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "--save-to needs a value (FILE)");
	cr_assert_eq(CHECK("status", "-j"), CMDSPEC_BAD);
	cr_assert_eq(CHECK("restore-saved", "--force"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "missing argument FILE");
}

/* `mode --peer NAME`: one peer's mode; its handler is the daemon's. */
Test(cmdspec, mode_takes_one_peer)
{
	char why[256];

	cr_assert_eq(CHECK("mode", "--peer", "gamma", "sync"), CMDSPEC_OK);
	cr_assert_eq(CHECK("mode", "async", "--peer", "beta"), CMDSPEC_OK);
	cr_assert_eq(CHECK("mode", "sync", "--peer"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "--peer needs a value (NAME)");
	cr_assert_eq(CHECK("mode", "--peer", "gamma"), CMDSPEC_BAD);
	cr_assert_str_eq(why, "missing argument sync|async");
	cr_assert_str_eq(cmdspec_opt(command_find("mode"), "--peer")->value, "NAME");
}

Test(cmdspec, help_wins)
{
	char why[256];

	cr_assert_eq(CHECK("primary", "--forse", "--help"), CMDSPEC_HELP);
	cr_assert_eq(CHECK("mode", "-h"), CMDSPEC_HELP);
}

Test(cmdspec, splits_option_values)
{
	const struct command *c = command_find("resolve");
	char w0[] = "resolve", w1[] = "--discard-local", w2[] = "--save-to=a=b",
	     w3[] = "--discard-local=x";
	char *argv[] = { w0, w1, w2, w3 }, *out[9];

	cr_assert_eq(cmdspec_split_values(c, 4, argv, out), 5);
	cr_assert_str_eq(out[2], "--save-to");
	cr_assert_str_eq(out[3], "a=b");
	cr_assert_str_eq(out[4], "--discard-local=x", "a flag keeps its '=' (and is refused)");
	cr_assert_null(out[5]);
}

Test(cmdspec, names_arguments)
{
	char name[32];

	cr_assert(cmdspec_arg_name(command_find("restore-saved"), 0, name, sizeof(name)));
	cr_assert_str_eq(name, "FILE");
	cr_assert_not(cmdspec_arg_name(command_find("restore-saved"), 1, name, sizeof(name)));
	cr_assert_not(cmdspec_arg_name(command_find("status"), 0, name, sizeof(name)));
}
