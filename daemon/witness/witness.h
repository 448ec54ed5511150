/* The witness: the daemon `blkrep up` runs on a node with witness = yes.
 * A diskless voter of its resource: it links to every data node over an
 * ordinary replication link (proto/peer: TLS, the hub, authentication,
 * keepalive as any node's), says it is a witness (HELLO/STATE: role
 * WITNESS, disk DISKLESS, size 0, its generations), keeps the generation
 * the primary announces (MSG_GEN) in its state file (wstate.h), makes it
 * durable before it answers a FLUSH, and drops a link that sends it data.
 * It is never primary and holds no data.  Same run directory, log file,
 * control socket and signals as a data node (daemon/ctl/rundir.h). */
#ifndef BLKREP_WITNESS_H
#define BLKREP_WITNESS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/node.h"

struct config;
struct config_node;
struct control_req;
struct loop;
struct witness;

/* Runs the witness until `blkrep down`, SIGINT or SIGTERM, as node_run()
 * does a data node (ready_fd the same).  above's handle answers the
 * control socket's requests, called with the witness as its arg (the
 * command table's witness_handle()); its observer is not used.  NULL:
 * every request but ping, status and down is refused.  Returns the exit
 * code. */
int witness_run(struct config *cfg, const struct config_node *me, int ready_fd,
		const struct node_above *above);

/* witness_run() in parts, as node.h's, for the simulator: NULL after
 * logging (a corrupt state file: one line saying what to do). */
struct witness *witness_start(struct config *cfg, const struct config_node *me, int ready_fd,
			      const struct node_above *above);
struct loop *witness_loop(const struct witness *w);
bool witness_running(struct witness *w);
int witness_finish(struct witness *w, bool loop_ok);
void witness_abandon(struct witness *w);

/* --- for the control requests (daemon/cli/commands.c) --- */
/* `status [--json]`: the witness's generation, and each data node's link,
 * role, disk and generation. */
void witness_req_status(struct witness *w, struct control_req *req, bool json);
/* `down`: answers, then stops. */
void witness_req_down(struct witness *w, struct control_req *req);
bool witness_stopping(const struct witness *w);
const char *witness_name(const struct witness *w);

#endif
