/* The primary's side of replication (see primary.h): a client's write is
 * admitted here (the overlap set, the activity log, the freeze policy),
 * sent to the peer through the stream, and answered when the stream says
 * so.  Until a write is known to be on the peer's disk it is in the
 * activity log or the out-of-sync record (DESIGN.md rules 1 and 2). */
#include "daemon/node_int.h"
#include "daemon/meta/actlog.h"
#include "daemon/meta/alog.h"
#include "daemon/repl/primary.h"
#include "utils/extent.h"

struct primary {
	struct node *n;
	struct actlog *al;   /* the hot extents (rule 1), admitting writes */
	struct alog *alog;   /* ... and their snapshots on disk */
	uint32_t al_ext_bytes;
	unsigned al_slots;
	uint64_t epoch;	     /* writes sent to the peer now are in this one */
	bool want_flush;     /* a write waits for extents a peer FLUSH frees */
	uint64_t writes;     /* for status */
	uint64_t replicated_bytes;
};

struct primary *primary_new(struct node *n)
{
	struct primary *p = calloc(1, sizeof(*p));

	if (!p)
		goto oom;
	p->n = n;
	p->al_ext_bytes = n->sb.al_extent_bytes;
	p->al_slots = n->sb.al_slots;
	p->epoch = ACTLOG_EPOCH_FIRST; /* rule 7: nothing flushed yet */
	p->al = actlog_new(p->al_slots);
	if (!p->al)
		goto oom;
	p->alog = alog_new(n->loop, n->md, n->bm, n->data_fd, p->al, p->al_ext_bytes,
			   n->sb.extent_bytes, node_repl_wake, n);
	if (!p->alog) {
		primary_free(p);
		return NULL;
	}
	return p;
oom:
	log_err("cannot set up the activity log (%u slots): out of memory", n->sb.al_slots);
	primary_free(p);
	return NULL;
}

void primary_free(struct primary *p)
{
	if (!p)
		return;
	alog_free(p->alog);
	actlog_free(p->al);
	free(p);
}

int primary_recover(struct primary *p, bool crashed)
{
	return alog_recover(p->alog, crashed);
}

void primary_stats(const struct primary *p, struct primary_stats *st)
{
	*st = (struct primary_stats){ .writes = p->writes,
				      .replicated_bytes = p->replicated_bytes,
				      .al_extents = actlog_count(p->al),
				      .al_error = alog_error(p->alog) };
}

/* --- the activity log's admission (rules 1 and 7) --- */

/* A range too wide for the log (a huge TRIM) is covered by the bitmap. */
static bool al_wide(const struct primary *p, uint64_t off, uint64_t len)
{
	return extent_count(off, len, p->al_ext_bytes) > p->al_slots / 2;
}

enum al_verdict {
	AL_GO,	 /* every extent is in the durable log: submit */
	AL_WAIT, /* not yet: node_repl_wake() follows the snapshot or flush */
	AL_WIDE, /* too wide for the log: cover it in the bitmap */
};

/* All of a write's extents at once, or none: a write never holds some
 * extents while it waits.  The common case, steady writing over hot
 * extents, is a hash lookup per extent and no I/O. */
static enum al_verdict al_begin(struct primary *p, uint64_t off, uint64_t len)
{
	uint64_t first, last, e;
	bool wait = false;

	if (len == 0)
		return AL_GO;
	if (al_wide(p, off, len))
		return AL_WIDE;
	first = extent_first(off, p->al_ext_bytes);
	last = extent_last(off, len, p->al_ext_bytes);
	for (e = first; e <= last; e++) {
		enum actlog_result r = actlog_begin(p->al, (uint32_t)e, p->epoch);

		if (r == ACTLOG_BUSY) {
			p->want_flush = true;
			wait = true;
			break;
		}
		wait |= r != ACTLOG_HIT;
	}
	if (!wait)
		return AL_GO;
	while (e-- > first)
		actlog_end(p->al, (uint32_t)e);
	alog_write(p->alog);
	return AL_WAIT;
}

/* The write al_begin() admitted completed, locally and on the peer, or
 * was not submitted after all. */
static void al_end(struct primary *p, uint64_t off, uint64_t len)
{
	if (len == 0 || al_wide(p, off, len))
		return; /* AL_WIDE: never counted */
	for (uint64_t e = extent_first(off, p->al_ext_bytes); e <= extent_last(off, len, p->al_ext_bytes);
	     e++)
		actlog_end(p->al, (uint32_t)e);
}

/* True once since the last call if a write waited for a full log whose
 * extents need a peer FLUSH before they can leave. */
static bool al_want_flush(struct primary *p)
{
	bool w = p->want_flush;

	p->want_flush = false;
	return w;
}

/* No peer: extents leave the log once idle, as the bitmap covers them. */
void primary_standalone(struct primary *p, bool on)
{
	actlog_set_standalone(p->al, on);
	node_repl_wake(p->n);
}

/* Once a second: a failed snapshot is tried again, and a FLUSH goes to the
 * peer if writes wait for one, so that the out-of-sync record and the
 * activity log drain on an idle volume. */
void primary_tick(struct primary *p)
{
	struct node *n = p->n;

	alog_retry(p->alog);
	if (sync_up(node_stream_peer(n)) && !stream_covering(n->stream) &&
	    (stream_wants_flush(n->stream) || al_want_flush(p)))
		node_flush_peer(n);
}

/* --- the stream to the peer --- */

/* Queues h (and payload) for the peer with the next sequence number and
 * records it in the stream until the answer.  0, -ENOBUFS (no room: wait
 * for node_repl_wake()) or another -errno (the link is going). */
int node_send(struct node *n, struct msg_hdr *h, const void *payload, struct repl_req *rr,
	      enum stream_kind kind)
{
	struct stream_msg m = { .kind = kind,
				.flush = h->type == MSG_FLUSH,
				.offset = h->offset,
				.count = h->count,
				.req = rr,
				.epoch = n->pri->epoch };
	struct stream_send sent;
	int rc = stream_next(n->stream, &h->seq);

	if (rc < 0)
		return rc; /* every place is taken */
	rc = peer_send_ref(sync_peer(node_stream_peer(n)), h, payload); /* kept until the answer */
	if (rc < 0)
		return rc;
	if (kind == STREAM_ASYNC && h->length) {
		m.copy = (void *)(uintptr_t)payload;
		m.copied = h->length;
		m.now_ns = node_now_ns();
	}
	stream_sent(n->stream, &m, &sent);
	if (sent.close_epoch)
		n->pri->epoch++; /* later writes: not covered */
	return 0;
}

/* A FLUSH of the node's own: so that bits and activity-log extents that
 * wait for one can go, and to close a resync pass. */
void node_flush_peer(struct node *n)
{
	struct msg_hdr h = { .type = MSG_FLUSH, .flags = MSG_F_NOBARRIER };

	if (sync_up(node_stream_peer(n)) && node_send(n, &h, NULL, NULL, STREAM_FLUSH) == -ENOBUFS)
		log_debug("no room for a FLUSH to the peer now; later");
}

static uint16_t repl_msg_type(uint16_t nbd_type)
{
	switch (nbd_type) {
	case NBD_CMD_WRITE:
		return MSG_WRITE;
	case NBD_CMD_TRIM:
		return MSG_TRIM;
	case NBD_CMD_WRITE_ZEROES:
		return MSG_ZERO;
	default:
		return MSG_FLUSH;
	}
}

/* --- the overlap set (rule 3 and 4) --- */

/* Write ranges in flight never overlap (DESIGN.md rule 3: both replicas
 * then apply overlapping writes in the same order), and no resync or
 * verify chunk is read and sent while a client write overlaps it (rule 4).
 * One set, n->inflight, holds them all: the client writes
 * node_repl_submit() accepted, until node_repl_end(), of the export and of
 * one a demotion stopped (its writes may still be in flight), and the
 * chunks node_chunk_lock() took, until node_chunk_unlock(). */

static bool overlap_any(const struct node *n, const struct repl_req *rr)
{
	uint64_t end = rr->offset + rr->length;

	for (unsigned i = 0; i < n->ninflight; i++) {
		const struct repl_req *o = n->inflight[i];

		if (rr->offset < o->offset + o->length && o->offset < end)
			return true;
	}
	return false;
}

static bool overlap_has(const struct node *n, const struct repl_req *rr)
{
	for (unsigned i = 0; i < n->ninflight; i++)
		if (n->inflight[i] == rr)
			return true;
	return false;
}

/* Takes rr out of the set: false if it was not in it. */
static bool overlap_remove(struct node *n, const struct repl_req *rr)
{
	for (unsigned i = 0; i < n->ninflight; i++) {
		if (n->inflight[i] == rr) {
			n->inflight[i] = n->inflight[--n->ninflight];
			return true;
		}
	}
	return false;
}

/* Requests parked on both servers are offered again. */
static void node_wake_parked(struct node *n)
{
	if (n->srv)
		server_repl_wake(n->srv);
	if (n->retiring)
		server_repl_wake(n->retiring);
}

/* A client write waits (REPL_BUSY) while it overlaps a range in the set,
 * or while the set has no room for it. */
static bool overlap_busy(const struct node *n, const struct repl_req *rr)
{
	return n->ninflight - n->nlocked >= NODE_INFLIGHT_MAX - NODE_LOCKS_MAX ||
	       overlap_any(n, rr);
}

/* Without an export there is no client write to lock against: a
 * promotion locks the chunks then in flight (node_relock()), and a chunk
 * already in the set stays locked. */
bool node_chunk_lock(struct node *n, struct repl_req *rr)
{
	if ((!n->srv && !n->retiring) || overlap_has(n, rr))
		return true;
	if (n->nlocked == NODE_LOCKS_MAX || overlap_any(n, rr))
		return false;
	n->inflight[n->ninflight++] = rr;
	n->nlocked++;
	return true;
}

void node_chunk_unlock(struct node *n, struct repl_req *rr)
{
	if (!overlap_remove(n, rr))
		return;
	n->nlocked--;
	node_wake_parked(n);
}

/* Client writes in flight or waiting: a resync without a rate limit then
 * keeps to one chunk at a time. */
bool node_chunk_app_busy(struct node *n)
{
	return n->ninflight > n->nlocked || (n->srv && server_parked(n->srv)) ||
	       (n->retiring && server_parked(n->retiring));
}

/* --- replication: the primary's side --- */

/* Under on-peer-loss = freeze, a primary without its peer holds writes
 * until the peer is back or an operator outdates it. */
bool node_frozen(const struct node *n)
{
	return n->primary && !node_connected(n) && !n->peer_outdated &&
	       config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE;
}

/* The first write without the peer starts a new generation, so that the
 * next connect knows this side moved on (DESIGN.md, generations). */
static int node_write_alone(struct node *n, const struct repl_req *rr)
{
	if (!n->gen_moved) {
		struct gen_ids before = n->sb.gen;

		gen_new_current(&n->sb.gen, node_random());
		if (node_save_sb(n) < 0) {
			n->sb.gen = before;
			return -1;
		}
		n->gen_moved = true;
		log_info("writing without %s: new generation %016" PRIx64, n->other->name,
			 n->sb.gen.current);
	}
	node_mark_out_of_sync(n, rr->offset, rr->length);
	return 0;
}

/* A range too wide for the activity log is covered by the bitmap, on disk
 * before the write is submitted.  Its extents whose bits were clear go
 * into wide_new: they may leave the bitmap only once its local operation
 * completed and a peer FLUSH sent after that covers it (rule 9), which
 * stream_wide_done() arranges.  The request is remembered (a retry after
 * REPL_BUSY comes here again with the same rr) so that an extent shared
 * with another wide request in flight waits for both.  With STREAM_WIDE_MAX of
 * them in flight, the bits just stay set until a resync. */
static int node_cover_wide(struct node *n, const struct repl_req *rr)
{
	stream_wide_begin(n->stream, rr, rr->offset, rr->length, sync_up(node_stream_peer(n)));
	return node_save_bm(n);
}

/* Whether a client's write may be submitted now. */
enum admission {
	ADMIT_GO,   /* recorded where rule 1 wants it: submit */
	ADMIT_WAIT, /* frozen, the log not yet durable, or a metadata write
		     * failed: park until node_repl_wake() (never go on
		     * unrecorded) */
};

/* Before a client's write is submitted: the activity log (rule 1), the
 * freeze policy, and the bitmap when there is no peer. */
static enum admission node_admit(struct node *n, struct repl_req *rr)
{
	if (node_frozen(n))
		return ADMIT_WAIT;
	/* Held requests go first: a new write waits until every held one was
	 * sent again, so that held and unanswered requests together never
	 * exceed what a second link loss moves back into the held list. */
	if (stream_held(n->stream))
		return ADMIT_WAIT;
	switch (al_begin(n->pri, rr->offset, rr->length)) {
	case AL_WAIT:
		if (al_want_flush(n->pri))
			node_flush_peer(n);
		return ADMIT_WAIT;
	case AL_WIDE:
		if (node_cover_wide(n, rr) < 0)
			return ADMIT_WAIT;
		break;
	case AL_GO:
		break;
	}
	if (!node_connected(n) && node_write_alone(n, rr) < 0) {
		al_end(n->pri, rr->offset, rr->length);
		return ADMIT_WAIT;
	}
	return ADMIT_GO;
}

/* Async mode: the request goes to the peer, but its reply waits only for
 * the local disk.  A WRITE's payload is copied into the lag FIFO (the
 * client's buffer is reused once it is answered); at max_lag bytes not yet
 * acknowledged by the peer, new writes wait.  A FLUSH is a barrier in the
 * stream, applied by the peer with an fdatasync. */
static enum repl_verdict node_repl_async(struct node *n, struct repl_req *rr, struct msg_hdr *h)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	void *copy = NULL;
	int rc;

	if (h->length && !(copy = stream_lag_alloc(n->stream, h->length))) {
		al_end(n->pri, rr->offset, rr->length);
		return REPL_BUSY; /* woken as the peer acknowledges */
	}
	if (copy)
		memcpy(copy, rr->payload, h->length);
	rc = node_send(n, h, copy, NULL, write ? STREAM_ASYNC : STREAM_FLUSH);
	if (rc == -ENOBUFS) {
		if (copy)
			stream_lag_unalloc(n->stream, copy, h->length);
		if (write)
			al_end(n->pri, rr->offset, rr->length);
		return REPL_BUSY;
	}
	n->pri->writes += write;
	if (rc < 0 && write)
		node_mark_out_of_sync(n, rr->offset, rr->length);
	if (rc == 0)
		n->pri->replicated_bytes += h->length;
	return REPL_LOCAL;
}

/* The message that replicates a client's request. */
static struct msg_hdr node_repl_hdr(const struct repl_req *rr)
{
	struct msg_hdr h = { .type = repl_msg_type(rr->type) };

	if (rr->type == NBD_CMD_FLUSH)
		return h;
	h.offset = rr->offset;
	h.count = rr->length;
	h.flags = (rr->flags & NBD_CMD_FLAG_FUA ? MSG_F_FUA : 0) |
		  (h.type == MSG_ZERO && (rr->flags & NBD_CMD_FLAG_NO_HOLE) ? MSG_F_NO_HOLE : 0);
	if (h.type == MSG_WRITE)
		h.length = rr->length;
	return h;
}

/* Sends a write-type request or FLUSH to the peer.  Its reply then waits
 * for the peer's ACK or FLUSH_ACK: sync mode. */
static enum repl_verdict node_repl_offer(struct node *n, struct repl_req *rr)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	struct msg_hdr h = node_repl_hdr(rr);
	int rc;

	if (write && node_admit(n, rr) == ADMIT_WAIT)
		return REPL_BUSY;
	if (!sync_up(node_stream_peer(n))) {
		n->pri->writes += write;
		return REPL_LOCAL;
	}
	if (n->sb.mode == META_MODE_ASYNC)
		return node_repl_async(n, rr, &h);
	rc = node_send(n, &h, h.length ? rr->payload : NULL, rr, STREAM_APP);
	if (rc == -ENOBUFS) {
		if (write)
			al_end(n->pri, rr->offset, rr->length);
		return REPL_BUSY; /* retried from node_repl_wake() */
	}
	n->pri->writes += write;
	if (rc < 0) { /* the link is going */
		if (write)
			node_mark_out_of_sync(n, rr->offset, rr->length);
		return REPL_LOCAL;
	}
	n->pri->replicated_bytes += h.length;
	return REPL_SENT;
}

/* A client's write-type request or FLUSH (nbd/repl.h): a write
 * overlapping one in flight waits for it (rule 3); one accepted is in the
 * overlap set until node_repl_end(). */
enum repl_verdict node_repl_submit(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	bool write = rr->type != NBD_CMD_FLUSH;
	enum repl_verdict rc;

	if (write && overlap_busy(n, rr))
		return REPL_BUSY; /* offered again once a range leaves the set */
	rc = node_repl_offer(n, rr);
	if (write && rc != REPL_BUSY)
		n->inflight[n->ninflight++] = rr;
	return rc;
}

/* Under freeze, requests the peer never answered are held.  On the next
 * link they are sent again, oldest first, and answered when the peer
 * acknowledges them, as any sync request: a client never hears of a write
 * before the peer holds it (RPO 0), whatever happens next.  Their ranges
 * stay in the bitmap for the resync too.  Called at connect and whenever
 * the link has room. */
void node_resend_held(struct node *n)
{
	unsigned sent = 0;
	struct repl_req *rr;

	while (sync_up(node_stream_peer(n)) && (rr = stream_held_oldest(n->stream))) {
		struct msg_hdr h = node_repl_hdr(rr);

		if (node_send(n, &h, h.length ? rr->payload : NULL, rr, STREAM_APP) < 0)
			break; /* no room: node_writable() calls again; or the link went */
		stream_held_resent(n->stream);
		n->pri->replicated_bytes += h.length;
		sent++;
	}
	if (!sent)
		return;
	if (!stream_held(n->stream))
		node_repl_wake(n); /* the writes node_admit() parked behind them */
	log_info("%u requests held since the link was lost are sent again to %s; each is "
		 "answered when %s acknowledges it",
		 sent, n->other->name, n->other->name);
}

/* The local disk failed a client's write (the client gets the error) that
 * the peer may have applied: the replicas may differ there, so the range
 * is out of sync, on disk, until a resync copies it.  Neither side lost
 * an acknowledged write, so both keep their disk state.  EOPNOTSUPP (a
 * FAST_ZERO that cannot be fast) is not a disk failure. */
static void node_local_failed(struct node *n, const struct repl_req *rr)
{
	int err = -rr->local_err;

	node_mark_out_of_sync(n, rr->offset, rr->length);
	(void)node_save_bm(n); /* logs a failure */
	if (err == EOPNOTSUPP)
		return;
	/* Logged once until repaired: a dead disk fails every write. */
	if (diskerr_set(n->disk, "client %s of %" PRIu32 " bytes at %" PRIu64 " on this node: %s",
			msg_type_name(repl_msg_type(rr->type)), rr->length, rr->offset,
			strerror(err)))
		log_err("disk failed a %s; the client got the error; the range is out of "
			"sync until `blkrep resync` (or the next connect) copies it to %s",
			diskerr_text(n->disk), n->other->name);
}

/* The local disk did (err 0) or failed a client's FLUSH (the client gets
 * the error).  After a failure, writes since the last good FLUSH may be
 * missing from this disk (Linux may drop the dirty pages it could not
 * write), and nothing says which; the peer holds them (sync mode, or once
 * the lag drained), so the way out the log names is a failover, not a
 * resync from here.  status shows the error until a FLUSH succeeds. */
void node_repl_flush_done(void *arg, int err)
{
	struct node *n = arg;

	if (!err) {
		if (diskerr_is_flush(n->disk)) {
			log_info("a client FLUSH succeeds again on this node (after: %s)",
				 diskerr_text(n->disk));
			diskerr_clear(n->disk);
		}
		return;
	}
	if (diskerr_set(n->disk, DISKERR_FLUSH "%s", strerror(-err)))
		log_err("disk failed a %s; writes since the last FLUSH may be missing from this "
			"disk; %s holds them: if the disk stays bad, make this node secondary "
			"and %s primary",
			diskerr_text(n->disk), n->other->name, n->other->name);
}

/* A client's write accepted by node_repl_submit() is answered (or its
 * client is gone): its range leaves the overlap set. */
void node_repl_end(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	(void)overlap_remove(n, rr);
	if (rr->local_err)
		node_local_failed(n, rr);
	if (al_wide(n->pri, rr->offset, rr->length))
		stream_wide_done(n->stream, rr);
	al_end(n->pri, rr->offset, rr->length);
	node_wake_parked(n);
}

/* A request node_repl_submit() parked will not come again (its client
 * left): a wide one stops being tracked, its bits left for a resync. */
void node_repl_abandon(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	stream_wide_forget(n->stream, rr);
}

/* The peer's send queue has room again, an answer freed a place, or the
 * activity log moved on: parked requests and the resync try again. */
void node_repl_wake(void *arg)
{
	node_wake_parked(arg);
}

/* Seconds since the oldest write the peer has not acknowledged was sent
 * (for status only). */
double node_lag_seconds(const struct node *n)
{
	uint64_t oldest = stream_lag_oldest_ns(n->stream);

	return oldest ? (double)(node_now_ns() - oldest) / 1e9 : 0;
}

/* The peer answered a request with an error: its disk lacks the write.
 * (A peer of this version drops the link instead of answering so.)  The
 * link is dropped here too, so that the reconnect's bitmap exchange and
 * resync repair it; under freeze the client's request is held meanwhile. */
static void node_peer_failed(struct node *n, uint64_t offset, int err)
{
	log_warn("%s failed a replicated request at %" PRIu64 ": %s; reconnecting so that a "
		 "resync repairs it",
		 n->other->name, offset, strerror(-err));
	peer_enable(sync_peer(node_stream_peer(n)), false);
	peer_enable(sync_peer(node_stream_peer(n)), true);
}

/* Does what the stream says about an answered or failed message (a->err:
 * 0 or -errno). */
static void node_answer(struct node *n, const struct stream_ack *a)
{
	switch (a->answer) {
	case STREAM_ANSWER_CLIENT:
		repl_done(a->req, a->err);
		break;
	case STREAM_ANSWER_RESYNC:
		sync_resync_acked(node_stream_peer(n), a->req, a->err);
		break;
	case STREAM_ANSWER_VERIFY:
		verify_acked(sync_verify(node_stream_peer(n)), a->req, a->err);
		break;
	case STREAM_ANSWER_NONE:
	case STREAM_ANSWER_HELD:
		break;
	}
}

/* The peer's ACK or FLUSH_ACK of seq (err: 0, or -errno: the peer's
 * disk failed it). */
void node_repl_complete(struct node *n, uint64_t seq, int err)
{
	bool freeze = config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE;
	struct stream_ack a;

	if (stream_ack(n->stream, seq, err, freeze, &a) < 0) {
		log_warn("%s acknowledged request %" PRIu64 ", which is not outstanding",
			 n->other->name, seq);
		return;
	}
	node_repl_wake(n);
	if (err)
		node_peer_failed(n, a.offset, err);
	if (a.lag_out_of_order)
		log_err("lag FIFO out of order at request %" PRIu64, seq);
	if (a.flushed) {
		actlog_flushed(n->pri->al, a.flushed_epoch);
		node_repl_wake(n); /* extents may leave the log: waiting writes */
	}
	if (a.covered && a.flush_again)
		node_flush_peer(n); /* resync chunks sent meanwhile */
	if (a.covered)
		sync_flush_covered(node_stream_peer(n));
	node_answer(n, &a);
}

/* The peer link's ops->ack (registered by sync_start(), so arg is the
 * struct sync): an ACK or FLUSH_ACK straight from proto/peer.c. */
void node_repl_ack(void *arg, const struct msg_hdr *h)
{
	node_repl_complete(sync_node(arg), h->seq, -(int)h->count); /* positive on the wire */
}

/* Held replies go out with their local results. */
void node_release_held(struct node *n)
{
	struct repl_req *rr;

	while ((rr = stream_held_release(n->stream)))
		repl_done(rr, -ENOTCONN);
}

/* The link is gone: what the peer did not acknowledge stays out of sync,
 * and the clients get the local results, at once or, frozen, later.  The
 * answers come first: a wide request answered now must not leave bits for
 * a later link's FLUSH to clear (stream_link_lost() drops them). */
void node_repl_fail_all(struct node *n)
{
	bool hold = node_frozen(n);
	struct stream_ack a;

	while (stream_fail_next(n->stream, hold, &a))
		node_answer(n, &a);
	stream_link_lost(n->stream);
}

void node_released(void *arg, const void *payload)
{
	/* The payload belongs to a request whose end waits for the peer's
	 * answer, which comes after the bytes left: nothing to do. */
	(void)arg;
	(void)payload;
}
