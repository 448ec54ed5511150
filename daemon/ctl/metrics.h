/* The node's Prometheus metrics: the text exposition format (version
 * 0.0.4) rendered from a snapshot of the node's figures.  Pure: no clock,
 * no I/O, no allocation; the caller (daemon/ctl/obs.c) fills struct
 * metrics_state and serves the text (`blkrep metrics`, and HTTP /metrics
 * through daemon/ctl/httpd.c).  Every series carries the labels resource
 * and node; those about a peer also peer, one series per peer.  The names
 * are listed in the README ("Monitoring"). */
#ifndef BLKREP_METRICS_H
#define BLKREP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "utils/hist.h"

#define METRICS_TEXT_MAX (48U << 10) /* the rendered text fits this */

#define METRICS_PEERS_MAX 7 /* a resource has at most 8 nodes */

/* One peer's figures: its series carry peer="NAME". */
struct metrics_peer {
	const char *name;
	const char *peer_disk;	/* as disk, or "unknown" */
	const char *connection; /* "standalone", "connecting", "connected", "splitbrain" */
	bool split_brain;
	uint64_t out_of_sync_bytes, lag_bytes;
	double lag_seconds;
	uint64_t resynced_bytes; /* sent as a resync's source */
	uint64_t resync_done_bytes, resync_total_bytes, resync_bytes_per_second; /* 0: none */
};

struct metrics_state {
	const char *resource, *node;
	bool primary;
	const char *disk; /* meta_disk_name(): "inconsistent" ... "uptodate" */
	bool disk_error, suspended;
	bool quorum; /* connected to a majority of the voters (or quorum off) */
	uint64_t writes, al_writes;
	/* The node's, over every peer: labelled with the peer when it is the
	 * only one, with resource and node alone otherwise. */
	uint64_t replicated_bytes;
	const struct hist *local_latency, *ack_latency; /* NULL: rendered empty */
	unsigned npeers; /* peers[0 .. npeers - 1]; more than METRICS_PEERS_MAX are left out */
	struct metrics_peer peers[METRICS_PEERS_MAX];
};

/* Renders m into buf (len bytes, terminated).  Returns the text's length,
 * or 0 if it does not fit (then buf holds ""). */
size_t metrics_render(const struct metrics_state *m, char *buf, size_t len);

#endif
