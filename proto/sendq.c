/* The peer link's send queue.  See sendq.h.
 *
 * q->out[tail..head) (indices modulo entries) are queued; the first nbatch
 * of them are in the batch being sent. */
#include "proto/sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "utils/bufio.h"
#include "utils/fifo.h"

struct out {
	uint8_t hdr[MSG_HDR_SIZE];
	const void *data;
	uint32_t len;
	bool copied; /* data is in the arena */
};

struct sendq {
	struct out *out;
	unsigned entries;
	uint32_t head, tail;
	unsigned nbatch;
	struct fifo *arena;
	struct iovec iov[SENDQ_IOVS];
	unsigned iov_pos, iov_cnt;
	struct msghdr msg;
};

struct sendq *sendq_new(unsigned entries, size_t arena_bytes)
{
	struct sendq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->entries = entries;
	q->out = calloc(entries, sizeof(*q->out));
	q->arena = fifo_new(arena_bytes);
	if (!q->out || !q->arena) {
		sendq_free(q);
		return NULL;
	}
	return q;
}

void sendq_free(struct sendq *q)
{
	if (!q)
		return;
	fifo_free(q->arena);
	free(q->out);
	free(q);
}

int sendq_push(struct sendq *q, const struct msg_hdr *h, const void *payload, unsigned reserve,
	       bool by_ref)
{
	struct out *o = &q->out[q->head % q->entries];
	void *copy;

	if (q->head - q->tail + reserve >= q->entries)
		return -ENOBUFS;
	msg_hdr_encode(o->hdr, h);
	o->len = h->length;
	o->data = NULL;
	o->copied = false;
	if (h->length && by_ref) {
		o->data = payload;
	} else if (h->length) {
		copy = fifo_alloc(q->arena, h->length);
		if (!copy)
			return -ENOBUFS;
		memcpy(copy, payload, h->length);
		o->data = copy;
		o->copied = true;
	}
	q->head++;
	return 0;
}

const void *sendq_pop(struct sendq *q)
{
	const struct out *o = &q->out[q->tail % q->entries];

	q->tail++;
	if (q->nbatch)
		q->nbatch--;
	if (o->copied) {
		(void)fifo_release(q->arena, o->data, o->len);
		return NULL;
	}
	return o->data;
}

unsigned sendq_len(const struct sendq *q)
{
	return q->head - q->tail;
}

size_t sendq_arena_room(const struct sendq *q)
{
	return fifo_room(q->arena);
}

unsigned sendq_batch(struct sendq *q)
{
	uint32_t i;

	q->iov_cnt = q->iov_pos = q->nbatch = 0;
	for (i = q->tail; i != q->head && q->iov_cnt + 2 <= SENDQ_IOVS; i++) {
		const struct out *o = &q->out[i % q->entries];

		iov_push(q->iov, &q->iov_cnt, o->hdr, MSG_HDR_SIZE);
		if (o->len)
			iov_push(q->iov, &q->iov_cnt, o->data, o->len);
		q->nbatch++;
	}
	return q->nbatch;
}

struct msghdr *sendq_msghdr(struct sendq *q)
{
	q->msg.msg_iov = q->iov + q->iov_pos;
	q->msg.msg_iovlen = q->iov_cnt - q->iov_pos;
	return &q->msg;
}

bool sendq_sent(struct sendq *q, size_t n)
{
	return iov_advance(q->iov, &q->iov_pos, q->iov_cnt, n);
}

unsigned sendq_in_batch(const struct sendq *q)
{
	return q->nbatch;
}

void sendq_reset(struct sendq *q)
{
	q->head = q->tail = 0;
	q->nbatch = 0;
	fifo_reset(q->arena);
}
