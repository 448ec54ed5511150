/* The replication stream to one peer, as a pure state machine: sequence
 * numbers, the messages awaiting the peer's answer, the flushes that cover
 * acknowledged writes (DESIGN.md rule 2), resync chunks whose bits wait
 * for a flush, wide requests' covers (rule 9), requests held under freeze,
 * and the async lag.  It does no I/O: the node feeds it events (a message
 * queued, an ACK or FLUSH_ACK, the link lost or back, a tick) and does
 * what it answers (answer a client, tell the resync, send a FLUSH, write
 * the bitmap), in the way hastd's activemap_write_complete() answers
 * "flush now".
 *
 * One stream per peer: the node holds a pointer to its peer's stream.  The
 * peer's out-of-sync bitmap is borrowed (stream_new()): the stream sets
 * bits in it when a range may be missing on the peer, and clears bits of
 * resync chunks and wide requests once a peer FLUSH covers them.  Writing
 * it to disk stays the caller's.
 *
 * Requests are opaque pointers (the node's struct repl_req): the stream
 * remembers them and hands them back, never looks into them.
 *
 * Errors are -errno; capacity invariants (REPL_MAX messages awaiting an
 * answer, REPL_MAX held, STREAM_WIDE_MAX wide) are asserts where the caller
 * must have checked, -ENOBUFS where it asks.  Not thread-safe. */
#ifndef BLKREP_STREAM_H
#define BLKREP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#define STREAM_OUT_MAX	4096 /* messages awaiting the peer's answer (REPL_MAX) */
#define STREAM_HELD_MAX 4096 /* requests held under freeze */
#define STREAM_WIDE_MAX 64   /* wide requests (past half the activity log) tracked */

struct bitmap;
struct stream;

/* What a message awaiting the peer's answer is. */
enum stream_kind {
	STREAM_APP,    /* a client's request whose reply waits for the answer (sync) */
	STREAM_ASYNC,  /* a client's write already answered (async): its copy */
	STREAM_FLUSH,  /* the node's own FLUSH, or an async barrier */
	STREAM_RESYNC, /* a resync chunk */
	STREAM_VERIFY, /* a verify chunk: the answer is the peer's checksums */
};

/* A message being queued to the peer (stream_sent()). */
struct stream_msg {
	enum stream_kind kind;
	bool flush;	 /* a FLUSH (a client's, a barrier or the node's own) */
	uint64_t offset; /* the range it writes or reads */
	uint32_t count;
	void *req;	 /* STREAM_APP, _RESYNC, _VERIFY: who is answered */
	void *copy;	 /* STREAM_ASYNC: the payload's copy (stream_lag_alloc()) */
	uint32_t copied; /* ... of this many bytes */
	uint64_t epoch;	 /* the activity log's epoch it is sent in */
	uint64_t now_ns; /* when (the async lag's age; a client write's ACK latency) */
};

/* What stream_sent() recorded. */
struct stream_send {
	uint64_t seq;	  /* the message's sequence number */
	uint64_t epoch;	  /* its epoch: a FLUSH closes it */
	bool close_epoch; /* a FLUSH: the caller closes the epoch (alog_close_epoch()) */
	bool waits;	  /* the request's reply waits for the peer's answer */
};

/* Whom an answered (or failed) message concerns. */
enum stream_answer {
	STREAM_ANSWER_NONE,   /* nobody (an async copy, a FLUSH of the node's) */
	STREAM_ANSWER_CLIENT, /* repl_done(req, err) */
	STREAM_ANSWER_RESYNC, /* the resync: resync_acked(req, err) */
	STREAM_ANSWER_VERIFY, /* the verify: resync_acked(req, err) */
	STREAM_ANSWER_HELD,   /* held (freeze): answered after a re-send or a release */
};

/* What the peer's ACK or FLUSH_ACK means (stream_ack()), or a failed
 * message at link loss (stream_fail_next()). */
struct stream_ack {
	enum stream_answer answer;
	void *req;
	int err;	 /* for the answer: the peer's error, or -ENOTCONN */
	uint64_t offset; /* the message's range, for logs */
	bool flushed;	 /* a FLUSH succeeded: alog_flushed(flushed_epoch) */
	uint64_t flushed_epoch;
	bool covered;	       /* it was the FLUSH covering unflushed writes */
	bool flush_again;      /* resync chunks wait for a FLUSH: send one */
	bool lag_out_of_order; /* the lag FIFO refused the copy back (a bug: log it) */
	uint64_t write_sent_ns; /* a client's write (sync or async): its now_ns; else 0 */
};

/* A stream over bm (borrowed; one bit per extent of extent_bytes), async
 * lag bounded by max_lag bytes.  NULL on allocation failure. */
struct stream *stream_new(struct bitmap *bm, uint32_t extent_bytes, uint64_t max_lag);
void stream_free(struct stream *s);

/* `adjust`: the async lag's new bound.  False, changing nothing, above the
 * bound it was made with (its FIFO's size). */
bool stream_set_max_lag(struct stream *s, uint64_t max_lag);

/* --- sending --- */

/* The sequence number the next message gets in *seq: 0, or -ENOBUFS when
 * its place is still taken by one awaiting its answer (wait for one). */
int stream_next(const struct stream *s, uint64_t *seq);

/* The message numbered stream_next() was queued to the peer: it awaits
 * its answer.  A write's range goes into the unflushed set (a resync
 * chunk's into the resync set) until a FLUSH sent after it is
 * acknowledged.  A FLUSH sent while no other covers takes both sets over.
 * An async copy counts in the lag. */
void stream_sent(struct stream *s, const struct stream_msg *m, struct stream_send *out);

/* --- answers --- */

/* The peer answered message seq (err 0, or its positive errno).  Fills a:
 * whom to answer, and what the flush bookkeeping asks for.  A failed
 * write's range goes into the bitmap.  A covering FLUSH's success empties
 * the unflushed set it took and clears its resync bits from the bitmap;
 * its failure puts its set into the bitmap.  With hold_on_error, a client
 * request the peer failed is held (freeze).  -ENOENT (a untouched) if seq
 * is not awaiting an answer. */
int stream_ack(struct stream *s, uint64_t seq, int err, bool hold_on_error, struct stream_ack *a);

/* The peer's checksums for verify message seq arrived: its request in
 * *req.  -ENOENT if seq is not a verify message awaiting its answer. */
int stream_verify_answered(struct stream *s, uint64_t seq, void **req);

/* --- the link --- */

/* The link is gone.  Each call takes one message still awaiting its
 * answer (oldest place first), puts its range into the bitmap, holds a
 * client's request if hold, and says whom to answer with -ENOTCONN; false
 * once none is left.  Then call stream_link_lost(). */
bool stream_fail_next(struct stream *s, bool hold, struct stream_ack *a);

/* After the answers: what the peer acknowledged but never flushed goes
 * into the bitmap; resync and wide covers are dropped (their bits stay
 * set); the lag is empty (the link gave every payload back). */
void stream_link_lost(struct stream *s);

/* A new link is up: its number (answers that outlive a link compare it). */
uint64_t stream_link_up(struct stream *s);
uint64_t stream_link(const struct stream *s);

/* --- held requests (freeze) --- */

unsigned stream_held(const struct stream *s);
/* The oldest held request (to send again), or NULL. */
void *stream_held_oldest(const struct stream *s);
/* The oldest was sent again: it is no longer held. */
void stream_held_resent(struct stream *s);
/* Takes the newest held request (to answer with its local result), or
 * NULL when none is left. */
void *stream_held_release(struct stream *s);

/* --- out of sync --- */

/* The peer may not hold len bytes at off: into the bitmap, where no
 * pending FLUSH may clear them. */
void stream_mark_out_of_sync(struct stream *s, uint64_t off, uint64_t len);

/* What the peer acknowledged but never flushed goes into the bitmap (link
 * lost, clean stop, demotion: rule 10). */
void stream_unflushed_to_bitmap(struct stream *s);

/* --- wide requests (rule 9) --- */

/* A request too wide for the activity log (req, len bytes at off) is
 * about to be covered by the bitmap, which this sets (the caller writes it
 * before submitting).  While tracked (a place is free and track, i.e. the
 * peer is up; or it was tracked already: a retry) the extents it found
 * clear may leave the bitmap after stream_wide_done() and a covering
 * FLUSH. */
void stream_wide_begin(struct stream *s, const void *req, uint64_t off, uint64_t len, bool track);

/* The wide request is answered: its local operation is complete.  Its
 * extents touched by no other wide request in flight wait for the next
 * FLUSH to leave the bitmap. */
void stream_wide_done(struct stream *s, const void *req);
/* The wide request will never be answered (it was parked, not sent, and
 * its client left): it stops being tracked, and its extents stay in the
 * bitmap until a resync, since nothing says their writes are anywhere. */
void stream_wide_forget(struct stream *s, const void *req);
unsigned stream_wide(const struct stream *s);

/* --- what the node asks --- */

/* A FLUSH covering earlier writes is awaiting its answer. */
bool stream_covering(const struct stream *s);
/* Whether writes or resync chunks wait for a FLUSH (the idle tick sends
 * one when no FLUSH covers). */
bool stream_wants_flush(const struct stream *s);
/* Extents acknowledged but not yet covered by a FLUSH sent. */
uint64_t stream_unflushed(const struct stream *s);
/* Extents of resync chunks sent but not yet covered by a FLUSH sent. */
uint64_t stream_resync_pending(const struct stream *s);
/* Resync bytes sent since the last FLUSH. */
uint64_t stream_resync_unflushed_bytes(const struct stream *s);
unsigned stream_outstanding(const struct stream *s);

/* --- async lag --- */

/* A place for an async write's copy of len bytes (len > 0), or NULL while
 * something lags and len more would pass max_lag, or the FIFO is full. */
void *stream_lag_alloc(struct stream *s, uint32_t len);
/* The copy was not sent after all. */
void stream_lag_unalloc(struct stream *s, void *copy, uint32_t len);
/* Bytes of async writes the peer has not acknowledged. */
uint64_t stream_lag_bytes(const struct stream *s);
/* When the oldest of them was sent (stream_msg.now_ns), 0 for none. */
uint64_t stream_lag_oldest_ns(const struct stream *s);
/* `mode sync`: the lag to drain is what lags now. */
void stream_drain_begin(struct stream *s);
uint64_t stream_drain_total(const struct stream *s);

#endif
