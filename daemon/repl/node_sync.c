/* What happens on a peer's link (see sync.h; the object is in sync.c):
 * the link's callbacks, the generation verdict, split brain, the bitmap
 * exchange, the resync, and when verify may run. */
#include "daemon/repl/sync_int.h"


/* The node's role now. */
static bool sync_primary(const struct sync *s)
{
	return s->env.up->primary(s->env.node);
}

/* Three nodes or more, neither side primary: a resync between them waits
 * for a primary, which is the only source while there is one (two
 * sources could write the same extent of a third node in any order). */
static bool sync_defers(const struct sync *s)
{
	return s->multi && !sync_primary(s) && s->hello.role != MSG_ROLE_PRIMARY;
}

static bool sync_become_target(struct sync *s);
static bool sync_rs_lock(void *arg, struct repl_req *rr);
static void sync_rs_unlock(void *arg, struct repl_req *rr);
static int sync_rs_send(void *arg, struct repl_req *rr);
static void sync_rs_idle(void *arg);
static bool sync_rs_app_busy(void *arg);

/* verify.c's calls (arg: the sync), to the primary's side. */
static int sync_vf_send(void *arg, struct msg_hdr *h, struct repl_req *rr)
{
	struct sync *s = arg;

	return primary_send(s->lane, h, NULL, rr, STREAM_VERIFY);
}

static bool sync_vf_lock(void *arg, struct repl_req *rr)
{
	struct sync *s = arg;

	return primary_chunk_lock(s->env.pri, rr);
}

static void sync_vf_unlock(void *arg, struct repl_req *rr)
{
	struct sync *s = arg;

	primary_chunk_unlock(s->env.pri, rr);
}

static bool sync_vf_app_busy(void *arg)
{
	struct sync *s = arg;

	return primary_chunk_app_busy(s->env.pri);
}

static const struct verify_ops vf_ops = {
	.send = sync_vf_send,
	.lock = sync_vf_lock,
	.unlock = sync_vf_unlock,
	.app_busy = sync_vf_app_busy,
};

static void sync_rs_failed(void *arg);

/* The bitmap id of the peer's slot in this node's metadata. */
static uint64_t *sync_slot_gen(const struct sync *s)
{
	return &s->sb->slot[s->slot].bitmap_gen;
}

/* `resolve --discard-local` holds for the data it saved: once this node
 * moved to a new generation (it was promoted since), its data is new and
 * the decision is void. */
static bool sync_discards(const struct sync *s)
{
	return s->discard_local && s->saved_for == s->sb->gen.current;
}

static const struct resync_ops rs_ops = {
	.lock = sync_rs_lock,
	.unlock = sync_rs_unlock,
	.send = sync_rs_send,
	.idle = sync_rs_idle,
	.app_busy = sync_rs_app_busy,
	.failed = sync_rs_failed,
};

static void sync_resync_check(struct sync *s);

struct sync *sync_new(const struct sync_env *env)
{
	struct sync *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->env = *env;
	s->sb = local_sb(env->loc);
	s->other = env->other;
	s->multi = config_data_node_count(env->cfg) > 2;
	s->slot = local_slot(env->loc, env->other->name);
	if (s->slot < 0) { /* local_open() gave every peer a slot */
		free(s);
		return NULL;
	}
	s->bm = local_slot_bm(env->loc, s->slot);
	s->lane = primary_add_peer(env->pri, s, env->other->name, s->slot, s->bm,
				   config_node_max_lag(env->cfg, env->other));
	if (!s->lane) {
		free(s);
		return NULL;
	}
	s->stream = lane_stream(s->lane);
	/* Its [node] section's own mode, if it has one. */
	if (config_node_mode(env->cfg, env->other) != config_mode(env->cfg))
		lane_set_mode(s->lane, config_node_mode(env->cfg, env->other) == CONFIG_ASYNC);
	s->covered = sync_resync_check;
	s->rs = resync_new(env->loop, local_data_fd(env->loc), s->bm, s->sb->extent_bytes, &rs_ops,
			   s);
	if (s->rs)
		s->vf = verify_new(env->loc, env->loop, env->cfg, s->stream, s->other->name, &vf_ops,
				   s);
	if (!s->rs || !s->vf) {
		sync_free(s);
		return NULL;
	}
	return s;
}

/* A resync chunk of len bytes arrived: false if this node could not
 * record itself as the target (the link is dropped; not to be written). */
static bool sync_target_chunk(struct sync *s, uint32_t len)
{
	if (!sync_become_target(s))
		return false;
	s->rs_recv_bytes += len;
	s->resynced_in += len;
	return true;
}

/* --- resync --- */

/* The first resync data: from now until RESYNC_DONE this node's data is a
 * mix of old and new. */
static bool sync_become_target(struct sync *s)
{

	s->rs_role = RS_TARGET;
	if (s->sb->disk == META_DISK_INCONSISTENT)
		return true;
	s->sb->disk = META_DISK_INCONSISTENT;
	if (local_save_sb(s->env.loc) < 0) {
		/* A restart would claim a half-copied disk up to date. */
		log_err("cannot record the disk as inconsistent before a resync: link to %s "
			"dropped, retried at the next connect",
			s->other->name);
		peer_enable(s->peer, false);
		peer_enable(s->peer, true);
		return false;
	}
	(void)peer_send_state(s->peer);
	log_info("resync from %s started: disk inconsistent until it is done", s->other->name);
	return true;
}

/* Sends our bitmap, page by page, for the union at connect: the part
 * that covers the replicated (smaller) area.  Continues from
 * sync_writable() when the queue is full. */
static void sync_send_bitmap(struct sync *s)
{
	uint64_t bits = extent_cover(primary_export_size(s->env.pri), s->sb->extent_bytes);
	uint64_t bytes = (bits + 7) / 8;
	uint64_t pages = (bytes + BITMAP_PAGE_BYTES - 1) / BITMAP_PAGE_BYTES;
	uint8_t page[BITMAP_PAGE_BYTES];
	struct msg_hdr h = { .type = MSG_BITMAP };

	for (; s->up && s->bm_sent_page < pages; s->bm_sent_page++) {
		uint64_t p = s->bm_sent_page, first = p * BITMAP_PAGE_BITS;

		if (bitmap_next_set(s->bm, first) >= first + BITMAP_PAGE_BITS)
			continue;
		(void)bitmap_encode_page(s->bm, p, page);
		h.offset = first;
		h.length = (uint32_t)(bytes - p * BITMAP_PAGE_BYTES < BITMAP_PAGE_BYTES
					      ? bytes - p * BITMAP_PAGE_BYTES
					      : BITMAP_PAGE_BYTES);
		if (peer_send(s->peer, &h, page) == -ENOBUFS)
			return;
	}
	if (!s->up || s->bm_sent || bytes == 0)
		return;
	/* The last chunk repeats the first byte: a chunk is never empty. */
	(void)bitmap_encode_page(s->bm, 0, page);
	h = (struct msg_hdr){ .type = MSG_BITMAP, .flags = MSG_F_LAST, .length = 1 };
	if (peer_send(s->peer, &h, page) == 0)
		s->bm_sent = true;
}

static bool sync_rs_lock(void *arg, struct repl_req *rr)
{
	struct sync *s = arg;

	return primary_chunk_lock(s->env.pri, rr);
}

static void sync_rs_unlock(void *arg, struct repl_req *rr)
{
	struct sync *s = arg;

	primary_chunk_unlock(s->env.pri, rr);
}

static int sync_rs_send(void *arg, struct repl_req *rr)
{
	struct sync *s = arg;
	struct msg_hdr h = { .type = MSG_RESYNC_DATA,
			     .offset = rr->offset,
			     .count = rr->length,
			     .length = rr->length };
	int rc = primary_send(s->lane, &h, rr->payload, rr, STREAM_RESYNC);

	if (rc == 0) {
		s->resynced_bytes += rr->length;
		if (stream_resync_unflushed_bytes(s->stream) >= RS_FLUSH_BYTES &&
		    !stream_covering(s->stream))
			primary_flush_peer(s->lane);
	}
	return rc;
}

static void sync_rs_idle(void *arg)
{
	struct sync *s = arg;

	s->rs_final = true;
	if (stream_resync_pending(s->stream) && !stream_covering(s->stream))
		primary_flush_peer(s->lane);
	sync_resync_check(s);
}

static bool sync_rs_app_busy(void *arg)
{
	struct sync *s = arg;

	return primary_chunk_app_busy(s->env.pri);
}

/* The source's disk failed a read: the resync cannot go on, and while
 * connected nothing would start it again (the role stays source, `blkrep
 * resync` says one is running, the target stays inconsistent).  The link
 * is dropped: the reconnect exchanges bitmaps again and resumes from them
 * (the failed chunk's bits are still set). */
static void sync_rs_failed(void *arg)
{
	struct sync *s = arg;

	peer_drop(s->peer, "resync: this node's disk failed a read; the reconnect resumes it");
}

/* The source is done: every bit is clear and flushed on the peer. */
static void sync_resync_done(struct sync *s)
{
	struct msg_hdr h = { .type = MSG_RESYNC_DONE };
	uint64_t done, total, bps;

	resync_finish(s->rs);
	s->rs_role = RS_NONE;
	s->rs_final = false;
	s->env.up->resynced(s->env.node);
	gen_resync_finished_source_slot(s->sb->gen.history, sync_slot_gen(s));
	(void)local_save_sb(s->env.loc);
	(void)local_save_bm(s->env.loc);
	(void)peer_send_state(s->peer);
	if (peer_send(s->peer, &h, NULL) < 0)
		log_warn("cannot tell %s that the resync is done; it learns at the next connect",
			 s->other->name);
	resync_progress(s->rs, &done, &total, &bps);
	log_info("resync to %s done: %" PRIu64 " bytes at %" PRIu64 " bytes/s", s->other->name,
		 done, bps);
	/* After RESYNC_DONE: the peer takes the generation first, then hears
	 * that nobody records for it any more. */
	primary_lane_synced(s->lane);
	secondary_disk_repaired(s->env.sec); /* a client's write the disk failed: the peer agrees now */
}

/* After a pass or a flush: finished once nothing is left to send or to
 * clear. */
static void sync_resync_check(struct sync *s)
{
	uint64_t limit = extent_cover(primary_export_size(s->env.pri), s->sb->extent_bytes);

	if (s->rs_role != RS_SOURCE || !s->rs_final || stream_covering(s->stream) ||
	    stream_resync_pending(s->stream))
		return;
	if (bitmap_next_set(s->bm, 0) >= limit)
		return sync_resync_done(s);
	s->rs_final = false;
	resync_next_pass(s->rs); /* bits set again meanwhile */
}

/* The target: everything is here and flushed. */
static void sync_resync_target_done(struct sync *s)
{
	struct gen_ids src = { .current = s->hello.gen_current, .bitmap = s->hello.gen_bitmap };

	memcpy(src.history, s->hello.gen_history, sizeof(src.history));
	gen_resync_finished_target_slot(&s->sb->gen.current, s->sb->gen.history, sync_slot_gen(s),
					src.current);
	gen_adopt_history(s->sb->gen.history, src.history); /* the steps it skipped */
	s->env.up->resynced(s->env.node); /* what it had in flight was overwritten */
	s->sb->disk = s->hello.disk == MSG_DISK_UPTODATE ? META_DISK_UPTODATE : META_DISK_CONSISTENT;
	/* Its own changes the source lacked are gone; what the other nodes
	 * miss stays recorded in their slots (the resync's chunks too). */
	local_bm_empty(s->env.loc, s->slot);
	secondary_slots_changed(s->env.sec);
	(void)local_save_bm(s->env.loc);
	(void)local_save_sb(s->env.loc);
	s->rs_role = RS_NONE;
	(void)peer_send_state(s->peer);
	log_info("resync from %s done (%" PRIu64 " bytes received): disk %s", s->other->name,
		 s->rs_recv_bytes, meta_disk_name(s->sb->disk));
	s->env.up->state_changed(s->env.node); /* the other peers learn the generation */
	secondary_disk_repaired(s->env.sec);
	if (s->sb->disk == META_DISK_UPTODATE)
		s->env.up->resynced_from(s->env.node, s->other->name);
}

/* Both bitmaps are known: the source starts copying the union. */
static void sync_resync_begin(struct sync *s)
{
	uint64_t limit = primary_export_size(s->env.pri);
	uint64_t bits = extent_cover(limit, s->sb->extent_bytes);
	uint64_t dirty = bitmap_count_below(s->bm, bits);

	s->rs_recv_total = dirty * s->sb->extent_bytes;
	s->rs_recv_bytes = 0;
	s->rs_recv_start_ns = clock_now_ns();
	/* A target with something to receive is not up to date from now on,
	 * on disk before any of it arrives: if the source dies first, this
	 * node must not be promoted as if it held every acknowledged write. */
	if (s->rs_role == RS_TARGET && dirty)
		(void)sync_become_target(s); /* false: the link is dropped */
	if (s->rs_role != RS_SOURCE)
		return;
	log_info("resync to %s: %" PRIu64 " bytes to copy (%s)", s->other->name,
		 dirty * s->sb->extent_bytes, gen_verdict_name(s->verdict));
	resync_start(s->rs, limit, config_resync_rate(s->env.cfg));
}

static void sync_exchange_bitmaps(struct sync *s);

/* A resync while connected (`blkrep resync`, `invalidate`, or the peer
 * asking): the generations are the same, so the primary, or else the
 * up-to-date side, is the source of the union of both bitmaps. */
void sync_resync_now(struct sync *s)
{
	if (!s->up || s->exchanging || s->rs_role != RS_NONE)
		return;
	s->verdict = GEN_SAME;
	sync_exchange_bitmaps(s);
}

/* A connected primary that knows of out-of-sync extents, or whose peer is
 * not up to date, resyncs without waiting for an operator (after a
 * promotion: the generations may compare "same" while bits are set). */
void sync_resync_if_due(struct sync *s)
{
	uint64_t bits = extent_cover(primary_export_size(s->env.pri), s->sb->extent_bytes);

	if (!sync_primary(s) || !s->up || s->exchanging || s->rs_role != RS_NONE)
		return;
	if (bitmap_next_set(s->bm, 0) >= bits && s->hello.disk == MSG_DISK_UPTODATE)
		return;
	log_info("%s is not known to hold everything (%s): resync", s->other->name,
		 s->hello.disk == MSG_DISK_UPTODATE ? "extents out of sync" : "its disk is "
		 "not up to date");
	sync_resync_now(s);
}

/* A chunk of the peer's bitmap: the union of both sides' changes. */
static bool sync_save_own(struct sync *s, char *why, size_t len);

/* Three nodes or more: a node promoted while connected to this one starts
 * the resync.  If this node was a sync replica of the primary it lost, it
 * may hold acknowledged writes the new primary lacks (an async replica
 * promoted): they are saved before the resync overwrites them. */
static bool sync_guard_overwrite(struct sync *s)
{
	char why[512];

	if (!s->multi || s->rs_role != RS_TARGET || !secondary_was_sync_replica(s->env.sec) ||
	    sync_save_own(s, why, sizeof(why)))
		return true;
	peer_drop(s->peer, "%s", why);
	return false;
}

static void sync_peer_bitmap(struct sync *s, const struct msg_hdr *h, const uint8_t *payload)
{
	if (!s->exchanging) {
		sync_resync_now(s); /* the peer started one: answer with ours */
		if (!sync_guard_overwrite(s))
			return;
	}
	(void)bitmap_merge_bytes(s->bm, h->offset, payload, h->length);
	if (!(h->flags & MSG_F_LAST))
		return;
	s->exchanging = false;
	s->peer_bm_done = true;
	sync_resync_begin(s);
}

/* --- verify (daemon/repl/verify.c) --- */

static const char *sync_verify_refusal(const struct sync *s)
{

	if (!s->up)
		return "verify needs the peer: it is not connected";
	if (!sync_primary(s) && s->hello.role == MSG_ROLE_PRIMARY)
		return "run verify on the primary";
	if (verify_running(s->vf))
		return "a verify is already running";
	if (s->rs_role != RS_NONE)
		return "a resync is running: verify after it";
	return NULL;
}

void sync_cmd_verify(struct sync *s, struct control_req *req)
{
	const char *no = sync_verify_refusal(s);

	if (no) {
		control_reply(req, false, "%s", no);
		return;
	}
	verify_start(s->vf, primary_export_size(s->env.pri), req);
}

/* Which side copies to which, from the verdict at connect. */
static enum rs_role sync_decide_role(const struct sync *s)
{

	switch (s->verdict) {
	case GEN_SAME_AL_LOCAL_SOURCE:
	case GEN_BITMAP_LOCAL_SOURCE:
	case GEN_FULL_LOCAL_SOURCE:
		return RS_SOURCE;
	case GEN_SAME_AL_PEER_SOURCE:
	case GEN_BITMAP_PEER_SOURCE:
	case GEN_FULL_PEER_SOURCE:
		return RS_TARGET;
	case GEN_SAME:
		/* Same data: the primary copies whatever either side marked;
		 * without one, the up-to-date side does. */
		if (sync_primary(s))
			return RS_SOURCE;
		if (s->hello.role == MSG_ROLE_PRIMARY)
			return RS_TARGET;
		if ((s->sb->disk == META_DISK_UPTODATE) != (s->hello.disk == MSG_DISK_UPTODATE))
			return s->sb->disk == META_DISK_UPTODATE ? RS_SOURCE : RS_TARGET;
		return RS_NONE;
	default:
		return RS_NONE;
	}
}

/* The link has room again: the bitmap, the resync and parked requests go
 * on. */
static void sync_writable(void *arg)
{
	struct sync *s = arg;

	sync_send_bitmap(s);
	primary_resend_held(s->lane);
	resync_pump(s->rs);
	verify_pump(s->vf);
	primary_wake(s->env.pri);
}

/* --- the peer link --- */

/* A primary only because it went down as one, with no device attached:
 * it steps back if its peer became primary meanwhile. */
static bool sync_resumed_only(const struct sync *s)
{
	return s->env.up->resumed_only(s->env.node);
}

static void sync_hello_out(void *arg, struct msg_hello *h)
{
	struct sync *s = arg;

	h->role = sync_primary(s) ? MSG_ROLE_PRIMARY : MSG_ROLE_SECONDARY;
	h->disk = (uint8_t)s->sb->disk;
	h->size_bytes = s->sb->data_bytes;
	h->extent_bytes = s->sb->extent_bytes;
	h->flags = (s->env.up->crashed(s->env.node) ? MSG_HELLO_F_CRASHED_PRIMARY : 0) |
		   (s->sb->flags & META_F_ZEROED ? MSG_HELLO_F_ZEROED : 0) |
		   (lane_async(s->lane) ? MSG_HELLO_F_ASYNC : 0) |
		   (bitmap_count(s->bm) ? 0 : MSG_HELLO_F_NO_CHANGES) |
		   (sync_discards(s) ? MSG_HELLO_F_DISCARD : 0) |
		   (sync_resumed_only(s) ? MSG_HELLO_F_RESUMED : 0);
	h->flags2 = (secondary_unsure(s->env.sec) ? MSG_HELLO_F2_UNSURE : 0) |
		    (s->env.up->quorum_blocked(s->env.node) ? MSG_HELLO_F2_NO_QUORUM : 0);
	h->gen_current = s->sb->gen.current;
	h->gen_bitmap = *sync_slot_gen(s);
	memcpy(h->gen_history, s->sb->gen.history, sizeof(h->gen_history));
}

/* Both sides as gen_compare() sees them. */
static void sync_gen_sides(const struct sync *s, const struct msg_hello *h, struct gen_side *me,
			   struct gen_side *peer)
{

	*me = (struct gen_side){
		.ids = s->sb->gen,
		.crashed_primary = s->env.up->crashed(s->env.node),
		.primary = sync_primary(s),
		.zeroed = (s->sb->flags & META_F_ZEROED) != 0,
		.tiebreak = strcmp(s->env.me->name, s->other->name) < 0,
	};
	me->ids.bitmap = *sync_slot_gen(s);
	*peer = (struct gen_side){
		.ids = { .current = h->gen_current, .bitmap = h->gen_bitmap },
		.crashed_primary = (h->flags & MSG_HELLO_F_CRASHED_PRIMARY) != 0,
		.primary = h->role == MSG_ROLE_PRIMARY,
		.zeroed = (h->flags & MSG_HELLO_F_ZEROED) != 0,
		.tiebreak = !me->tiebreak,
	};
	memcpy(peer->ids.history, h->gen_history, sizeof(peer->ids.history));
}

/* Split brain resolved by the operator (resolve --discard-local on one
 * side) or by after-split-brain = discard-zero-changes: the verdict that
 * makes the discarded side the target, or GEN_SPLIT_BRAIN. */
static enum gen_verdict sync_resolve_split(const struct sync *s, const struct msg_hello *h)
{
	bool peer_discards = h->flags & MSG_HELLO_F_DISCARD;
	bool mine_none = bitmap_count(s->bm) == 0, peer_none = h->flags & MSG_HELLO_F_NO_CHANGES;

	if (sync_discards(s) != peer_discards)
		return sync_discards(s) ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (sync_discards(s) || config_after_split_brain(s->env.cfg) != CONFIG_SB_DISCARD_ZERO_CHANGES)
		return GEN_SPLIT_BRAIN;
	if (mine_none != peer_none)
		return mine_none ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (!mine_none)
		return GEN_SPLIT_BRAIN;
	/* Neither changed anything: the primary, else the tiebreak side, wins. */
	if (sync_primary(s) || h->role == MSG_ROLE_PRIMARY)
		return sync_primary(s) ? GEN_BITMAP_LOCAL_SOURCE : GEN_BITMAP_PEER_SOURCE;
	return strcmp(s->env.me->name, s->other->name) < 0 ? GEN_BITMAP_LOCAL_SOURCE
						       : GEN_BITMAP_PEER_SOURCE;
}

/* A target that has writes of its own the source may lack (a former
 * primary's, in async mode or alone under continue) saves them before the
 * resync overwrites them.  Once per generation. */
static bool sync_save_own(struct sync *s, char *why, size_t len)
{
	char path[512] = "", err[512];
	uint64_t bytes;

	/* An outdated disk's bits are writes it missed (a disk error), not
	 * its own. */
	if (!bitmap_count(s->bm) || s->sb->disk == META_DISK_INCONSISTENT ||
	    s->sb->disk == META_DISK_OUTDATED || s->saved_for == s->sb->gen.current)
		return true;
	if (savefile_write(path, sizeof(path), s->sb->resource, s->sb->node, local_data_fd(s->env.loc), s->bm,
			   s->sb->extent_bytes, s->sb->data_bytes, &bytes, err, sizeof(err)) < 0) {
		snprintf(why, len,
			 "cannot save this node's own changes before the resync "
			 "overwrites them: %s",
			 err);
		log_err("%s", why);
		return false;
	}
	s->saved_for = s->sb->gen.current;
	log_warn("saved %" PRIu64 " bytes of this node's own writes, which %s may lack, to %s "
		 "(blkrep restore-saved FILE on a primary writes them back)",
		 bytes, s->other->name, path);
	return true;
}

/* Why the data of the two sides rules out this connection, or NULL; sets
 * s->verdict. */
static bool sync_accept_data(struct sync *s, const struct msg_hello *h, char *why, size_t len)
{
	struct gen_side me, peer;

	sync_gen_sides(s, h, &me, &peer);
	s->verdict = gen_compare(&me, &peer);
	/* Two secondaries of three nodes or more that each followed another
	 * primary step: decided once one is primary (sync_reconsider()). */
	if ((s->verdict == GEN_SPLIT_BRAIN || s->verdict == GEN_UNRELATED) && s->multi &&
	    !sync_primary(s) && h->role != MSG_ROLE_PRIMARY)
		return true;
	if ((s->verdict == GEN_SPLIT_BRAIN || s->verdict == GEN_UNRELATED) &&
	    (h->flags2 & MSG_HELLO_F2_NO_QUORUM)) {
		snprintf(why, len, "%s, primary without quorum, steps down and connects again",
			 s->other->name);
		return false;
	}
	if (s->verdict == GEN_SPLIT_BRAIN)
		s->verdict = sync_resolve_split(s, h);
	switch (s->verdict) {
	case GEN_SPLIT_BRAIN:
		s->split_brain = true;
		gen_verdict_explain(s->verdict, &me, &peer, why, len);
		snprintf(why + strlen(why), len - strlen(why),
			 "; nothing was overwritten: run "
			 "blkrep resolve --discard-local on the node whose changes go");
		return false;
	case GEN_UNRELATED:
		gen_verdict_explain(s->verdict, &me, &peer, why, len);
		return false;
	case GEN_SAME_AL_PEER_SOURCE:
	case GEN_BITMAP_PEER_SOURCE:
	case GEN_FULL_PEER_SOURCE:
		if (!sync_primary(s) && s->multi && h->role != MSG_ROLE_PRIMARY)
			return true; /* deferred: nothing is overwritten now */
		if (!sync_primary(s))
			return sync_save_own(s, why, len);
		snprintf(why, len,
			 "this primary's data is older than the peer's (%s): make "
			 "it secondary so that it can receive the resync",
			 gen_verdict_name(s->verdict));
		return false;
	default:
		return true;
	}
}

/* After the verdict: both sides send their bitmaps; the source starts
 * once it has the peer's. */
static void sync_exchange_bitmaps(struct sync *s)
{
	if (sync_defers(s)) {
		s->deferred = s->verdict != GEN_SAME;
		if (s->deferred)
			log_info("%s: %s waits until one of the two is primary", s->other->name,
				 gen_verdict_name(s->verdict));
		return;
	}
	s->deferred = false;
	s->exchanging = true;
	s->rs_role = sync_decide_role(s);
	s->rs_final = false;
	s->bm_sent_page = 0;
	s->bm_sent = s->peer_bm_done = false;
	if (s->verdict == GEN_FULL_LOCAL_SOURCE || s->verdict == GEN_FULL_PEER_SOURCE)
		bitmap_set_range(s->bm, 0, bitmap_nbits(s->bm));
	sync_send_bitmap(s);
}

/* The generations changed while connected (a fresh pair's first
 * `primary --force`): both sides decide again, and a resync starts if one
 * is due.  Split brain cannot arise here: the link refused two primaries. */
void sync_reconsider(struct sync *s)
{
	struct gen_side me, peer;
	enum gen_verdict v;

	if (!s->up || s->rs_role != RS_NONE || s->exchanging || sync_defers(s))
		return;
	sync_gen_sides(s, &s->hello, &me, &peer);
	v = gen_compare(&me, &peer);
	if (s->deferred && v == GEN_SAME) {
		s->deferred = false;
		return sync_resync_if_due(s);
	}
	if (s->deferred && (v == GEN_SPLIT_BRAIN || v == GEN_UNRELATED))
		return peer_drop(s->peer, "decided at the next connect, now that one is primary");
	/* Only a promotion moves generations while connected; crash flags
	 * were settled at connect. */
	if (v != GEN_BITMAP_LOCAL_SOURCE && v != GEN_BITMAP_PEER_SOURCE &&
	    v != GEN_FULL_LOCAL_SOURCE && v != GEN_FULL_PEER_SOURCE && !s->deferred)
		return;
	if (sync_primary(s) && (v == GEN_BITMAP_PEER_SOURCE || v == GEN_FULL_PEER_SOURCE)) {
		/* A primary never receives a resync while it serves writes. */
		peer_drop(s->peer, "this primary's data is older than %s's (%s): make it secondary "
			  "so that it can receive the resync", s->other->name, gen_verdict_name(v));
		return;
	}
	s->verdict = v;
	log_info("generations changed while connected: %s", gen_verdict_name(v));
	sync_exchange_bitmaps(s);
}

/* Three nodes or more: the connected peer holds data this node lacks (its
 * generation descends from ours), so promoting this node would have to
 * overwrite it.  Asked before a promotion steps the generation. */
bool sync_peer_newer(const struct sync *s)
{
	struct gen_side me, peer;
	enum gen_verdict v;

	if (!s->multi || !s->up)
		return false;
	sync_gen_sides(s, &s->hello, &me, &peer);
	v = gen_compare(&me, &peer);
	return v == GEN_BITMAP_PEER_SOURCE || v == GEN_FULL_PEER_SOURCE;
}

/* A secondary takes its primary's mode, so that after a failover the new
 * primary replicates as the old one did. */
static void sync_follow_mode(struct sync *s)
{
	enum meta_mode m = s->hello.flags & MSG_HELLO_F_ASYNC ? META_MODE_ASYNC : META_MODE_SYNC;

	if (s->multi || sync_primary(s) || s->hello.role != MSG_ROLE_PRIMARY || m == s->sb->mode)
		return;
	s->sb->mode = m;
	(void)local_save_sb(s->env.loc);
	log_info("%s mode, as the primary %s", local_mode_name(s->env.loc), s->other->name);
}

/* A node that came back as primary only because it went down as one,
 * and finds that its peer became primary meanwhile, steps back. */
static void sync_yield_to_primary(struct sync *s, const struct msg_hello *h)
{

	if (!s->env.up->yields_to(s->env.node, h))
		return;
	log_info("%s became primary while this node was down: %s/%s steps back to "
		 "secondary (its own changes are kept for the resync or the split-brain repair)",
		 s->other->name, s->sb->resource, s->sb->node);
	s->env.up->demote(s->env.node);
}

static enum peer_verdict sync_accept_peer(void *arg, const struct msg_hello *h, char *why, size_t len)
{
	struct sync *s = arg;

	sync_yield_to_primary(s, h);
	if (h->role == MSG_ROLE_PRIMARY && sync_primary(s) && (h->flags & MSG_HELLO_F_RESUMED)) {
		snprintf(why, len, "%s came back as primary only because it went down as one: "
			 "it steps back to secondary and connects again", s->other->name);
		return PEER_REFUSE_ROUTINE;
	}
	if (h->role == MSG_ROLE_PRIMARY && sync_primary(s)) {
		struct gen_side me, peer;

		/* Both wrote since they last shared a generation: status says
		 * splitbrain, not only this error. */
		sync_gen_sides(s, h, &me, &peer);
		s->split_brain = gen_compare(&me, &peer) == GEN_SPLIT_BRAIN;
		snprintf(why, len, "both nodes are primary: split brain; make one secondary");
		return PEER_REFUSE;
	}
	if (sync_primary(s) && h->size_bytes < primary_export_bytes(s->env.pri)) {
		snprintf(why, len,
			 "the peer's data area (%" PRIu64 " bytes) is smaller than "
			 "this primary's export (%" PRIu64 " bytes): grow the peer's backing "
			 "store",
			 h->size_bytes, primary_export_bytes(s->env.pri));
		return PEER_REFUSE;
	}
	if (h->extent_bytes != s->sb->extent_bytes) {
		snprintf(why, len, "bitmap granularity differs: peer %u, this node %u",
			 h->extent_bytes, s->sb->extent_bytes);
		return PEER_REFUSE;
	}
	return sync_accept_data(s, h, why, len) ? PEER_ACCEPT : PEER_REFUSE;
}

static void sync_link_up(void *arg, const struct msg_hello *h)
{
	struct sync *s = arg;

	s->up = true;
	s->split_brain = false;
	s->discard_local = false;
	s->hello = *h;
	s->deferred = false;
	primary_link_up(s->lane, s->peer);
	primary_agree_size(s->env.pri);
	if (h->size_bytes != s->sb->data_bytes)
		log_warn("data areas differ: peer %" PRIu64 " bytes, this node %" PRIu64
			 "; the pair replicates the smaller one (a primary exports that size)",
			 h->size_bytes, s->sb->data_bytes);
	log_info("connected to %s (%s, disk %s): %s", s->other->name,
		 h->role == MSG_ROLE_PRIMARY ? "primary" : "secondary", sync_peer_disk(s),
		 gen_verdict_name(s->verdict));
	sync_follow_mode(s);
	sync_exchange_bitmaps(s);
	primary_resend_held(s->lane); /* answered when the peer acknowledges them */
	primary_wake(s->env.pri); /* frozen writes go on */
}

/* Under freeze, a primary that replicated to this node in sync mode
 * acknowledged nothing without it: this node, which lost it, stays up to
 * date.  With two nodes the secondary follows its primary's mode; with
 * more, the mode is per peer: the primary's last STATE says ours. */
static bool sync_primary_froze(const struct sync *s)
{
	if (!s->multi)
		return secondary_primary_freezes(s->env.sec);
	return secondary_policy_holds(s->env.cfg) && !(s->hello.flags & MSG_HELLO_F_ASYNC);
}

static void sync_link_down(void *arg, const char *why)
{
	struct sync *s = arg;

	s->up = false;
	s->deferred = false;
	primary_link_down(s->lane);
	resync_stop(s->rs);
	verify_stop(s->vf);
	s->rs_role = RS_NONE;
	s->exchanging = false;
	/* The link already said why it went; say only what follows. */
	(void)why;
	if (primary_frozen(s->env.pri) && config_quorum(s->env.cfg) != CONFIG_QUORUM_MAJORITY)
		log_warn("writes wait (on-peer-loss = freeze) until %s is back or "
			 "`blkrep outdate-peer`",
			 s->other->name);
	if (!sync_primary(s) && s->hello.role == MSG_ROLE_PRIMARY)
		secondary_primary_lost(s->env.sec, s);
	if (!sync_primary(s) && s->hello.role == MSG_ROLE_PRIMARY && !sync_primary_froze(s))
		secondary_may_lag(s->env.sec, "its primary may go on writing without it");
}

static void sync_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct sync *s = arg;
	const char *why;

	switch (h->type) {
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, &s->hello, &why) < 0) {
			log_warn("bad STATE from %s: %s", s->other->name, why);
			return;
		}
		sync_follow_mode(s);
		sync_reconsider(s);
		return;
	case MSG_BITMAP:
		return sync_peer_bitmap(s, h, payload);
	case MSG_VERIFY_REQ:
		return verify_answer(s->vf, h, s->peer);
	case MSG_VERIFY_REPLY:
		return verify_reply(s->vf, h, payload);
	case MSG_RESYNC_DONE:
		if (s->rs_role == RS_TARGET)
			return sync_resync_target_done(s);
		break;
	case MSG_GEN:
	case MSG_MARK:
		return sync_from_primary(s, h, payload);
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_FLUSH:
	case MSG_RESYNC_DATA:
		if (!sync_primary(s) && h->type == MSG_RESYNC_DATA && !sync_target_chunk(s, h->length))
			return; /* never written over a disk that claims up to date */
		if (!sync_primary(s))
			return secondary_apply(s->env.sec, s, h, payload);
		/* Never answered, so the peer must not wait for the answer. */
		peer_drop(s->peer,
			  "%s sent %s to this primary, which takes no writes from its peer "
			  "(both primary? the handshake at the reconnect refuses that)",
			  s->other->name, msg_type_name(h->type));
		return;
	default:
		break;
	}
	log_debug("from %s: %s (not expected now)", s->other->name, msg_type_name(h->type));
}


int sync_start(struct sync *s)
{
	static const struct peer_ops ops = {
		.hello = sync_hello_out,
		.accept_peer = sync_accept_peer,
		.up = sync_link_up,
		.down = sync_link_down,
		.message = sync_message,
		.released = primary_released,
		.writable = sync_writable,
	};
	s->peer = sync_link_new(s->env.loop, s->env.cfg, s->env.me, s->other, s->env.secret,
				s->env.secret_len, s->env.hub, &ops, s);
	if (!s->peer)
		return -1;
	/* The answers to the primary's side's writes go straight to it. */
	peer_on_ack(s->peer, primary_ack, s->lane);
	peer_enable(s->peer, true);
	return peer_listen_now(s->peer);
}
