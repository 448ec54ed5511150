/* What the replication parts (primary.c, secondary.c, the peers' sync)
 * ask of the node above them: its role and its exports, and the events
 * they report.  node.c fills one in and hands it down with itself as arg;
 * the parts call through it and never name node.c's functions, so that
 * calls go only downward (docs/ARCHITECTURE.md, "Layout"). */
#ifndef BLKREP_NODEUP_H
#define BLKREP_NODEUP_H

#include <stdbool.h>

struct msg_hello;
struct node_up {
	/* --- what the node is --- */
	bool (*primary)(void *node);	  /* the role now */
	/* Came up after a crash as primary, not yet resynced: its activity
	 * log's extents may hold writes on this node only. */
	bool (*crashed)(void *node);
	/* Primary only because it went down as one, with no device attached:
	 * it steps back if its peer became primary meanwhile. */
	bool (*resumed_only)(void *node);
	/* Whether it steps back to secondary for a peer that connects as
	 * primary (h: the peer's HELLO): a primary only because it went down
	 * as one, or one without quorum that another replaced meanwhile. */
	bool (*yields_to)(void *node, const struct msg_hello *h);
	/* A primary whose writes wait for quorum, without it. */
	bool (*quorum_blocked)(void *node);
	/* --- its NBD exports (the current one and one a demotion stopped) --- */
	bool (*exporting)(void *node);	  /* either exists */
	bool (*exports_parked)(void *node); /* client requests wait in either */
	void (*wake_exports)(void *node);   /* they are offered again */
	/* --- events --- */
	bool (*demote)(void *node); /* step back to secondary (see node_demote()) */
	void (*stop)(void *node);   /* the daemon stops */
	/* A resync with a peer finished, either way: what this node had in
	 * flight at a crash as primary is settled (crashed() is false now). */
	void (*resynced)(void *node);
	/* This node, the target, is up to date after a resync from source. */
	void (*resynced_from)(void *node, const char *source);
	/* This node's generation changed without a role change (a resync's
	 * end, a primary's MSG_GEN): every connected peer gets STATE. */
	void (*state_changed)(void *node);
};

#endif
