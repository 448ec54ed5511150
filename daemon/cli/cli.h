/* The command line: global options and the commands the table in
 * daemon/cli/commands.c names.  Every command returns the process exit status:
 * 0 on success, 1 when the operation failed, 2 for bad usage; it has
 * printed one clear line. */
#ifndef BLKREP_CLI_H
#define BLKREP_CLI_H

#define CLI_DEFAULT_CONFIG	"/etc/blkrep/blkrep.conf"

struct cli {
	const char *config_path;	/* -c / --config, or the default */
	const char *node;		/* --node, or NULL: the host name */
	int argc;			/* the subcommand and its arguments */
	char **argv;
};

/* Takes -c FILE, --config FILE, --node NAME (also with '=') out of argv,
 * wherever they stand, into cli; the rest, starting at the subcommand,
 * becomes cli->argv.  A relative config path is made absolute (the daemon
 * resolves the secret file against its directory, and runs on after the
 * user's cwd is gone).  Returns -1 (after logging) on a missing value. */
int cli_parse_globals(int argc, char **argv, struct cli *cli);

/* Frees what cli_parse_globals() allocated (cli->argv's array). */
void cli_free(struct cli *cli);

/* path made absolute against the working directory (malloc'd, NULL after
 * logging on failure); an absolute path is copied. */
char *cli_absolute(const char *path);

struct config;
struct config_node;

/* Loads the config and picks this node (--node, else the host name).
 * Returns 0, or -1 after logging one line; *cfg is freed by the caller.
 * On a witness node (witness = yes) only up, down, status and
 * check-config (cli->argv[0]) are taken: any other command is refused
 * ("NODE is a witness (witness = yes): it keeps no data"). */
int cli_load_node(const struct cli *cli, struct config **cfg, const struct config_node **node);

/* `serve` (daemon/cli/servecmd.c). */
int cmd_serve(struct cli *cli);

/* Commands that act on a node's config and metadata (daemon/cli/mdcmd.c):
 * `check-config` loads the config and names this node, `create`,
 * `dump-md`. */
int cmd_check_config(struct cli *cli);
int cmd_create(struct cli *cli);
int cmd_dump_md(struct cli *cli);

/* Node commands (daemon/cli/nodecmd.c): `up [--foreground]`, `down`, and
 * cmd_request for everything the daemon answers itself (status, primary,
 * secondary, connect, disconnect). */
int cmd_up(struct cli *cli);
int cmd_down(struct cli *cli);
int cmd_request(struct cli *cli);
/* A request whose work the CLI waits for, with progress (mode, verify). */
int cmd_wait_request(struct cli *cli);

/* `events [--now]` (daemon/cli/eventscmd.c): polls the daemon and prints
 * its event lines until interrupted or the daemon stops. */
int cmd_events(struct cli *cli);

#endif
