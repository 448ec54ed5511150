/* The primary's side, per peer (see primary_int.h): one lane for each
 * other node of the resource, with its own stream, link and mode.  A
 * client's write goes to every connected lane at once or, when one has no
 * room, to none; it is answered when every sync lane acknowledged it
 * (repl_req.repl_pending counts them).  Activity-log extents leave only
 * once every connected peer flushed them; a peer that is not connected
 * has its own bitmap slot.  With three nodes or more the secondaries are
 * told, in the stream, which generation they are at and which nodes miss
 * the writes (MSG_GEN), and when the writes they received before are on
 * every peer (MSG_MARK): what they need to resync among themselves after
 * this node is lost. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/meta/actlog.h"
#include "daemon/meta/local.h"
#include "daemon/repl/primary_int.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/verify.h"
#include "nbd/server.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/clock.h"
#include "utils/log.h"
#include "utils/strbuf.h"

struct lane *primary_add_peer(struct primary *p, struct sync *s, const char *name, int slot,
			      struct bitmap *bm, uint64_t max_lag)
{
	struct lane *l;

	if (p->nlanes == PRIMARY_LANES_MAX)
		return NULL;
	l = &p->lanes[p->nlanes];
	*l = (struct lane){ .p = p, .sync = s, .name = name, .slot = slot };
	l->stream = stream_new(bm, p->sb->extent_bytes, max_lag);
	if (!l->stream) {
		log_err("cannot set up the stream to %s: out of memory", name);
		return NULL;
	}
	p->nlanes++;
	p->multi = p->nlanes > 1;
	return l;
}

void lanes_free(struct primary *p)
{
	LANES_FOR(p, l)
		stream_free(l->stream);
}

struct stream *lane_stream(const struct lane *l)
{
	return l->stream;
}

const char *lane_name(const struct lane *l)
{
	return l->name;
}

bool lane_up(const struct lane *l)
{
	return l->link != NULL;
}

bool lane_async(const struct lane *l)
{
	return l->has_mode ? l->async : l->p->sb->mode == META_MODE_ASYNC;
}

void lane_set_mode(struct lane *l, bool async)
{
	l->has_mode = true;
	l->async = async;
}

void lane_clear_mode(struct lane *l)
{
	l->has_mode = false;
}

unsigned lanes_up(const struct primary *p)
{
	unsigned n = 0;

	LANES_FOR(p, l)
		n += lane_up(l);
	return n;
}

/* A connected sync peer's name (the one a failover should promote), else
 * the first peer's. */
const char *lanes_sync_peer(const struct primary *p)
{
	LANES_FOR(p, l)
		if (lane_up(l) && !lane_async(l))
			return l->name;
	return p->nlanes ? p->lanes[0].name : "the peer";
}

bool lanes_held(const struct primary *p)
{
	LANES_FOR(p, l)
		if (stream_held(l->stream))
			return true;
	return false;
}

/* Every lane, or only those whose peer is not connected. */
void lanes_mark_out_of_sync(struct primary *p, uint64_t off, uint64_t len, bool absent_only)
{
	LANES_FOR(p, l)
		if (!absent_only || !lane_up(l))
			stream_mark_out_of_sync(l->stream, off, len);
}

static uint64_t lanes_min_flushed(const struct primary *p);

#define MARK_NS (250 * 1000000ULL) /* MSG_MARKs at most this often */

/* --- sending --- */

/* Queues h (and payload) on l with its next sequence number and records
 * it in l's stream until the answer.  *closes: a FLUSH that closes the
 * activity log's epoch (the caller steps it once for all lanes). */
static int lane_send(struct lane *l, struct msg_hdr *h, const void *payload, struct repl_req *rr,
		     enum stream_kind kind, bool *closes)
{
	struct stream_msg m = { .kind = kind,
				.flush = h->type == MSG_FLUSH,
				.offset = h->offset,
				.count = h->count,
				.req = rr,
				.epoch = l->p->epoch };
	struct stream_send sent;
	int rc = stream_next(l->stream, &h->seq);

	if (rc < 0)
		return rc; /* every place is taken */
	rc = peer_send_ref(l->link, h, payload); /* kept until the answer */
	if (rc < 0)
		return rc;
	if (kind == STREAM_ASYNC && h->length) {
		m.copy = (void *)(uintptr_t)payload;
		m.copied = h->length;
	}
	if (kind == STREAM_APP || kind == STREAM_ASYNC)
		m.now_ns = clock_now_ns(); /* the lag's age, the ACK's latency */
	stream_sent(l->stream, &m, &sent);
	*closes |= sent.close_epoch;
	return 0;
}

int primary_send(struct lane *l, struct msg_hdr *h, const void *payload, struct repl_req *rr,
		 enum stream_kind kind)
{
	bool closes = false;
	int rc = lane_send(l, h, payload, rr, kind, &closes);

	if (closes)
		l->p->epoch++; /* later writes: not covered */
	return rc;
}

/* A FLUSH of the node's own to one peer: so that bits and activity-log
 * extents that wait for one can go, and to close a resync pass. */
void primary_flush_peer(struct lane *l)
{
	struct msg_hdr h = { .type = MSG_FLUSH, .flags = MSG_F_NOBARRIER };

	if (lane_up(l) && primary_send(l, &h, NULL, NULL, STREAM_FLUSH) == -ENOBUFS)
		log_debug("no room for a FLUSH to %s now; later", l->name);
}

void primary_flush_peers(struct primary *p)
{
	LANES_FOR(p, l)
		primary_flush_peer(l);
}

/* Room on every connected lane for one more message, and for an async
 * lane's copy of the payload: all or none, so that a write never goes to
 * some peers while it waits for others.  copies[i]: lane i's copy. */
static bool lanes_room(struct primary *p, const struct msg_hdr *h, void **copies)
{
	uint64_t seq;

	memset(copies, 0, sizeof(void *) * PRIMARY_LANES_MAX);
	LANES_FOR(p, l) {
		void **c = &copies[l - p->lanes];

		if (!lane_up(l))
			continue;
		if (stream_next(l->stream, &seq) < 0 || peer_send_space(l->link) == 0)
			goto none;
		if (lane_async(l) && h->length && !(*c = stream_lag_alloc(l->stream, h->length)))
			goto none;
	}
	return true;
none:
	LANES_FOR(p, l)
		if (copies[l - p->lanes])
			stream_lag_unalloc(l->stream, copies[l - p->lanes], h->length);
	return false;
}

/* One lane's copy of a client's request: a sync lane's answer is waited
 * for (rr->repl_pending), an async lane's is not (the payload's copy in its
 * lag FIFO; a FLUSH is a barrier). */
static int lane_offer(struct lane *l, struct repl_req *rr, const struct msg_hdr *h0, void *copy,
		      bool *closes)
{
	struct msg_hdr h = *h0;
	bool write = rr->type != NBD_CMD_FLUSH;
	int rc;

	if (!lane_async(l)) {
		rc = lane_send(l, &h, h.length ? rr->payload : NULL, rr, STREAM_APP, closes);
		rr->repl_pending += rc == 0;
	} else {
		if (copy)
			memcpy(copy, rr->payload, h.length);
		rc = lane_send(l, &h, copy, NULL, write ? STREAM_ASYNC : STREAM_FLUSH, closes);
		if (rc < 0 && copy)
			stream_lag_unalloc(l->stream, copy, h.length);
	}
	if (rc < 0 && write) /* the link is going */
		stream_mark_out_of_sync(l->stream, rr->offset, rr->length);
	return rc;
}

/* A client's write-type request or FLUSH to every connected peer. */
enum repl_verdict lanes_offer(struct primary *p, struct repl_req *rr, const struct msg_hdr *h)
{
	void *copies[PRIMARY_LANES_MAX];
	bool closes = false, sent = false;

	if (!lanes_room(p, h, copies))
		return REPL_BUSY; /* retried from primary_wake() */
	rr->repl_pending = 0;
	LANES_FOR(p, l)
		if (lane_up(l))
			sent |= lane_offer(l, rr, h, copies[l - p->lanes], &closes) == 0;
	if (closes)
		p->epoch++;
	p->writes += rr->type != NBD_CMD_FLUSH;
	if (sent)
		p->replicated_bytes += h->length;
	return rr->repl_pending ? REPL_SENT : REPL_LOCAL;
}

/* A wide request (primary.c's cover_wide()) in every lane's bitmap. */
void lanes_wide_begin(struct primary *p, const struct repl_req *rr)
{
	LANES_FOR(p, l)
		stream_wide_begin(l->stream, rr, rr->offset, rr->length, lane_up(l));
}

void lanes_wide_done(struct primary *p, const struct repl_req *rr)
{
	LANES_FOR(p, l)
		stream_wide_done(l->stream, rr);
}

void lanes_wide_forget(struct primary *p, const struct repl_req *rr)
{
	LANES_FOR(p, l)
		stream_wide_forget(l->stream, rr);
}

/* --- the generations and the activity log, told to the secondaries --- */

/* MSG_GEN to every connected peer: the generation now, the one before, and
 * the nodes that miss this stream (with the generation their slot's bitmap
 * counts from), so that a secondary records for them what it applies.
 * Only with three nodes or more: a pair has no third node to track. */
void lanes_send_gen(struct primary *p, uint64_t before)
{
	struct msg_gen g = { .new_current = p->sb->gen.current };
	uint8_t buf[MSG_GEN_MAX];
	struct msg_hdr h = { .type = MSG_GEN };

	if (!p->multi)
		return;
	if (!p->gen_due)
		p->gen_old = before;
	g.old_current = p->gen_old;
	/* All or none: a write must not reach a secondary before the MSG_GEN
	 * that tells it whom to record it for (admit() waits while one is
	 * due; the tick and every wake try again). */
	p->gen_due = true;
	LANES_FOR(p, l)
		if (lane_up(l) && peer_send_space(l->link) == 0)
			return;
	p->gen_due = false;
	LANES_FOR(p, l) {
		const struct meta_slot *sl = &p->sb->slot[l->slot];

		if (lane_up(l) && l->synced)
			continue;
		snprintf(g.behind[g.nbehind].node, sizeof(g.behind[0].node), "%s", l->name);
		g.behind[g.nbehind++].bitmap_gen = sl->bitmap_gen;
	}
	h.length = (uint32_t)msg_gen_encode(buf, &g);
	LANES_FOR(p, l) {
		if (!lane_up(l))
			continue;
		if (peer_send(l->link, &h, buf) < 0) {
			peer_drop(l->link, "no room to send the generation");
			continue;
		}
		sync_peer_follows(l->sync, g.old_current, g.new_current);
		p->pend_shared |= p->pend_active && g.old_current != g.new_current;
	}
}

/* Tells the secondaries again who is behind (a resync finished, a peer
 * connected). */
void primary_tell_gen(struct primary *p)
{
	lanes_send_gen(p, p->sb->gen.current);
}

/* An MSG_GEN that found no room is tried again: false while it is due. */
bool lanes_gen_sent(struct primary *p)
{
	if (p->gen_due)
		lanes_send_gen(p, p->gen_old);
	return !p->gen_due;
}

void primary_lane_synced(struct lane *l)
{
	if (l->synced)
		return;
	l->synced = true;
	l->p->pend_shared |= l->p->pend_active; /* it took this node's generation */
	primary_tell_gen(l->p);
}

int primary_step_gen(struct primary *p, bool every_peer)
{
	if (every_peer)
		LANES_FOR(p, l)
			l->gen_moved = false;
	p->step_all = every_peer;
	int rc = lanes_write_alone(p);
	p->step_all = false;
	/* A connected peer receives what follows: its absence is not counted
	 * yet (the step for every peer made the connected ones compare
	 * anew). */
	LANES_FOR(p, l)
		if (lane_up(l))
			l->gen_moved = false;
	return rc;
}

/* What the peers acknowledged but never flushed goes into their bitmaps
 * (a demotion, the stop). */
void primary_unflushed_to_bitmap(struct primary *p)
{
	LANES_FOR(p, l)
		stream_unflushed_to_bitmap(l->stream);
}

/* A demotion waits until every connected peer flushed what it
 * acknowledged: false while one has not (a FLUSH goes to it). */
bool primary_peers_flushed(struct primary *p)
{
	bool all = true;

	LANES_FOR(p, l) {
		if (!lane_up(l) || (!stream_unflushed(l->stream) && !stream_covering(l->stream)))
			continue;
		if (!stream_covering(l->stream))
			primary_flush_peer(l);
		all = false;
	}
	return all;
}

bool primary_held(const struct primary *p)
{
	return lanes_held(p);
}

/* Under quorum, a step is told to every connected voter (MSG_GEN, then a
 * FLUSH), and writes wait until a majority recorded it (pquorum.c). */
static void lanes_quorum_tell(struct primary *p)
{
	LANES_FOR(p, l)
		if (lane_up(l))
			primary_flush_peer(l);
	pq_tell_witnesses(p);
}

/* Links, witnesses, a FLUSH_ACK: quorum's verdict again.  Held requests
 * go on once writes may be acknowledged, or fail under io-error. */
void primary_quorum_changed(struct primary *p)
{
	enum pq_verdict v;

	if (!p->role)
		return;
	pq_override_ends(p);
	if (!pq_enabled(p))
		return;
	if (p->pend_active) {
		if (pq_apply(p) && pq_step_due(p))
			(void)lanes_write_alone(p);
	} else if (pq_step_due(p)) {
		(void)lanes_write_alone(p);
	}
	pq_tell_witnesses(p);
	v = pq_verdict(p);
	pq_log(p, v);
	if (v == PQ_GO)
		primary_release_held(p);
	else if (v == PQ_FAIL)
		primary_fail_held(p);
}

/* The first write without a peer starts a new generation, so that the
 * next connect knows this side moved on (DESIGN.md, generations): one
 * step for every peer that left since the last. */
int lanes_write_alone(struct primary *p)
{
	uint32_t absent = 0;
	struct meta_sb before = *p->sb;
	char names[256] = "";
	struct strbuf o = STRBUF_INIT(names, sizeof(names));
	/* Under quorum, a step no majority recorded and no data peer took is
	 * replaced, not stacked on: the history keeps what matters. */
	bool redo = pq_enabled(p) && !p->step_all && p->pend_active && !p->pend_shared;
	uint64_t from = redo ? p->pend.current : before.gen.current;

	if (redo)
		pq_restore(p);
	LANES_FOR(p, l) {
		if ((lane_up(l) && !p->step_all) || (l->gen_moved && !redo))
			continue;
		absent |= 1U << l->slot;
		strbuf_printf(&o, "%s%s", *names ? ", " : "", l->name);
	}
	if (!absent) {
		*p->sb = before;
		return 0;
	}
	local_new_gen(p->loc, absent);
	if (local_save_sb(p->loc) < 0) {
		*p->sb = before;
		return -1;
	}
	LANES_FOR(p, l)
		l->gen_moved |= (absent >> l->slot) & 1;
	log_info("writing without %s: new generation %016" PRIx64, names, p->sb->gen.current);
	if (pq_enabled(p) && !p->step_all)
		pq_stepped(p, &before);
	lanes_send_gen(p, from);
	if (pq_enabled(p) && !p->step_all)
		lanes_quorum_tell(p);
	return 0;
}

/* A FLUSH of the node's own to each peer that has not flushed since the
 * last mark: its acknowledgement makes the mark clean (an idle peer's at
 * once, a lagging one's after its lag). */
static void lanes_flush_for_mark(struct primary *p)
{
	if (!p->multi || !p->mark_sent)
		return;
	LANES_FOR(p, l)
		if (lane_up(l) && l->flushed < p->mark_epoch && !stream_covering(l->stream))
			primary_flush_peer(l);
}

/* MSG_MARK to every connected peer, at most every MARK_NS and only once
 * every write sent before the last one is flushed on every connected peer
 * (which the new one tells them): a secondary then forgets the writes it
 * received before the last-but-one, which no other peer can lack. */
static void lanes_mark(struct primary *p)
{
	struct msg_hdr h = { .type = MSG_MARK };

	uint64_t now = clock_now_ns();

	if (!p->multi || !p->role || !lanes_up(p) || now - p->mark_ns < MARK_NS)
		return;
	if (p->mark_sent && lanes_min_flushed(p) < p->mark_epoch)
		return;
	/* A peer whose queue is full misses this one: it then keeps what it
	 * received for one more mark, which is only safer. */
	LANES_FOR(p, l)
		if (lane_up(l))
			(void)peer_send(l->link, &h, NULL);
	p->mark_epoch = p->epoch;
	p->mark_sent = true;
	p->mark_ns = now;
	lanes_flush_for_mark(p);
}

/* Once a tick too: the marks of an idle node go on, so that the
 * secondaries soon forget what every peer holds. */
void lanes_tick(struct primary *p)
{
	(void)lanes_gen_sent(p);
	lanes_mark(p);
	lanes_flush_for_mark(p);
	primary_quorum_changed(p); /* a witness that came back learns the generation */
	primary_wake(p);
}

bool lanes_quorum_fails(const struct primary *p)
{
	return pq_verdict(p) == PQ_FAIL;
}

/* --- answers --- */

static void lane_client_answered(struct repl_req *rr, int err)
{
	if (--rr->repl_pending == 0)
		repl_done(rr, err);
}

/* Does what the stream says about an answered or failed message (a->err:
 * 0 or -errno). */
static void lane_answer(struct lane *l, const struct stream_ack *a)
{
	switch (a->answer) {
	case STREAM_ANSWER_CLIENT:
		lane_client_answered(a->req, a->err);
		break;
	case STREAM_ANSWER_RESYNC:
		sync_resync_acked(l->sync, a->req, a->err);
		break;
	case STREAM_ANSWER_VERIFY:
		verify_acked(sync_verify(l->sync), a->req, a->err);
		break;
	case STREAM_ANSWER_NONE:
	case STREAM_ANSWER_HELD:
		break;
	}
}

/* The activity log's extents may leave once every connected peer flushed
 * them (rule 2 for each peer; one that is not connected has its bits). */
static uint64_t lanes_min_flushed(const struct primary *p)
{
	uint64_t min = UINT64_MAX;

	LANES_FOR(p, l)
		if (lane_up(l) && l->flushed < min)
			min = l->flushed;
	return min;
}

static void lanes_flushed(struct primary *p)
{
	uint64_t min = lanes_min_flushed(p);

	if (min != UINT64_MAX)
		actlog_flushed(p->al, min);
	lanes_mark(p);
	if (p->pend_active)
		primary_quorum_changed(p); /* lane_complete() wakes */
}

/* The peer answered a request with an error: its disk lacks the write.
 * (A peer of this version drops the link instead of answering so.)  The
 * link is dropped here too, so that the reconnect's bitmap exchange and
 * resync repair it; under freeze the client's request is held meanwhile. */
static void lane_failed(struct lane *l, uint64_t offset, int err)
{
	log_warn("%s failed a replicated request at %" PRIu64 ": %s; reconnecting so that a "
		 "resync repairs it",
		 l->name, offset, strerror(-err));
	peer_enable(l->link, false);
	peer_enable(l->link, true);
}

/* The peer's ACK or FLUSH_ACK of seq (err: 0, or -errno: the peer's
 * disk failed it). */
static void lane_complete(struct lane *l, uint64_t seq, int err)
{
	struct primary *p = l->p;
	bool freeze = config_on_peer_loss(p->cfg) == CONFIG_PEER_LOSS_FREEZE;
	struct stream_ack a;

	if (stream_ack(l->stream, seq, err, freeze, &a) < 0) {
		/* A peer that answers what nobody asked is broken (or not
		 * the peer): nothing it says can be trusted any more. */
		if (l->link)
			peer_drop(l->link, "protocol error: an answer to request %" PRIu64
					   ", which is not outstanding", seq);
		return;
	}
	if (a.write_sent_ns && !err)
		hist_record(&p->ack_hist, clock_now_ns() - a.write_sent_ns);
	primary_wake(p);
	if (err)
		lane_failed(l, a.offset, err);
	if (a.lag_out_of_order)
		log_err("lag FIFO of %s out of order at request %" PRIu64, l->name, seq);
	if (a.flushed && a.flushed_epoch > l->flushed) {
		l->flushed = a.flushed_epoch;
		lanes_flushed(p);
	}
	if (a.covered && a.flush_again)
		primary_flush_peer(l); /* resync chunks sent meanwhile */
	if (a.covered)
		sync_flush_covered(l->sync);
	lane_answer(l, &a);
}

/* An ACK or FLUSH_ACK straight from proto/peer.c (peer_on_ack(), arg the
 * lane). */
void primary_ack(void *arg, const struct msg_hdr *h)
{
	lane_complete(arg, h->seq, -(int)h->count); /* positive on the wire */
}

/* --- held requests (freeze) --- */

/* Under freeze, requests the peer never answered are held.  On the next
 * link they are sent again, oldest first, and answered when the peer
 * acknowledges them, as any sync request: a client never hears of a write
 * before the peer holds it (RPO 0), whatever happens next.  Their ranges
 * stay in the bitmap for the resync too.  Called at connect and whenever
 * the link has room. */
void primary_resend_held(struct lane *l)
{
	unsigned sent = 0;
	struct repl_req *rr;

	while (lane_up(l) && (rr = stream_held_oldest(l->stream))) {
		struct msg_hdr h = repl_hdr(rr);

		if (primary_send(l, &h, h.length ? rr->payload : NULL, rr, STREAM_APP) < 0)
			break; /* no room: the link's writable callback calls again; or the link went */
		stream_held_resent(l->stream);
		l->p->replicated_bytes += h.length;
		sent++;
	}
	if (!sent)
		return;
	if (!lanes_held(l->p))
		primary_wake(l->p); /* the writes admit() parked behind them */
	log_info("%u requests held since the link was lost are sent again to %s; each is "
		 "answered when %s acknowledges it",
		 sent, l->name, l->name);
}

/* Held replies go out with their local results. */
void primary_release_held(struct primary *p)
{
	struct repl_req *rr;

	LANES_FOR(p, l)
		while ((rr = stream_held_release(l->stream)))
			lane_client_answered(rr, -ENOTCONN);
}

/* Held requests fail (EIO), whatever the local disk did: the node may not
 * acknowledge them (quorum lost under io-error, or another node became
 * primary meanwhile). */
void primary_fail_held(struct primary *p)
{
	struct repl_req *rr;
	unsigned n = 0;

	LANES_FOR(p, l)
		for (; (rr = stream_held_release(l->stream)); n++)
			lane_client_answered(rr, REPL_FAILED);
	if (n)
		log_warn("%u held requests fail (EIO): they were never acknowledged", n);
}

/* --- the link --- */

/* The link is gone: what the peer did not acknowledge stays out of sync,
 * and the clients get the local results, at once or, frozen, later.  The
 * answers come first: a wide request answered now must not leave bits for
 * a later link's FLUSH to clear (stream_link_lost() drops them). */
static void lane_fail_all(struct lane *l)
{
	bool fail = pq_verdict(l->p) == PQ_FAIL;
	bool hold = !fail && primary_frozen(l->p);
	struct stream_ack a;

	while (stream_fail_next(l->stream, hold, &a)) {
		if (fail && a.answer == STREAM_ANSWER_CLIENT)
			a.err = REPL_FAILED;
		lane_answer(l, &a);
	}
	stream_link_lost(l->stream);
}

void primary_link_up(struct lane *l, struct peer *link)
{
	struct primary *p = l->p;

	l->link = link;
	l->synced = false; /* until its resync is done */
	(void)stream_link_up(l->stream);
	l->gen_moved = false;
	l->outdated = false;
	/* What was written before is in its bitmap slot, not waiting for
	 * its flush. */
	l->flushed = p->epoch - 1;
	primary_standalone(p, false);
	lanes_send_gen(p, p->sb->gen.current);
	primary_quorum_changed(p);
}

void primary_link_down(struct lane *l)
{
	struct primary *p = l->p;

	l->link = NULL;
	/* Under quorum the peer's absence goes into a generation that a
	 * majority must record before anything it lacks is answered. */
	if (p->role && pq_enabled(p))
		(void)lanes_write_alone(p);
	lane_fail_all(l);
	lanes_flushed(p);
	if (!lanes_up(p))
		primary_standalone(p, true);
	primary_quorum_changed(p);
	primary_wake(p); /* parked requests go on locally, or freeze */
}

/* Under on-peer-loss = freeze, a primary without one of its peers holds
 * writes until the peer is back, a fence-peer command or an operator
 * outdates it.  Under quorum, writes wait for the majority, and with a
 * fence-peer command for its answer too. */
bool primary_frozen(const struct primary *p)
{
	if (pq_enabled(p) && (pq_verdict(p) == PQ_HOLD || !config_fence_peer(p->cfg)))
		return pq_verdict(p) == PQ_HOLD;
	return primary_fence_wanted(p, NULL, 0);
}

bool primary_fence_wanted(const struct primary *p, char *names, size_t len)
{
	struct strbuf o = STRBUF_INIT(names, len);
	bool any = false;

	if (!p->role || config_on_peer_loss(p->cfg) != CONFIG_PEER_LOSS_FREEZE)
		return false;
	/* An async peer of several holds no acknowledged write: its loss
	 * freezes nothing (a pair's one peer freezes in either mode). */
	LANES_FOR(p, l)
		if (!lane_up(l) && !l->outdated && (!lane_async(l) || p->nlanes == 1)) {
			if (names)
				strbuf_printf(&o, "%s%s", any ? " " : "", l->name);
			any = true;
		}
	return any;
}

/* `blkrep outdate-peer`: a frozen primary goes on alone. */
void primary_outdate_peer(struct primary *p)
{
	LANES_FOR(p, l)
		l->outdated |= !lane_up(l);
	primary_release_held(p);
	primary_wake(p);
}

/* Promoting a node whose peers are gone is the operator's word that they
 * are down: under freeze, writes go on (as after outdate-peer).  A
 * generation steps at the first write without them. */
void primary_promoted(struct primary *p)
{
	/* ... unless a fence-peer command is there to say so. */
	bool ask = config_fence_peer(p->cfg) &&
		   config_on_peer_loss(p->cfg) == CONFIG_PEER_LOSS_FREEZE;

	LANES_FOR(p, l) {
		l->gen_moved = false;
		l->outdated |= !lane_up(l) && !ask;
	}
}

/* The smaller data area of the node and its connected peers. */
uint64_t lanes_size(const struct primary *p, uint64_t bytes)
{
	LANES_FOR(p, l)
		if (lane_up(l) && sync_hello(l->sync)->size_bytes < bytes)
			bytes = sync_hello(l->sync)->size_bytes;
	return bytes;
}

void primary_released(void *arg, const void *payload)
{
	/* The payload belongs to a request whose end waits for the peer's
	 * answer, which comes after the bytes left: nothing to do. */
	(void)arg;
	(void)payload;
}
