/* The primary's side of replication (see primary.h): a client's write is
 * admitted here (the overlap set, the activity log, the freeze policy),
 * sent to the peer through the stream, and answered when the stream says
 * so.  Until a write is known to be on the peer's disk it is in the
 * activity log or the out-of-sync record (DESIGN.md rules 1 and 2). */
#include "daemon/repl/primary.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/meta/actlog.h"
#include "daemon/meta/alog.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/diskerr.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/verify.h"
#include "nbd/server.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/bitmap.h"
#include "utils/clock.h"
#include "utils/extent.h"
#include "utils/log.h"

/* The overlap set's room: both servers' client writes (a demoted node's
 * stopped export may still have its own in flight) and the chunk locks. */
#define PRIMARY_LOCKS_MAX    16
#define PRIMARY_INFLIGHT_MAX (2 * SERVER_REQS_MAX + PRIMARY_LOCKS_MAX)

struct primary {
	struct local *loc;
	struct meta_sb *sb;	   /* loc's */
	struct diskerr *disk;	   /* loc's */
	struct loop *loop;
	const struct config *cfg;
	const char *peer_name;	   /* for messages */
	const struct node_up *up;  /* the node's role and exports */
	void *node;		   /* up's arg */
	struct sync *peer;	   /* the stream's peer: primary_add_peer() */
	/* What the node and the link told it (primary_set_role(),
	 * primary_link_up() and _down()), kept here so that a write asks no
	 * one above: */
	bool role;		   /* the node is primary */
	struct peer *link;	   /* the peer's link, while up */
	bool refused;		   /* a request got REPL_BUSY since the last wake */
	/* The replication stream to the peer: sequence numbers, messages
	 * awaiting answers, flush covering (rule 2), wide requests (rule 9),
	 * held requests, the async lag (stream.h). */
	struct stream *stream;
	struct actlog *al;	   /* the hot extents (rule 1), admitting writes */
	struct alog *alog;	   /* ... and their snapshots on disk */
	uint32_t al_ext_bytes;
	unsigned al_slots;
	uint64_t epoch;		   /* writes sent to the peer now are in this one */
	bool want_flush;	   /* a write waits for extents a peer FLUSH frees */
	bool gen_moved;		   /* wrote alone since the link went: a new generation */
	bool peer_outdated;	   /* `blkrep outdate-peer`: a frozen primary may go on */
	uint64_t export_bytes;	   /* what the NBD export offers while primary */
	uint64_t writes;	   /* for status */
	uint64_t replicated_bytes;
	struct hist ack_hist;	   /* a client write sent to the peer until its ACK */
	struct hist local_hist;	   /* a client write accepted until the local disk did it */
	/* The overlap set (below). */
	struct repl_req *inflight[PRIMARY_INFLIGHT_MAX];
	unsigned ninflight;
	unsigned nlocked; /* of them, primary_chunk_lock()'s */
};

struct primary *primary_new(struct local *loc, struct loop *loop, const struct config *cfg,
			    const char *peer_name, const struct node_up *up, void *node)
{
	struct primary *p = calloc(1, sizeof(*p));
	struct meta_sb *sb = local_sb(loc);

	if (!p)
		goto oom;
	*p = (struct primary){ .loc = loc,
			       .sb = sb,
			       .disk = local_disk(loc),
			       .loop = loop,
			       .cfg = cfg,
			       .peer_name = peer_name,
			       .up = up,
			       .node = node,
			       .al_ext_bytes = sb->al_extent_bytes,
			       .al_slots = sb->al_slots,
			       .epoch = ACTLOG_EPOCH_FIRST /* rule 7: nothing flushed yet */ };
	p->stream = stream_new(local_slot_bm(loc, local_slot(loc, peer_name)), sb->extent_bytes,
			       config_max_lag(cfg));
	p->al = actlog_new(p->al_slots);
	if (!p->stream || !p->al)
		goto oom;
	p->alog = alog_new(loop, local_md(loc), local_bms(loc), local_max_peers(loc),
			   local_data_fd(loc), p->al,
			   p->al_ext_bytes, sb->extent_bytes, primary_wake, p);
	if (!p->alog) {
		primary_free(p);
		return NULL;
	}
	return p;
oom:
	log_err("cannot set up the activity log (%u slots): out of memory", sb->al_slots);
	primary_free(p);
	return NULL;
}

void primary_free(struct primary *p)
{
	if (!p)
		return;
	alog_free(p->alog);
	actlog_free(p->al);
	stream_free(p->stream);
	free(p);
}

void primary_add_peer(struct primary *p, struct sync *s)
{
	assert(!p->peer); /* one peer: more are issue 16's */
	p->peer = s;
}

struct stream *primary_stream(const struct primary *p)
{
	return p->stream;
}

void primary_set_role(struct primary *p, bool primary)
{
	p->role = primary;
}

/* The peer's link is up. */
static bool primary_connected(const struct primary *p)
{
	return p->link != NULL;
}

int primary_recover(struct primary *p, bool crashed)
{
	return alog_recover(p->alog, crashed);
}

void primary_stats(const struct primary *p, struct primary_stats *st)
{
	uint64_t oldest = stream_lag_oldest_ns(p->stream);

	*st = (struct primary_stats){
		.writes = p->writes,
		.replicated_bytes = p->replicated_bytes,
		.al_extents = actlog_count(p->al),
		.al_error = alog_error(p->alog),
		.lag_bytes = stream_lag_bytes(p->stream),
		.lag_seconds = oldest ? (double)(clock_now_ns() - oldest) / 1e9 : 0,
		.al_writes = alog_writes(p->alog),
		.ack_latency = &p->ack_hist,
		.local_latency = &p->local_hist,
	};
}

const char *primary_al_error(const struct primary *p)
{
	return alog_error(p->alog);
}

/* --- the activity log's admission (rules 1 and 7) --- */

/* A range too wide for the log (a huge TRIM) is covered by the bitmap. */
static bool al_wide(const struct primary *p, uint64_t off, uint64_t len)
{
	return extent_count(off, len, p->al_ext_bytes) > p->al_slots / 2;
}

enum al_verdict {
	AL_GO,	 /* every extent is in the durable log: submit */
	AL_WAIT, /* not yet: primary_wake() follows the snapshot or flush */
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
	primary_wake(p);
}

/* Once a second: a failed snapshot is tried again, and a FLUSH goes to the
 * peer if writes wait for one, so that the out-of-sync record and the
 * activity log drain on an idle volume. */
void primary_tick(struct primary *p)
{
	alog_retry(p->alog);
	if (primary_connected(p) && !stream_covering(p->stream) &&
	    (stream_wants_flush(p->stream) || al_want_flush(p)))
		primary_flush_peer(p);
}

/* --- the stream to the peer --- */

/* Queues h (and payload) for the peer with the next sequence number and
 * records it in the stream until the answer.  0, -ENOBUFS (no room: wait
 * for primary_wake()) or another -errno (the link is going). */
int primary_send(struct primary *p, struct msg_hdr *h, const void *payload, struct repl_req *rr,
	      enum stream_kind kind)
{
	struct stream_msg m = { .kind = kind,
				.flush = h->type == MSG_FLUSH,
				.offset = h->offset,
				.count = h->count,
				.req = rr,
				.epoch = p->epoch };
	struct stream_send sent;
	int rc = stream_next(p->stream, &h->seq);

	if (rc < 0)
		return rc; /* every place is taken */
	rc = peer_send_ref(p->link, h, payload); /* kept until the answer */
	if (rc < 0)
		return rc;
	if (kind == STREAM_ASYNC && h->length) {
		m.copy = (void *)(uintptr_t)payload;
		m.copied = h->length;
	}
	if (kind == STREAM_APP || kind == STREAM_ASYNC)
		m.now_ns = clock_now_ns(); /* the lag's age, the ACK's latency */
	stream_sent(p->stream, &m, &sent);
	if (sent.close_epoch)
		p->epoch++; /* later writes: not covered */
	return 0;
}

/* A FLUSH of the node's own: so that bits and activity-log extents that
 * wait for one can go, and to close a resync pass. */
void primary_flush_peer(struct primary *p)
{
	struct msg_hdr h = { .type = MSG_FLUSH, .flags = MSG_F_NOBARRIER };

	if (primary_connected(p) && primary_send(p, &h, NULL, NULL, STREAM_FLUSH) == -ENOBUFS)
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
 * One set, p->inflight, holds them all: the client writes
 * primary_submit() accepted, until primary_end(), of the export and of
 * one a demotion stopped (its writes may still be in flight), and the
 * chunks primary_chunk_lock() took, until primary_chunk_unlock(). */

static bool overlap_any(const struct primary *p, const struct repl_req *rr)
{
	uint64_t end = rr->offset + rr->length;

	for (unsigned i = 0; i < p->ninflight; i++) {
		const struct repl_req *o = p->inflight[i];

		if (rr->offset < o->offset + o->length && o->offset < end)
			return true;
	}
	return false;
}

static bool overlap_has(const struct primary *p, const struct repl_req *rr)
{
	for (unsigned i = 0; i < p->ninflight; i++)
		if (p->inflight[i] == rr)
			return true;
	return false;
}

/* Takes rr out of the set: false if it was not in it. */
static bool overlap_remove(struct primary *p, const struct repl_req *rr)
{
	for (unsigned i = 0; i < p->ninflight; i++) {
		if (p->inflight[i] == rr) {
			p->inflight[i] = p->inflight[--p->ninflight];
			return true;
		}
	}
	return false;
}

/* Requests parked on both servers are offered again: only if one was
 * refused since the last wake (they park only on REPL_BUSY), so that an
 * answer that frees nothing anyone waits for costs nothing. */
static void wake_parked(struct primary *p)
{
	if (!p->refused)
		return;
	p->refused = false;
	p->up->wake_exports(p->node);
}

/* A client write waits (REPL_BUSY) while it overlaps a range in the set,
 * or while the set has no room for it. */
static bool overlap_busy(const struct primary *p, const struct repl_req *rr)
{
	return p->ninflight - p->nlocked >= PRIMARY_INFLIGHT_MAX - PRIMARY_LOCKS_MAX ||
	       overlap_any(p, rr);
}

/* Without an export there is no client write to lock against: a
 * promotion locks the chunks then in flight (sync_relock()), and a chunk
 * already in the set stays locked. */
bool primary_chunk_lock(struct primary *p, struct repl_req *rr)
{
	if (!p->up->exporting(p->node) || overlap_has(p, rr))
		return true;
	if (p->nlocked == PRIMARY_LOCKS_MAX || overlap_any(p, rr))
		return false;
	p->inflight[p->ninflight++] = rr;
	p->nlocked++;
	return true;
}

void primary_chunk_unlock(struct primary *p, struct repl_req *rr)
{
	if (!overlap_remove(p, rr))
		return;
	p->nlocked--;
	wake_parked(p);
}

/* Client writes in flight or waiting: a resync without a rate limit then
 * keeps to one chunk at a time. */
bool primary_chunk_app_busy(struct primary *p)
{
	return p->ninflight > p->nlocked || p->up->exports_parked(p->node);
}

/* --- replication: the primary's side --- */

/* Under on-peer-loss = freeze, a primary without its peer holds writes
 * until the peer is back or an operator outdates it. */
bool primary_frozen(const struct primary *p)
{
	return p->role && !primary_connected(p) && !p->peer_outdated &&
	       config_on_peer_loss(p->cfg) == CONFIG_PEER_LOSS_FREEZE;
}

/* The first write without the peer starts a new generation, so that the
 * next connect knows this side moved on (DESIGN.md, generations). */
static int write_alone(struct primary *p, const struct repl_req *rr)
{
	if (!p->gen_moved) {
		struct meta_sb before = *p->sb;

		local_new_gen(p->loc, 1U << local_slot(p->loc, p->peer_name));
		if (local_save_sb(p->loc) < 0) {
			*p->sb = before;
			return -1;
		}
		p->gen_moved = true;
		log_info("writing without %s: new generation %016" PRIx64, p->peer_name,
			 p->sb->gen.current);
	}
	stream_mark_out_of_sync(p->stream, rr->offset, rr->length);
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
static int cover_wide(struct primary *p, const struct repl_req *rr)
{
	stream_wide_begin(p->stream, rr, rr->offset, rr->length, primary_connected(p));
	return local_save_bm(p->loc);
}

/* Whether a client's write may be submitted now. */
enum admission {
	ADMIT_GO,   /* recorded where rule 1 wants it: submit */
	ADMIT_WAIT, /* frozen, the log not yet durable, or a metadata write
		     * failed: park until primary_wake() (never go on
		     * unrecorded) */
};

/* Before a client's write is submitted: the activity log (rule 1), the
 * freeze policy, and the bitmap when there is no peer. */
static enum admission admit(struct primary *p, struct repl_req *rr)
{
	if (primary_frozen(p))
		return ADMIT_WAIT;
	/* Held requests go first: a new write waits until every held one was
	 * sent again, so that held and unanswered requests together never
	 * exceed what a second link loss moves back into the held list. */
	if (stream_held(p->stream))
		return ADMIT_WAIT;
	switch (al_begin(p, rr->offset, rr->length)) {
	case AL_WAIT:
		if (al_want_flush(p))
			primary_flush_peer(p);
		return ADMIT_WAIT;
	case AL_WIDE:
		if (cover_wide(p, rr) < 0)
			return ADMIT_WAIT;
		break;
	case AL_GO:
		break;
	}
	if (!primary_connected(p) && write_alone(p, rr) < 0) {
		al_end(p, rr->offset, rr->length);
		return ADMIT_WAIT;
	}
	return ADMIT_GO;
}

/* Async mode: the request goes to the peer, but its reply waits only for
 * the local disk.  A WRITE's payload is copied into the lag FIFO (the
 * client's buffer is reused once it is answered); at max_lag bytes not yet
 * acknowledged by the peer, new writes wait.  A FLUSH is a barrier in the
 * stream, applied by the peer with an fdatasync. */
static enum repl_verdict offer_async(struct primary *p, struct repl_req *rr, struct msg_hdr *h)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	void *copy = NULL;
	int rc;

	if (h->length && !(copy = stream_lag_alloc(p->stream, h->length))) {
		al_end(p, rr->offset, rr->length);
		return REPL_BUSY; /* woken as the peer acknowledges */
	}
	if (copy)
		memcpy(copy, rr->payload, h->length);
	rc = primary_send(p, h, copy, NULL, write ? STREAM_ASYNC : STREAM_FLUSH);
	if (rc == -ENOBUFS) {
		if (copy)
			stream_lag_unalloc(p->stream, copy, h->length);
		if (write)
			al_end(p, rr->offset, rr->length);
		return REPL_BUSY;
	}
	p->writes += write;
	if (rc < 0 && write)
		stream_mark_out_of_sync(p->stream, rr->offset, rr->length);
	if (rc == 0)
		p->replicated_bytes += h->length;
	return REPL_LOCAL;
}

/* The message that replicates a client's request. */
static struct msg_hdr repl_hdr(const struct repl_req *rr)
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
static enum repl_verdict offer(struct primary *p, struct repl_req *rr)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	struct msg_hdr h = repl_hdr(rr);
	int rc;

	if (write && admit(p, rr) == ADMIT_WAIT)
		return REPL_BUSY;
	if (!primary_connected(p)) {
		p->writes += write;
		return REPL_LOCAL;
	}
	if (p->sb->mode == META_MODE_ASYNC)
		return offer_async(p, rr, &h);
	rc = primary_send(p, &h, h.length ? rr->payload : NULL, rr, STREAM_APP);
	if (rc == -ENOBUFS) {
		if (write)
			al_end(p, rr->offset, rr->length);
		return REPL_BUSY; /* retried from primary_wake() */
	}
	p->writes += write;
	if (rc < 0) { /* the link is going */
		if (write)
			stream_mark_out_of_sync(p->stream, rr->offset, rr->length);
		return REPL_LOCAL;
	}
	p->replicated_bytes += h.length;
	return REPL_SENT;
}

/* A write joins the overlap set; its local latency counts from here
 * (repl_local_done() stops it). */
static void primary_accepted(struct primary *p, struct repl_req *rr)
{
	p->inflight[p->ninflight++] = rr;
	rr->start_ns = clock_now_ns();
	rr->local_ns = 0;
}

/* A client's write-type request or FLUSH (nbd/repl.h): a write
 * overlapping one in flight waits for it (rule 3); one accepted is in the
 * overlap set until primary_end(). */
enum repl_verdict primary_submit(void *arg, struct repl_req *rr)
{
	struct primary *p = arg;
	bool write = rr->type != NBD_CMD_FLUSH;
	enum repl_verdict rc;

	/* A request the retiring export of a demoted node had parked: its
	 * client is gone, and the peer may be primary now (rule 10). */
	if (!p->role)
		return REPL_FAIL;
	rc = write && overlap_busy(p, rr) ? REPL_BUSY : offer(p, rr);
	if (rc == REPL_BUSY)
		p->refused = true; /* parked: offered again after a wake */
	else if (write)
		primary_accepted(p, rr);
	return rc;
}

/* Under freeze, requests the peer never answered are held.  On the next
 * link they are sent again, oldest first, and answered when the peer
 * acknowledges them, as any sync request: a client never hears of a write
 * before the peer holds it (RPO 0), whatever happens next.  Their ranges
 * stay in the bitmap for the resync too.  Called at connect and whenever
 * the link has room. */
void primary_resend_held(struct primary *p)
{
	unsigned sent = 0;
	struct repl_req *rr;

	while (primary_connected(p) && (rr = stream_held_oldest(p->stream))) {
		struct msg_hdr h = repl_hdr(rr);

		if (primary_send(p, &h, h.length ? rr->payload : NULL, rr, STREAM_APP) < 0)
			break; /* no room: the link's writable callback calls again; or the link went */
		stream_held_resent(p->stream);
		p->replicated_bytes += h.length;
		sent++;
	}
	if (!sent)
		return;
	if (!stream_held(p->stream))
		primary_wake(p); /* the writes admit() parked behind them */
	log_info("%u requests held since the link was lost are sent again to %s; each is "
		 "answered when %s acknowledges it",
		 sent, p->peer_name, p->peer_name);
}

/* The local disk failed a client's write (the client gets the error) that
 * the peer may have applied: the replicas may differ there, so the range
 * is out of sync, on disk, until a resync copies it.  Neither side lost
 * an acknowledged write, so both keep their disk state.  EOPNOTSUPP (a
 * FAST_ZERO that cannot be fast) is not a disk failure. */
static void local_failed(struct primary *p, const struct repl_req *rr)
{
	int err = -rr->local_err;

	stream_mark_out_of_sync(p->stream, rr->offset, rr->length);
	(void)local_save_bm(p->loc); /* logs a failure */
	if (err == EOPNOTSUPP)
		return;
	/* Logged once until repaired: a dead disk fails every write. */
	if (diskerr_set(p->disk, "client %s of %" PRIu32 " bytes at %" PRIu64 " on this node: %s",
			msg_type_name(repl_msg_type(rr->type)), rr->length, rr->offset,
			strerror(err)))
		log_err("disk failed a %s; the client got the error; the range is out of "
			"sync until `blkrep resync` (or the next connect) copies it to %s",
			diskerr_text(p->disk), p->peer_name);
}

/* The local disk did (err 0) or failed a client's FLUSH (the client gets
 * the error).  After a failure, writes since the last good FLUSH may be
 * missing from this disk (Linux may drop the dirty pages it could not
 * write), and nothing says which; the peer holds them (sync mode, or once
 * the lag drained), so the way out the log names is a failover, not a
 * resync from here.  status shows the error until a FLUSH succeeds. */
void primary_flush_done(void *arg, int err)
{
	struct primary *p = arg;

	if (!err) {
		if (diskerr_is_flush(p->disk)) {
			log_info("a client FLUSH succeeds again on this node (after: %s)",
				 diskerr_text(p->disk));
			diskerr_clear(p->disk);
		}
		return;
	}
	if (diskerr_set(p->disk, DISKERR_FLUSH "%s", strerror(-err)))
		log_err("disk failed a %s; writes since the last FLUSH may be missing from this "
			"disk; %s holds them: if the disk stays bad, make this node secondary "
			"and %s primary",
			diskerr_text(p->disk), p->peer_name, p->peer_name);
}

/* A client's write accepted by primary_submit() is answered (or its
 * client is gone): its range leaves the overlap set. */
void primary_end(void *arg, struct repl_req *rr)
{
	struct primary *p = arg;

	(void)overlap_remove(p, rr);
	if (rr->local_err)
		local_failed(p, rr);
	else if (rr->local_ns > rr->start_ns)
		hist_record(&p->local_hist, rr->local_ns - rr->start_ns);
	if (al_wide(p, rr->offset, rr->length))
		stream_wide_done(p->stream, rr);
	al_end(p, rr->offset, rr->length);
	wake_parked(p);
}

/* A request primary_submit() parked will not come again (its client
 * left): a wide one stops being tracked, its bits left for a resync. */
void primary_abandon(void *arg, struct repl_req *rr)
{
	struct primary *p = arg;

	stream_wide_forget(p->stream, rr);
}

/* The peer's send queue has room again, an answer freed a place, or the
 * activity log moved on: parked requests and the resync try again. */
void primary_wake(void *arg)
{
	wake_parked(arg);
}

/* The peer answered a request with an error: its disk lacks the write.
 * (A peer of this version drops the link instead of answering so.)  The
 * link is dropped here too, so that the reconnect's bitmap exchange and
 * resync repair it; under freeze the client's request is held meanwhile. */
static void peer_failed(struct primary *p, uint64_t offset, int err)
{
	log_warn("%s failed a replicated request at %" PRIu64 ": %s; reconnecting so that a "
		 "resync repairs it",
		 p->peer_name, offset, strerror(-err));
	peer_enable(p->link, false);
	peer_enable(p->link, true);
}

/* Does what the stream says about an answered or failed message (a->err:
 * 0 or -errno). */
static void answer(struct primary *p, const struct stream_ack *a)
{
	switch (a->answer) {
	case STREAM_ANSWER_CLIENT:
		repl_done(a->req, a->err);
		break;
	case STREAM_ANSWER_RESYNC:
		sync_resync_acked(p->peer, a->req, a->err);
		break;
	case STREAM_ANSWER_VERIFY:
		verify_acked(sync_verify(p->peer), a->req, a->err);
		break;
	case STREAM_ANSWER_NONE:
	case STREAM_ANSWER_HELD:
		break;
	}
}

/* The peer's ACK or FLUSH_ACK of seq (err: 0, or -errno: the peer's
 * disk failed it). */
static void primary_complete(struct primary *p, uint64_t seq, int err)
{
	bool freeze = config_on_peer_loss(p->cfg) == CONFIG_PEER_LOSS_FREEZE;
	struct stream_ack a;

	if (stream_ack(p->stream, seq, err, freeze, &a) < 0) {
		/* A peer that answers what nobody asked is broken (or not
		 * the peer): nothing it says can be trusted any more. */
		if (p->link)
			peer_drop(p->link, "protocol error: an answer to request %" PRIu64
					   ", which is not outstanding", seq);
		return;
	}
	/* A place in the stream is free, and after a FLUSH_ACK extents may
	 * leave the log: parked requests try again (at the batch's end). */
	if (a.write_sent_ns && !err)
		hist_record(&p->ack_hist, clock_now_ns() - a.write_sent_ns);
	primary_wake(p);
	if (err)
		peer_failed(p, a.offset, err);
	if (a.lag_out_of_order)
		log_err("lag FIFO out of order at request %" PRIu64, seq);
	if (a.flushed)
		actlog_flushed(p->al, a.flushed_epoch);
	if (a.covered && a.flush_again)
		primary_flush_peer(p); /* resync chunks sent meanwhile */
	if (a.covered)
		sync_flush_covered(p->peer);
	answer(p, &a);
}

/* An ACK or FLUSH_ACK straight from proto/peer.c (peer_on_ack()). */
void primary_ack(void *arg, const struct msg_hdr *h)
{
	primary_complete(arg, h->seq, -(int)h->count); /* positive on the wire */
}

/* Held replies go out with their local results. */
void primary_release_held(struct primary *p)
{
	struct repl_req *rr;

	while ((rr = stream_held_release(p->stream)))
		repl_done(rr, -ENOTCONN);
}

/* The link is gone: what the peer did not acknowledge stays out of sync,
 * and the clients get the local results, at once or, frozen, later.  The
 * answers come first: a wide request answered now must not leave bits for
 * a later link's FLUSH to clear (stream_link_lost() drops them). */
static void primary_fail_all(struct primary *p)
{
	bool hold = primary_frozen(p);
	struct stream_ack a;

	while (stream_fail_next(p->stream, hold, &a))
		answer(p, &a);
	stream_link_lost(p->stream);
}

void primary_released(void *arg, const void *payload)
{
	/* The payload belongs to a request whose end waits for the peer's
	 * answer, which comes after the bytes left: nothing to do. */
	(void)arg;
	(void)payload;
}

void primary_link_up(struct primary *p, struct peer *link)
{
	p->link = link;
	(void)stream_link_up(p->stream);
	p->gen_moved = false;
	p->peer_outdated = false;
	primary_standalone(p, false);
}

void primary_link_down(struct primary *p)
{
	p->link = NULL;
	primary_fail_all(p);
	primary_standalone(p, true);
	primary_wake(p); /* parked requests go on locally, or freeze */
}

/* --- the role --- */

void primary_promoted(struct primary *p)
{
	p->gen_moved = !primary_connected(p);
	/* Promoting a node whose peer is gone is the operator's word that
	 * the peer is down: under freeze, writes go on (as after
	 * outdate-peer). */
	if (!primary_connected(p))
		p->peer_outdated = true;
}

void primary_outdate_peer(struct primary *p)
{
	p->peer_outdated = true;
	primary_release_held(p);
	primary_wake(p);
}

uint64_t primary_export_size(const struct primary *p)
{
	uint64_t bytes = p->sb->data_bytes;

	if (!primary_connected(p))
		return p->sb->agreed_bytes ? p->sb->agreed_bytes : bytes;
	if (sync_hello(p->peer)->size_bytes < bytes)
		bytes = sync_hello(p->peer)->size_bytes;
	return bytes;
}

uint64_t primary_export_begin(struct primary *p)
{
	p->export_bytes = primary_export_size(p);
	return p->export_bytes;
}

uint64_t primary_export_bytes(const struct primary *p)
{
	return p->export_bytes;
}

void primary_agree_size(struct primary *p)
{
	uint64_t agreed = primary_export_size(p);

	if (agreed == p->sb->agreed_bytes)
		return;
	p->sb->agreed_bytes = agreed;
	(void)local_save_sb(p->loc);
}
