/* The primary's side of replication: the object that admits a client's
 * write (the activity log, rule 1, with its flush epochs, rule 7), sends
 * it through the replication stream and answers it.  Every node has one,
 * ready for a promotion.  The functions that act on the node's stream as a
 * whole (node_repl_submit() and the other repl_ops, node_repl_complete(),
 * node_send() ...) are declared in node_int.h. */
#ifndef BLKREP_PRIMARY_H
#define BLKREP_PRIMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node;
struct primary;

/* After the node's metadata, bitmap and data area are open.  NULL after
 * logging why. */
struct primary *primary_new(struct node *n);
void primary_free(struct primary *p);

/* Reads the activity log on disk; after a crash as primary, marks its
 * extents out of sync (see alog_recover()). */
int primary_recover(struct primary *p, bool crashed);

/* Without a peer, extents leave the activity log once idle. */
void primary_standalone(struct primary *p, bool on);

/* Once a second, from the node's tick. */
void primary_tick(struct primary *p);

struct primary_stats {
	uint64_t writes;	   /* client writes admitted */
	uint64_t replicated_bytes; /* payload sent to the peer */
	unsigned al_extents;	   /* in the activity log */
	const char *al_error;	   /* why the last snapshot failed, or "" */
};
void primary_stats(const struct primary *p, struct primary_stats *st);

#endif
