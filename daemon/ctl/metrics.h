/* The node's Prometheus metrics: the text exposition format (version
 * 0.0.4) rendered from a snapshot of the node's figures.  Pure: no clock,
 * no I/O, no allocation; the caller (daemon/ctl/obs.c) fills struct
 * metrics_state and serves the text (`blkrep metrics`, and HTTP /metrics
 * through daemon/ctl/httpd.c).  Every series carries the labels resource
 * and node; those about the peer also peer.  The names are listed in the
 * README ("Monitoring"). */
#ifndef BLKREP_METRICS_H
#define BLKREP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "utils/hist.h"

#define METRICS_TEXT_MAX (32U << 10) /* the rendered text fits this */

struct metrics_state {
	const char *resource, *node, *peer;
	bool primary;
	const char *disk;	/* meta_disk_name(): "inconsistent" ... "uptodate" */
	const char *peer_disk;	/* as disk, or "unknown" */
	const char *connection; /* "standalone", "connecting", "connected", "splitbrain" */
	bool split_brain, disk_error, suspended;
	uint64_t out_of_sync_bytes, lag_bytes;
	double lag_seconds;
	uint64_t writes, replicated_bytes, resynced_bytes, resync_bytes_per_second;
	uint64_t al_writes;
	const struct hist *local_latency, *ack_latency; /* NULL: rendered empty */
};

/* Renders m into buf (len bytes, terminated).  Returns the text's length,
 * or 0 if it does not fit (then buf holds ""). */
size_t metrics_render(const struct metrics_state *m, char *buf, size_t len);

#endif
