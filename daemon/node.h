/* A node of a replicated resource: the daemon behind `blkrep up`.  It owns
 * the node's metadata (superblock, dirty bitmap), its role, the NBD export
 * while primary, the link to its peer and its control socket, all on one
 * event loop. */
#ifndef BLKREP_NODE_H
#define BLKREP_NODE_H

#include <stddef.h>

#include "daemon/ctl/control.h"

struct config;
struct config_node;

/* Runs the daemon until `blkrep down`, SIGINT or SIGTERM.  ready_fd >= 0:
 * "READY\n" is written there once the control socket answers, then stderr
 * moves to the node's log file (the parent `blkrep up` relays the lines
 * before that).  handle answers the control socket's requests, with the
 * node as its arg: the command table's node_handle(), wired in by the CLI
 * so that the node never names the commands above it.  Returns the
 * process exit code. */
int node_run(struct config *cfg, const struct config_node *me, int ready_fd,
	     control_handler_fn *handle);

/* RUN_DIR/RESOURCE-NODE.SUFFIX, RUN_DIR from $BLKREP_RUN_DIR or /run/blkrep. */
int node_run_path(char *buf, size_t len, const char *resource, const char *node,
		  const char *suffix);

#endif
