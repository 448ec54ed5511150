/* blkrep: command-line entry point. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/server.h"
#include "utils/log.h"

#define BLKREP_VERSION	"0.1.0"
#define DEFAULT_POOL	(64U << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: blkrep serve FILE-OR-DEVICE [--listen HOST:PORT | --listen unix:PATH]...\n"
		"                    [--name EXPORT] [--description TEXT] [--read-only] [--direct]\n"
		"                    [--pool-mib N] [--verbose]\n"
		"       blkrep version\n"
		"\n"
		"serve: export a file or block device over NBD, unreplicated, in the\n"
		"foreground until SIGINT or SIGTERM (default listen %s).\n",
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

static int cmd_serve(int argc, char **argv)
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

	while ((c = getopt_long(argc, argv, "l:n:D:rdp:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (o.nlisten == LISTEN_MAX) {
				log_err("at most %d --listen addresses", LISTEN_MAX);
				return 2;
			}
			o.listen[o.nlisten++] = optarg;
			break;
		case 'n':
			if (strlen(optarg) > 4096) {
				log_err("--name: longer than the 4096 bytes NBD allows");
				return 2;
			}
			o.name = optarg;
			break;
		case 'D':
			o.description = optarg;
			break;
		case 'r':
			o.read_only = true;
			break;
		case 'd':
			o.direct = true;
			break;
		case 'p':
			if (parse_pool(optarg, &o.pool_bytes) < 0)
				return 2;
			break;
		case 'v':
			log_init("blkrep", LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		log_err("serve: expected exactly one FILE-OR-DEVICE (see blkrep serve --help)");
		return 2;
	}
	o.path = argv[optind];
	return server_run(&o);
}

int main(int argc, char **argv)
{
	log_init("blkrep", LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("blkrep %s\n", BLKREP_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	log_err("unknown command '%s' (try blkrep help)", argv[1]);
	return 2;
}
