/* `blkrep serve`: one unreplicated NBD export in the foreground. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "nbd/server.h"
#include "utils/log.h"

#define DEFAULT_POOL	(64U << 20)

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
		log_err("serve: unknown option '%s' (try: blkrep help serve)",
			serve_argv[optind - 1]);
		return -1;
	}
}

int cmd_serve(struct cli *cli)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "description", required_argument, NULL, 'D' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "direct", no_argument, NULL, 'd' },
		{ "pool-mib", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 },
	};
	struct server_opts o = { .pool_bytes = DEFAULT_POOL };
	int c;

	opterr = 0;
	serve_argv = cli->argv;
	while ((c = getopt_long(cli->argc, cli->argv, ":l:n:D:rdp:v", opts, NULL)) != -1) {
		if (serve_option(&o, c, optarg) < 0)
			return 2;
	}
	if (optind != cli->argc - 1) {
		log_err("serve: expected exactly one FILE-OR-DEVICE (try: blkrep help serve)");
		return 2;
	}
	o.path = cli->argv[optind];
	return server_run(&o);
}
