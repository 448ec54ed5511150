/* daemon/commands: the one command table. */
#include <criterion/criterion.h>
#include <string.h>

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
					      "version", "help", "ping", "progress" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct command *c = command_find(names[i]);

		cr_assert_not_null(c, "%s", names[i]);
		cr_assert(c->cli || c->request, "%s runs something", names[i]);
		cr_assert_eq(strncmp(c->usage, names[i], strlen(names[i])), 0,
			     "%s: usage starts with the name", names[i]);
		cr_assert((c->min_args == COMMAND_ANY_ARGS) == (c->max_args == COMMAND_ANY_ARGS));
		cr_assert_leq(c->min_args, c->max_args);
	}
}

/* The CLI sends these commands' file names absolute. */
Test(commands, which_take_paths)
{
	cr_assert(command_takes_paths("restore-saved"));
	cr_assert(command_takes_paths("resolve"));
	cr_assert_not(command_takes_paths("attach"));
	cr_assert_not(command_takes_paths("status"));
}
