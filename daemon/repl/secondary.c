/* The secondary's side of replication (see secondary.h): applying the
 * primary's stream in order and acknowledging it, and what a failing disk
 * does to that.  With three nodes or more, also what the other secondaries
 * need from this one after the primary is lost: the bits of the nodes that
 * miss the stream (MSG_GEN names them), and the writes it received that
 * another peer may lack (since the last-but-one MSG_MARK): where the
 * secondaries may differ among themselves. */
#include "daemon/repl/secondary.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>

#include "daemon/config.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/apply.h"
#include "daemon/repl/diskerr.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/bitmap.h"
#include "utils/clock.h"
#include "utils/extent.h"
#include "utils/ioop.h"
#include "utils/log.h"
#include "utils/loop.h"

#define FLUSHES_MAX 8 /* the fdatasyncs of the peer's FLUSHes in flight */

/* A FLUSH from the peer, applied through the ring: later writes go on
 * meanwhile, and its FLUSH_ACK follows the fdatasync. */
struct flush_op {
	struct ioop op;
	struct secondary *sec;
	struct sync *from;
	uint64_t seq;
	uint64_t link; /* the connection it came on */
	bool busy;
};

struct secondary {
	struct local *loc;
	struct meta_sb *sb;    /* loc's */
	struct diskerr *disk;  /* loc's */
	int data_fd;	       /* loc's */
	struct loop *loop;
	const struct config *cfg;
	bool multi;	       /* three nodes or more */
	uint32_t tracking;     /* slots recording what this node applies (bit i: slot i) */
	/* The writes received since the last MSG_MARK (recent) and between
	 * the two before (older); both NULL with two nodes. */
	struct bitmap *recent, *older;
	bool was_sync;	       /* the primary it lost replicated to it in sync mode */
	/* Restarted uncleanly as a secondary (three nodes or more): what it
	 * received before is not known, so neither is where it differs from
	 * the other secondaries, until a primary resyncs it. */
	bool unsure;
	struct flush_op flushes[FLUSHES_MAX];
};

struct secondary *secondary_new(struct local *loc, struct loop *loop, const struct config *cfg)
{
	struct secondary *sec = calloc(1, sizeof(*sec));

	if (!sec) {
		log_err("out of memory");
		return NULL;
	}
	*sec = (struct secondary){ .loc = loc,
				   .sb = local_sb(loc),
				   .disk = local_disk(loc),
				   .data_fd = local_data_fd(loc),
				   .loop = loop,
				   .cfg = cfg,
				   .multi = config_data_node_count(cfg) > 2 };
	sec->unsure = sec->multi && !(sec->sb->flags & (META_F_CLEAN | META_F_WAS_PRIMARY)) &&
		      sec->sb->gen.current != GEN_CREATED;
	if (sec->multi) {
		uint64_t nbits = bitmap_nbits(local_slot_bm(loc, 0));

		sec->recent = bitmap_new(nbits);
		sec->older = bitmap_new(nbits);
		if (!sec->recent || !sec->older) {
			log_err("out of memory");
			secondary_free(sec);
			return NULL;
		}
	}
	secondary_slots_changed(sec);
	return sec;
}

void secondary_free(struct secondary *sec)
{
	if (!sec)
		return;
	bitmap_free(sec->recent);
	bitmap_free(sec->older);
	free(sec);
}

/* --- the secondary's disk failing --- */

/* The disk failed to apply a replicated request (len 0: a FLUSH).  This
 * node now lacks a write its primary acknowledged, or may: it must not
 * claim to be up to date, and it must not acknowledge the request as
 * applied.  It drops the link (the primary then treats the request as it
 * treats a peer loss) and reconnects after a backoff; the reconnect's
 * bitmap exchange and resync repair the range once the disk works. */
static void disk_failed(struct secondary *sec, struct sync *from, uint16_t type, uint64_t off, uint32_t len, int err)
{
	unsigned backoff_s;

	(void)diskerr_set(sec->disk, "%s of %" PRIu32 " bytes at %" PRIu64 ": %s",
			  msg_type_name(type), len, off, strerror(-err));
	stream_mark_out_of_sync(sync_stream(from), off, len);
	if (sec->sb->disk > META_DISK_OUTDATED)
		sec->sb->disk = META_DISK_OUTDATED;
	diskerr_set_md_unsaved(sec->disk, local_save(sec->loc) < 0);
	backoff_s = diskerr_failed(sec->disk, clock_now_ns());
	log_err("disk failed a replicated %s; disk %s%s, link to %s dropped, reconnecting in %u s "
		"so that a resync repairs it",
		diskerr_text(sec->disk), local_disk_name(sec->loc),
		diskerr_md_unsaved(sec->disk) ? " (not yet in the metadata)" : "", sync_name(from),
		backoff_s);
	peer_enable(sync_peer(from), false);
}

/* From the tick: true when the reconnect after a disk error is due. */
bool secondary_tick(struct secondary *sec)
{
	if (!diskerr_retry_due(sec->disk, clock_now_ns()))
		return false;
	if (diskerr_md_unsaved(sec->disk) && local_save(sec->loc) == 0) {
		diskerr_set_md_unsaved(sec->disk, false);
		log_info("the metadata records the disk as %s now", local_disk_name(sec->loc));
	}
	log_info("reconnecting after the disk error");
	return true;
}

/* A resync from the peer finished: whatever a disk error left out is
 * there now. */
void secondary_disk_repaired(struct secondary *sec)
{
	if (*diskerr_text(sec->disk))
		log_info("the resync repaired what the disk error left out (%s)",
			 diskerr_text(sec->disk));
	diskerr_repaired(sec->disk);
	sec->was_sync = false;
	sec->unsure = false;
}

bool secondary_unsure(const struct secondary *sec)
{
	return sec->unsure;
}

/* Unsure where it differs from the others (it restarted uncleanly and
 * no primary resynced it since), with its primary lost or itself being
 * promoted: every extent is out of sync with every other node. */
void secondary_forget_receipts(struct secondary *sec)
{
	if (!sec->unsure)
		return;
	for (unsigned i = 0; i < local_max_peers(sec->loc); i++)
		if (*sec->sb->slot[i].node)
			bitmap_set_range(local_slot_bm(sec->loc, (int)i), 0,
					 bitmap_nbits(local_slot_bm(sec->loc, (int)i)));
	(void)local_save_bm(sec->loc);
	log_warn("this node restarted uncleanly as a secondary and no primary resynced it since: "
		 "it cannot tell where it differs from the other nodes, so everything is out of "
		 "sync with them (a full resync)");
}

bool secondary_was_sync_replica(const struct secondary *sec)
{
	return sec->was_sync;
}

/* --- what the other nodes miss (three nodes or more) --- */

/* The slots with a bitmap generation record what this node applies. */
void secondary_slots_changed(struct secondary *sec)
{
	sec->tracking = 0;
	for (unsigned i = 0; i < local_max_peers(sec->loc); i++)
		if (sec->sb->slot[i].bitmap_gen)
			sec->tracking |= 1U << i;
}

static void mark_bytes(struct bitmap *bm, const struct secondary *sec, uint64_t off, uint64_t len)
{
	uint64_t ext = sec->sb->extent_bytes, first, last;

	if (!len || off >= sec->sb->data_bytes)
		return;
	if (len > sec->sb->data_bytes - off)
		len = sec->sb->data_bytes - off;
	first = extent_first(off, ext);
	last = extent_last(off, len, ext);
	bitmap_set_range(bm, first, last - first + 1);
}

/* A write from the primary was applied: the nodes that miss the stream
 * miss it too. */
static void track(struct secondary *sec, struct sync *from, uint64_t off, uint64_t len)
{
	int from_slot = sync_slot(from);

	if (sec->recent)
		mark_bytes(sec->recent, sec, off, len);
	for (int i = 0; sec->tracking >> i; i++)
		if ((sec->tracking >> i & 1) && i != from_slot)
			mark_bytes(local_slot_bm(sec->loc, i), sec, off, len);
}

/* Before a FLUSH_ACK: what was recorded is on disk too. */
static int tracked_save(struct secondary *sec)
{
	return sec->tracking && local_save_bm(sec->loc) < 0 ? -EIO : 0;
}

/* The writes received that another peer may lack, into one slot's bitmap. */
static void mirror_mark(struct secondary *sec, int slot)
{
	struct bitmap *bm = local_slot_bm(sec->loc, slot);

	if (!sec->recent)
		return;
	for (uint64_t b = bitmap_next_set(sec->recent, 0); b < bitmap_nbits(sec->recent);
	     b = bitmap_next_set(sec->recent, b + 1))
		bitmap_set(bm, b);
	for (uint64_t b = bitmap_next_set(sec->older, 0); b < bitmap_nbits(sec->older);
	     b = bitmap_next_set(sec->older, b + 1))
		bitmap_set(bm, b);
}

/* MSG_MARK: what was received before the previous mark is on every peer. */
void secondary_mark(struct secondary *sec)
{
	struct bitmap *t = sec->older;

	if (!sec->recent)
		return;
	sec->older = sec->recent;
	sec->recent = t;
	bitmap_clear_range(t, 0, bitmap_nbits(t));
}

static const struct msg_gen *behind_of(const struct msg_gen *g, const char *node, unsigned *i)
{
	for (*i = 0; *i < g->nbehind; (*i)++)
		if (!strcmp(g->behind[*i].node, node))
			return g;
	return NULL;
}

/* One slot after an MSG_GEN: true if it changed.  A node the primary
 * names starts being recorded here, from the activity log on, if this
 * node was at the generation the primary's record of it counts from (so
 * that this record is as complete as the primary's); a node it does not
 * name holds what the primary holds: its record here is dropped. */
static bool gen_slot(struct secondary *sec, int i, const struct msg_gen *g, uint64_t before)
{
	struct meta_slot *sl = &sec->sb->slot[i];
	unsigned k;

	if (behind_of(g, sl->node, &k)) {
		if (sl->bitmap_gen || g->behind[k].bitmap_gen != before)
			return false;
		sl->bitmap_gen = before;
		mirror_mark(sec, i);
		log_info("%s misses the primary's writes: recording them for it from "
			 "generation %016" PRIx64, sl->node, before);
		return true;
	}
	if (!sl->bitmap_gen && !bitmap_count(local_slot_bm(sec->loc, i)))
		return false;
	sl->bitmap_gen = 0;
	bitmap_clear_range(local_slot_bm(sec->loc, i), 0, bitmap_nbits(local_slot_bm(sec->loc, i)));
	log_info("%s holds what the primary holds: nothing recorded for it any more", sl->node);
	return true;
}

/* MSG_GEN from the primary (from): a secondary in step with it (up to
 * date at the generation it was at) follows it; one still behind learns
 * the generation from its resync instead. */
bool secondary_gen(struct secondary *sec, struct sync *from, const struct msg_gen *g)
{
	uint64_t before = sec->sb->gen.current;
	bool changed = false;

	/* sync_peer_follows() mirrors this condition on the primary. */
	if (before != g->old_current || sec->sb->disk < META_DISK_CONSISTENT || sec->unsure)
		return false;
	for (unsigned i = 0; i < local_max_peers(sec->loc); i++)
		if (*sec->sb->slot[i].node && (int)i != sync_slot(from))
			changed |= gen_slot(sec, (int)i, g, before);
	if (g->new_current != before) {
		gen_history_push(&sec->sb->gen, before);
		sec->sb->gen.current = g->new_current;
		changed = true;
	}
	if (!changed)
		return false;
	secondary_slots_changed(sec);
	(void)local_save_bm(sec->loc);
	(void)local_save_sb(sec->loc);
	return true;
}

/* The link to the primary (from) is gone: the other secondaries may each
 * hold some of its last writes and not others, all within its activity
 * log.  Those extents are out of sync with every other node until a
 * resync among them (after a promotion) settles it. */
void secondary_primary_lost(struct secondary *sec, struct sync *from)
{
	unsigned n = 0;

	sec->was_sync = !(sync_hello(from)->flags & MSG_HELLO_F_ASYNC);
	if (sec->unsure)
		return secondary_forget_receipts(sec);
	if (!sec->recent || (!bitmap_count(sec->recent) && !bitmap_count(sec->older)))
		return;
	for (unsigned i = 0; i < local_max_peers(sec->loc); i++)
		if (*sec->sb->slot[i].node) {
			mirror_mark(sec, (int)i);
			n++;
		}
	if (!n)
		return;
	(void)local_save_bm(sec->loc);
	log_info("the primary %s is gone: %" PRIu64 " extents it wrote lately are out of sync "
		 "with the other nodes until a resync from the next primary",
		 sync_name(from), bitmap_count(sec->recent) + bitmap_count(sec->older));
	bitmap_clear_range(sec->recent, 0, bitmap_nbits(sec->recent));
	bitmap_clear_range(sec->older, 0, bitmap_nbits(sec->older));
}

/* --- replication: the secondary's side --- */

static void flush_done(struct ioop *op, int res)
{
	struct flush_op *f = container_of(op, struct flush_op, op);
	struct secondary *sec = f->sec;
	struct sync *s = f->from;
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = f->seq, .count = (uint32_t)-res };

	f->busy = false;
	if (res == 0)
		res = tracked_save(sec);
	if (res < 0 && f->link == stream_link(sync_stream(s)) && sync_up(s))
		return disk_failed(sec, s, MSG_FLUSH, 0, 0, res);
	if (res < 0)
		log_err("applying a replicated FLUSH: %s", strerror(-res));
	if (f->link == stream_link(sync_stream(s)) && sync_up(s) &&
	    peer_send(sync_peer(s), &ack, NULL) < 0)
		peer_drop(sync_peer(s),
			  "cannot acknowledge a replicated FLUSH: the send queue is full");
}

_Static_assert(FLUSHES_MAX + 3 <= PEER_ANSWER_ROOM,
	       "the FLUSH_ACKs of flushes in flight fit in the room kept for answers");

/* Starts the fdatasync of a FLUSH: -1 if FLUSHES_MAX are in flight (the
 * caller flushes inline). */
static int flush_async(struct secondary *sec, struct sync *from, uint64_t seq)
{
	for (int i = 0; i < FLUSHES_MAX; i++) {
		struct flush_op *f = &sec->flushes[i];

		if (f->busy)
			continue;
		*f = (struct flush_op){ .op.done = flush_done,
					.sec = sec,
					.from = from,
					.seq = seq,
					.link = stream_link(sync_stream(from)),
					.busy = true };
		io_uring_prep_fsync(loop_sqe(sec->loop, &f->op), sec->data_fd, IORING_FSYNC_DATASYNC);
		return 0;
	}
	return -1;
}

/* Applies one replicated request, in stream order, and acknowledges it.
 * Done inline: the stream is applied in order and the peer waits anyway;
 * FLUSH and FUA block the loop for the disk's flush. */
void secondary_apply(struct secondary *sec, struct sync *from, const struct msg_hdr *h,
		     const uint8_t *payload)
{
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };
	int err;

	switch (h->type) {
	case MSG_RESYNC_DATA:
	case MSG_WRITE:
		err = apply_write(sec->data_fd, payload, h->length, h->offset, h->flags & MSG_F_FUA);
		break;
	case MSG_TRIM:
	case MSG_ZERO:
		err = apply_zero(sec->data_fd, h->offset, h->count, h->flags & MSG_F_NO_HOLE,
				 h->flags & MSG_F_FUA);
		break;
	default: /* MSG_FLUSH */
		/* A client's FLUSH is a barrier: nothing after it is applied
		 * before it is durable.  The node's own need not wait. */
		if ((h->flags & MSG_F_NOBARRIER) && flush_async(sec, from, h->seq) == 0)
			return;
		ack.type = MSG_FLUSH_ACK;
		err = apply_flush(sec->data_fd);
		if (!err)
			err = tracked_save(sec);
		break;
	}
	if (!err && h->type != MSG_FLUSH)
		track(sec, from, h->offset, h->type == MSG_WRITE || h->type == MSG_RESYNC_DATA ?
						    h->length : h->count);
	if (err)
		return disk_failed(sec, from, h->type, h->offset, h->type == MSG_FLUSH ? 0 : h->count,
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
bool secondary_primary_freezes(const struct secondary *sec)
{
	/* An async primary acknowledges writes its peer may not have yet. */
	return secondary_policy_holds(sec->cfg) && sec->sb->mode == META_MODE_SYNC;
}

/* on-peer-loss = freeze, or quorum (which holds as freeze does until a
 * majority records the peer's absence). */
bool secondary_policy_holds(const struct config *cfg)
{
	return config_on_peer_loss(cfg) == CONFIG_PEER_LOSS_FREEZE ||
	       config_quorum(cfg) == CONFIG_QUORUM_MAJORITY;
}

/* An up-to-date secondary that is not receiving its primary's writes is
 * only consistent: a valid image, perhaps not the newest.  Promoting it
 * then takes --force.  A resync brings it back to up to date. */
void secondary_may_lag(struct secondary *sec, const char *why)
{
	if (sec->sb->disk != META_DISK_UPTODATE)
		return;
	sec->sb->disk = META_DISK_CONSISTENT;
	(void)local_save_sb(sec->loc);
	log_warn("disk is now consistent, not up to date: %s", why);
}
