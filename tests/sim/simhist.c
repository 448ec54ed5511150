/* The client's write history.  See simhist.h. */
#include "simhist.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct version {
	uint64_t id;
	bool acked;
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
	k->v[k->n] = (struct version){ id, false };
	return k->n++;
}

static void make_durable(struct simhist *h, uint64_t b, unsigned idx)
{
	if (idx > h->blk[b].durable)
		h->blk[b].durable = idx;
}

void simhist_acked(struct simhist *h, uint64_t b, unsigned idx, bool fua)
{
	h->blk[b].v[idx].acked = true;
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

/* Whether sector s of blk holds that sector of one allowed version. */
static bool sector_allowed(const struct block *k, uint64_t b, const uint8_t *blk, unsigned s)
{
	uint8_t want[HIST_BLOCK];

	for (unsigned i = k->durable; i < k->n; i++) {
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
	const struct block *k = &h->blk[b];
	int64_t value = simhist_decode(blk, b);
	int o;

	for (unsigned i = k->durable; i < k->n && value >= 0; i++)
		if (k->v[i].id == (uint64_t)value)
			return true;
	for (unsigned s = 0; s < HIST_BLOCK / 512; s++)
		if (!sector_allowed(k, b, blk, s))
			goto bad;
	return true;
bad:
	o = snprintf(why, whylen, "block %" PRIu64 " holds %" PRId64 ", allowed:", b, value);
	for (unsigned i = k->durable; i < k->n && o > 0 && (unsigned)o < whylen; i++)
		o += snprintf(why + o, whylen - (unsigned)o, " %" PRIu64 "%s", k->v[i].id,
			      i == k->durable ? "(durable)" : "");
	return false;
}
