/* blkrep: command-line entry point.  Global options (-c FILE, --node NAME)
 * may stand before or after the subcommand; the command table
 * (daemon/cli/commands.c) says what each command runs. */
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/cli/commands.h"
#include "utils/log.h"

int main(int argc, char **argv)
{
	struct cli cli;
	const struct command *c;

	log_init("blkrep", LOG_INFO);
	if (log_stderr_is_journal())
		log_set_style(LOG_JOURNAL);
	if (cli_parse_globals(argc, argv, &cli) < 0)
		return 2;
	if (cli.argc < 1) {
		log_err("no command given (try blkrep help)");
		return 2;
	}
	if (strcmp(cli.argv[0], "--help") == 0 || strcmp(cli.argv[0], "-h") == 0)
		return command_help(&cli);
	if (strcmp(cli.argv[0], "--version") == 0)
		return command_version(&cli);
	c = command_find(cli.argv[0]);
	if (c && c->cli)
		return c->cli(&cli);
	log_err("unknown command '%s' (try blkrep help)", cli.argv[0]);
	return 2;
}
