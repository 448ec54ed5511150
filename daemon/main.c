/* blkrep: command-line entry point.  Global options (-c FILE, --node NAME)
 * may stand before or after the subcommand; the command table
 * (daemon/cli/commands.c) says what each command runs and what it takes,
 * and the command line is checked against it (daemon/cli/cmdspec.h)
 * before any command loads a config or calls a daemon. */
#include <stdlib.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/cli/cmdspec.h"
#include "daemon/cli/commands.h"
#include "utils/log.h"

/* Splits "--opt=VALUE" in two words; then refuses a command line its
 * command does not take (exit 2), answers --help (exit 0), or runs the
 * command. */
static int run_command(struct cli *cli, const struct command *c)
{
	char why[256], **given = cli->argv;
	char **words = calloc(2 * (size_t)cli->argc + 1, sizeof(*words));
	int rc = 2;

	if (!words) {
		log_err("out of memory");
		return 1;
	}
	cli->argc = cmdspec_split_values(c, cli->argc, given, words);
	cli->argv = words;
	switch (cmdspec_check(c, cli->argc, cli->argv, why, sizeof(why))) {
	case CMDSPEC_HELP:
		command_print_help(c);
		rc = 0;
		break;
	case CMDSPEC_BAD:
		log_err("%s: %s (try: blkrep help %s)", c->name, why, c->name);
		break;
	case CMDSPEC_OK:
		rc = c->cli(cli);
		break;
	}
	cli->argv = given;
	free(words);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli cli;
	const struct command *c;
	int rc = 2;

	log_init("blkrep", LOG_INFO);
	if (log_stderr_is_journal())
		log_set_style(LOG_JOURNAL);
	if (cli_parse_globals(argc, argv, &cli) < 0)
		return 2;
	if (cli.argc < 1)
		log_err("no command given (try: blkrep help)");
	else if (strcmp(cli.argv[0], "--help") == 0 || strcmp(cli.argv[0], "-h") == 0)
		rc = command_help(&cli);	/* as `blkrep help ...` */
	else if (strcmp(cli.argv[0], "--version") == 0)
		rc = command_version(&cli);
	else if ((c = command_find(cli.argv[0])) && c->cli)
		rc = run_command(&cli, c);
	else
		log_err("unknown command '%s' (try: blkrep help)", cli.argv[0]);
	cli_free(&cli);
	return rc;
}
