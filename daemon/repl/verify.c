/* `blkrep verify` (see verify.h). */
#include "daemon/repl/verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/resync.h"
#include "daemon/repl/stream.h"
#include "nbd/repl.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/bitmap.h"
#include "utils/log.h"

struct verify {
	struct local *loc;
	struct stream *stream; /* the node's: its requests' answers, the out-of-sync record */
	const struct config *cfg;
	uint32_t extent_bytes;
	int data_fd;
	void *arg;		/* the ops' */
	const char *name; /* the peer compared with */
	const struct verify_ops *ops;
	struct resync *walk; /* over todo, as a resync source over the bitmap */
	struct bitmap *todo; /* every extent, at the start */
	uint64_t differ;     /* extents found different */
	bool ran;	     /* a verify ran since start (its result is shown) */
	uint8_t *buf;	     /* the peer's verify requests are read here */
};

static bool verify_lock(void *arg, struct repl_req *rr)
{
	struct verify *v = arg;

	return v->ops->lock(v->arg, rr);
}

static void verify_unlock(void *arg, struct repl_req *rr)
{
	struct verify *v = arg;

	v->ops->unlock(v->arg, rr);
}

static bool verify_app_busy(void *arg)
{
	struct verify *v = arg;

	return v->ops->app_busy(v->arg);
}

static int verify_send(void *arg, struct repl_req *rr)
{
	struct verify *v = arg;
	struct msg_hdr h = { .type = MSG_VERIFY_REQ, .offset = rr->offset, .count = rr->length };

	return v->ops->send(v->arg, &h, rr);
}

static void verify_idle(void *arg)
{
	struct verify *v = arg;

	resync_finish(v->walk);
	(void)local_save_bm(v->loc);
	log_info("verify against %s done: %" PRIu64 " extents differ", v->name, v->differ);
}

static const struct resync_ops verify_ops = {
	.lock = verify_lock,
	.unlock = verify_unlock,
	.send = verify_send,
	.idle = verify_idle,
	.app_busy = verify_app_busy,
};

struct verify *verify_new(struct local *loc, struct loop *loop, const struct config *cfg,
			  struct stream *stream, const char *name, const struct verify_ops *ops,
			  void *arg)
{
	struct verify *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->loc = loc;
	v->stream = stream;
	v->cfg = cfg;
	v->extent_bytes = local_sb(loc)->extent_bytes;
	v->data_fd = local_data_fd(loc);
	v->arg = arg;
	v->name = name;
	v->ops = ops;
	v->todo = bitmap_new(bitmap_nbits(local_slot_bm(loc, 0)));
	if (v->todo)
		v->walk = resync_new(loop, v->data_fd, v->todo, v->extent_bytes, &verify_ops, v);
	if (!v->walk) {
		verify_free(v);
		return NULL;
	}
	return v;
}

void verify_free(struct verify *v)
{
	if (!v)
		return;
	resync_free(v->walk);
	free(v->buf);
	bitmap_free(v->todo);
	free(v);
}

/* One XXH64 per extent of a chunk, big-endian, into out (room for
 * len / extent_bytes + 1). */
static unsigned chunk_digests(uint32_t extent_bytes, const uint8_t *p, uint64_t len, uint8_t *out)
{
	unsigned k = 0;

	for (uint64_t at = 0; at < len; at += extent_bytes, k++) {
		uint64_t d = XXH64(
			p + at, len - at < extent_bytes ? len - at : extent_bytes, 0);

		for (int i = 0; i < 8; i++)
			out[8 * k + (unsigned)i] = (uint8_t)(d >> (56 - 8 * i));
	}
	return k;
}

void verify_answer(struct verify *v, const struct msg_hdr *h, struct peer *p)
{
	static uint8_t digests[MSG_MAX_DIGESTS];
	struct msg_hdr r = { .type = MSG_VERIFY_REPLY, .seq = h->seq };
	ssize_t got;

	if (!v->buf) /* once, for the largest request the protocol allows */
		v->buf = malloc(MSG_MAX_DATA);
	got = v->buf ? pread(v->data_fd, v->buf, h->count, (off_t)h->offset) : -1;
	if (got == (ssize_t)h->count)
		r.length = 8 * chunk_digests(v->extent_bytes, v->buf, h->count, digests);
	else
		r.count = (uint32_t)(got < 0 && v->buf ? errno : EIO);
	if (!r.length)
		r.length = 8; /* an error still carries one (ignored) checksum */
	/* Unanswered, the peer's verify would wait for ever. */
	if (peer_send(p, &r, digests) < 0)
		peer_drop(p, "cannot answer a verify request: the send queue is full");
}

/* The peer's checksums for a verify chunk: extents that differ become out
 * of sync (`blkrep resync` copies them). */
static void verify_compare(struct verify *v, struct repl_req *rr, const struct msg_hdr *h,
			   const uint8_t *theirs)
{
	static uint8_t mine[MSG_MAX_DIGESTS];
	unsigned k = chunk_digests(v->extent_bytes, rr->payload, rr->length, mine);

	if (h->count || h->length != 8 * k) {
		log_warn("verify at %" PRIu64 ": %s could not read it (%s)", rr->offset, v->name,
			 strerror(h->count ? (int)h->count : EPROTO));
		stream_mark_out_of_sync(v->stream, rr->offset, rr->length);
		v->differ += k;
		return;
	}
	for (unsigned i = 0; i < k; i++) {
		uint64_t off = rr->offset + (uint64_t)i * v->extent_bytes;

		if (memcmp(mine + 8 * i, theirs + 8 * i, 8) == 0)
			continue;
		v->differ++;
		stream_mark_out_of_sync(v->stream, off, v->extent_bytes);
		log_warn("verify: the extent at %" PRIu64 " differs on %s", off, v->name);
	}
}

void verify_reply(struct verify *v, const struct msg_hdr *h, const uint8_t *payload)
{
	void *req;

	if (stream_verify_answered(v->stream, h->seq, &req) < 0) {
		log_warn("%s answered verify request %" PRIu64 ", which is not outstanding",
			 v->name, h->seq);
		return;
	}
	verify_compare(v, req, h, payload);
	resync_acked(v->walk, req, 0);
}

void verify_acked(struct verify *v, void *req, int err)
{
	resync_acked(v->walk, req, err);
}

void verify_stop(struct verify *v)
{
	resync_stop(v->walk);
}

void verify_pump(struct verify *v)
{
	resync_pump(v->walk);
}

void verify_relock(struct verify *v)
{
	resync_relock(v->walk);
}

bool verify_running(const struct verify *v)
{
	return resync_running(v->walk);
}

bool verify_result(const struct verify *v, bool *running, uint64_t *done, uint64_t *total,
		   uint64_t *differ)
{
	uint64_t bps;

	resync_progress(v->walk, done, total, &bps);
	*running = resync_running(v->walk);
	*differ = v->differ;
	return v->ran;
}

void verify_start(struct verify *v, uint64_t bytes, struct control_req *req)
{
	bitmap_set_range(v->todo, 0, bitmap_nbits(v->todo));
	v->differ = 0;
	v->ran = true;
	resync_start(v->walk, bytes, config_resync_rate(v->cfg));
	control_reply(req, true, "verifying %" PRIu64 " bytes against %s", bytes, v->name);
}
