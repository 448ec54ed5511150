/* The primary's side of replication (see primary.h): a client's write is
 * admitted here (the overlap set, the activity log, the freeze policy),
 * sent to the peer through the stream, and answered when the stream says
 * so.  Until a write is known to be on the peer's disk it is in the
 * activity log or the out-of-sync record (DESIGN.md rules 1 and 2). */
#include "daemon/repl/primary.h"
#include "daemon/repl/primary_int.h"

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

struct primary *primary_new(struct local *loc, struct loop *loop, const struct config *cfg,
			    const struct node_up *up, void *node)
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
			       .up = up,
			       .node = node,
			       .al_ext_bytes = sb->al_extent_bytes,
			       .al_slots = sb->al_slots,
			       .epoch = ACTLOG_EPOCH_FIRST /* rule 7: nothing flushed yet */ };
	p->al = actlog_new(p->al_slots);
	if (!p->al)
		goto oom;
	p->alog = alog_new(loop, local_md(loc), local_bms(loc), local_max_peers(loc),
			   local_data_fd(loc), p->al, p->al_ext_bytes, sb->extent_bytes,
			   primary_wake, p);
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
	lanes_free(p);
	free(p);
}

void primary_set_role(struct primary *p, bool primary)
{
	p->role = primary;
}

int primary_recover(struct primary *p, bool crashed)
{
	return alog_recover(p->alog, crashed);
}

void primary_stats(const struct primary *p, struct primary_stats *st)
{
	uint64_t oldest = 0, lag = 0;

	LANES_FOR(p, l) {
		uint64_t o = stream_lag_oldest_ns(l->stream);

		lag += stream_lag_bytes(l->stream);
		if (o && (!oldest || o < oldest))
			oldest = o;
	}

	*st = (struct primary_stats){
		.writes = p->writes,
		.replicated_bytes = p->replicated_bytes,
		.al_extents = actlog_count(p->al),
		.al_error = alog_error(p->alog),
		.lag_bytes = lag,
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
void al_release(struct primary *p, uint64_t off, uint64_t len)
{
	if (len == 0 || al_wide(p, off, len))
		return; /* AL_WIDE: never counted */
	for (uint64_t e = extent_first(off, p->al_ext_bytes); e <= extent_last(off, len, p->al_ext_bytes);
	     e++)
		actlog_end(p->al, (uint32_t)e);
}

/* True once since the last call if a write waited for a full log whose
 * extents need a peer FLUSH before they can leave. */
bool al_want_flush(struct primary *p)
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
	bool al = al_want_flush(p);

	alog_retry(p->alog);
	lanes_tick(p);
	LANES_FOR(p, l)
		if (lane_up(l) && !stream_covering(l->stream) && (stream_wants_flush(l->stream) || al))
			primary_flush_peer(l);
}

uint16_t repl_msg_type(uint16_t nbd_type)
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
	lanes_wide_begin(p, rr);
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
	if (lanes_held(p) || !lanes_gen_sent(p))
		return ADMIT_WAIT;
	switch (al_begin(p, rr->offset, rr->length)) {
	case AL_WAIT:
		if (al_want_flush(p))
			primary_flush_peers(p);
		return ADMIT_WAIT;
	case AL_WIDE:
		if (cover_wide(p, rr) < 0)
			return ADMIT_WAIT;
		break;
	case AL_GO:
		break;
	}
	if (lanes_up(p) < p->nlanes) { /* a peer misses it */
		if (lanes_write_alone(p) < 0 || !lanes_gen_sent(p)) {
			al_release(p, rr->offset, rr->length);
			return ADMIT_WAIT;
		}
		lanes_mark_out_of_sync(p, rr->offset, rr->length, true);
	}
	return ADMIT_GO;
}

/* The message that replicates a client's request. */
struct msg_hdr repl_hdr(const struct repl_req *rr)
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

/* Sends a write-type request or FLUSH to every connected peer.  Its reply
 * then waits for every sync peer's ACK or FLUSH_ACK; async peers get it
 * too but hold nothing up (within their max-lag). */
static enum repl_verdict offer(struct primary *p, struct repl_req *rr)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	struct msg_hdr h = repl_hdr(rr);
	enum repl_verdict v;

	if (lanes_quorum_fails(p))
		return REPL_FAIL; /* quorum lost under on-no-quorum = io-error */
	if (write && admit(p, rr) == ADMIT_WAIT)
		return REPL_BUSY;
	if (!lanes_up(p)) {
		p->writes += write;
		return REPL_LOCAL;
	}
	v = lanes_offer(p, rr, &h);
	if (v == REPL_BUSY && write)
		al_release(p, rr->offset, rr->length);
	return v;
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
	else if (write && rc != REPL_FAIL)
		primary_accepted(p, rr);
	return rc;
}

/* The local disk failed a client's write (the client gets the error) that
 * the peer may have applied: the replicas may differ there, so the range
 * is out of sync, on disk, until a resync copies it.  Neither side lost
 * an acknowledged write, so both keep their disk state.  EOPNOTSUPP (a
 * FAST_ZERO that cannot be fast) is not a disk failure. */
static void local_failed(struct primary *p, const struct repl_req *rr)
{
	int err = -rr->local_err;

	lanes_mark_out_of_sync(p, rr->offset, rr->length, false);
	(void)local_save_bm(p->loc); /* logs a failure */
	if (err == EOPNOTSUPP)
		return;
	/* Logged once until repaired: a dead disk fails every write. */
	if (diskerr_set(p->disk, "client %s of %" PRIu32 " bytes at %" PRIu64 " on this node: %s",
			msg_type_name(repl_msg_type(rr->type)), rr->length, rr->offset,
			strerror(err)))
		log_err("disk failed a %s; the client got the error; the range is out of "
			"sync until `blkrep resync` (or the next connect) copies it to %s",
			diskerr_text(p->disk), p->nlanes == 1 ? p->lanes[0].name : "the peers");
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
			"disk; %s holds them: if the disk stays bad, make this node secondary and "
			"%s primary",
			diskerr_text(p->disk), lanes_sync_peer(p), lanes_sync_peer(p));
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
		lanes_wide_done(p, rr);
	al_release(p, rr->offset, rr->length);
	wake_parked(p);
}

/* A request primary_submit() parked will not come again (its client
 * left): a wide one stops being tracked, its bits left for a resync. */
void primary_abandon(void *arg, struct repl_req *rr)
{
	struct primary *p = arg;

	lanes_wide_forget(p, rr);
}

/* The peer's send queue has room again, an answer freed a place, or the
 * activity log moved on: parked requests and the resync try again. */
void primary_wake(void *arg)
{
	wake_parked(arg);
}

/* --- the role --- */

uint64_t primary_export_size(const struct primary *p)
{
	uint64_t bytes = p->sb->data_bytes;

	if (!lanes_up(p))
		return p->sb->agreed_bytes ? p->sb->agreed_bytes : bytes;
	return lanes_size(p, bytes);
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
