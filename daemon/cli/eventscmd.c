/* `blkrep events [--now]` on the CLI side: long-polls the daemon with
 * "events-poll" requests (daemon/ctl/obs.c) and prints each answer's JSON
 * lines at once, until interrupted.  The daemon stopping ends it with
 * status 0 after its last line; a daemon that is gone, with 1 and one
 * line on stderr. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "utils/log.h"

/* One answer: "seq N" or "end N", then lines.  Prints the lines and sets
 * *seq; returns 1 to go on, 0 at the end, -1 on a malformed answer. */
static int events_print(const char *body, uint64_t *seq)
{
	char word[8];
	const char *nl = strchr(body, '\n');

	if (sscanf(body, "%7s %" SCNu64, word, seq) != 2 ||
	    (strcmp(word, "seq") && strcmp(word, "end"))) {
		log_err("events: unexpected answer from the daemon");
		return -1;
	}
	if (nl && nl[1]) {
		fputs(nl + 1, stdout);
		if (nl[strlen(nl) - 1] != '\n')
			fputc('\n', stdout);
		fflush(stdout);
	}
	return strcmp(word, "seq") == 0;
}

static int events_loop(const char *ctl, bool now)
{
	char line[64], err[512], *body = NULL;
	uint64_t seq = 0;
	bool ok, first = true;
	int rc;

	for (;;) {
		if (first)
			snprintf(line, sizeof(line), "events-poll%s", now ? " --now" : "");
		else
			snprintf(line, sizeof(line), "events-poll %" PRIu64, seq);
		if (control_call(ctl, line, first ? CONTROL_WAIT_MS : 0, &body, &ok, err,
				 sizeof(err)) < 0) {
			log_err("%s", err);
			return 1;
		}
		if (!ok) {
			log_err("%s", body && *body ? body : "events: the daemon refused");
			free(body);
			return 1;
		}
		rc = events_print(body ? body : "", &seq);
		free(body);
		body = NULL;
		if (rc <= 0)
			return rc < 0 ? 1 : 0;
		first = false;
	}
}

int cmd_events(struct cli *cli)
{
	const struct config_node *me;
	struct config *cfg;
	char ctl[256];
	bool now = cli->argc == 2 && strcmp(cli->argv[1], "--now") == 0;
	int rc = 1;

	if (cli->argc > 2 || (cli->argc == 2 && !now)) {
		log_err("usage: blkrep events [--now]");
		return 2;
	}
	if (cli_load_node(cli, &cfg, &me) < 0)
		return 1;
	if (control_run_path(ctl, sizeof(ctl), config_resource_name(cfg), me->name, "ctl") == 0)
		rc = events_loop(ctl, now);
	config_free(cfg);
	return rc;
}
