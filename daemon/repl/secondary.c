/* The secondary's side of replication (see secondary.h): applying the
 * primary's stream in order and acknowledging it, and what a failing disk
 * does to that. */
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
#include "utils/clock.h"
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
	const char *peer_name; /* for messages */
	struct stream *stream; /* the node's: its link number, its out-of-sync record */
	struct flush_op flushes[FLUSHES_MAX];
};

struct secondary *secondary_new(struct local *loc, struct loop *loop, const struct config *cfg,
				const char *peer_name, struct stream *stream)
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
				   .peer_name = peer_name,
				   .stream = stream };
	return sec;
}

void secondary_free(struct secondary *sec)
{
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
	stream_mark_out_of_sync(sec->stream, off, len);
	if (sec->sb->disk > META_DISK_OUTDATED)
		sec->sb->disk = META_DISK_OUTDATED;
	diskerr_set_md_unsaved(sec->disk, local_save(sec->loc) < 0);
	backoff_s = diskerr_failed(sec->disk, clock_now_ns());
	log_err("disk failed a replicated %s; disk %s%s, link to %s dropped, reconnecting in %u s "
		"so that a resync repairs it",
		diskerr_text(sec->disk), local_disk_name(sec->loc),
		diskerr_md_unsaved(sec->disk) ? " (not yet in the metadata)" : "", sec->peer_name,
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
	log_info("reconnecting to %s after the disk error", sec->peer_name);
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
}

/* --- replication: the secondary's side --- */

static void flush_done(struct ioop *op, int res)
{
	struct flush_op *f = container_of(op, struct flush_op, op);
	struct secondary *sec = f->sec;
	struct sync *s = f->from;
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = f->seq, .count = (uint32_t)-res };

	f->busy = false;
	if (res < 0 && f->link == stream_link(sec->stream) && sync_up(s))
		return disk_failed(sec, s, MSG_FLUSH, 0, 0, res);
	if (res < 0)
		log_err("applying a replicated FLUSH: %s", strerror(-res));
	if (f->link == stream_link(sec->stream) && sync_up(s) &&
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
					.link = stream_link(sec->stream),
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
		break;
	}
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
	return config_on_peer_loss(sec->cfg) == CONFIG_PEER_LOSS_FREEZE &&
	       sec->sb->mode == META_MODE_SYNC;
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
