/* Buddy allocator: blocks of BUFPOOL_MIN_BLOCK << order.  Free blocks of each
 * order sit on a doubly linked list threaded through per-block index arrays,
 * so allocation and release are O(orders) with no per-call malloc. */
#include "bufpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDERS	32
#define NONE		UINT32_MAX
#define ORDER_FREE	0x80	/* flag in order[]: block heads a free block */

struct bufpool {
	uint8_t *arena;
	uint32_t nblocks;	/* minimum-size blocks in the arena */
	unsigned top;		/* order of the whole arena */
	size_t used;
	uint32_t head[MAX_ORDERS];
	uint32_t *next, *prev;
	uint8_t *order;		/* per block head: order | ORDER_FREE */
};

static void list_push(struct bufpool *p, uint32_t b, unsigned o)
{
	p->prev[b] = NONE;
	p->next[b] = p->head[o];
	if (p->head[o] != NONE)
		p->prev[p->head[o]] = b;
	p->head[o] = b;
	p->order[b] = (uint8_t)(o | ORDER_FREE);
}

static void list_del(struct bufpool *p, uint32_t b, unsigned o)
{
	if (p->prev[b] != NONE)
		p->next[p->prev[b]] = p->next[b];
	else
		p->head[o] = p->next[b];
	if (p->next[b] != NONE)
		p->prev[p->next[b]] = p->prev[b];
	p->order[b] = (uint8_t)o;
}

struct bufpool *bufpool_new(size_t arena_bytes)
{
	struct bufpool *p = calloc(1, sizeof(*p));
	size_t n = BUFPOOL_MIN_BLOCK;

	if (!p)
		return NULL;
	while (n * 2 <= arena_bytes && p->top + 1 < MAX_ORDERS) {
		n *= 2;
		p->top++;
	}
	p->nblocks = (uint32_t)(n / BUFPOOL_MIN_BLOCK);
	p->next = calloc(p->nblocks, sizeof(*p->next));
	p->prev = calloc(p->nblocks, sizeof(*p->prev));
	p->order = calloc(p->nblocks, 1);
	if (!p->next || !p->prev || !p->order ||
	    posix_memalign((void **)&p->arena, BUFPOOL_MIN_BLOCK, n)) {
		p->arena = NULL;
		bufpool_free(p);
		return NULL;
	}
	for (unsigned o = 0; o < MAX_ORDERS; o++)
		p->head[o] = NONE;
	list_push(p, 0, p->top);
	return p;
}

void bufpool_free(struct bufpool *p)
{
	if (!p)
		return;
	free(p->arena);
	free(p->next);
	free(p->prev);
	free(p->order);
	free(p);
}

static unsigned order_for(size_t len)
{
	unsigned o = 0;

	while (((size_t)BUFPOOL_MIN_BLOCK << o) < len)
		o++;
	return o;
}

void *bufpool_get(struct bufpool *p, size_t len)
{
	unsigned want, o;
	uint32_t b;

	if (len == 0 || len > bufpool_max(p))
		return NULL;
	want = order_for(len);
	for (o = want; o <= p->top && p->head[o] == NONE; o++)
		;
	if (o > p->top)
		return NULL;
	b = p->head[o];
	list_del(p, b, o);
	while (o > want) {	/* split, keeping the lower half */
		o--;
		list_push(p, b + (1U << o), o);
	}
	p->order[b] = (uint8_t)want;
	p->used += (size_t)BUFPOOL_MIN_BLOCK << want;
	return p->arena + (size_t)b * BUFPOOL_MIN_BLOCK;
}

void bufpool_put(struct bufpool *p, void *buf)
{
	uint32_t b = (uint32_t)(((uint8_t *)buf - p->arena) / BUFPOOL_MIN_BLOCK);
	unsigned o = p->order[b];

	p->used -= (size_t)BUFPOOL_MIN_BLOCK << o;
	while (o < p->top) {	/* merge with the buddy while it is free */
		uint32_t buddy = b ^ (1U << o);

		if (p->order[buddy] != (ORDER_FREE | o))
			break;
		list_del(p, buddy, o);
		b &= ~(1U << o);
		o++;
	}
	list_push(p, b, o);
}

size_t bufpool_max(const struct bufpool *p)
{
	return (size_t)BUFPOOL_MIN_BLOCK << p->top;
}

size_t bufpool_used(const struct bufpool *p)
{
	return p->used;
}
