/* The node's state, shared by its two files: daemon/node.c (lifecycle:
 * start-up, readiness, the export, stopping, the peers as a set) and
 * daemon/node_role.c (promotion, demotion, the handover).  Nothing else
 * includes this: the rest of the daemon sees struct node through node.h. */
#ifndef BLKREP_NODE_INT_H
#define BLKREP_NODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <linux/time_types.h>

#include "daemon/ctl/control.h"
#include "proto/msg.h"
#include "daemon/ctl/rundir.h"
#include "utils/ioop.h"

#define NODE_POOL (64U << 20)
#define TICK_S	  1 /* idle flushes, so that bits and the log drain */
#define NODE_READY_WAIT_MS 3000 /* a primary back up waits this for its peer */

/* A resource has 2 to 8 nodes: every other node is a peer, with a link
 * (a full mesh).  Code that means every peer loops over peers[0..npeers). */
#define NODE_PEERS_MAX 7
/* Peer names, space-separated. */
#define NODE_NAMES_LEN (NODE_PEERS_MAX * 64)

struct hook;

struct node {
	const struct node_above *above; /* the control socket's handler, the observer */
	struct loop *loop;
	struct config *cfg;
	const struct config_node *me;
	uint8_t *secret;	 /* secmem, CONFIG_SECRET_MAX bytes */
	size_t secret_len;
	struct local *loc;	 /* the replica: data area, metadata, bitmap */
	struct meta_sb *sb;	 /* loc's superblock */
	struct primary *pri;	 /* the primary's side of replication */
	struct secondary *sec;	 /* the secondary's */
	struct sync *peers[NODE_PEERS_MAX]; /* the data nodes' */
	struct peer_hub *hub;	 /* three nodes or more: the links' shared listener */
	unsigned npeers;
	struct witlink *wits[NODE_PEERS_MAX]; /* the witnesses' (issue 17) */
	unsigned nwits;
	uint64_t af_since_ms;	 /* auto-failover: since when it would promote */
	bool stepping_down;	 /* quorum: another node was primary meanwhile */
	struct msg_hello stepdown_from; /* ... what that node (or a witness) said */
	struct devices *dev;	 /* /dev/nbdN, attach --loop, restore-saved */
	struct hook *fence;	 /* the fence-peer command (issue 18), once run */
	char fence_peers[NODE_NAMES_LEN]; /* ... for whom it runs or ran */
	char fence_result[48];	 /* ... "running", or its answer ("exit 4") */
	bool fence_refused;	 /* ... it said no for fence_peers: frozen */
	bool primary;
	bool crashed;		 /* came up after a crash as primary, not yet resynced */
	bool demoting;		 /* demoted, the crashed-primary flag not yet cleared */
	struct control_req *demote_req; /* `secondary`, answered once that is done */
	bool handover;		 /* `down`: stop once the demotion is done */
	uint64_t ready_by_ms;	 /* READY waits for the link's verdict until then */
	bool resumed;		 /* primary because it went down as one, not by command */
	struct server *srv;
	struct server *retiring; /* stopped, freed once done */
	struct control *ctl;
	struct obs *obs;	 /* events and metrics */
	struct rundir_signals sig;
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	bool stopping;
	int ready_fd;
	struct rundir run;	 /* its control socket, pid file and log */
};

/* node.c */
bool node_peer_primary(const struct node *n);
int node_start_export(struct node *n);
void node_stop_export(struct node *n);
void node_ready(struct node *n);
void node_relock(struct node *n);
void node_reconsider(struct node *n);

/* node_role.c */
void node_quorum_changed(void *arg);
bool node_quorum_yields(const struct node *n);
void node_quorum_tick(struct node *n);
void node_set_role(struct node *n, bool primary);
const char *node_record_memory(struct node *n);
bool node_finish_demote(struct node *n);
void node_up_report(struct node *n);
void node_demote_hook(void *arg);
bool node_demote(struct node *n);
const char *node_handover_to(const struct node *n);

/* node_hooks.c */
void node_failover_command(const struct node *n);
void node_fence_check(void *arg);

#endif
