/* The resync source.  See resync.h. */
#include "resync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>

#include "utils/ioop.h"
#include "utils/loop.h"
#include "nbd/server.h"
#include "nbd/wire.h"
#include "utils/bitmap.h"
#include "utils/clock.h"
#include "utils/extent.h"
#include "utils/log.h"

enum slot_state { SL_FREE, SL_READING, SL_WAITING, SL_SENT };

struct rs_slot {
	struct repl_req rr;	/* first in the struct: see slot_of() */
	struct ioop op;
	struct resync *r;
	uint8_t *buf;
	enum slot_state st;
	bool dropped;		/* the link went while it was being read */
};

struct resync {
	struct loop *loop;
	int fd;
	struct bitmap *bm;
	struct bitmap *sent;	/* extents sent in this pass */
	uint32_t extent_bytes;
	const struct resync_ops *ops;
	void *arg;
	bool running;
	bool idle_said;
	uint64_t limit_bits;
	uint64_t limit_bytes;
	uint64_t cursor;	/* next bit to look at */
	uint64_t rate;
	uint64_t rate_from_ns, rate_from_bytes; /* when and where the rate was set */
	uint64_t started_ns;
	uint64_t sent_bytes;	/* read and sent since the start */
	uint64_t done_bytes;	/* acknowledged */
	uint64_t total_bytes;
	unsigned busy;		/* slots not free */
	struct ioop timer_op;
	struct __kernel_timespec ts;
	bool timer_armed;
	struct rs_slot slot[RESYNC_SLOTS];
};

static void slot_read_done(struct ioop *op, int res);
static void timer_done(struct ioop *op, int res);

struct resync *resync_new(struct loop *loop, int fd, struct bitmap *bm, uint32_t extent_bytes,
			  const struct resync_ops *ops, void *arg)
{
	struct resync *r = calloc(1, sizeof(*r));

	if (!r || !(r->sent = bitmap_new(bitmap_nbits(bm))))
		goto fail;
	for (int i = 0; i < RESYNC_SLOTS; i++) {
		struct rs_slot *s = &r->slot[i];

		if (posix_memalign((void **)&s->buf, 4096, RESYNC_CHUNK))
			goto fail;
		s->r = r;
		s->op.done = slot_read_done;
	}
	r->loop = loop;
	r->fd = fd;
	r->bm = bm;
	r->extent_bytes = extent_bytes;
	r->ops = ops;
	r->arg = arg;
	r->timer_op.done = timer_done;
	return r;
fail:
	log_err("cannot allocate the resync buffers");
	resync_free(r);
	return NULL;
}

void resync_free(struct resync *r)
{
	if (!r)
		return;
	for (int i = 0; i < RESYNC_SLOTS; i++)
		free(r->slot[i].buf);
	bitmap_free(r->sent);
	free(r);
}

void resync_start(struct resync *r, uint64_t limit_bytes, uint64_t rate)
{
	uint64_t bits = extent_cover(limit_bytes, r->extent_bytes);

	r->limit_bytes = limit_bytes;
	r->limit_bits = bits < bitmap_nbits(r->bm) ? bits : bitmap_nbits(r->bm);
	r->rate = rate;
	r->started_ns = r->rate_from_ns = clock_now_ns();
	r->sent_bytes = r->done_bytes = r->rate_from_bytes = 0;
	r->total_bytes = 0;
	r->running = true;
	resync_next_pass(r);
}

void resync_set_rate(struct resync *r, uint64_t rate)
{
	r->rate = rate;
	r->rate_from_ns = clock_now_ns();
	r->rate_from_bytes = r->sent_bytes;
	resync_pump(r); /* a faster rate may start chunks now */
}

void resync_next_pass(struct resync *r)
{
	uint64_t left = bitmap_count_below(r->bm, r->limit_bits) * r->extent_bytes;

	/* The last extent may end past the area. */
	if (left && bitmap_test(r->bm, r->limit_bits - 1))
		left -= r->limit_bits * r->extent_bytes - r->limit_bytes;

	bitmap_clear_range(r->sent, 0, bitmap_nbits(r->sent));
	r->cursor = 0;
	r->idle_said = false;
	/* Bits set again since the start are more to copy. */
	if (r->done_bytes + left > r->total_bytes)
		r->total_bytes = r->done_bytes + left;
	resync_pump(r);
}

static void slot_free(struct rs_slot *s, bool unlock)
{
	struct resync *r = s->r;

	if (unlock)
		r->ops->unlock(r->arg, &s->rr);
	s->st = SL_FREE;
	s->dropped = false;
	r->busy--;
}

void resync_relock(struct resync *r)
{
	for (int i = 0; i < RESYNC_SLOTS; i++) {
		struct rs_slot *s = &r->slot[i];
		bool locked = s->st == SL_WAITING || s->st == SL_SENT ||
			      (s->st == SL_READING && !s->dropped);

		if (locked && !r->ops->lock(r->arg, &s->rr))
			log_err("resync: cannot lock the chunk at %" PRIu64 " again", s->rr.offset);
	}
}

void resync_stop(struct resync *r)
{
	for (int i = 0; i < RESYNC_SLOTS; i++) {
		struct rs_slot *s = &r->slot[i];

		if (s->st == SL_WAITING)
			slot_free(s, true);
		else if (s->st == SL_READING && !s->dropped) {
			r->ops->unlock(r->arg, &s->rr);
			s->dropped = true;	/* freed when the read completes */
		}
	}
	r->running = false;
}

void resync_finish(struct resync *r)
{
	r->running = false;
}

bool resync_running(const struct resync *r)
{
	return r->running;
}

void resync_progress(const struct resync *r, uint64_t *done, uint64_t *total,
		     uint64_t *bytes_per_second)
{
	uint64_t ns = clock_now_ns() - r->started_ns;

	*done = r->done_bytes;
	*total = r->total_bytes;
	*bytes_per_second = ns ? (uint64_t)((double)r->done_bytes * 1e9 / (double)ns) : 0;
}

/* The next run of unsent dirty extents from the cursor, as a chunk:
 * false when the pass has looked at every bit. */
static bool next_chunk(struct resync *r, uint64_t *first, uint64_t *nbits)
{
	uint64_t max = RESYNC_CHUNK / r->extent_bytes ? RESYNC_CHUNK / r->extent_bytes : 1;
	uint64_t b = bitmap_next_set(r->bm, r->cursor);

	while (b < r->limit_bits && bitmap_test(r->sent, b))
		b = bitmap_next_set(r->bm, b + 1);
	if (b >= r->limit_bits) {
		r->cursor = r->limit_bits;
		return false;
	}
	*first = b;
	*nbits = 1;
	while (*nbits < max && b + *nbits < r->limit_bits && bitmap_test(r->bm, b + *nbits) &&
	       !bitmap_test(r->sent, b + *nbits))
		(*nbits)++;
	r->cursor = b + *nbits;
	return true;
}

/* How many chunks may be in flight now, and whether the rate allows one
 * more; arms the timer when the rate says wait. */
static bool may_start(struct resync *r)
{
	unsigned max = r->rate || !r->ops->app_busy(r->arg) ? RESYNC_SLOTS : 1;
	uint64_t allowed;

	if (r->busy >= max)
		return false;
	if (!r->rate)
		return true;
	allowed = (uint64_t)((double)r->rate * (double)(clock_now_ns() - r->rate_from_ns) / 1e9);
	if (r->sent_bytes - r->rate_from_bytes < allowed + RESYNC_CHUNK)
		return true;
	if (!r->timer_armed) {
		r->ts.tv_nsec = 10 * 1000 * 1000;
		io_uring_prep_timeout(loop_sqe(r->loop, &r->timer_op), &r->ts, 0, 0);
		r->timer_armed = true;
	}
	return false;
}

static void timer_done(struct ioop *op, int res)
{
	struct resync *r = container_of(op, struct resync, timer_op);

	(void)res;
	r->timer_armed = false;
	resync_pump(r);
}

static struct rs_slot *free_slot(struct resync *r)
{
	for (int i = 0; i < RESYNC_SLOTS; i++)
		if (r->slot[i].st == SL_FREE)
			return &r->slot[i];
	return NULL;
}

/* Reads one chunk into s, or returns false if there is none to read now. */
static bool start_chunk(struct resync *r, struct rs_slot *s)
{
	uint64_t first, nbits, end;

	for (;;) {
		if (!next_chunk(r, &first, &nbits))
			return false;
		end = (first + nbits) * r->extent_bytes;
		s->rr.type = NBD_CMD_WRITE;
		s->rr.flags = 0;
		s->rr.offset = first * r->extent_bytes;
		s->rr.length = (uint32_t)((end < r->limit_bytes ? end : r->limit_bytes) -
					  s->rr.offset);
		s->rr.payload = s->buf;
		if (r->ops->lock(r->arg, &s->rr))
			break;
		/* An application write is in flight there: later. */
	}
	bitmap_set_range(r->sent, first, nbits);
	s->st = SL_READING;
	r->busy++;
	io_uring_prep_read(loop_sqe(r->loop, &s->op), r->fd, s->buf, s->rr.length, s->rr.offset);
	return true;
}

static void slot_send(struct rs_slot *s)
{
	struct resync *r = s->r;
	int rc = r->ops->send(r->arg, &s->rr);

	if (rc == 0) {
		s->st = SL_SENT;
		r->sent_bytes += s->rr.length;
	} else if (rc == -ENOBUFS) {
		s->st = SL_WAITING;
	} else {
		slot_free(s, true);
	}
}

static void slot_read_done(struct ioop *op, int res)
{
	struct rs_slot *s = container_of(op, struct rs_slot, op);
	struct resync *r = s->r;

	if (s->dropped)
		return slot_free(s, false);
	if (res != (int)s->rr.length) {
		log_err("resync: reading %u bytes at %" PRIu64 ": %s; the resync stops",
			s->rr.length, s->rr.offset, res < 0 ? strerror(-res) : "short read");
		slot_free(s, true);
		resync_stop(r);
		if (r->ops->failed)
			r->ops->failed(r->arg);
		return;
	}
	slot_send(s);
	resync_pump(r);
}

static bool has_unsent(const struct resync *r)
{
	for (uint64_t b = bitmap_next_set(r->bm, 0); b < r->limit_bits;
	     b = bitmap_next_set(r->bm, b + 1))
		if (!bitmap_test(r->sent, b))
			return true;
	return false;
}

void resync_pump(struct resync *r)
{
	struct rs_slot *s;

	if (!r->running)
		return;
	for (int i = 0; i < RESYNC_SLOTS; i++)
		if (r->slot[i].st == SL_WAITING)
			slot_send(&r->slot[i]);
	while (may_start(r) && (s = free_slot(r)) && start_chunk(r, s))
		;
	if (r->busy || r->cursor < r->limit_bits || r->idle_said)
		return;
	if (has_unsent(r)) {
		/* Skipped while an application write held it: the next pump
		 * (after the next completions) looks again. */
		r->cursor = 0;
		return;
	}
	r->idle_said = true;
	r->ops->idle(r->arg);
}

void resync_acked(struct resync *r, struct repl_req *rr, int err)
{
	struct rs_slot *s = (struct rs_slot *)(void *)rr;

	if (!err)
		r->done_bytes += rr->length;
	slot_free(s, true);
	resync_pump(r);
}
