/* A node of a replicated resource: the daemon behind `blkrep up`.  It owns
 * the node's metadata (superblock, dirty bitmap), its role, the NBD export
 * while primary, the link to its peer and its control socket, all on one
 * event loop. */
#ifndef BLKREP_NODE_H
#define BLKREP_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ctl/control.h"

struct config;
struct config_node;
struct loop;
struct node;

/* What sits above the node, wired in by the CLI so that the node never
 * names it: the control socket's handler (the command table's
 * node_handle(), with the node as its arg), and the observer of its state
 * (daemon/ctl/obs: events and metrics), started once the node is set up,
 * ticked once a second, stopped after its loop. */
struct obs;
struct node_above {
	control_handler_fn *handle;
	struct obs *(*observe)(struct node *n); /* NULL: failed (logged) */
	void (*tick)(struct obs *o);
	void (*unobserve)(struct obs *o);
};

/* Runs the daemon until `blkrep down`, SIGINT or SIGTERM.  ready_fd >= 0:
 * "READY\n" is written there once the control socket answers, then stderr
 * moves to the node's log file (the parent `blkrep up` relays the lines
 * before that).  Returns the process exit code. */
int node_run(struct config *cfg, const struct config_node *me, int ready_fd,
	     const struct node_above *above);

/* node_run() in parts, for a driver that runs the loop itself (the
 * simulator, tests/sim/): node_start() sets the node up and returns it
 * ready (NULL after logging); run node_loop() while node_running();
 * node_finish() shuts down cleanly if loop_ok, frees the node and returns
 * the exit code.  node_abandon() only frees it, writing nothing: what a
 * crash leaves, for a driver whose simulated files already went dead. */
struct node *node_start(struct config *cfg, const struct config_node *me, int ready_fd,
			const struct node_above *above);
struct loop *node_loop(const struct node *n);
bool node_running(struct node *n);
int node_finish(struct node *n, bool loop_ok);
void node_abandon(struct node *n);

/* --- for the control requests (daemon/ctl/node_ctl.c, above the node) ---
 * The node's parts, which answer for themselves, and its lifecycle and
 * roles. */
struct config_node;
struct devices;
struct local;
struct obs;
struct primary;
struct sync;

struct local *node_local(const struct node *n);
struct primary *node_primary(const struct node *n);
/* The peer the config names, which status and the peer's commands speak
 * of (a resource has two nodes). */
struct sync *node_peer(const struct node *n);
/* Every peer: node_peer_at(n, 0 .. node_npeers(n) - 1); by name (NULL if
 * none). */
unsigned node_npeers(const struct node *n);
struct sync *node_peer_at(const struct node *n, unsigned i);
struct sync *node_peer_named(const struct node *n, const char *name);
struct devices *node_devices(const struct node *n);
/* The witnesses' links (issue 17): node_wit_at(n, 0 .. node_nwits(n) - 1). */
struct witlink;
unsigned node_nwits(const struct node *n);
struct witlink *node_wit_at(const struct node *n, unsigned i);
struct obs *node_obs(const struct node *n); /* events and metrics (daemon/ctl/obs.h) */
/* What the pair replicates: the smaller data area (a primary exports
 * that; a larger node's tail is never copied), and how much of it is out
 * of sync (the tail never counts). */
uint64_t node_size(const struct node *n);
uint64_t node_out_of_sync(const struct node *n);
/* Changed only by `adjust` (config_adjust()). */
struct config *node_config(const struct node *n);
const struct config_node *node_me(const struct node *n);
/* Stopping: only some requests are still answered. */
bool node_stopping(const struct node *n);
const char *node_peer_name(const struct node *n);
bool node_is_primary(const struct node *n);
const char *node_role_name(bool primary);

/* A peer's link is up. */
bool node_connected(const struct node *n);
/* Tells each peer (STATE) after a change of role, mode or disk. */
void node_send_state(struct node *n);
/* `down` on a primary: a handover when node_hands_over() (see
 * node_role.c); req (or NULL) is answered once it is done. */
bool node_hands_over(const struct node *n);
void node_cmd_handover(struct node *n, struct control_req *req);
/* Connect or listen (on), or drop the links (off). */
void node_links_enable(struct node *n, bool on);

/* `primary`: 0, or -1 with why (refused, or the export or metadata
 * failed: nothing changed). */
int node_promote(struct node *n, bool force, bool discard, bool no_quorum, char *why,
		 size_t whylen);
/* `secondary`: answers req now or once the demotion finished. */
void node_cmd_secondary(struct node *n, struct control_req *req);
/* The daemon stops once its clients and requests are done. */
/* Every peer not connected becomes outdated (on disk too), and a frozen
 * primary writes on without them; names gets them ("" if none). */
void node_outdate_down_peers(struct node *n, char *names, size_t len);
/* The fence-peer command's last state: "" (never run), "running",
 * "exit N", "killed by signal N", "did not start". */
const char *node_fence_state(const struct node *n);
/* A resync from source is done: the unfence-peer command runs. */
void node_unfence(const struct node *n, const char *source);
void node_begin_stop(struct node *n);

#endif
