/* The command table.  See commands.h. */
#include "daemon/cli/commands.h"
#include "daemon/node.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "daemon/cli/cli.h"
#include "daemon/cli/cmdspec.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/obs.h"
#include "daemon/witness/witness.h"
#include "nbd/listen.h"
#include "utils/log.h"

/* In the order `blkrep help` lists them; one entry per command. */
static const struct command commands[] = {
	{ .name = "serve", .cli = cmd_serve, .min_args = 1, .max_args = 1,
	  .args = "FILE-OR-DEVICE", .usage = "serve FILE-OR-DEVICE [options]",
	  .help = "unreplicated NBD export",
	  .description = "Exports a file or block device over NBD, unreplicated, in the "
			 "foreground until SIGINT or SIGTERM; no config file.",
	  .opts = { { "--listen", "ADDRESS",
		      "HOST:PORT or unix:PATH (repeatable; default " LISTEN_DEFAULT ")" },
		    { "--name", "EXPORT", "the export also answers to this name" },
		    { "--description", "TEXT", "the export's description" },
		    { "--read-only", NULL, "refuse writes" },
		    { "--direct", NULL, "O_DIRECT for aligned requests" },
		    { "--pool-mib", "N", "payload buffers for all clients (MiB, 32-4096; "
					 "default 64)" },
		    { "--verbose", NULL, "debug messages" } } },
	{ .name = "create", .cli = cmd_create, .usage = "create [--force] [--zeroed] [--max-peers N]",
	  .help = "write this node's metadata",
	  .description = "Writes this node's metadata (on each node, once, before `up`).",
	  .opts = { { "--force", NULL, "overwrite existing metadata (discards the node's "
				       "replication state)" },
		    { "--zeroed", NULL, "the store is blank on both nodes: no initial sync" },
		    { "--max-peers", "N", "bitmap slots, one per other node, fixed here "
					  "(1-7; default: the config's peers)" } } },
	{ .name = "check-config", .cli = cmd_check_config, .usage = "check-config",
	  .help = "check the config and say which node this is",
	  .description = "Loads the config (-c) and picks this node (--node, else the host "
			 "name); prints them and every node (its address, and its mode and "
			 "max-lag where they are not the resource's), or one line saying why "
			 "not (exit 1)." },
	{ .name = "up", .cli = cmd_up, .usage = "up [--foreground]",
	  .help = "start this node's daemon",
	  .description = "Starts this node's daemon and returns once it is ready; its log is "
			 "RUN_DIR/RESOURCE-NODE.log (RUN_DIR: /run/blkrep or $BLKREP_RUN_DIR).",
	  .opts = { { "--foreground", NULL, "be the daemon (sd_notify readiness)" } } },
	{ .name = "down", .cli = cmd_down, .request = node_req_down,
	  .usage = "down [--detach|--keep-attached|--keep-role]", .help = "stop it cleanly",
	  .description = "Stops the daemon cleanly and waits for it to exit; refused while "
			 "a device is attached.  A primary connected to an up-to-date peer "
			 "hands over first: the peer stays up to date (plain `primary` "
			 "promotes it) and this node comes back as a secondary.",
	  .opts = { { "--detach", NULL, "detach the block device first (after umount)" },
		    { "--keep-attached", NULL,
		      "a planned restart: the kernel keeps the device waiting (and a primary "
		      "its role)" },
		    { "--keep-role", NULL, "a restart without a handover: a primary comes "
					   "back as one" } } },
	{ .name = "status", .cli = cmd_request, .request = node_req_status,
	  .while_stopping = true, .usage = "status [--json]",
	  .help = "roles, disks, connection, sync state",
	  .opts = { { "--json", NULL, "one JSON object" } } },
	{ .name = "primary", .cli = cmd_request, .request = node_req_primary,
	  .usage = "primary [--force [--discard-unknown] [--no-quorum]]",
	  .help = "promote this node",
	  .description = "Promotes this node; refused while the peer is primary, on a "
			 "disk that is not up to date, or without quorum.",
	  .opts = { { "--force", NULL, "promote a consistent disk, or start a fresh pair" },
		    { "--discard-unknown", NULL,
		      "with --force: an inconsistent or outdated disk too" },
		    { "--no-quorum", NULL,
		      "with --force: without quorum (what the others acknowledged may be "
		      "lost)" } } },
	{ .name = "secondary", .cli = cmd_request, .request = node_req_secondary,
	  .usage = "secondary", .help = "demote this node" },
	{ .name = "connect", .cli = cmd_request, .request = node_req_connect,
	  .usage = "connect", .help = "(re)establish the link to the peer" },
	{ .name = "disconnect", .cli = cmd_request, .request = node_req_disconnect,
	  .usage = "disconnect", .help = "drop the link and stay standalone" },
	{ .name = "outdate-peer", .cli = cmd_request, .request = node_req_outdate_peer,
	  .usage = "outdate-peer", .help = "the peer is down or fenced; a frozen primary "
					  "writes on" },
	{ .name = "attach", .cli = cmd_request, .request = node_req_attach, .max_args = 1,
	  .args = "/dev/nbdN", .usage = "attach [/dev/nbdN | --loop]",
	  .help = "the volume as a block device (primary only)",
	  .description = "Binds the volume to /dev/nbdN (a free one when not named) and "
			 "prints its name.",
	  .opts = { { "--loop", NULL, "a loop device over a FUSE file (no nbd.ko)" } } },
	{ .name = "detach", .cli = cmd_request, .request = node_req_detach,
	  .usage = "detach", .help = "take the block device away" },
	{ .name = "mode", .cli = cmd_wait_request, .request = node_req_mode, .min_args = 1,
	  .max_args = 1, .args = "sync|async", .usage = "mode [--peer NAME] sync|async",
	  .help = "switch one peer's replication mode, or every peer's",
	  .description = "Switch one peer's replication mode, or every peer's, while I/O "
			 "runs; `mode sync` returns once that lag drained.",
	  .opts = { { "--peer", "NAME", "only the replication to this node (default: to every "
				       "peer)" } } },
	{ .name = "verify", .cli = cmd_wait_request, .request = node_req_verify,
	  .usage = "verify",
	  .help = "compare both replicas by checksum; differences become out of sync" },
	{ .name = "resync", .cli = cmd_request, .request = node_req_resync, .usage = "resync",
	  .help = "copy the out-of-sync extents to the peer now" },
	{ .name = "invalidate", .cli = cmd_request, .request = node_req_invalidate,
	  .usage = "invalidate", .help = "discard this secondary's data and resync all of it" },
	{ .name = "resolve", .cli = cmd_request, .request = node_req_resolve,
	  .usage = "resolve --discard-local [--save-to FILE]",
	  .help = "after a split brain, this node's changes go (saved first)",
	  .opts = { { "--discard-local", NULL, "this node's changes go (required)" },
		    { "--save-to", "FILE", "where they are saved (default: a file under "
					   "/var/lib/blkrep)" } } },
	{ .name = "restore-saved", .cli = cmd_wait_request, .request = node_req_restore,
	  .min_args = 1, .max_args = 1, .args = "FILE", .usage = "restore-saved [--force] FILE",
	  .help = "on a primary, write saved data back",
	  .opts = { { "--force", NULL, "a file saved by another resource or node" } } },
	{ .name = "events", .cli = cmd_events, .usage = "events [--now]",
	  .help = "print state changes as JSON lines until interrupted",
	  .description = "One JSON line per change of role, connection, disk, mode, resync, "
			 "split brain, errors, attach/detach (drbdsetup events2's vocabulary); "
			 "ends when the daemon stops.",
	  .opts = { { "--now", NULL, "begin with the current state, then an exists marker" } } },
	{ .name = "metrics", .cli = cmd_request, .request = node_req_metrics,
	  .while_stopping = true, .usage = "metrics",
	  .help = "print the Prometheus metrics",
	  .description = "The text exposition format, as served on `metrics = HOST:PORT`; for "
			 "node_exporter's textfile collector." },
	{ .name = "adjust", .cli = cmd_request, .request = node_req_adjust, .usage = "adjust",
	  .help = "apply a changed config file to the running daemon",
	  .description = "Re-reads the config: on-peer-loss, resync-rate, max-lag (up to its "
			 "value at the start), the peer's address, timeouts apply at once; "
			 "any other change is refused, naming the key (a restart applies it)." },
	{ .name = "dump-md", .cli = cmd_dump_md, .usage = "dump-md",
	  .help = "print this node's metadata" },
	{ .name = "version", .cli = command_version, .usage = "version",
	  .help = "print the version" },
	{ .name = "help", .cli = command_help, .max_args = 1, .args = "COMMAND",
	  .usage = "help [COMMAND | --commands | --options COMMAND | --args COMMAND]",
	  .help = "this list, or a command's options",
	  .opts = { { "--commands", NULL, "the commands, one a line" },
		    { "--options", "COMMAND", "the command's options, one a line (the "
					      "value's name after a blank)" },
		    { "--args", "COMMAND", "the command's positional arguments, one a "
					   "line" } } },
	/* Sent by the CLI itself: `up` asks whether a daemon runs, the
	 * waiting commands poll their work. */
	{ .name = "ping", .request = node_req_ping, .while_stopping = true, .usage = "ping" },
	{ .name = "events-poll", .request = node_req_events_poll, .while_stopping = true,
	  .max_args = 1, .args = "SEQ", .usage = "events-poll [--now|SEQ]",
	  .opts = { { "--now", NULL, "the current state first" } } },
	{ .name = "progress", .request = node_req_progress, .min_args = 1, .max_args = 1,
	  .args = "mode|verify|restore-saved", .usage = "progress mode|verify|restore-saved" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

const struct command *command_at(unsigned i)
{
	return i < NCOMMANDS ? &commands[i] : NULL;
}

bool command_takes_paths(const char *name)
{
	const struct command *c = command_find(name);

	if (!c)
		return false;
	for (int i = 0; i < COMMAND_OPTS_MAX && c->opts[i].name; i++)
		if (c->opts[i].value && strstr(c->opts[i].value, "FILE"))
			return true;
	return c->request && c->args && strstr(c->args, "FILE");
}

/* A command of the CLI's (not one it only sends itself), or NULL after
 * saying so. */
static const struct command *public_command(const char *name)
{
	const struct command *c = command_find(name);

	if (c && c->cli)
		return c;
	log_err("help: unknown command '%s' (try: blkrep help)", name);
	return NULL;
}

void command_print_help(const struct command *c)
{
	const struct command_opt *o;
	char left[64];

	if (c->description)
		printf("usage: blkrep %s\n%s\n", c->usage, c->description);
	else	/* the help line as a sentence */
		printf("usage: blkrep %s\n%c%s.\n", c->usage, toupper((unsigned char)c->help[0]),
		       c->help + 1);
	printf("\noptions:\n");
	for (int i = 0; i < COMMAND_OPTS_MAX && (o = &c->opts[i])->name; i++) {
		snprintf(left, sizeof(left), "%s%s%s", o->name, o->value ? " " : "",
			 o->value ? o->value : "");
		printf("  %-22s %s\n", left, o->help);
	}
	printf("  %-22s %s\n", "-h, --help", "print this help");
	if (strcmp(c->name, "serve") != 0 && strcmp(c->name, "help") != 0 &&
	    strcmp(c->name, "version") != 0)
		printf("  %-22s %s\n  %-22s %s\n", "-c, --config FILE",
		       "the config (default " CLI_DEFAULT_CONFIG ")", "--node NAME",
		       "this node (default: the node named like the host)");
}

static void print_overview(void)
{
	printf("usage: blkrep [-c CONFIG] [--node NAME] COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].help && commands[i].cli)
			printf("  %-14s %s\n", commands[i].name, commands[i].help);
	printf("\n-c defaults to %s; --node to the node named like this host.\n"
	       "`blkrep help COMMAND` or `blkrep COMMAND --help` shows a command's options.\n",
	       CLI_DEFAULT_CONFIG);
}

/* `help --options CMD` (every option, "NAME" or "NAME VALUE", then
 * --help) or `help --args CMD` (the positional names). */
static int print_spec(const char *name, bool options)
{
	const struct command *c = public_command(name);
	char arg[64];

	if (!c)
		return 2;
	for (int i = 0; options && i < COMMAND_OPTS_MAX && c->opts[i].name; i++)
		printf("%s%s%s\n", c->opts[i].name, c->opts[i].value ? " " : "",
		       c->opts[i].value ? c->opts[i].value : "");
	if (options)
		printf("--help\n");
	for (int i = 0; !options && cmdspec_arg_name(c, i, arg, sizeof(arg)); i++)
		printf("%s\n", arg);
	return 0;
}

int command_help(struct cli *cli)
{
	const struct command *c;

	for (int i = 1; i < cli->argc; i++) {
		const char *a = cli->argv[i];

		if (strcmp(a, "--commands") == 0) {
			for (size_t k = 0; k < NCOMMANDS; k++)
				if (commands[k].help && commands[k].cli)
					printf("%s\n", commands[k].name);
			return 0;
		}
		if ((strcmp(a, "--options") == 0 || strcmp(a, "--args") == 0) && i + 1 < cli->argc)
			return print_spec(cli->argv[i + 1], a[2] == 'o');
	}
	if (cli->argc < 2) {
		print_overview();
		return 0;
	}
	c = public_command(cli->argv[1]);
	if (!c)
		return 2;
	command_print_help(c);
	return 0;
}

int command_version(struct cli *cli)
{
	(void)cli;
	printf("blkrep %s\n", BLKREP_VERSION);
	return 0;
}

/* The command of a request, its words checked; NULL once req is answered
 * (unknown, stopping, bad arguments). */
static const struct command *request_command(struct control_req *req, bool stopping, int *argc,
					     char *const **argv)
{
	const char *name;
	const struct command *c;
	enum cmdspec_verdict v = CMDSPEC_OK;
	char why[256] = "help is the CLI's";

	*argv = control_req_words(req, argc);
	name = *argc ? (*argv)[0] : "";
	c = command_find(name);
	if (c && !c->request)
		c = NULL; /* the CLI's own */
	if (c)
		v = cmdspec_check(c, *argc, *argv, why, sizeof(why));
	if (!(c && c->while_stopping) && stopping)
		control_reply(req, false, "the daemon is stopping");
	else if (!c)
		control_reply(req, false, "unknown request '%s'", name);
	else if (v != CMDSPEC_OK)
		control_reply(req, false, "usage: blkrep %s (%s)", c->usage, why);
	else
		return c;
	return NULL;
}

void node_handle(void *arg, struct control_req *req)
{
	struct node *n = arg;
	int argc;
	char *const *argv;
	const struct command *c = request_command(req, node_stopping(n), &argc, &argv);

	if (c)
		c->request(n, req, argc, argv);
}

void witness_handle(void *arg, struct control_req *req)
{
	struct witness *w = arg;
	int argc;
	char *const *argv;
	const struct command *c = request_command(req, witness_stopping(w), &argc, &argv);

	if (!c)
		return;
	if (!strcmp(c->name, "status"))
		witness_req_status(w, req, cmdspec_has_flag(argc, argv, "--json"));
	else if (!strcmp(c->name, "down"))
		witness_req_down(w, req);
	else if (!strcmp(c->name, "ping"))
		control_reply(req, true, "pong\n");
	else
		control_reply(req, false, "%s is a witness (witness = yes): it keeps no data",
			      witness_name(w));
}

const struct node_above witness_above = { .handle = witness_handle };

const struct node_above node_above = {
	.handle = node_handle,
	.observe = obs_new,
	.tick = obs_tick,
	.unobserve = obs_free,
};
