/* The client's write history.  See simhist.h. */
#include "simhist.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A version whose bytes are whatever the node held (torn, unknown) when
 * the history was rebased on it: any content matches it. */
#define ANY_ID	UINT64_MAX

struct version {
	uint64_t id;
	bool acked;
	int8_t by;		/* the node whose export acknowledged it, or -1 */
	bool alone;		/* acked while that node was not connected */
	bool was_durable;	/* a FUA ack or a FLUSH made it durable */
	bool sub_alone;		/* submitted while the writer was alone */
	uint32_t sub_epoch;	/* the writer's state at submission */
};

struct block {
	struct version *v;
	unsigned n, cap;
	unsigned durable;	/* index of the newest durable version */
};

struct pending {		/* acked, not yet known durable */
	uint64_t b;
	unsigned idx;
	uint64_t seq;
};

struct simhist {
	uint64_t nblocks;
	struct block *blk;
	struct pending *pend;
	size_t npend, cappend;
	uint64_t ack_seq;
	uint64_t tickets[64];	/* ack_seq at each FLUSH sent, by ticket % 64 */
	uint64_t next_ticket;
	int writer;		/* the node the client writes to */
	bool writer_alone;	/* it is primary without its peer */
	bool writer_partial;	/* without one of its peers at least (= alone with two nodes) */
	uint32_t epoch;		/* bumped whenever writer or writer_alone change */
	uint64_t alone_acks;
	uint64_t acks_by[8];	/* blocks acknowledged, per node */
};

struct simhist *simhist_new(uint64_t blocks)
{
	struct simhist *h = calloc(1, sizeof(*h));

	if (!h || !(h->blk = calloc(blocks, sizeof(*h->blk))))
		abort();
	h->nblocks = blocks;
	for (uint64_t b = 0; b < blocks; b++)
		simhist_submit(h, b, 0);
	return h;
}

void simhist_free(struct simhist *h)
{
	if (!h)
		return;
	for (uint64_t b = 0; b < h->nblocks; b++)
		free(h->blk[b].v);
	free(h->blk);
	free(h->pend);
	free(h);
}

unsigned simhist_submit(struct simhist *h, uint64_t b, uint64_t id)
{
	struct block *k = &h->blk[b];

	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 4;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
		if (!k->v)
			abort();
	}
	k->v[k->n] = (struct version){ id, false, -1, false, false, h->writer_alone, h->epoch };
	return k->n++;
}

static void make_durable(struct simhist *h, uint64_t b, unsigned idx)
{
	/* Durable on both only if the FLUSH (or FUA write) was acked while
	 * the writer was connected. */
	h->blk[b].v[idx].was_durable |= !h->writer_partial;
	if (idx > h->blk[b].durable)
		h->blk[b].durable = idx;
}

void simhist_acked(struct simhist *h, uint64_t b, unsigned idx, bool fua)
{
	h->blk[b].v[idx].acked = true;
	h->blk[b].v[idx].by = (int8_t)h->writer;
	h->acks_by[h->writer & 7]++;
	/* The peer may lack what was acked alone (a write in flight at the
	 * cut is acked once local); the writer wrote alone for sure only if
	 * it was alone from submission to ack. */
	h->blk[b].v[idx].alone = h->writer_partial;
	h->alone_acks += h->blk[b].v[idx].sub_alone && h->writer_alone &&
			 h->blk[b].v[idx].sub_epoch == h->epoch;
	if (fua)
		return make_durable(h, b, idx);
	if (h->npend == h->cappend) {
		h->cappend = h->cappend ? h->cappend * 2 : 256;
		h->pend = realloc(h->pend, h->cappend * sizeof(*h->pend));
		if (!h->pend)
			abort();
	}
	h->pend[h->npend++] = (struct pending){ b, idx, ++h->ack_seq };
}

uint64_t simhist_flush_sent(struct simhist *h)
{
	uint64_t t = h->next_ticket++;

	h->tickets[t % 64] = h->ack_seq;
	return t;
}

/* Versions acked before the FLUSH was sent are durable now. */
void simhist_flushed(struct simhist *h, uint64_t ticket)
{
	uint64_t upto = h->tickets[ticket % 64];
	size_t keep = 0;

	if (ticket + 64 < h->next_ticket)
		return; /* too old to know: claims nothing */
	for (size_t i = 0; i < h->npend; i++) {
		if (h->pend[i].seq <= upto)
			make_durable(h, h->pend[i].b, h->pend[i].idx);
		else
			h->pend[keep++] = h->pend[i];
	}
	h->npend = keep;
}

void simhist_forget_pending(struct simhist *h)
{
	h->npend = 0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

void simhist_fill(uint8_t *blk, uint64_t b, uint64_t id)
{
	uint64_t w[HIST_BLOCK / 8];

	w[0] = b;
	w[1] = id;
	for (unsigned i = 2; i < HIST_BLOCK / 8; i++)
		w[i] = mix(id * 0x9e3779b97f4a7c15ULL + i);
	memcpy(blk, w, HIST_BLOCK);
}

int64_t simhist_decode(const uint8_t *blk, uint64_t b)
{
	uint8_t want[HIST_BLOCK];
	uint64_t w[2];
	unsigned i;

	for (i = 0; i < HIST_BLOCK && !blk[i]; i++)
		;
	if (i == HIST_BLOCK)
		return 0;
	memcpy(w, blk, sizeof(w));
	if (w[0] != b || !w[1] || w[1] > INT64_MAX)
		return -1;
	simhist_fill(want, b, w[1]);
	return memcmp(want, blk, HIST_BLOCK) ? -1 : (int64_t)w[1];
}

void simhist_set_writer(struct simhist *h, int node)
{
	h->writer = node;
	h->epoch++;
}

void simhist_set_alone(struct simhist *h, bool alone)
{
	if (alone != h->writer_alone)
		h->epoch++;
	h->writer_alone = alone;
	h->writer_partial = alone;
}

void simhist_set_partial(struct simhist *h, bool partial)
{
	h->writer_partial = partial;
}

uint64_t simhist_alone_acks(const struct simhist *h)
{
	return h->alone_acks;
}

uint64_t simhist_acks_by(const struct simhist *h, int node)
{
	return h->acks_by[node & 7];
}

/* The newest version of block b that blk is, exactly; -1 if none. */
static long version_of(const struct block *k, uint64_t b, const uint8_t *blk)
{
	int64_t value = simhist_decode(blk, b);

	for (long i = (long)k->n - 1; i >= 0 && value >= 0; i--)
		if (k->v[i].id == (uint64_t)value)
			return i;
	return -1;
}

void simhist_rebase(struct simhist *h, uint64_t b, const uint8_t *blk, const uint8_t *media)
{
	struct block *k = &h->blk[b];
	long i = version_of(k, b, blk), m = version_of(k, b, media);

	if (i < 0 || m < 0) {
		simhist_submit(h, b, ANY_ID);
		k->durable = k->n - 1;
		return;
	}
	/* Never raised: what the node holds newer than the durable version
	 * may be only in its page cache. */
	if ((unsigned)i < k->durable)
		k->durable = (unsigned)i;
	if ((unsigned)m < k->durable)
		k->durable = (unsigned)m;
}

bool simhist_which(const struct simhist *h, uint64_t b, const uint8_t *blk, unsigned *idx,
		   int *acked_by)
{
	const struct block *k = &h->blk[b];
	long i = version_of(k, b, blk);

	if (i < 0 || k->v[i].id == ANY_ID)
		return false;
	*idx = (unsigned)i;
	*acked_by = k->v[i].acked ? k->v[i].by : -1;
	return true;
}

static bool alone_by(const struct version *v, int node)
{
	return v->acked && v->alone && v->by == node;
}

/* The oldest allowed version: the durable one; or, for another node than
 * skip, the newest one made durable while skip was connected and not acked
 * by skip alone.  Another node promoted by the rules need not hold what
 * skip acked alone, nor what skip made durable alone (a FLUSH acked after
 * the link was lost: the other node may have held that write only in its
 * page cache, and a power loss there took it; seed 999534371). */
static unsigned lowest(const struct block *k, int skip)
{
	unsigned i = k->durable;

	if (skip < 0)
		return i;
	while (i > 0 && (!k->v[i].was_durable || alone_by(&k->v[i], skip)))
		i--;
	return i;
}

/* Whether sector s of blk holds that sector of one allowed version. */
static bool sector_allowed(const struct block *k, uint64_t b, const uint8_t *blk, unsigned s,
			   unsigned low)
{
	uint8_t want[HIST_BLOCK];

	for (unsigned i = low; i < k->n; i++) {
		if (k->v[i].id == ANY_ID)
			return true;
		if (k->v[i].id)
			simhist_fill(want, b, k->v[i].id);
		else
			memset(want, 0, sizeof(want));
		if (!memcmp(want + s * 512, blk + s * 512, 512))
			return true;
	}
	return false;
}

bool simhist_allowed(const struct simhist *h, uint64_t b, const uint8_t *blk, char *why,
		     unsigned whylen)
{
	return simhist_allowed_but(h, b, blk, -1, why, whylen);
}

bool simhist_allowed_but(const struct simhist *h, uint64_t b, const uint8_t *blk, int skip,
			 char *why, unsigned whylen)
{
	const struct block *k = &h->blk[b];
	int64_t value = simhist_decode(blk, b);
	unsigned low = lowest(k, skip);
	int o;

	for (unsigned i = low; i < k->n; i++)
		if (k->v[i].id == ANY_ID || (value >= 0 && k->v[i].id == (uint64_t)value))
			return true;
	for (unsigned s = 0; s < HIST_BLOCK / 512; s++)
		if (!sector_allowed(k, b, blk, s, low))
			goto bad;
	return true;
bad:
	o = snprintf(why, whylen, "block %" PRIu64 " holds %" PRId64 ", allowed:", b, value);
	for (unsigned i = low; i < k->n && o > 0 && (unsigned)o < whylen; i++)
		o += snprintf(why + o, whylen - (unsigned)o, " %" PRIu64 "%s", k->v[i].id,
			      i == k->durable ? "(durable)" : "");
	return false;
}
