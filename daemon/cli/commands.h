/* Every command of blkrep in one table: what `blkrep NAME` runs, the
 * request a node's daemon answers under the same name (with its argument
 * rules and whether it is answered while the daemon stops), and the help
 * line.  The CLI (main.c) and the daemon's control socket (node_handle())
 * both look commands up here; nothing else matches command names. */
#ifndef BLKREP_COMMANDS_H
#define BLKREP_COMMANDS_H

#include <stdbool.h>

struct cli;
struct control_req;
struct node;

/* A CLI command: returns the exit status (0, 1 failed, 2 bad usage). */
typedef int command_cli_fn(struct cli *cli);
/* The daemon's answer to a request: argv[0] is the command's name; it
 * answers req exactly once (control_reply()), now or later. */
typedef void command_request_fn(struct node *n, struct control_req *req, int argc,
				char *const *argv);

#define COMMAND_ANY_ARGS (-1)

struct command {
	const char *name;
	command_cli_fn *cli;	       /* NULL: sent by the CLI itself only */
	command_request_fn *request;   /* NULL: the CLI alone */
	/* Words after the name the request takes; outside the range the
	 * daemon answers "usage: blkrep USAGE".  COMMAND_ANY_ARGS: the
	 * handler checks (flags anywhere, or none). */
	int min_args, max_args;
	bool while_stopping;	       /* answered while the daemon stops */
	const char *usage;	       /* "mode sync|async" */
	const char *help;	       /* for `blkrep help`; NULL: not listed */
};

/* The command called name, or NULL. */
const struct command *command_find(const char *name);

/* Whether command name's words other than --options are file names (the
 * CLI sends them absolute: the daemon's working directory is not the
 * user's). */
bool command_takes_paths(const char *name);

/* `blkrep help` and `blkrep version`. */
int command_help(struct cli *cli);
int command_version(struct cli *cli);

/* The control socket's handler of a node (arg): looks the request up and
 * answers it, or says why not (unknown, stopping, bad arguments). */
void node_handle(void *arg, struct control_req *req);

/* The node's requests (daemon/ctl/node_ctl.c). */
command_request_fn node_req_status, node_req_ping, node_req_primary, node_req_secondary,
	node_req_progress, node_req_outdate_peer, node_req_mode, node_req_verify,
	node_req_resync, node_req_invalidate, node_req_resolve, node_req_restore,
	node_req_connect, node_req_disconnect, node_req_down, node_req_attach, node_req_detach;
/* Events and metrics (daemon/ctl/obs.c). */
command_request_fn node_req_events_poll, node_req_metrics;
/* Whether the node is stopping (only while_stopping requests then). */

#endif
