/* blkrep: command-line entry point.  Global options (-c FILE, --node NAME)
 * may stand before or after the subcommand; the subcommand table says what
 * each command needs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli.h"
#include "daemon/server.h"
#include "utils/log.h"

#define BLKREP_VERSION	"0.1.0"
#define DEFAULT_POOL	(64U << 20)

static void usage_serve(FILE *f)
{
	fprintf(f,
		"usage: blkrep serve FILE-OR-DEVICE [--listen HOST:PORT | --listen unix:PATH]...\n"
		"                    [--name EXPORT] [--description TEXT] [--read-only] [--direct]\n"
		"                    [--pool-mib N] [--verbose]\n"
		"Export a file or block device over NBD, unreplicated, in the foreground\n"
		"until SIGINT or SIGTERM (default listen %s).\n",
		LISTEN_DEFAULT);
}

static int parse_pool(const char *arg, size_t *out)
{
	char *end;
	unsigned long mib = strtoul(arg, &end, 10);

	if (*end || mib < 32 || mib > 4096) {
		log_err("--pool-mib %s: expected a number of MiB from 32 to 4096", arg);
		return -1;
	}
	*out = (size_t)mib << 20;
	return 0;
}

static char **serve_argv;	/* for naming a bad option */

static int serve_option(struct server_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'l':
		if (o->nlisten == LISTEN_MAX) {
			log_err("at most %d --listen addresses", LISTEN_MAX);
			return -1;
		}
		o->listen[o->nlisten++] = arg;
		return 0;
	case 'n':
		if (strlen(arg) > 4096) {
			log_err("--name: longer than the 4096 bytes NBD allows");
			return -1;
		}
		o->name = arg;
		return 0;
	case 'D':
		o->description = arg;
		return 0;
	case 'r':
		o->read_only = true;
		return 0;
	case 'd':
		o->direct = true;
		return 0;
	case 'p':
		return parse_pool(arg, &o->pool_bytes);
	case 'v':
		log_init("blkrep", LOG_DEBUG);
		return 0;
	case ':':
		log_err("serve: %s needs a value", serve_argv[optind - 1]);
		return -1;
	default:
		log_err("serve: unknown option '%s' (see blkrep serve --help)",
			serve_argv[optind - 1]);
		return -1;
	}
}

static int cmd_serve(struct cli *cli)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "description", required_argument, NULL, 'D' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "direct", no_argument, NULL, 'd' },
		{ "pool-mib", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct server_opts o = { .pool_bytes = DEFAULT_POOL };
	int c;

	opterr = 0;
	serve_argv = cli->argv;
	while ((c = getopt_long(cli->argc, cli->argv, ":l:n:D:rdp:vh", opts, NULL)) != -1) {
		if (c == 'h') {
			usage_serve(stdout);
			return 0;
		}
		if (serve_option(&o, c, optarg) < 0)
			return 2;
	}
	if (optind != cli->argc - 1) {
		log_err("serve: expected exactly one FILE-OR-DEVICE (see blkrep serve --help)");
		return 2;
	}
	o.path = cli->argv[optind];
	return server_run(&o);
}

static int cmd_version(struct cli *cli)
{
	(void)cli;
	printf("blkrep %s\n", BLKREP_VERSION);
	return 0;
}

static int cmd_help(struct cli *cli);

static const struct cli_command commands[] = {
	{ "serve", cmd_serve, "serve FILE-OR-DEVICE [options]: unreplicated NBD export" },
	{ "create", cmd_create, "create [--force] [--zeroed]: write this node's metadata" },
	{ "up", cmd_up, "up [--foreground]: start this node's daemon" },
	{ "down", cmd_down, "down [--detach|--keep-attached]: stop it cleanly" },
	{ "status", cmd_request, "status [--json]: roles, disks, connection, sync state" },
	{ "primary", cmd_request, "primary [--force]: promote this node" },
	{ "secondary", cmd_request, "secondary: demote this node" },
	{ "connect", cmd_request, "connect: (re)establish the link to the peer" },
	{ "disconnect", cmd_request, "disconnect: drop the link and stay standalone" },
	{ "outdate-peer", cmd_request, "outdate-peer: the peer is down or fenced; a frozen primary writes on" },
	{ "attach", cmd_request, "attach [/dev/nbdN]: the volume as a block device (primary only)" },
	{ "detach", cmd_request, "detach: take the block device away" },
	{ "mode", cmd_wait_request, "mode sync|async: switch the replication mode (sync waits for the lag)" },
	{ "verify", cmd_wait_request, "verify: compare both replicas by checksum; differences become out of sync" },
	{ "resync", cmd_request, "resync: copy the out-of-sync extents to the peer now" },
	{ "invalidate", cmd_request, "invalidate: discard this secondary's data and resync all of it" },
	{ "resolve", cmd_request, "resolve --discard-local [--save-to FILE]: after a split brain, this node's changes go (saved first)" },
	{ "restore-saved", cmd_wait_request, "restore-saved FILE: on a primary, write saved data back" },
	{ "dump-md", cmd_dump_md, "dump-md: print this node's metadata" },
	{ "version", cmd_version, "version: print the version" },
	{ "help", cmd_help, "help: this list" },
};

static int cmd_help(struct cli *cli)
{
	(void)cli;
	printf("usage: blkrep [-c CONFIG] [--node NAME] COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %s\n", commands[i].help);
	printf("\n-c defaults to %s; --node to the node named like this host.\n",
	       CLI_DEFAULT_CONFIG);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli;

	log_init("blkrep", LOG_INFO);
	if (cli_parse_globals(argc, argv, &cli) < 0)
		return 2;
	if (cli.argc < 1) {
		log_err("no command given (try blkrep help)");
		return 2;
	}
	if (strcmp(cli.argv[0], "--help") == 0 || strcmp(cli.argv[0], "-h") == 0)
		return cmd_help(&cli);
	if (strcmp(cli.argv[0], "--version") == 0)
		return cmd_version(&cli);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cli.argv[0], commands[i].name) == 0)
			return commands[i].fn(&cli);
	log_err("unknown command '%s' (try blkrep help)", cli.argv[0]);
	return 2;
}
