/* A node of a replicated resource: the daemon behind `blkrep up`.  It owns
 * the node's metadata (superblock, dirty bitmap), its role, the NBD export
 * while primary, the link to its peer and its control socket, all on one
 * event loop. */
#ifndef BLKREP_NODE_H
#define BLKREP_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/ctl/control.h"

struct config;
struct config_node;
struct loop;
struct node;

/* Runs the daemon until `blkrep down`, SIGINT or SIGTERM.  ready_fd >= 0:
 * "READY\n" is written there once the control socket answers, then stderr
 * moves to the node's log file (the parent `blkrep up` relays the lines
 * before that).  handle answers the control socket's requests, with the
 * node as its arg: the command table's node_handle(), wired in by the CLI
 * so that the node never names the commands above it.  Returns the
 * process exit code. */
int node_run(struct config *cfg, const struct config_node *me, int ready_fd,
	     control_handler_fn *handle);

/* node_run() in parts, for a driver that runs the loop itself (the
 * simulator, tests/sim/): node_start() sets the node up and returns it
 * ready (NULL after logging); run node_loop() while node_running();
 * node_finish() shuts down cleanly if loop_ok, frees the node and returns
 * the exit code.  node_abandon() only frees it, writing nothing: what a
 * crash leaves, for a driver whose simulated files already went dead. */
struct node *node_start(struct config *cfg, const struct config_node *me, int ready_fd,
			control_handler_fn *handle);
struct loop *node_loop(const struct node *n);
bool node_running(struct node *n);
int node_finish(struct node *n, bool loop_ok);
void node_abandon(struct node *n);

/* RUN_DIR/RESOURCE-NODE.SUFFIX, RUN_DIR from $BLKREP_RUN_DIR or /run/blkrep. */
int node_run_path(char *buf, size_t len, const char *resource, const char *node,
		  const char *suffix);

#endif
