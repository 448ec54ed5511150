/* The replication stream to one peer: pure bookkeeping (see stream.h).
 *
 * Rule 2 in sets of extents: a write the peer acknowledged is in its page
 * cache, not on its disk, until a FLUSH sent after it is acknowledged.
 * Ranges sent since the last such FLUSH are in unflushed; covering holds
 * those the FLUSH covering_seq covers.  If the link drops first, both go
 * into the bitmap.  clear_pending and clear_covering are the same for
 * resync chunks (and wide requests, rule 9): their bits leave the bitmap
 * once covered. */
#include "daemon/repl/stream.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "proto/msg.h"
#include "utils/bitmap.h"
#include "utils/fifo.h"

/* A message awaiting the peer's answer, at out[seq % STREAM_OUT_MAX]. */
struct outstanding {
	void *req;
	void *copy; /* STREAM_ASYNC: the payload's copy in the lag FIFO */
	uint64_t seq;
	uint64_t epoch;	 /* a FLUSH: the epoch it closes */
	uint64_t offset; /* the range it writes (length 0: none) */
	uint64_t count;	 /* the range it names (verify: reads) */
	uint32_t length;
	uint32_t copied; /* bytes of copy, counted in lag_bytes */
	uint64_t sent_ns;
	enum stream_kind kind;
	bool flush;
	bool busy;
};

/* A wide request in flight; its range is remembered, not looked up. */
struct wide_req {
	const void *req;
	uint64_t offset;
	uint64_t length;
};

struct stream {
	struct bitmap *bm; /* the peer's out-of-sync bitmap (borrowed) */
	uint32_t extent_bytes;
	uint64_t next_seq;
	uint64_t link;
	struct outstanding out[STREAM_OUT_MAX];
	unsigned noutstanding;
	unsigned fail_at; /* stream_fail_next()'s place */
	struct bitmap *unflushed;
	struct bitmap *covering;
	struct bitmap *clear_pending;
	struct bitmap *clear_covering;
	uint64_t covering_seq; /* the FLUSH that covers them, while covering_busy */
	bool covering_busy;    /* (not covering_seq == 0: seq 0 is a message too) */
	uint64_t rs_since_flush;
	struct bitmap *wide_new; /* wide requests in flight: bits they set */
	struct wide_req wide[STREAM_WIDE_MAX];
	unsigned nwide;
	void *held[STREAM_HELD_MAX]; /* a ring, oldest at held_head */
	unsigned held_head;
	unsigned nheld;
	struct fifo *lag;
	uint64_t lag_bytes;
	uint64_t max_lag;
	uint64_t lag_size; /* the FIFO's: max-lag at the start */
	uint64_t drain_bytes;
};

struct stream *stream_new(struct bitmap *bm, uint32_t extent_bytes, uint64_t max_lag)
{
	struct stream *s = calloc(1, sizeof(*s));
	uint64_t nbits = bitmap_nbits(bm);

	if (!s)
		return NULL;
	s->bm = bm;
	s->extent_bytes = extent_bytes;
	s->max_lag = max_lag;
	s->unflushed = bitmap_new(nbits);
	s->covering = bitmap_new(nbits);
	s->clear_pending = bitmap_new(nbits);
	s->clear_covering = bitmap_new(nbits);
	s->wide_new = bitmap_new(nbits);
	s->lag_size = max_lag > MSG_MAX_DATA ? max_lag : MSG_MAX_DATA;
	s->lag = fifo_new(s->lag_size);
	if (!s->unflushed || !s->covering || !s->clear_pending || !s->clear_covering ||
	    !s->wide_new || !s->lag) {
		stream_free(s);
		return NULL;
	}
	return s;
}

bool stream_set_max_lag(struct stream *s, uint64_t max_lag)
{
	if (max_lag > s->lag_size)
		return false;
	s->max_lag = max_lag; /* lowered: writes wait until the lag is below */
	return true;
}

void stream_free(struct stream *s)
{
	if (!s)
		return;
	bitmap_free(s->unflushed);
	bitmap_free(s->covering);
	bitmap_free(s->clear_pending);
	bitmap_free(s->clear_covering);
	bitmap_free(s->wide_new);
	fifo_free(s->lag);
	free(s);
}

/* --- bitmaps of extents --- */

static void range_bits(const struct stream *s, uint64_t off, uint64_t len, uint64_t *first,
		       uint64_t *count)
{
	uint64_t ext = s->extent_bytes;

	*first = off / ext;
	*count = len ? (off + len + ext - 1) / ext - off / ext : 0;
}

static void mark_range(const struct stream *s, struct bitmap *bm, uint64_t off, uint64_t len)
{
	uint64_t first, count;

	range_bits(s, off, len, &first, &count);
	if (count)
		bitmap_set_range(bm, first, count);
}

static void unmark_range(const struct stream *s, struct bitmap *bm, uint64_t off, uint64_t len)
{
	uint64_t first, count;

	range_bits(s, off, len, &first, &count);
	if (count)
		bitmap_clear_range(bm, first, count);
}

/* Every bit of from goes into to (or out of it, when set is false). */
static void bm_apply(struct bitmap *to, const struct bitmap *from, bool set)
{
	for (uint64_t b = bitmap_next_set(from, 0); b < bitmap_nbits(from);
	     b = bitmap_next_set(from, b + 1)) {
		if (set)
			bitmap_set(to, b);
		else
			bitmap_clear(to, b);
	}
}

static void bm_empty(struct bitmap *bm)
{
	bitmap_clear_range(bm, 0, bitmap_nbits(bm));
}

/* Every bit of from into the bitmap; from is emptied. */
static void merge_into_bitmap(struct stream *s, struct bitmap *from)
{
	bm_apply(s->bm, from, true);
	bm_empty(from);
}

void stream_mark_out_of_sync(struct stream *s, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	mark_range(s, s->bm, off, len);
	unmark_range(s, s->clear_pending, off, len);
	unmark_range(s, s->clear_covering, off, len);
	unmark_range(s, s->wide_new, off, len);
}

void stream_unflushed_to_bitmap(struct stream *s)
{
	merge_into_bitmap(s, s->unflushed);
	merge_into_bitmap(s, s->covering);
}

/* --- sending --- */

int stream_next(const struct stream *s, uint64_t *seq)
{
	if (s->out[s->next_seq % STREAM_OUT_MAX].busy)
		return -ENOBUFS; /* every place is taken */
	*seq = s->next_seq;
	return 0;
}

/* A FLUSH is sent: if none covers, it takes over what waits for one. */
static void flush_sent(struct stream *s, uint64_t seq)
{
	if (!s->covering_busy) {
		struct bitmap *t = s->covering, *c = s->clear_covering;

		s->covering = s->unflushed;
		s->unflushed = t;
		s->clear_covering = s->clear_pending;
		s->clear_pending = c;
		s->covering_seq = seq;
		s->covering_busy = true;
	}
	s->rs_since_flush = 0;
}

void stream_sent(struct stream *s, const struct stream_msg *m, struct stream_send *out)
{
	bool writes = !m->flush && m->kind != STREAM_VERIFY;
	struct outstanding *o = &s->out[s->next_seq % STREAM_OUT_MAX];

	assert(!o->busy && s->noutstanding < STREAM_OUT_MAX);
	assert(m->kind == STREAM_ASYNC || !m->copied);
	*o = (struct outstanding){ .req = m->req,
				   .copy = m->copied ? m->copy : NULL,
				   .seq = s->next_seq,
				   .epoch = m->epoch,
				   .offset = m->offset,
				   .count = m->count,
				   .length = writes ? m->count : 0,
				   .copied = m->copied,
				   .sent_ns = m->now_ns,
				   .kind = m->kind,
				   .flush = m->flush,
				   .busy = true };
	s->lag_bytes += m->copied;
	s->next_seq++;
	s->noutstanding++;
	if (m->flush) {
		flush_sent(s, o->seq);
	} else if (m->kind == STREAM_RESYNC) {
		mark_range(s, s->clear_pending, m->offset, m->count);
		s->rs_since_flush += m->count;
	} else if (writes) {
		mark_range(s, s->unflushed, m->offset, m->count);
	}
	*out = (struct stream_send){ .seq = o->seq,
				     .epoch = o->epoch,
				     .close_epoch = m->flush,
				     .waits = m->kind == STREAM_APP };
}

/* --- answers --- */

/* Takes the message at out[i] out of the table. */
static struct outstanding take(struct stream *s, unsigned i)
{
	struct outstanding o = s->out[i];

	s->out[i].busy = false;
	s->noutstanding--;
	return o;
}

/* The FLUSH seq (closing epoch) was answered: err 0 or -errno. */
static void flush_acked(struct stream *s, const struct outstanding *o, int err,
			struct stream_ack *a)
{
	if (!err) {
		a->flushed = true;
		a->flushed_epoch = o->epoch;
	}
	if (!s->covering_busy || o->seq != s->covering_seq)
		return;
	if (err) {
		merge_into_bitmap(s, s->covering);
	} else {
		bm_empty(s->covering);
		bm_apply(s->bm, s->clear_covering, false);
	}
	bm_empty(s->clear_covering);
	s->covering_busy = false;
	a->covered = true;
	a->flush_again = bitmap_count(s->clear_pending) > 0; /* resync chunks sent meanwhile */
}

static void hold(struct stream *s, void *req)
{
	assert(s->nheld < STREAM_HELD_MAX);
	s->held[(s->held_head + s->nheld++) % STREAM_HELD_MAX] = req;
}

/* Whom a message taken out of the table concerns, answered with err. */
static enum stream_answer answer_of(struct stream *s, const struct outstanding *o, int err,
				    bool hold_it)
{
	switch (o->kind) {
	case STREAM_APP:
		if (err && hold_it) {
			hold(s, o->req);
			return STREAM_ANSWER_HELD;
		}
		return STREAM_ANSWER_CLIENT;
	case STREAM_RESYNC:
		return STREAM_ANSWER_RESYNC;
	default:
		return STREAM_ANSWER_NONE;
	}
}

static void lag_release(struct stream *s, const struct outstanding *o, struct stream_ack *a)
{
	if (fifo_release(s->lag, o->copy, o->copied) < 0)
		a->lag_out_of_order = true;
	s->lag_bytes -= o->copied;
}

int stream_ack(struct stream *s, uint64_t seq, int err, bool hold_on_error, struct stream_ack *a)
{
	unsigned i = seq % STREAM_OUT_MAX;
	struct outstanding o;

	if (!s->out[i].busy || s->out[i].seq != seq)
		return -ENOENT;
	o = take(s, i);
	*a = (struct stream_ack){ .req = o.req, .err = err, .offset = o.offset };
	if (o.length && (o.kind == STREAM_APP || o.kind == STREAM_ASYNC))
		a->write_sent_ns = o.sent_ns;
	if (err)
		stream_mark_out_of_sync(s, o.offset, o.length);
	if (o.copied)
		lag_release(s, &o, a);
	if (o.flush)
		flush_acked(s, &o, err, a);
	a->answer = answer_of(s, &o, err, hold_on_error);
	return 0;
}

int stream_verify_answered(struct stream *s, uint64_t seq, void **req)
{
	unsigned i = seq % STREAM_OUT_MAX;

	if (!s->out[i].busy || s->out[i].kind != STREAM_VERIFY || s->out[i].seq != seq)
		return -ENOENT;
	*req = take(s, i).req;
	return 0;
}

/* --- the link --- */

bool stream_fail_next(struct stream *s, bool hold_it, struct stream_ack *a)
{
	struct outstanding o;

	while (s->fail_at < STREAM_OUT_MAX && s->noutstanding && !s->out[s->fail_at].busy)
		s->fail_at++;
	if (s->fail_at == STREAM_OUT_MAX || !s->noutstanding) {
		s->fail_at = 0;
		return false;
	}
	o = take(s, s->fail_at);
	*a = (struct stream_ack){ .req = o.req, .err = -ENOTCONN, .offset = o.offset };
	stream_mark_out_of_sync(s, o.offset, o.length);
	a->answer = o.kind == STREAM_VERIFY ? STREAM_ANSWER_VERIFY
					    : answer_of(s, &o, -ENOTCONN, hold_it);
	return true;
}

void stream_link_lost(struct stream *s)
{
	/* Acknowledged but never flushed on the peer: not safe there. */
	stream_unflushed_to_bitmap(s);
	bm_empty(s->clear_pending);
	bm_empty(s->clear_covering);
	bm_empty(s->wide_new);
	s->covering_busy = false;
	fifo_reset(s->lag); /* the peer link released every payload */
	s->lag_bytes = 0;
}

uint64_t stream_link_up(struct stream *s)
{
	return ++s->link;
}

uint64_t stream_link(const struct stream *s)
{
	return s->link;
}

/* --- held requests --- */

unsigned stream_held(const struct stream *s)
{
	return s->nheld;
}

void *stream_held_oldest(const struct stream *s)
{
	return s->nheld ? s->held[s->held_head] : NULL;
}

void stream_held_resent(struct stream *s)
{
	assert(s->nheld);
	s->held_head = (s->held_head + 1) % STREAM_HELD_MAX;
	s->nheld--;
}

void *stream_held_release(struct stream *s)
{
	if (!s->nheld)
		return NULL;
	s->nheld--;
	return s->held[(s->held_head + s->nheld) % STREAM_HELD_MAX];
}

/* --- wide requests --- */

/* The place of req among the wide requests in flight, or s->nwide. */
static unsigned wide_find(const struct stream *s, const void *req)
{
	unsigned i = 0;

	while (i < s->nwide && s->wide[i].req != req)
		i++;
	return i;
}

/* Whether a wide request other than the one at place me touches extent b. */
static bool wide_other(const struct stream *s, unsigned me, uint64_t b)
{
	for (unsigned i = 0; i < s->nwide; i++) {
		uint64_t first, count;

		range_bits(s, s->wide[i].offset, s->wide[i].length, &first, &count);
		if (i != me && first <= b && b < first + count)
			return true;
	}
	return false;
}

void stream_wide_begin(struct stream *s, const void *req, uint64_t off, uint64_t len, bool track)
{
	unsigned i = wide_find(s, req);
	uint64_t first, count;

	if (i == s->nwide && s->nwide < STREAM_WIDE_MAX && track)
		s->nwide++;
	if (i < s->nwide) {
		s->wide[i] = (struct wide_req){ .req = req, .offset = off, .length = len };
		range_bits(s, off, len, &first, &count);
		for (uint64_t b = first; b < first + count; b++)
			if (!bitmap_test(s->bm, b) || bitmap_test(s->clear_pending, b) ||
			    bitmap_test(s->clear_covering, b))
				bitmap_set(s->wide_new, b);
	}
	/* A bit waiting to clear (an earlier wide request's or a resync
	 * chunk's) must not clear while this request runs: it is this one's
	 * now, cleared after it completes (tracked) or by a resync. */
	mark_range(s, s->bm, off, len);
	unmark_range(s, s->clear_pending, off, len);
	unmark_range(s, s->clear_covering, off, len);
}

void stream_wide_done(struct stream *s, const void *req)
{
	unsigned i = wide_find(s, req);
	uint64_t first, count;

	if (i == s->nwide)
		return; /* not tracked: its bits stay */
	range_bits(s, s->wide[i].offset, s->wide[i].length, &first, &count);
	for (uint64_t b = first; b < first + count; b++) {
		if (!bitmap_test(s->wide_new, b) || wide_other(s, i, b))
			continue;
		bitmap_clear(s->wide_new, b);
		bitmap_set(s->clear_pending, b);
	}
	s->wide[i] = s->wide[--s->nwide];
}

void stream_wide_forget(struct stream *s, const void *req)
{
	unsigned i = wide_find(s, req);
	uint64_t first, count;

	if (i == s->nwide)
		return;
	range_bits(s, s->wide[i].offset, s->wide[i].length, &first, &count);
	for (uint64_t b = first; b < first + count; b++)
		if (!wide_other(s, i, b))
			bitmap_clear(s->wide_new, b); /* the bit stays in bm */
	s->wide[i] = s->wide[--s->nwide];
}

unsigned stream_wide(const struct stream *s)
{
	return s->nwide;
}

/* --- what the node asks --- */

bool stream_covering(const struct stream *s)
{
	return s->covering_busy;
}

bool stream_wants_flush(const struct stream *s)
{
	return bitmap_count(s->unflushed) || bitmap_count(s->clear_pending);
}

uint64_t stream_unflushed(const struct stream *s)
{
	return bitmap_count(s->unflushed);
}

uint64_t stream_resync_pending(const struct stream *s)
{
	return bitmap_count(s->clear_pending);
}

uint64_t stream_resync_unflushed_bytes(const struct stream *s)
{
	return s->rs_since_flush;
}

unsigned stream_outstanding(const struct stream *s)
{
	return s->noutstanding;
}

/* --- async lag --- */

void *stream_lag_alloc(struct stream *s, uint32_t len)
{
	if (s->lag_bytes && s->lag_bytes + len > s->max_lag)
		return NULL; /* woken as the peer acknowledges */
	return fifo_alloc(s->lag, len);
}

void stream_lag_unalloc(struct stream *s, void *copy, uint32_t len)
{
	(void)fifo_unalloc(s->lag, copy, len);
}

uint64_t stream_lag_bytes(const struct stream *s)
{
	return s->lag_bytes;
}

/* For status only: it looks at every place. */
uint64_t stream_lag_oldest_ns(const struct stream *s)
{
	uint64_t oldest = 0;

	for (unsigned i = 0; i < STREAM_OUT_MAX && s->lag_bytes; i++) {
		const struct outstanding *o = &s->out[i];

		if (o->busy && o->kind == STREAM_ASYNC && o->copied &&
		    (!oldest || o->sent_ns < oldest))
			oldest = o->sent_ns;
	}
	return oldest;
}

void stream_drain_begin(struct stream *s)
{
	s->drain_bytes = s->lag_bytes;
}

uint64_t stream_drain_total(const struct stream *s)
{
	return s->drain_bytes;
}
