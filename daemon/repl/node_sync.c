/* The node at connect and after (see node_int.h): the peer link's
 * callbacks, the generation verdict, split brain, the bitmap exchange,
 * the resync and verify. */
#include "daemon/node_int.h"

/* --- resync --- */

/* The first resync data: from now until RESYNC_DONE this node's data is a
 * mix of old and new. */
bool node_become_target(struct node *n)
{
	n->rs_role = RS_TARGET;
	if (n->sb.disk == META_DISK_INCONSISTENT)
		return true;
	n->sb.disk = META_DISK_INCONSISTENT;
	if (node_save_sb(n) < 0) {
		/* A restart would claim a half-copied disk up to date. */
		log_err("cannot record the disk as inconsistent before a resync: link to %s "
			"dropped, retried at the next connect",
			n->other->name);
		peer_enable(n->peer, false);
		peer_enable(n->peer, true);
		return false;
	}
	(void)peer_send_state(n->peer);
	log_info("resync from %s started: disk inconsistent until it is done", n->other->name);
	return true;
}

/* Sends our bitmap, page by page, for the union at connect: the part
 * that covers the replicated (smaller) area.  Continues from
 * node_writable() when the queue is full. */
void node_send_bitmap(struct node *n)
{
	uint64_t bits = (node_export_size(n) + n->sb.extent_bytes - 1) / n->sb.extent_bytes;
	uint64_t bytes = (bits + 7) / 8;
	uint64_t pages = (bytes + BITMAP_PAGE_BYTES - 1) / BITMAP_PAGE_BYTES;
	uint8_t page[BITMAP_PAGE_BYTES];
	struct msg_hdr h = { .type = MSG_BITMAP };

	for (; n->peer_up && n->bm_sent_page < pages; n->bm_sent_page++) {
		uint64_t p = n->bm_sent_page, first = p * BITMAP_PAGE_BITS;

		if (bitmap_next_set(n->bm, first) >= first + BITMAP_PAGE_BITS)
			continue;
		(void)bitmap_encode_page(n->bm, p, page);
		h.offset = first;
		h.length = (uint32_t)(bytes - p * BITMAP_PAGE_BYTES < BITMAP_PAGE_BYTES
					      ? bytes - p * BITMAP_PAGE_BYTES
					      : BITMAP_PAGE_BYTES);
		if (peer_send(n->peer, &h, page) == -ENOBUFS)
			return;
	}
	if (!n->peer_up || n->bm_sent || bytes == 0)
		return;
	/* The last chunk repeats the first byte: a chunk is never empty. */
	(void)bitmap_encode_page(n->bm, 0, page);
	h = (struct msg_hdr){ .type = MSG_BITMAP, .flags = MSG_F_LAST, .length = 1 };
	if (peer_send(n->peer, &h, page) == 0)
		n->bm_sent = true;
}

/* The server whose client writes a resync chunk must not overlap: the
 * export, or one stopped by a demotion whose writes are still in flight. */
static struct server *node_rs_server(const struct node *n)
{
	return n->srv ? n->srv : n->retiring;
}

bool node_rs_lock(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	return !node_rs_server(n) || server_repl_lock(node_rs_server(n), rr);
}

void node_rs_unlock(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	if (n->srv)
		server_repl_end(n->srv, rr);
	if (n->retiring)
		server_repl_end(n->retiring, rr);
}

int node_rs_send(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	struct msg_hdr h = { .type = MSG_RESYNC_DATA,
			     .offset = rr->offset,
			     .count = rr->length,
			     .length = rr->length };
	int rc = node_send(n, &h, rr->payload, rr, STREAM_RESYNC);

	if (rc == 0) {
		n->resynced_bytes += rr->length;
		if (stream_resync_unflushed_bytes(n->stream) >= RS_FLUSH_BYTES &&
		    !stream_covering(n->stream))
			node_flush_peer(n);
	}
	return rc;
}

void node_rs_idle(void *arg)
{
	struct node *n = arg;

	n->rs_final = true;
	if (stream_resync_pending(n->stream) && !stream_covering(n->stream))
		node_flush_peer(n);
	node_resync_check(n);
}

bool node_rs_app_busy(void *arg)
{
	struct node *n = arg;

	return node_rs_server(n) && server_repl_busy(node_rs_server(n));
}

/* The source is done: every bit is clear and flushed on the peer. */
static void node_resync_done(struct node *n)
{
	struct msg_hdr h = { .type = MSG_RESYNC_DONE };
	uint64_t done, total, bps;

	resync_finish(n->rs);
	n->rs_role = RS_NONE;
	n->rs_final = false;
	n->crashed = false;
	gen_resync_finished_source(&n->sb.gen);
	(void)node_save_sb(n);
	(void)node_save_bm(n);
	(void)peer_send_state(n->peer);
	if (peer_send(n->peer, &h, NULL) < 0)
		log_warn("cannot tell %s that the resync is done; it learns at the next connect",
			 n->other->name);
	resync_progress(n->rs, &done, &total, &bps);
	log_info("resync to %s done: %" PRIu64 " bytes at %" PRIu64 " bytes/s", n->other->name,
		 done, bps);
	node_disk_repaired(n); /* a client's write the disk failed: the peer agrees now */
}

/* After a pass or a flush: finished once nothing is left to send or to
 * clear. */
void node_resync_check(struct node *n)
{
	uint64_t limit = (node_export_size(n) + n->sb.extent_bytes - 1) / n->sb.extent_bytes;

	if (n->rs_role != RS_SOURCE || !n->rs_final || stream_covering(n->stream) ||
	    stream_resync_pending(n->stream))
		return;
	if (bitmap_next_set(n->bm, 0) >= limit)
		return node_resync_done(n);
	n->rs_final = false;
	resync_next_pass(n->rs); /* bits set again meanwhile */
}

/* The target: everything is here and flushed. */
static void node_resync_target_done(struct node *n)
{
	struct gen_ids src = { .current = n->peer_hello.gen_current,
			       .bitmap = n->peer_hello.gen_bitmap };

	memcpy(src.history, n->peer_hello.gen_history, sizeof(src.history));
	gen_resync_finished_target(&n->sb.gen, &src);
	n->crashed = false; /* what it had in flight was overwritten */
	n->sb.disk =
		n->peer_hello.disk == MSG_DISK_UPTODATE ? META_DISK_UPTODATE : META_DISK_CONSISTENT;
	node_bm_empty(n->bm);
	(void)node_save_bm(n);
	(void)node_save_sb(n);
	n->rs_role = RS_NONE;
	(void)peer_send_state(n->peer);
	log_info("resync from %s done (%" PRIu64 " bytes received): disk %s", n->other->name,
		 n->rs_recv_bytes, meta_disk_name(n->sb.disk));
	node_disk_repaired(n);
}

/* Both bitmaps are known: the source starts copying the union. */
static void node_resync_begin(struct node *n)
{
	uint64_t limit = node_export_size(n);
	uint64_t bits = (limit + n->sb.extent_bytes - 1) / n->sb.extent_bytes;
	uint64_t dirty = bitmap_count_below(n->bm, bits);

	n->rs_recv_total = dirty * n->sb.extent_bytes;
	n->rs_recv_bytes = 0;
	n->rs_recv_start_ns = node_now_ns();
	/* A target with something to receive is not up to date from now on,
	 * on disk before any of it arrives: if the source dies first, this
	 * node must not be promoted as if it held every acknowledged write. */
	if (n->rs_role == RS_TARGET && dirty)
		(void)node_become_target(n); /* false: the link is dropped */
	if (n->rs_role != RS_SOURCE)
		return;
	log_info("resync to %s: %" PRIu64 " bytes to copy (%s)", n->other->name,
		 dirty * n->sb.extent_bytes, gen_verdict_name(n->verdict));
	resync_start(n->rs, limit, config_resync_rate(n->cfg));
}

static void node_exchange_bitmaps(struct node *n);

/* A resync while connected (`blkrep resync`, `invalidate`, or the peer
 * asking): the generations are the same, so the primary, or else the
 * up-to-date side, is the source of the union of both bitmaps. */
void node_resync_now(struct node *n)
{
	if (!n->peer_up || n->exchanging || n->rs_role != RS_NONE)
		return;
	n->verdict = GEN_SAME;
	node_exchange_bitmaps(n);
}

/* A connected primary that knows of out-of-sync extents, or whose peer is
 * not up to date, resyncs without waiting for an operator (after a
 * promotion: the generations may compare "same" while bits are set). */
void node_resync_if_due(struct node *n)
{
	uint64_t bits = (node_export_size(n) + n->sb.extent_bytes - 1) / n->sb.extent_bytes;

	if (!n->primary || !n->peer_up || n->exchanging || n->rs_role != RS_NONE)
		return;
	if (bitmap_next_set(n->bm, 0) >= bits && n->peer_hello.disk == MSG_DISK_UPTODATE)
		return;
	log_info("%s is not known to hold everything (%s): resync", n->other->name,
		 n->peer_hello.disk == MSG_DISK_UPTODATE ? "extents out of sync" : "its disk is "
		 "not up to date");
	node_resync_now(n);
}

/* A chunk of the peer's bitmap: the union of both sides' changes. */
static void node_peer_bitmap(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	if (!n->exchanging)
		node_resync_now(n); /* the peer started one: answer with ours */
	(void)bitmap_merge_bytes(n->bm, h->offset, payload, h->length);
	if (!(h->flags & MSG_F_LAST))
		return;
	n->exchanging = false;
	n->peer_bm_done = true;
	node_resync_begin(n);
}

/* --- verify --- */

/* One XXH64 per extent of a chunk, big-endian, into out (room for
 * len / extent_bytes + 1). */
static unsigned chunk_digests(const struct node *n, const uint8_t *p, uint64_t len, uint8_t *out)
{
	unsigned k = 0;

	for (uint64_t at = 0; at < len; at += n->sb.extent_bytes, k++) {
		uint64_t d = XXH64(
			p + at, len - at < n->sb.extent_bytes ? len - at : n->sb.extent_bytes, 0);

		for (int i = 0; i < 8; i++)
			out[8 * k + (unsigned)i] = (uint8_t)(d >> (56 - 8 * i));
	}
	return k;
}

/* The peer asks for the checksums of a range: read it and answer, in
 * stream order (every write before the request is applied). */
static void node_verify_answer(struct node *n, const struct msg_hdr *h)
{
	static uint8_t digests[MSG_MAX_DIGESTS];
	struct msg_hdr r = { .type = MSG_VERIFY_REPLY, .seq = h->seq };
	ssize_t got;

	if (!n->vf_buf) /* once, for the largest request the protocol allows */
		n->vf_buf = malloc(MSG_MAX_DATA);
	got = n->vf_buf ? pread(n->data_fd, n->vf_buf, h->count, (off_t)h->offset) : -1;
	if (got == (ssize_t)h->count)
		r.length = 8 * chunk_digests(n, n->vf_buf, h->count, digests);
	else
		r.count = (uint32_t)(got < 0 && n->vf_buf ? errno : EIO);
	if (!r.length)
		r.length = 8; /* an error still carries one (ignored) checksum */
	/* Unanswered, the peer's verify would wait for ever. */
	if (peer_send(n->peer, &r, digests) < 0)
		peer_drop(n->peer, "cannot answer a verify request: the send queue is full");
}

/* The peer's checksums for a verify chunk: extents that differ become out
 * of sync (`blkrep resync` copies them). */
static void node_verify_compare(struct node *n, struct repl_req *rr, const struct msg_hdr *h,
				const uint8_t *theirs)
{
	static uint8_t mine[MSG_MAX_DIGESTS];
	unsigned k = chunk_digests(n, rr->payload, rr->length, mine);

	if (h->count || h->length != 8 * k) {
		log_warn("verify at %" PRIu64 ": %s could not read it (%s)", rr->offset,
			 n->other->name, strerror(h->count ? (int)h->count : EPROTO));
		node_mark_out_of_sync(n, rr->offset, rr->length);
		n->vf_differ += k;
		return;
	}
	for (unsigned i = 0; i < k; i++) {
		uint64_t off = rr->offset + (uint64_t)i * n->sb.extent_bytes;

		if (memcmp(mine + 8 * i, theirs + 8 * i, 8) == 0)
			continue;
		n->vf_differ++;
		node_mark_out_of_sync(n, off, n->sb.extent_bytes);
		log_warn("verify: the extent at %" PRIu64 " differs on %s", off, n->other->name);
	}
}

static void node_verify_reply(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	void *req;

	if (stream_verify_answered(n->stream, h->seq, &req) < 0) {
		log_warn("%s answered verify request %" PRIu64 ", which is not outstanding",
			 n->other->name, h->seq);
		return;
	}
	node_verify_compare(n, req, h, payload);
	resync_acked(n->vf, req, 0);
}

int node_vf_send(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	struct msg_hdr h = { .type = MSG_VERIFY_REQ, .offset = rr->offset, .count = rr->length };

	return node_send(n, &h, NULL, rr, STREAM_VERIFY);
}

void node_vf_idle(void *arg)
{
	struct node *n = arg;

	resync_finish(n->vf);
	(void)node_save_bm(n);
	log_info("verify against %s done: %" PRIu64 " extents differ", n->other->name,
		 n->vf_differ);
}

static const char *node_verify_refusal(const struct node *n)
{
	if (!n->peer_up)
		return "verify needs the peer: it is not connected";
	if (!n->primary && n->peer_hello.role == MSG_ROLE_PRIMARY)
		return "run verify on the primary";
	if (resync_running(n->vf))
		return "a verify is already running";
	if (n->rs_role != RS_NONE)
		return "a resync is running: verify after it";
	return NULL;
}

void node_cmd_verify(struct node *n, struct control_req *req)
{
	const char *no = node_verify_refusal(n);

	if (no) {
		control_reply(req, false, "%s", no);
		return;
	}
	bitmap_set_range(n->vf_todo, 0, bitmap_nbits(n->vf_todo));
	n->vf_differ = 0;
	n->vf_ran = true;
	resync_start(n->vf, node_export_size(n), config_resync_rate(n->cfg));
	control_reply(req, true, "verifying %" PRIu64 " bytes against %s", node_export_size(n),
		      n->other->name);
}

/* Which side copies to which, from the verdict at connect. */
static enum rs_role node_rs_role(const struct node *n)
{
	switch (n->verdict) {
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
		if (n->primary)
			return RS_SOURCE;
		if (n->peer_hello.role == MSG_ROLE_PRIMARY)
			return RS_TARGET;
		if ((n->sb.disk == META_DISK_UPTODATE) != (n->peer_hello.disk == MSG_DISK_UPTODATE))
			return n->sb.disk == META_DISK_UPTODATE ? RS_SOURCE : RS_TARGET;
		return RS_NONE;
	default:
		return RS_NONE;
	}
}

/* The link has room again: the bitmap, the resync and parked requests go
 * on. */
static void node_writable(void *arg)
{
	struct node *n = arg;

	node_send_bitmap(n);
	node_resend_held(n);
	resync_pump(n->rs);
	resync_pump(n->vf);
	node_repl_wake(n);
}

/* A loop hook: the resync retries chunks an application write held. */
void node_pump(void *arg)
{
	struct node *n = arg;

	resync_pump(n->rs);
	resync_pump(n->vf);
}

/* --- the peer link --- */

/* A primary only because it went down as one, with no device attached:
 * it steps back if its peer became primary meanwhile. */
static bool node_resumed_only(const struct node *n)
{
	return n->primary && n->resumed && !devices_attached(n->dev);
}

static void node_hello(void *arg, struct msg_hello *h)
{
	struct node *n = arg;

	h->role = n->primary ? MSG_ROLE_PRIMARY : MSG_ROLE_SECONDARY;
	h->disk = (uint8_t)n->sb.disk;
	h->size_bytes = n->sb.data_bytes;
	h->extent_bytes = n->sb.extent_bytes;
	h->flags = (n->crashed ? MSG_HELLO_F_CRASHED_PRIMARY : 0) |
		   (n->sb.flags & META_F_ZEROED ? MSG_HELLO_F_ZEROED : 0) |
		   (n->sb.mode == META_MODE_ASYNC ? MSG_HELLO_F_ASYNC : 0) |
		   (bitmap_count(n->bm) ? 0 : MSG_HELLO_F_NO_CHANGES) |
		   (n->discard_local ? MSG_HELLO_F_DISCARD : 0) |
		   (node_resumed_only(n) ? MSG_HELLO_F_RESUMED : 0);
	h->gen_current = n->sb.gen.current;
	h->gen_bitmap = n->sb.gen.bitmap;
	memcpy(h->gen_history, n->sb.gen.history, sizeof(h->gen_history));
}

/* Both sides as gen_compare() sees them. */
static void node_gen_sides(const struct node *n, const struct msg_hello *h, struct gen_side *me,
			   struct gen_side *peer)
{
	*me = (struct gen_side){
		.ids = n->sb.gen,
		.crashed_primary = n->crashed,
		.primary = n->primary,
		.zeroed = (n->sb.flags & META_F_ZEROED) != 0,
		.tiebreak = strcmp(n->me->name, n->other->name) < 0,
	};
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
static enum gen_verdict node_resolve_split(const struct node *n, const struct msg_hello *h)
{
	bool peer_discards = h->flags & MSG_HELLO_F_DISCARD;
	bool mine_none = bitmap_count(n->bm) == 0, peer_none = h->flags & MSG_HELLO_F_NO_CHANGES;

	if (n->discard_local != peer_discards)
		return n->discard_local ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (n->discard_local || config_after_split_brain(n->cfg) != CONFIG_SB_DISCARD_ZERO_CHANGES)
		return GEN_SPLIT_BRAIN;
	if (mine_none != peer_none)
		return mine_none ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (!mine_none)
		return GEN_SPLIT_BRAIN;
	/* Neither changed anything: the primary, else the tiebreak side, wins. */
	if (n->primary || h->role == MSG_ROLE_PRIMARY)
		return n->primary ? GEN_BITMAP_LOCAL_SOURCE : GEN_BITMAP_PEER_SOURCE;
	return strcmp(n->me->name, n->other->name) < 0 ? GEN_BITMAP_LOCAL_SOURCE
						       : GEN_BITMAP_PEER_SOURCE;
}

/* A target that has writes of its own the source may lack (a former
 * primary's, in async mode or alone under continue) saves them before the
 * resync overwrites them.  Once per generation. */
static bool node_save_own(struct node *n, char *why, size_t len)
{
	char path[512] = "", err[512];
	uint64_t bytes;

	/* An outdated disk's bits are writes it missed (a disk error), not
	 * its own. */
	if (!bitmap_count(n->bm) || n->sb.disk == META_DISK_INCONSISTENT ||
	    n->sb.disk == META_DISK_OUTDATED || n->saved_for == n->sb.gen.current)
		return true;
	if (savefile_write(path, sizeof(path), n->sb.resource, n->sb.node, n->data_fd, n->bm,
			   n->sb.extent_bytes, n->sb.data_bytes, &bytes, err, sizeof(err)) < 0) {
		snprintf(why, len,
			 "cannot save this node's own changes before the resync "
			 "overwrites them: %s",
			 err);
		log_err("%s", why);
		return false;
	}
	n->saved_for = n->sb.gen.current;
	log_warn("saved %" PRIu64 " bytes of this node's own writes, which %s may lack, to %s "
		 "(blkrep restore-saved FILE on a primary writes them back)",
		 bytes, n->other->name, path);
	return true;
}

/* Why the data of the two sides rules out this connection, or NULL; sets
 * n->verdict. */
static bool node_accept_data(struct node *n, const struct msg_hello *h, char *why, size_t len)
{
	struct gen_side me, peer;

	node_gen_sides(n, h, &me, &peer);
	n->verdict = gen_compare(&me, &peer);
	if (n->verdict == GEN_SPLIT_BRAIN)
		n->verdict = node_resolve_split(n, h);
	switch (n->verdict) {
	case GEN_SPLIT_BRAIN:
		n->split_brain = true;
		gen_verdict_explain(n->verdict, &me, &peer, why, len);
		snprintf(why + strlen(why), len - strlen(why),
			 "; nothing was overwritten: run "
			 "blkrep resolve --discard-local on the node whose changes go");
		return false;
	case GEN_UNRELATED:
		gen_verdict_explain(n->verdict, &me, &peer, why, len);
		return false;
	case GEN_SAME_AL_PEER_SOURCE:
	case GEN_BITMAP_PEER_SOURCE:
	case GEN_FULL_PEER_SOURCE:
		if (!n->primary)
			return node_save_own(n, why, len);
		snprintf(why, len,
			 "this primary's data is older than the peer's (%s): make "
			 "it secondary so that it can receive the resync",
			 gen_verdict_name(n->verdict));
		return false;
	default:
		return true;
	}
}

/* After the verdict: both sides send their bitmaps; the source starts
 * once it has the peer's. */
static void node_exchange_bitmaps(struct node *n)
{
	n->exchanging = true;
	n->rs_role = node_rs_role(n);
	n->rs_final = false;
	n->bm_sent_page = 0;
	n->bm_sent = n->peer_bm_done = false;
	if (n->verdict == GEN_FULL_LOCAL_SOURCE || n->verdict == GEN_FULL_PEER_SOURCE)
		bitmap_set_range(n->bm, 0, bitmap_nbits(n->bm));
	node_send_bitmap(n);
}

/* The generations changed while connected (a fresh pair's first
 * `primary --force`): both sides decide again, and a resync starts if one
 * is due.  Split brain cannot arise here: the link refused two primaries. */
void node_reconsider(struct node *n)
{
	struct gen_side me, peer;
	enum gen_verdict v;

	if (!n->peer_up || n->rs_role != RS_NONE)
		return;
	node_gen_sides(n, &n->peer_hello, &me, &peer);
	v = gen_compare(&me, &peer);
	/* Only a promotion moves generations while connected; crash flags
	 * were settled at connect. */
	if (v != GEN_BITMAP_LOCAL_SOURCE && v != GEN_BITMAP_PEER_SOURCE &&
	    v != GEN_FULL_LOCAL_SOURCE && v != GEN_FULL_PEER_SOURCE)
		return;
	n->verdict = v;
	log_info("generations changed while connected: %s", gen_verdict_name(v));
	node_exchange_bitmaps(n);
}

/* A secondary takes its primary's mode, so that after a failover the new
 * primary replicates as the old one did. */
static void node_follow_mode(struct node *n)
{
	enum meta_mode m =
		n->peer_hello.flags & MSG_HELLO_F_ASYNC ? META_MODE_ASYNC : META_MODE_SYNC;

	if (n->primary || n->peer_hello.role != MSG_ROLE_PRIMARY || m == n->sb.mode)
		return;
	n->sb.mode = m;
	(void)node_save_sb(n);
	log_info("%s mode, as the primary %s", node_mode_name(n), n->other->name);
}

/* A node that came back as primary only because it went down as one,
 * and finds that its peer became primary meanwhile, steps back. */
static void node_yield_to_primary(struct node *n, const struct msg_hello *h)
{
	if (h->role != MSG_ROLE_PRIMARY || !node_resumed_only(n))
		return;
	log_warn("%s became primary while this node was down: %s/%s stays secondary "
		 "(its own changes are kept for the resync or the split-brain repair)",
		 n->other->name, n->sb.resource, n->sb.node);
	n->up->demote(n);
}

static bool node_accept_peer(void *arg, const struct msg_hello *h, char *why, size_t len)
{
	struct node *n = arg;

	node_yield_to_primary(n, h);
	if (h->role == MSG_ROLE_PRIMARY && n->primary && (h->flags & MSG_HELLO_F_RESUMED)) {
		snprintf(why, len, "%s came back as primary only because it went down as one: "
			 "it steps back to secondary and connects again", n->other->name);
		return false;
	}
	if (h->role == MSG_ROLE_PRIMARY && n->primary) {
		snprintf(why, len, "both nodes are primary: split brain; make one secondary");
		return false;
	}
	if (n->primary && h->size_bytes < n->export_bytes) {
		snprintf(why, len,
			 "the peer's data area (%" PRIu64 " bytes) is smaller than "
			 "this primary's export (%" PRIu64 " bytes): grow the peer's backing "
			 "store",
			 h->size_bytes, n->export_bytes);
		return false;
	}
	if (h->extent_bytes != n->sb.extent_bytes) {
		snprintf(why, len, "bitmap granularity differs: peer %u, this node %u",
			 h->extent_bytes, n->sb.extent_bytes);
		return false;
	}
	return node_accept_data(n, h, why, len);
}

static void node_peer_up(void *arg, const struct msg_hello *h)
{
	struct node *n = arg;

	n->peer_up = true;
	n->split_brain = false;
	n->discard_local = false;
	(void)stream_link_up(n->stream);
	n->peer_hello = *h;
	n->gen_moved = false;
	n->peer_outdated = false;
	node_agree_size(n);
	alog_standalone(n->alog, false);
	if (h->size_bytes != n->sb.data_bytes)
		log_warn("data areas differ: peer %" PRIu64 " bytes, this node %" PRIu64
			 "; the pair replicates the smaller one (a primary exports that size)",
			 h->size_bytes, n->sb.data_bytes);
	log_info("connected to %s (%s, disk %s): %s", n->other->name,
		 h->role == MSG_ROLE_PRIMARY ? "primary" : "secondary", node_peer_disk(n),
		 gen_verdict_name(n->verdict));
	node_follow_mode(n);
	node_exchange_bitmaps(n);
	node_resend_held(n); /* answered when the peer acknowledges them */
	node_repl_wake(n); /* frozen writes go on */
}

static void node_peer_down(void *arg, const char *why)
{
	struct node *n = arg;

	n->peer_up = false;
	node_repl_fail_all(n);
	resync_stop(n->rs);
	resync_stop(n->vf);
	n->rs_role = RS_NONE;
	n->exchanging = false;
	alog_standalone(n->alog, true);
	node_repl_wake(n); /* parked requests go on locally, or freeze */
	/* The link already said why it went; say only what follows. */
	(void)why;
	if (node_frozen(n))
		log_warn("writes wait (on-peer-loss = freeze) until %s is back or "
			 "`blkrep outdate-peer`",
			 n->other->name);
	if (!n->primary && n->peer_hello.role == MSG_ROLE_PRIMARY && !node_primary_freezes(n))
		node_may_lag(n, "its primary may go on writing without it");
}

static void node_peer_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct node *n = arg;
	const char *why;

	switch (h->type) {
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, &n->peer_hello, &why) < 0) {
			log_warn("bad STATE from %s: %s", n->other->name, why);
			return;
		}
		node_follow_mode(n);
		node_reconsider(n);
		return;
	case MSG_ACK:
	case MSG_FLUSH_ACK:
		return node_repl_complete(n, h->seq, (int)h->count);
	case MSG_BITMAP:
		return node_peer_bitmap(n, h, payload);
	case MSG_VERIFY_REQ:
		return node_verify_answer(n, h);
	case MSG_VERIFY_REPLY:
		return node_verify_reply(n, h, payload);
	case MSG_RESYNC_DONE:
		if (n->rs_role == RS_TARGET)
			return node_resync_target_done(n);
		break;
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_FLUSH:
	case MSG_RESYNC_DATA:
		if (!n->primary)
			return node_apply(n, h, payload);
		/* Never answered, so the peer must not wait for the answer. */
		peer_drop(n->peer,
			  "%s sent %s to this primary, which takes no writes from its peer "
			  "(both primary? the handshake at the reconnect refuses that)",
			  n->other->name, msg_type_name(h->type));
		return;
	default:
		break;
	}
	log_debug("from %s: %s (not expected now)", n->other->name, msg_type_name(h->type));
}

int node_start_peer(struct node *n)
{
	static const struct peer_ops ops = {
		.hello = node_hello,
		.accept_peer = node_accept_peer,
		.up = node_peer_up,
		.down = node_peer_down,
		.message = node_peer_message,
		.released = node_released,
		.writable = node_writable,
	};
	struct peer_cfg pc = {
		.resource = n->sb.resource,
		.my_node = n->me->name,
		.peer_node = n->other->name,
		.my_addr = n->me->address,
		.peer_addr = n->other->address,
		.secret = n->secret,
		.secret_len = n->secret_len,
		.allow_unauthenticated = config_allow_unauthenticated(n->cfg),
	};

	n->peer = peer_new(n->loop, &pc, &ops, n);
	if (!n->peer)
		return -1;
	peer_enable(n->peer, true);
	return 0;
}
