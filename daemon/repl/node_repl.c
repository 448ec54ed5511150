/* The node's replication stream (see node_int.h): sequence numbers,
 * epochs and the flushes that cover them, sync and async sending on the
 * primary, applying on the secondary.  Until a write is known to be on the
 * peer's disk it is in the out-of-sync record (DESIGN.md rule 2). */
#include "daemon/node_int.h"

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
				.epoch = alog_epoch(n->alog) };
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
		(void)alog_close_epoch(n->alog); /* later writes: not covered */
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
	switch (alog_begin(n->alog, rr->offset, rr->length)) {
	case ALOG_WAIT:
		if (alog_want_flush(n->alog))
			node_flush_peer(n);
		return ADMIT_WAIT;
	case ALOG_WIDE:
		if (node_cover_wide(n, rr) < 0)
			return ADMIT_WAIT;
		break;
	case ALOG_GO:
		break;
	}
	if (!node_connected(n) && node_write_alone(n, rr) < 0) {
		alog_end(n->alog, rr->offset, rr->length);
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
		alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY; /* woken as the peer acknowledges */
	}
	if (copy)
		memcpy(copy, rr->payload, h->length);
	rc = node_send(n, h, copy, NULL, write ? STREAM_ASYNC : STREAM_FLUSH);
	if (rc == -ENOBUFS) {
		if (copy)
			stream_lag_unalloc(n->stream, copy, h->length);
		if (write)
			alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY;
	}
	n->writes += write;
	if (rc < 0 && write)
		node_mark_out_of_sync(n, rr->offset, rr->length);
	if (rc == 0)
		n->replicated_bytes += h->length;
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
		n->writes += write;
		return REPL_LOCAL;
	}
	if (n->sb.mode == META_MODE_ASYNC)
		return node_repl_async(n, rr, &h);
	rc = node_send(n, &h, h.length ? rr->payload : NULL, rr, STREAM_APP);
	if (rc == -ENOBUFS) {
		if (write)
			alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY; /* retried from node_repl_wake() */
	}
	n->writes += write;
	if (rc < 0) { /* the link is going */
		if (write)
			node_mark_out_of_sync(n, rr->offset, rr->length);
		return REPL_LOCAL;
	}
	n->replicated_bytes += h.length;
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
		n->replicated_bytes += h.length;
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
	if (alog_wide(n->alog, rr->offset, rr->length))
		stream_wide_done(n->stream, rr);
	alog_end(n->alog, rr->offset, rr->length);
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
		 n->other->name, offset, strerror(err));
	peer_enable(sync_peer(node_stream_peer(n)), false);
	peer_enable(sync_peer(node_stream_peer(n)), true);
}

/* Does what the stream says about an answered or failed message: errors
 * go out positive, as the server and the resync take them. */
static void node_answer(struct node *n, const struct stream_ack *a)
{
	switch (a->answer) {
	case STREAM_ANSWER_CLIENT:
		repl_done(a->req, -a->err);
		break;
	case STREAM_ANSWER_RESYNC:
		sync_resync_acked(node_stream_peer(n), a->req, -a->err);
		break;
	case STREAM_ANSWER_VERIFY:
		verify_acked(sync_verify(node_stream_peer(n)), a->req, -a->err);
		break;
	case STREAM_ANSWER_NONE:
	case STREAM_ANSWER_HELD:
		break;
	}
}

/* The peer's ACK or FLUSH_ACK of seq (err: its positive errno, or 0). */
void node_repl_complete(struct node *n, uint64_t seq, int err)
{
	bool freeze = config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE;
	struct stream_ack a;

	if (stream_ack(n->stream, seq, -err, freeze, &a) < 0) {
		log_warn("%s acknowledged request %" PRIu64 ", which is not outstanding",
			 n->other->name, seq);
		return;
	}
	node_repl_wake(n);
	if (err)
		node_peer_failed(n, a.offset, err);
	if (a.lag_out_of_order)
		log_err("lag FIFO out of order at request %" PRIu64, seq);
	if (a.flushed)
		alog_flushed(n->alog, a.flushed_epoch);
	if (a.covered && a.flush_again)
		node_flush_peer(n); /* resync chunks sent meanwhile */
	if (a.covered)
		sync_resync_check(node_stream_peer(n));
	node_answer(n, &a);
}

/* The peer link's ops->ack (registered by sync_start(), so arg is the
 * struct sync): an ACK or FLUSH_ACK straight from proto/peer.c. */
void node_repl_ack(void *arg, const struct msg_hdr *h)
{
	node_repl_complete(sync_node(arg), h->seq, (int)h->count);
}

/* Held replies go out with their local results. */
void node_release_held(struct node *n)
{
	struct repl_req *rr;

	while ((rr = stream_held_release(n->stream)))
		repl_done(rr, ENOTCONN);
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

/* Once a second: a FLUSH to the peer if writes wait for one, so that the
 * out-of-sync record and the activity log drain on an idle volume. */
void node_arm_tick(struct node *n)
{
	n->tick_ts.tv_sec = TICK_S;
	io_uring_prep_timeout(loop_sqe(n->loop, &n->tick_op), &n->tick_ts, 0, 0);
}

/* --- the secondary's disk failing --- */

/* The disk state and bitmap on disk: 0, or -1 (logged). */
static int node_save_disk_state(struct node *n)
{
	return node_save_sb(n) < 0 ? -1 : node_save_bm(n);
}

/* The disk failed to apply a replicated request (len 0: a FLUSH).  This
 * node now lacks a write its primary acknowledged, or may: it must not
 * claim to be up to date, and it must not acknowledge the request as
 * applied.  It drops the link (the primary then treats the request as it
 * treats a peer loss) and reconnects after a backoff; the reconnect's
 * bitmap exchange and resync repair the range once the disk works. */
static void node_disk_failed(struct node *n, uint16_t type, uint64_t off, uint32_t len, int err)
{
	unsigned backoff_s;

	(void)diskerr_set(n->disk, "%s of %" PRIu32 " bytes at %" PRIu64 ": %s",
			  msg_type_name(type), len, off, strerror(err));
	node_mark_out_of_sync(n, off, len);
	if (n->sb.disk > META_DISK_OUTDATED)
		n->sb.disk = META_DISK_OUTDATED;
	diskerr_set_md_unsaved(n->disk, node_save_disk_state(n) < 0);
	backoff_s = diskerr_failed(n->disk, node_now_ns());
	log_err("disk failed a replicated %s; disk %s%s, link to %s dropped, reconnecting in %u s "
		"so that a resync repairs it",
		diskerr_text(n->disk), node_disk_name(n),
		diskerr_md_unsaved(n->disk) ? " (not yet in the metadata)" : "", n->other->name,
		backoff_s);
	peer_enable(sync_peer(node_stream_peer(n)), false);
}

/* From the tick: the reconnect after a disk error, once due. */
static void node_disk_retry(struct node *n)
{
	if (!diskerr_retry_due(n->disk, node_now_ns()))
		return;
	if (diskerr_md_unsaved(n->disk) && node_save_disk_state(n) == 0) {
		diskerr_set_md_unsaved(n->disk, false);
		log_info("the metadata records the disk as %s now", node_disk_name(n));
	}
	log_info("reconnecting to %s after the disk error", n->other->name);
	peer_enable(sync_peer(node_stream_peer(n)), true);
}

/* A resync from the peer finished: whatever a disk error left out is
 * there now. */
void node_disk_repaired(struct node *n)
{
	if (*diskerr_text(n->disk))
		log_info("the resync repaired what the disk error left out (%s)",
			 diskerr_text(n->disk));
	diskerr_repaired(n->disk);
}

void node_on_tick(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, tick_op);

	(void)res;
	node_disk_retry(n);
	if (n->alog)
		alog_retry(n->alog);
	if (sync_up(node_stream_peer(n)) && !stream_covering(n->stream) &&
	    (stream_wants_flush(n->stream) || alog_want_flush(n->alog)))
		node_flush_peer(n);
	if (!n->stopping)
		node_arm_tick(n);
}

/* --- replication: the secondary's side --- */

static void node_flush_done(struct ioop *op, int res)
{
	struct flush_op *f = container_of(op, struct flush_op, op);
	struct node *n = f->n;
	struct sync *s = node_stream_peer(n);
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = f->seq, .count = (uint32_t)-res };

	f->busy = false;
	if (res < 0 && f->link == stream_link(n->stream) && sync_up(s))
		return node_disk_failed(n, MSG_FLUSH, 0, 0, -res);
	if (res < 0)
		log_err("applying a replicated FLUSH: %s", strerror(-res));
	if (f->link == stream_link(n->stream) && sync_up(s) &&
	    peer_send(sync_peer(s), &ack, NULL) < 0)
		peer_drop(sync_peer(s),
			  "cannot acknowledge a replicated FLUSH: the send queue is full");
}

_Static_assert(FLUSHES_MAX + 3 <= PEER_ANSWER_ROOM,
	       "the FLUSH_ACKs of flushes in flight fit in the room kept for answers");

/* Starts the fdatasync of a FLUSH: -1 if FLUSHES_MAX are in flight (the
 * caller flushes inline). */
static int node_flush_async(struct node *n, uint64_t seq)
{
	for (int i = 0; i < FLUSHES_MAX; i++) {
		struct flush_op *f = &n->flushes[i];

		if (f->busy)
			continue;
		*f = (struct flush_op){ .op.done = node_flush_done,
					.n = n,
					.seq = seq,
					.link = stream_link(n->stream),
					.busy = true };
		io_uring_prep_fsync(loop_sqe(n->loop, &f->op), n->data_fd, IORING_FSYNC_DATASYNC);
		return 0;
	}
	return -1;
}

/* Applies one replicated request, in stream order, and acknowledges it.
 * Done inline: the stream is applied in order and the peer waits anyway;
 * FLUSH and FUA block the loop for the disk's flush. */
void node_apply(struct node *n, struct sync *from, const struct msg_hdr *h,
		const uint8_t *payload)
{
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };
	int err;

	switch (h->type) {
	case MSG_RESYNC_DATA:
		if (!sync_target_chunk(from, h->length))
			return; /* never written over a disk that claims up to date */
		/* fall through */
	case MSG_WRITE:
		err = apply_write(n->data_fd, payload, h->length, h->offset, h->flags & MSG_F_FUA);
		break;
	case MSG_TRIM:
	case MSG_ZERO:
		err = apply_zero(n->data_fd, h->offset, h->count, h->flags & MSG_F_NO_HOLE,
				 h->flags & MSG_F_FUA);
		break;
	default: /* MSG_FLUSH */
		/* A client's FLUSH is a barrier: nothing after it is applied
		 * before it is durable.  The node's own need not wait. */
		if ((h->flags & MSG_F_NOBARRIER) && node_flush_async(n, h->seq) == 0)
			return;
		ack.type = MSG_FLUSH_ACK;
		err = apply_flush(n->data_fd);
		break;
	}
	if (err)
		return node_disk_failed(n, h->type, h->offset, h->type == MSG_FLUSH ? 0 : h->count,
					err);
	/* Unanswered, the primary would wait for ever: without the link, it
	 * marks what it did not see acknowledged out of sync. */
	if (peer_send(sync_peer(from), &ack, NULL) < 0)
		peer_drop(sync_peer(from),
			  "cannot acknowledge a replicated %s at %" PRIu64
			  ": the send queue is full",
			  msg_type_name(h->type), h->offset);
}

/* Under freeze a sync primary never acknowledges a write without its peer
 * unless an operator outdates the peer, so a secondary (which follows its
 * primary's mode) that lost its primary stays up to date and is promoted
 * without --force: RPO 0. */
bool node_primary_freezes(const struct node *n)
{
	/* An async primary acknowledges writes its peer may not have yet. */
	return config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE &&
	       n->sb.mode == META_MODE_SYNC;
}

/* An up-to-date secondary that is not receiving its primary's writes is
 * only consistent: a valid image, perhaps not the newest.  Promoting it
 * then takes --force.  A resync brings it back to up to date. */
void node_may_lag(struct node *n, const char *why)
{
	if (n->sb.disk != META_DISK_UPTODATE)
		return;
	n->sb.disk = META_DISK_CONSISTENT;
	(void)node_save_sb(n);
	log_warn("disk is now consistent, not up to date: %s", why);
}
