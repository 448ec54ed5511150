/* The primary's activity log on disk (DESIGN.md rule 1): the hot extents
 * that may hold writes not yet durable on both nodes.  It drives the pure
 * bookkeeping of actlog.h and writes its snapshots through the node's ring,
 * one at a time, to the A/B copies of the meta area.
 *
 * Before submitting a write, the node asks alog_begin() for every byte range
 * it touches: all its activity-log extents at once, or none.  A range whose
 * extents are all in the durable snapshot goes at once (the common case:
 * steady writing over hot extents costs no extra I/O).  Otherwise the write
 * waits, a snapshot is written, and the node's wake callback runs when it is
 * durable; the node then asks again.
 *
 * A range wider than half the log (a huge TRIM) is not logged: alog_begin()
 * says ALOG_WIDE and the node covers it in the dirty bitmap instead,
 * written to disk before the write is submitted.
 *
 * The dirty bitmap's changed pages are written (synchronously) before each
 * snapshot, so that an extent dropped from the log is covered by the
 * on-disk bitmap if its writes are not known to be on the peer's disk.
 *
 * Epochs (rule 2): the log numbers the node's peer FLUSHes.  A write is
 * admitted in alog_epoch(); sending a FLUSH closes it (alog_close_epoch());
 * its acknowledgement is alog_flushed().  The first epoch is
 * ACTLOG_EPOCH_FIRST, so nothing counts as flushed before a flush (rule 7).
 *
 * Rule 8: before a snapshot that drops an extent, and before a bitmap
 * write that clears bits, the data area is flushed (fdatasync), since a
 * peer FLUSH made only the peer's copy durable. */
#ifndef BLKREP_ALOG_H
#define BLKREP_ALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct alog;
struct bitmap;
struct loop;
struct mdio;

enum alog_result {
	ALOG_GO,	/* submit now; call alog_end() when the write is done */
	ALOG_WAIT,	/* not yet: wake() runs when it may succeed */
	ALOG_WIDE,	/* too wide for the log: cover it in the bitmap */
};

/* The log of the node whose metadata md holds (mdio_read_al() first), with
 * the sizes of its superblock.  bm is the node's dirty bitmap.  wake(arg)
 * runs after a snapshot becomes durable and after alog_flushed().  Returns
 * NULL after logging why. */
struct alog *alog_new(struct loop *loop, struct mdio *md, struct bitmap *bm, int data_fd,
		      uint32_t al_extent_bytes, unsigned slots, uint32_t bm_extent_bytes,
		      void (*wake)(void *arg), void *arg);
void alog_free(struct alog *a);

/* Reads the on-disk log (before any alog_begin()).  After a crash as
 * primary (crashed), marks each of its extents in the bitmap, since their
 * writes may be on one node only, and keeps them in the log.  Returns the
 * number of extents marked, or -1 after logging why. */
int alog_recover(struct alog *a, bool crashed);

/* Before submitting a write of len bytes at off, sent to the peer in
 * alog_epoch() (or standalone).  See enum alog_result. */
enum alog_result alog_begin(struct alog *a, uint64_t off, uint64_t len);

/* True if a write of len bytes at off is too wide for the log. */
bool alog_wide(const struct alog *a, uint64_t off, uint64_t len);

/* The epoch writes are sent in now; a FLUSH sent to the peer closes it and
 * carries the returned number to alog_flushed(). */
uint64_t alog_epoch(const struct alog *a);
uint64_t alog_close_epoch(struct alog *a);

/* The bitmap's changed pages to disk, after flushing the data area if a
 * bit was cleared (rule 8).  0, or -1 with err set. */
int alog_save_bitmap(struct alog *a, char *err, size_t len);

/* The write admitted by alog_begin() completed, locally and on the peer,
 * or was not submitted after all. */
void alog_end(struct alog *a, uint64_t off, uint64_t len);

/* A peer FLUSH covering every write of epochs <= epoch was acknowledged. */
void alog_flushed(struct alog *a, uint64_t epoch);

/* No peer: extents leave the log once idle, as the bitmap covers them. */
void alog_standalone(struct alog *a, bool on);

/* True once since the last call if a write waited for a full log whose
 * extents need a peer FLUSH before they can leave: the node sends one. */
bool alog_want_flush(struct alog *a);

/* After a snapshot could not be written, writes wait and nothing is retried
 * until this is called (the node's tick, once a second). */
void alog_retry(struct alog *a);

/* Why the last snapshot failed, "" while they succeed (for status). */
const char *alog_error(const struct alog *a);

/* Extents in the log and the bytes they cover, for status. */
unsigned alog_count(const struct alog *a);

#endif
