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
	struct bitmap *const *bms;	/* one per bitmap slot, the caller's */
	unsigned nbms;
	struct actlog *al;	/* the primary's, which admits writes (rule 1) */
	int data_fd;		/* the data area: flushed before the log forgets */
	bool drop_unsynced;	/* an eviction whose data flush failed */
	uint32_t ext_bytes;
	uint32_t bm_ext_bytes;
	bool writing;		/* a snapshot write is in flight */
	bool failed;		/* the last snapshot write failed: said once */
	bool hold;		/* ... so the next waits for alog_retry() */
	char error[576];	/* why, for status, while failed */
	uint64_t writing_seq;	/* actlog_seq() of the snapshot in flight */
	uint64_t writes;	/* snapshots written, for the metrics */
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

struct alog *alog_new(struct loop *loop, struct mdio *md, struct bitmap *const *bms,
		      unsigned nbms, int data_fd,
		      struct actlog *al, uint32_t al_extent_bytes, uint32_t bm_extent_bytes,
		      void (*wake)(void *arg), void *arg)
{
	struct alog *a = calloc(1, sizeof(*a));

	if (!a || posix_memalign((void **)&a->blk, META_BLOCK_BYTES, META_BLOCK_BYTES)) {
		log_err("cannot set up the activity log: out of memory");
		alog_free(a);
		return NULL;
	}
	a->loop = loop;
	a->md = md;
	a->bms = bms;
	a->nbms = nbms;
	a->al = al;
	a->data_fd = data_fd;
	a->ext_bytes = al_extent_bytes;
	a->bm_ext_bytes = bm_extent_bytes;
	a->wake = wake;
	a->arg = arg;
	a->op.done = alog_write_done;
	return a;
}

void alog_free(struct alog *a)
{
	if (!a)
		return;
	free(a->blk);
	free(a);
}

/* Sets the bits of activity-log extent e in every slot's bitmap: which
 * peers got the writes in flight at the crash is not known. */
static void alog_mark(struct alog *a, uint32_t e)
{
	uint64_t off = (uint64_t)e * a->ext_bytes;

	for (unsigned i = 0; i < a->nbms; i++)
		bitmap_set_range(a->bms[i], extent_first(off, a->bm_ext_bytes),
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
static int sync_data(struct bitmap *const *bms, unsigned n, int data_fd, bool dropped,
		     char *err, size_t len)
{
	bool cleared = dropped;

	for (unsigned i = 0; i < n; i++)
		cleared |= bitmap_cleared(bms[i]);
	if (!cleared)
		return 0;
	if (fdatasync(data_fd) < 0) {
		snprintf(err, len, "flushing the data area: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		bitmap_forget_cleared(bms[i]);
	return 0;
}

int alog_save_bitmap(struct mdio *md, struct bitmap *const *bms, unsigned n, int data_fd,
		     char *err, size_t len)
{
	if (sync_data(bms, n, data_fd, false, err, len) < 0)
		return -1;
	return mdio_write_bitmaps(md, bms, n, err, len);
}

/* Writes the bitmap's changed pages, then starts a snapshot write if the
 * log changed and none is in flight. */
void alog_write(struct alog *a)
{
	char err[512];
	struct io_uring_sqe *sqe;
	uint64_t seq, off;
	unsigned n;
	int fd;

	if (a->writing || a->hold || !actlog_dirty(a->al))
		return;
	a->drop_unsynced |= actlog_take_dropped(a->al);
	if (sync_data(a->bms, a->nbms, a->data_fd, a->drop_unsynced, err, sizeof(err)) < 0)
		return alog_failed(a, "before writing the activity log", err);
	a->drop_unsynced = false;
	if (mdio_write_bitmaps(a->md, a->bms, a->nbms, err, sizeof(err)) < 0)
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
	a->writes++;
	if (a->failed)
		log_info("the activity log is written again; waiting writes go on");
	a->failed = false;
	a->error[0] = '\0';
	alog_write(a);
	a->wake(a->arg);
}

void alog_retry(struct alog *a)
{
	if (!a->hold)
		return;
	a->hold = false;
	alog_write(a);
}

const char *alog_error(const struct alog *a)
{
	return a->error;
}

uint64_t alog_writes(const struct alog *a)
{
	return a->writes;
}
