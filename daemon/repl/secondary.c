/* The secondary's side of replication: applying the primary's stream in
 * order and acknowledging it, and what a failing disk does to that (see
 * node_int.h). */
#include "daemon/node_int.h"

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
			  msg_type_name(type), len, off, strerror(-err));
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
void node_disk_tick(struct node *n)
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

/* --- replication: the secondary's side --- */

static void node_flush_done(struct ioop *op, int res)
{
	struct flush_op *f = container_of(op, struct flush_op, op);
	struct node *n = f->n;
	struct sync *s = node_stream_peer(n);
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = f->seq, .count = (uint32_t)-res };

	f->busy = false;
	if (res < 0 && f->link == stream_link(n->stream) && sync_up(s))
		return node_disk_failed(n, MSG_FLUSH, 0, 0, res);
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
