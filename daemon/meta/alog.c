/* The activity log on disk.  See alog.h. */
#include "alog.h"

#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>

#include "daemon/meta/actlog.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "daemon/meta/mdio.h"
#include "daemon/meta/meta.h"
#include "utils/bitmap.h"
#include "utils/extent.h"
#include "utils/log.h"

struct alog {
	struct loop *loop;
	struct mdio *md;
	struct bitmap *bm;
	struct actlog *al;
	int data_fd;		/* the data area: flushed before the log forgets */
	uint64_t epoch;		/* writes sent to the peer now are in this one */
	bool drop_unsynced;	/* an eviction whose data flush failed */
	uint32_t ext_bytes;
	uint32_t bm_ext_bytes;
	unsigned slots;
	bool writing;		/* a snapshot write is in flight */
	bool want_flush;
	bool failed;		/* the last snapshot write failed: said once */
	bool hold;		/* ... so the next waits for alog_retry() */
	char error[576];	/* why, for status, while failed */
	uint64_t writing_seq;	/* actlog_seq() of the snapshot in flight */
	struct ioop op;
	void (*wake)(void *arg);
	void *arg;
	uint8_t *blk;		/* META_BLOCK_BYTES, aligned */
	uint32_t ext[META_AL_MAX];
};

static void alog_write_done(struct ioop *op, int res);

/* A snapshot could not be written (what: the bitmap or the log): writes
 * that need it wait, and the next try is alog_retry()'s, not at once (a
 * dead disk would make that a busy loop).  Said once. */
static void alog_failed(struct alog *a, const char *what, const char *why)
{
	snprintf(a->error, sizeof(a->error), "%s: %s", what, why);
	a->hold = true;
	if (!a->failed)
		log_err("%s; writes wait until it succeeds (retried every second)", a->error);
	a->failed = true;
}

struct alog *alog_new(struct loop *loop, struct mdio *md, struct bitmap *bm, int data_fd,
		      uint32_t al_extent_bytes, unsigned slots, uint32_t bm_extent_bytes,
		      void (*wake)(void *arg), void *arg)
{
	struct alog *a = calloc(1, sizeof(*a));

	if (!a || !(a->al = actlog_new(slots)) ||
	    posix_memalign((void **)&a->blk, META_BLOCK_BYTES, META_BLOCK_BYTES)) {
		log_err("cannot set up the activity log (%u slots)", slots);
		alog_free(a);
		return NULL;
	}
	a->loop = loop;
	a->md = md;
	a->bm = bm;
	a->data_fd = data_fd;
	a->epoch = ACTLOG_EPOCH_FIRST; /* rule 7: nothing flushed yet */
	a->ext_bytes = al_extent_bytes;
	a->bm_ext_bytes = bm_extent_bytes;
	a->slots = slots;
	a->wake = wake;
	a->arg = arg;
	a->op.done = alog_write_done;
	return a;
}

void alog_free(struct alog *a)
{
	if (!a)
		return;
	actlog_free(a->al);
	free(a->blk);
	free(a);
}

/* Sets the bitmap bits of activity-log extent e. */
static void alog_mark(struct alog *a, uint32_t e)
{
	uint64_t off = (uint64_t)e * a->ext_bytes;

	bitmap_set_range(a->bm, extent_first(off, a->bm_ext_bytes),
			 extent_count(off, a->ext_bytes, a->bm_ext_bytes));
}

int alog_recover(struct alog *a, bool crashed)
{
	char err[512];
	unsigned n;

	if (mdio_read_al(a->md, a->ext, META_AL_MAX, &n, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	if (!crashed)
		return 0;	/* the bitmap on disk covers everything */
	for (unsigned i = 0; i < n; i++)
		alog_mark(a, a->ext[i]);
	actlog_load(a->al, a->ext, n);
	return (int)n;
}

/* Rule 8: before the metadata forgets a range (a bitmap without bits it
 * had, a log without an extent it had), the local copy of that range must
 * be durable, as DRBD flushes the backing device before an activity-log
 * transaction: a peer FLUSH made only the peer's copy durable.  dropped:
 * the log is about to drop an extent.  0, or -1 with err set. */
static int alog_sync_data(struct alog *a, bool dropped, char *err, size_t len)
{
	if (!bitmap_cleared(a->bm) && !dropped)
		return 0;
	if (fdatasync(a->data_fd) < 0) {
		snprintf(err, len, "flushing the data area: %s", strerror(errno));
		return -1;
	}
	bitmap_forget_cleared(a->bm);
	return 0;
}

int alog_save_bitmap(struct alog *a, char *err, size_t len)
{
	if (alog_sync_data(a, false, err, len) < 0)
		return -1;
	return mdio_write_bitmap(a->md, a->bm, err, len);
}

/* Writes the bitmap's changed pages, then starts a snapshot write if the
 * log changed and none is in flight. */
static void alog_snapshot(struct alog *a)
{
	char err[512];
	struct io_uring_sqe *sqe;
	uint64_t seq, off;
	unsigned n;
	int fd;

	if (a->writing || a->hold || !actlog_dirty(a->al))
		return;
	a->drop_unsynced |= actlog_take_dropped(a->al);
	if (alog_sync_data(a, a->drop_unsynced, err, sizeof(err)) < 0)
		return alog_failed(a, "before writing the activity log", err);
	a->drop_unsynced = false;
	if (mdio_write_bitmap(a->md, a->bm, err, sizeof(err)) < 0)
		return alog_failed(a, "writing the bitmap", err);
	a->writing_seq = actlog_seq(a->al);
	n = actlog_snapshot(a->al, a->ext, META_AL_MAX);
	seq = mdio_al_next(a->md, &fd, &off);
	meta_al_encode(seq, a->ext, n, a->blk);
	sqe = loop_sqe(a->loop, &a->op);
	io_uring_prep_write(sqe, fd, a->blk, META_BLOCK_BYTES, off);
	sqe->rw_flags = RWF_DSYNC;
	a->writing = true;
}

static void alog_write_done(struct ioop *op, int res)
{
	struct alog *a = container_of(op, struct alog, op);

	a->writing = false;
	mdio_al_done(a->md, res == (int)META_BLOCK_BYTES);
	if (res != (int)META_BLOCK_BYTES)
		return alog_failed(a, "writing the activity log",
				   res < 0 ? strerror(-res) : "short write");
	actlog_persisted(a->al, a->writing_seq);
	if (a->failed)
		log_info("the activity log is written again; waiting writes go on");
	a->failed = false;
	a->error[0] = '\0';
	alog_snapshot(a);
	a->wake(a->arg);
}

void alog_retry(struct alog *a)
{
	if (!a->hold)
		return;
	a->hold = false;
	alog_snapshot(a);
}

const char *alog_error(const struct alog *a)
{
	return a->error;
}

uint64_t alog_epoch(const struct alog *a)
{
	return a->epoch;
}

uint64_t alog_close_epoch(struct alog *a)
{
	return a->epoch++;
}

bool alog_wide(const struct alog *a, uint64_t off, uint64_t len)
{
	return extent_count(off, len, a->ext_bytes) > a->slots / 2;
}

enum alog_result alog_begin(struct alog *a, uint64_t off, uint64_t len)
{
	uint64_t first, last, e;
	bool wait = false;

	if (len == 0)
		return ALOG_GO;
	if (alog_wide(a, off, len))
		return ALOG_WIDE;
	first = extent_first(off, a->ext_bytes);
	last = extent_last(off, len, a->ext_bytes);
	for (e = first; e <= last; e++) {
		enum actlog_result r = actlog_begin(a->al, (uint32_t)e, a->epoch);

		if (r == ACTLOG_BUSY) {
			a->want_flush = true;
			wait = true;
			break;
		}
		wait |= r != ACTLOG_HIT;
	}
	if (!wait)
		return ALOG_GO;
	/* All or none: a write never holds some extents while it waits. */
	while (e-- > first)
		actlog_end(a->al, (uint32_t)e);
	alog_snapshot(a);
	return ALOG_WAIT;
}

void alog_end(struct alog *a, uint64_t off, uint64_t len)
{
	if (len == 0 || alog_wide(a, off, len))
		return;	/* ALOG_WIDE: never counted */
	for (uint64_t e = extent_first(off, a->ext_bytes); e <= extent_last(off, len, a->ext_bytes);
	     e++)
		actlog_end(a->al, (uint32_t)e);
}

void alog_flushed(struct alog *a, uint64_t epoch)
{
	actlog_flushed(a->al, epoch);
	a->wake(a->arg);
}

void alog_standalone(struct alog *a, bool on)
{
	actlog_set_standalone(a->al, on);
	a->wake(a->arg);
}

bool alog_want_flush(struct alog *a)
{
	bool w = a->want_flush;

	a->want_flush = false;
	return w;
}

unsigned alog_count(const struct alog *a)
{
	return actlog_count(a->al);
}
