/* The failover oracle of three-node seeds: see simfo.h. */
#include "simfo.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/node.h"
#include "daemon/repl/sync.h"
#include "simrt.h"
#include "utils/bitmap.h"

struct watch {
	bool on;
	int p;			/* the new primary */
	uint64_t bound;		/* bytes its bookkeeping covered */
	uint64_t rs0;		/* its resynced bytes with p at the promotion */
	struct node *np, *nx;	/* the incarnations watched */
};

static struct watch W[SIM_NODES];
static struct simfo_counts C;

void simfo_reset(void)
{
	memset(W, 0, sizeof(W));
}

const struct simfo_counts *simfo_counts(void)
{
	return &C;
}

static struct sync *link_of(struct node *n, struct node *other)
{
	return node_peer_named(n, local_sb(node_local(other))->node);
}

/* Bytes of the data area that either bitmap marks: extents of
 * extent_bytes, the last one cut at data_bytes. */
static uint64_t union_bytes(struct bitmap *a, struct bitmap *b, uint64_t extent,
			    uint64_t data_bytes)
{
	uint64_t n = bitmap_nbits(a), bytes = 0;

	for (uint64_t bit = 0; bit < n && bit * extent < data_bytes; bit++) {
		if (!bitmap_test(a, bit) && !bitmap_test(b, bit))
			continue;
		bytes += bit * extent + extent > data_bytes ? data_bytes - bit * extent : extent;
	}
	return bytes;
}

void simfo_promoted(int p, struct node *const *nodes, int nn, uint64_t data_bytes)
{
	struct node *np = nodes[p];

	for (int x = 0; x < nn; x++) {
		struct node *nx = nodes[x];
		struct sync *sp, *sx;
		struct local *lp, *lx;

		W[x].on = false;
		if (x == p || !nx || !np)
			continue;
		sp = link_of(np, nx);
		sx = link_of(nx, np);
		if (!sp || !sx || !sync_up(sp) || !sync_up(sx) || node_is_primary(nx))
			continue;
		lp = node_local(np);
		lx = node_local(nx);
		W[x] = (struct watch){
			.on = true,
			.p = p,
			.bound = union_bytes(local_slot_bm(lp, sync_slot(sp)),
					     local_slot_bm(lx, sync_slot(sx)),
					     local_sb(lp)->extent_bytes, data_bytes),
			.rs0 = sync_resynced_bytes(sx),
			.np = np,
			.nx = nx,
		};
		C.begun++;
		C.zero_bound += W[x].bound == 0;
		sim_trace("driver: oracle 5 watches %s: its bookkeeping covers %" PRIu64 " bytes",
			  local_sb(lx)->node, W[x].bound);
	}
}

void simfo_watch(struct node *const *nodes)
{
	for (int x = 0; x < SIM_NODES; x++) {
		struct watch *w = &W[x];
		struct sync *sx, *sp;

		if (!w->on)
			continue;
		if (nodes[x] != w->nx || nodes[w->p] != w->np || !node_is_primary(w->np) ||
		    !(sx = link_of(w->nx, w->np)) || !(sp = link_of(w->np, w->nx)) ||
		    !sync_up(sx) || !sync_up(sp)) {
			w->on = false;
			C.disturbed++;
		}
	}
}

bool simfo_check(struct node *const *nodes, const char *const *names, char *why, unsigned len)
{
	for (int x = 0; x < SIM_NODES; x++) {
		struct watch *w = &W[x];
		uint64_t got;

		if (!w->on)
			continue;
		w->on = false;
		got = sync_resynced_bytes(link_of(nodes[x], nodes[w->p])) - w->rs0;
		C.checked++;
		C.bound_bytes += w->bound;
		C.resynced_bytes += got;
		sim_trace("driver: oracle 5: %s received %" PRIu64 " bytes by resync from %s, "
			  "its bookkeeping covered %" PRIu64, names[x], got, names[w->p], w->bound);
		if (got > w->bound) {
			snprintf(why, len,
				 "after the failover to %s, %s received %" PRIu64 " bytes by resync, "
				 "more than its bookkeeping covered (%" PRIu64 " bytes)",
				 names[w->p], names[x], got, w->bound);
			return false;
		}
	}
	return true;
}
