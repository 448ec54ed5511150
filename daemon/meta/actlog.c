/* Slots live in one array.  A slot is on exactly one of three lists: free,
 * idle (no write in flight, most recently used at the head) or busy (writes
 * in flight).  Only idle slots can be evicted, and since epochs grow with
 * time the idle list's tail also has the lowest epoch, so the scan for a
 * victim from the tail stops at once in practice.  Extents are found through
 * a chained hash with twice as many buckets as slots. */
#include "actlog.h"

#include <stdlib.h>

#define NONE	UINT32_MAX

enum which_list { L_FREE, L_IDLE, L_BUSY, L_COUNT };

struct slot {
	uint32_t extent;
	uint32_t refs;		/* writes in flight */
	uint64_t epoch;		/* of the last write begun */
	uint64_t added_seq;	/* actlog seq of its insertion */
	uint32_t prev, next;	/* list links */
	uint32_t hnext;		/* hash chain */
	uint8_t list;
};

struct list {
	uint32_t head, tail;
};

struct actlog {
	unsigned nslots;
	unsigned count;
	uint32_t hash_mask;
	unsigned hash_shift;	/* 32 - log2(buckets): keep the product's top bits */
	uint64_t seq, persisted_seq;
	uint64_t flushed_epoch;	/* 0: nothing flushed yet (epochs begin at 1) */
	bool standalone;
	bool dropped;		/* an extent was evicted since actlog_take_dropped() */
	struct list lists[L_COUNT];
	struct slot *slots;
	uint32_t *buckets;
};

static void list_add_head(struct actlog *al, uint32_t i, enum which_list l)
{
	struct list *li = &al->lists[l];
	struct slot *s = &al->slots[i];

	s->list = (uint8_t)l;
	s->prev = NONE;
	s->next = li->head;
	if (li->head != NONE)
		al->slots[li->head].prev = i;
	else
		li->tail = i;
	li->head = i;
}

static void list_del(struct actlog *al, uint32_t i)
{
	struct list *li = &al->lists[al->slots[i].list];
	struct slot *s = &al->slots[i];

	if (s->prev != NONE)
		al->slots[s->prev].next = s->next;
	else
		li->head = s->next;
	if (s->next != NONE)
		al->slots[s->next].prev = s->prev;
	else
		li->tail = s->prev;
}

static void list_move(struct actlog *al, uint32_t i, enum which_list l)
{
	list_del(al, i);
	list_add_head(al, i, l);
}

static uint32_t *bucket(const struct actlog *al, uint32_t extent)
{
	return &al->buckets[(uint32_t)(extent * 0x9e3779b1U) >> al->hash_shift];
}

static uint32_t lookup(const struct actlog *al, uint32_t extent)
{
	uint32_t i = *bucket(al, extent);

	while (i != NONE && al->slots[i].extent != extent)
		i = al->slots[i].hnext;
	return i;
}

static void hash_del(struct actlog *al, uint32_t i)
{
	uint32_t *p = bucket(al, al->slots[i].extent);

	while (*p != i)
		p = &al->slots[*p].hnext;
	*p = al->slots[i].hnext;
}

/* Empties the log: every slot free, no extent hashed. */
static void reset(struct actlog *al)
{
	for (unsigned l = 0; l < L_COUNT; l++)
		al->lists[l].head = al->lists[l].tail = NONE;
	for (uint32_t b = 0; b <= al->hash_mask; b++)
		al->buckets[b] = NONE;
	for (uint32_t i = al->nslots; i-- > 0;)
		list_add_head(al, i, L_FREE);
	al->count = 0;
}

struct actlog *actlog_new(unsigned nslots)
{
	struct actlog *al;
	uint32_t nbuckets = 1;

	if (nslots < ACTLOG_SLOTS_MIN || nslots > ACTLOG_SLOTS_MAX)
		return NULL;
	al = calloc(1, sizeof(*al));
	if (!al)
		return NULL;
	al->hash_shift = 32;
	while (nbuckets < 2 * nslots) {
		nbuckets *= 2;
		al->hash_shift--;
	}
	al->nslots = nslots;
	al->hash_mask = nbuckets - 1;
	al->slots = calloc(nslots, sizeof(*al->slots));
	al->buckets = calloc(nbuckets, sizeof(*al->buckets));
	if (!al->slots || !al->buckets) {
		actlog_free(al);
		return NULL;
	}
	reset(al);
	return al;
}

void actlog_free(struct actlog *al)
{
	if (!al)
		return;
	free(al->slots);
	free(al->buckets);
	free(al);
}

/* Rule 2: no write in flight, and every write into it is durable on the
 * peer, or (standalone) recorded in the bitmap. */
static bool evictable(const struct actlog *al, const struct slot *s)
{
	return s->refs == 0 && (al->standalone || s->epoch <= al->flushed_epoch);
}

/* A free slot, or the least recently used evictable one emptied; NONE if
 * there is neither. */
static uint32_t take_slot(struct actlog *al)
{
	uint32_t i = al->lists[L_FREE].head;

	if (i != NONE) {
		list_del(al, i);
		return i;
	}
	for (i = al->lists[L_IDLE].tail; i != NONE; i = al->slots[i].prev)
		if (evictable(al, &al->slots[i]))
			break;
	if (i == NONE)
		return NONE;
	list_del(al, i);
	hash_del(al, i);
	al->count--;
	al->dropped = true;
	return i;
}

static void insert(struct actlog *al, uint32_t i, uint32_t extent, uint64_t epoch,
		   enum which_list l)
{
	struct slot *s = &al->slots[i];
	uint32_t *b = bucket(al, extent);

	s->extent = extent;
	s->epoch = epoch;
	s->refs = l == L_BUSY;
	s->added_seq = al->seq;
	s->hnext = *b;
	*b = i;
	list_add_head(al, i, l);
	al->count++;
}

enum actlog_result actlog_begin(struct actlog *al, uint32_t extent, uint64_t epoch)
{
	uint32_t i = lookup(al, extent);
	struct slot *s;

	if (epoch < ACTLOG_EPOCH_FIRST)
		epoch = ACTLOG_EPOCH_FIRST;	/* never "flushed" before a flush */
	if (i != NONE) {
		s = &al->slots[i];
		if (s->refs++ == 0)
			list_move(al, i, L_BUSY);
		if (epoch > s->epoch)
			s->epoch = epoch;
		return s->added_seq > al->persisted_seq ? ACTLOG_PENDING : ACTLOG_HIT;
	}
	i = take_slot(al);
	if (i == NONE)
		return ACTLOG_BUSY;
	al->seq++;
	insert(al, i, extent, epoch, L_BUSY);
	return ACTLOG_ADDED;
}

void actlog_end(struct actlog *al, uint32_t extent)
{
	uint32_t i = lookup(al, extent);

	if (i == NONE || al->slots[i].refs == 0)
		return;
	if (--al->slots[i].refs == 0)
		list_move(al, i, L_IDLE);
}

void actlog_flushed(struct actlog *al, uint64_t epoch)
{
	if (epoch > al->flushed_epoch)
		al->flushed_epoch = epoch;
}

void actlog_set_standalone(struct actlog *al, bool on)
{
	al->standalone = on;
}

uint64_t actlog_seq(const struct actlog *al)
{
	return al->seq;
}

void actlog_persisted(struct actlog *al, uint64_t seq)
{
	if (seq > al->seq)
		seq = al->seq;
	if (seq > al->persisted_seq)
		al->persisted_seq = seq;
}

uint64_t actlog_persisted_seq(const struct actlog *al)
{
	return al->persisted_seq;
}

bool actlog_dirty(const struct actlog *al)
{
	return al->persisted_seq < al->seq;
}

bool actlog_take_dropped(struct actlog *al)
{
	bool d = al->dropped;

	al->dropped = false;
	return d;
}

unsigned actlog_snapshot(const struct actlog *al, uint32_t *ext, unsigned max)
{
	static const enum which_list order[] = { L_IDLE, L_BUSY };
	unsigned n = 0;

	for (unsigned l = 0; l < 2; l++)
		for (uint32_t i = al->lists[order[l]].tail; i != NONE && n < max;
		     i = al->slots[i].prev)
			ext[n++] = al->slots[i].extent;
	return n;
}

unsigned actlog_load(struct actlog *al, const uint32_t *ext, unsigned n)
{
	reset(al);
	for (unsigned k = 0; k < n; k++) {
		uint32_t i;

		if (lookup(al, ext[k]) != NONE)
			continue;
		/* Every slot is idle with epoch 0, so the LRU one goes. */
		i = al->lists[L_FREE].head;
		if (i != NONE) {
			list_del(al, i);
		} else {
			i = al->lists[L_IDLE].tail;
			list_del(al, i);
			hash_del(al, i);
			al->count--;
		}
		insert(al, i, ext[k], 0, L_IDLE);
	}
	al->persisted_seq = al->seq;
	al->dropped = false;
	return al->count;
}

bool actlog_contains(const struct actlog *al, uint32_t extent)
{
	return lookup(al, extent) != NONE;
}

unsigned actlog_count(const struct actlog *al)
{
	return al->count;
}

unsigned actlog_refs(const struct actlog *al, uint32_t extent)
{
	uint32_t i = lookup(al, extent);

	return i == NONE ? 0 : al->slots[i].refs;
}
