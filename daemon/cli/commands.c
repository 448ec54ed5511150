/* The command table.  See commands.h. */
#include "daemon/cli/commands.h"
#include "daemon/node.h"

#include <stdio.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/ctl/control.h"

#define BLKREP_VERSION "0.1.0"
#define ANY	       COMMAND_ANY_ARGS, COMMAND_ANY_ARGS

/* In the order `blkrep help` lists them. */
static const struct command commands[] = {
	{ "serve", cmd_serve, NULL, ANY, false, "serve FILE-OR-DEVICE [options]",
	  "unreplicated NBD export" },
	{ "create", cmd_create, NULL, ANY, false, "create [--force] [--zeroed]",
	  "write this node's metadata" },
	{ "up", cmd_up, NULL, ANY, false, "up [--foreground]", "start this node's daemon" },
	{ "down", cmd_down, node_req_down, ANY, false, "down [--detach|--keep-attached]",
	  "stop it cleanly" },
	{ "status", cmd_request, node_req_status, ANY, true, "status [--json]",
	  "roles, disks, connection, sync state" },
	{ "primary", cmd_request, node_req_primary, ANY, false, "primary [--force]",
	  "promote this node" },
	{ "secondary", cmd_request, node_req_secondary, ANY, false, "secondary",
	  "demote this node" },
	{ "connect", cmd_request, node_req_connect, ANY, false, "connect",
	  "(re)establish the link to the peer" },
	{ "disconnect", cmd_request, node_req_disconnect, ANY, false, "disconnect",
	  "drop the link and stay standalone" },
	{ "outdate-peer", cmd_request, node_req_outdate_peer, ANY, false, "outdate-peer",
	  "the peer is down or fenced; a frozen primary writes on" },
	{ "attach", cmd_request, node_req_attach, ANY, false, "attach [/dev/nbdN]",
	  "the volume as a block device (primary only)" },
	{ "detach", cmd_request, node_req_detach, ANY, false, "detach",
	  "take the block device away" },
	{ "mode", cmd_wait_request, node_req_mode, 1, 1, false, "mode sync|async",
	  "switch the replication mode (sync waits for the lag)" },
	{ "verify", cmd_wait_request, node_req_verify, ANY, false, "verify",
	  "compare both replicas by checksum; differences become out of sync" },
	{ "resync", cmd_request, node_req_resync, ANY, false, "resync",
	  "copy the out-of-sync extents to the peer now" },
	{ "invalidate", cmd_request, node_req_invalidate, ANY, false, "invalidate",
	  "discard this secondary's data and resync all of it" },
	{ "resolve", cmd_request, node_req_resolve, 1, 3, false,
	  "resolve --discard-local [--save-to FILE]",
	  "after a split brain, this node's changes go (saved first)" },
	{ "restore-saved", cmd_wait_request, node_req_restore, 1, 2, false,
	  "restore-saved [--force] FILE", "on a primary, write saved data back (--force: "
	  "another resource's file)" },
	{ "events", cmd_events, NULL, ANY, false, "events [--now]", "print state changes as JSON lines until interrupted" },
	{ "metrics", cmd_request, node_req_metrics, 0, 0, true, "metrics", "print the Prometheus metrics" },
	{ "dump-md", cmd_dump_md, NULL, ANY, false, "dump-md", "print this node's metadata" },
	{ "version", command_version, NULL, ANY, false, "version", "print the version" },
	{ "help", command_help, NULL, ANY, false, "help", "this list" },
	/* Sent by the CLI itself: `up` asks whether a daemon runs, the
	 * waiting commands poll their work. */
	{ "ping", NULL, node_req_ping, ANY, true, "ping", NULL },
	{ "events-poll", NULL, node_req_events_poll, 0, 1, true, "events-poll [--now|SEQ]", NULL },
	{ "progress", NULL, node_req_progress, ANY, false, "progress mode|verify|restore-saved",
	  NULL },
};

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

bool command_takes_paths(const char *name)
{
	return strcmp(name, "restore-saved") == 0 || strcmp(name, "resolve") == 0;
}

int command_help(struct cli *cli)
{
	(void)cli;
	printf("usage: blkrep [-c CONFIG] [--node NAME] COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help)
			printf("  %s: %s\n", commands[i].usage, commands[i].help);
	printf("\n-c defaults to %s; --node to the node named like this host.\n",
	       CLI_DEFAULT_CONFIG);
	return 0;
}

int command_version(struct cli *cli)
{
	(void)cli;
	printf("blkrep %s\n", BLKREP_VERSION);
	return 0;
}

void node_handle(void *arg, struct control_req *req)
{
	struct node *n = arg;
	int argc;
	char *const *argv = control_req_words(req, &argc);
	const char *name = argc ? argv[0] : "";
	const struct command *c = command_find(name);

	if (c && !c->request)
		c = NULL; /* the CLI's own */
	if (!(c && c->while_stopping) && node_stopping(n))
		control_reply(req, false, "the daemon is stopping");
	else if (!c)
		control_reply(req, false, "unknown request '%s'", name);
	else if (c->min_args != COMMAND_ANY_ARGS &&
		 (argc - 1 < c->min_args || argc - 1 > c->max_args))
		control_reply(req, false, "usage: blkrep %s", c->usage);
	else
		c->request(n, req, argc, argv);
}
