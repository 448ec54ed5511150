/* Every command of blkrep in one table: what `blkrep NAME` runs, the
 * request a node's daemon answers under the same name (whether it is
 * answered while the daemon stops), its options and positional arguments
 * (the spec that daemon/cli/cmdspec.h checks a command line against), and
 * its help.  The CLI (main.c) and the daemon's control socket
 * (node_handle()) both look commands up here; nothing else matches command
 * names.
 *
 * Adding a command: one entry in the table of daemon/cli/commands.c, e.g.
 *
 *	{ .name = "events", .cli = cmd_request, .request = node_req_events,
 *	  .usage = "events [--now]", .help = "print the node's events",
 *	  .opts = { { "--now", NULL, "what happened so far, then exit" } } },
 *
 * with .min_args/.max_args and .args for positional words, an option's
 * second field naming its value ("FILE") when it takes one. */
#ifndef BLKREP_COMMANDS_H
#define BLKREP_COMMANDS_H

#include <stdbool.h>

struct cli;
struct control_req;
struct node;

/* A CLI command: returns the exit status (0, 1 failed, 2 bad usage). */
typedef int command_cli_fn(struct cli *cli);
/* The daemon's answer to a request: argv[0] is the command's name; it
 * answers req exactly once (control_reply()), now or later.  The words
 * have passed command_check() (cmdspec.h). */
typedef void command_request_fn(struct node *n, struct control_req *req, int argc,
				char *const *argv);

/* `blkrep version`, and the line each daemon start logs. */
#define BLKREP_VERSION "0.1.0"

#define COMMAND_OPTS_MAX 8

/* One option: "--force", or "--save-to" with a value (the next word, or
 * after '=' on the command line). */
struct command_opt {
	const char *name;	/* "--save-to"; NULL ends the list */
	const char *value;	/* what its value is ("FILE"); NULL: a flag */
	const char *help;	/* one line */
};

struct command {
	const char *name;
	command_cli_fn *cli;	       /* NULL: sent by the CLI itself only */
	command_request_fn *request;   /* NULL: the CLI alone */
	/* The positional words (those that are neither options nor option
	 * values): from min_args to max_args, named by args, space-separated
	 * ("FILE", "sync|async": a word with '|' lists the choices); the last
	 * name stands for any further ones. */
	int min_args, max_args;
	const char *args;
	bool while_stopping;	       /* answered while the daemon stops */
	const char *usage;	       /* "mode sync|async" */
	const char *help;	       /* one line for `blkrep help`; NULL: not listed */
	const char *description;       /* more for `blkrep help NAME`, or NULL */
	struct command_opt opts[COMMAND_OPTS_MAX];
};

/* The command called name, or NULL. */
const struct command *command_find(const char *name);

/* The i-th command of the table (in `blkrep help`'s order), NULL past the
 * end. */
const struct command *command_at(unsigned i);

/* Whether command name's words other than --options are file names (the
 * CLI sends them absolute: the daemon's working directory is not the
 * user's): a positional or option value named FILE. */
bool command_takes_paths(const char *name);

/* `blkrep help [--commands | --options CMD | --args CMD | CMD]` and
 * `blkrep version`. */
int command_help(struct cli *cli);
int command_version(struct cli *cli);

/* Prints c's usage, description and every option with its help (for
 * `blkrep help CMD` and `blkrep CMD --help`) to stdout. */
void command_print_help(const struct command *c);

/* The control socket's handler of a node (arg): looks the request up and
 * answers it, or says why not (unknown, stopping, bad arguments). */
void node_handle(void *arg, struct control_req *req);

/* What node_run() and node_start() are given: node_handle() and the
 * observer (daemon/ctl/obs.c). */
extern const struct node_above node_above;

/* The witness's handler (arg: the struct witness): status, down and ping;
 * any other request is refused ("NODE is a witness (witness = yes): it
 * keeps no data").  witness_above holds it, for witness_run(). */
void witness_handle(void *arg, struct control_req *req);
extern const struct node_above witness_above;

/* The node's requests (daemon/ctl/node_ctl.c). */
command_request_fn node_req_status, node_req_ping, node_req_primary, node_req_secondary,
	node_req_progress, node_req_outdate_peer, node_req_mode, node_req_verify,
	node_req_resync, node_req_invalidate, node_req_resolve, node_req_restore,
	node_req_connect, node_req_disconnect, node_req_down, node_req_attach, node_req_detach;
/* `adjust` (daemon/ctl/adjust.c). */
command_request_fn node_req_adjust;
/* Events and metrics (daemon/ctl/obs.c). */
command_request_fn node_req_events_poll, node_req_metrics;

#endif
