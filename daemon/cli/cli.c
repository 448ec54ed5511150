/* Global command-line options.  See cli.h. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "utils/log.h"

/* Matches "--name VALUE", "--name=VALUE" or, with a short form, "-x VALUE".
 * Returns how many argv entries it used (0: not this option, -1: error). */
static int take_opt(char **argv, int i, int argc, const char *lng, const char *shrt,
		    const char **out)
{
	size_t n = strlen(lng);
	const char *a = argv[i];

	if (strncmp(a, lng, n) == 0 && a[n] == '=') {
		*out = a + n + 1;
		return 1;
	}
	if (strcmp(a, lng) != 0 && (!shrt || strcmp(a, shrt) != 0))
		return 0;
	if (i + 1 >= argc || !argv[i + 1][0]) {
		log_err("%s needs a value", a);
		return -1;
	}
	*out = argv[i + 1];
	return 2;
}

char *cli_absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		log_err("%s: cannot tell the working directory: %s", path, strerror(errno));
		return NULL;
	}
	if (path[0] == '/' ? !(out = strdup(path)) : asprintf(&out, "%s/%s", cwd, path) < 0) {
		log_err("out of memory");
		return NULL;
	}
	return out;
}

/* A relative -c made absolute: lives until exit. */
static char config_abs[PATH_MAX];

int cli_parse_globals(int argc, char **argv, struct cli *cli)
{
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int n = 0, used;

	if (!rest) {
		log_err("out of memory");
		return -1;
	}
	cli->config_path = CLI_DEFAULT_CONFIG;
	cli->node = NULL;
	for (int i = 1; i < argc; i += used) {
		used = take_opt(argv, i, argc, "--config", "-c", &cli->config_path);
		if (used == 0)
			used = take_opt(argv, i, argc, "--node", NULL, &cli->node);
		if (used < 0) {
			free(rest);
			return -1;
		}
		if (used == 0) {
			rest[n++] = argv[i];
			used = 1;
		}
	}
	cli->argc = n;
	cli->argv = rest;	/* until cli_free() */
	if (cli->config_path[0] != '/') {
		char *abs = cli_absolute(cli->config_path);

		if (!abs)
			return -1;
		if (strlen(abs) >= sizeof(config_abs)) {
			log_err("%s: path too long", abs);
			free(abs);
			return -1;
		}
		memcpy(config_abs, abs, strlen(abs) + 1);
		free(abs);
		cli->config_path = config_abs;
	}
	return 0;
}

void cli_free(struct cli *cli)
{
	free(cli->argv);
	cli->argv = NULL;
}

/* The commands a witness takes: its daemon's life and status (the
 * witness answers those requests alone). */
static bool witness_command(const char *name)
{
	static const char *const ok[] = { "up", "down", "status", "check-config" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(name, ok[i]))
			return true;
	return false;
}

int cli_load_node(const struct cli *cli, struct config **cfg, const struct config_node **node)
{
	char err[512];

	if (config_load(cli->config_path, cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	*node = config_local_node(*cfg, cli->node, err, sizeof(err));
	if (*node && (*node)->witness && !witness_command(cli->argc ? cli->argv[0] : ""))
		snprintf(err, sizeof(err), "%s is a witness (witness = yes): it keeps no data",
			 (*node)->name);
	else if (*node)
		return 0;
	log_err("%s", err);
	config_free(*cfg);
	*cfg = NULL;
	*node = NULL;
	return -1;
}
