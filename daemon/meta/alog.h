/* The activity log on disk (DESIGN.md rule 1): the hot extents that may
 * hold writes not yet durable on both nodes.  The primary admits writes
 * against the pure bookkeeping of actlog.h (daemon/repl/primary.c); this
 * module writes that bookkeeping's snapshots through the node's ring, one
 * at a time, to the A/B copies of the meta area, and reads it back after a
 * restart.  A write over hot extents never comes here: steady writing
 * costs no extra I/O.  A write whose extent missed waits for
 * alog_write()'s snapshot; wake() runs once it is durable.
 *
 * The dirty bitmap's changed pages are written (synchronously) before each
 * snapshot, so that an extent dropped from the log is covered by the
 * on-disk bitmap if its writes are not known to be on the peer's disk.
 *
 * Rule 8: before a snapshot that drops an extent, and before a bitmap
 * write that clears bits, the data area is flushed (fdatasync), since a
 * peer FLUSH made only the peer's copy durable. */
#ifndef BLKREP_ALOG_H
#define BLKREP_ALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct actlog;
struct alog;
struct bitmap;
struct loop;
struct mdio;

/* The log of the node whose metadata md holds, kept in al (the caller's,
 * which outlives it), with the sizes of its superblock.  bms[0..nbms) are
 * the node's bitmap slots, one per peer (the array is the caller's).  wake(arg) runs after a snapshot becomes durable.  Returns
 * NULL after logging why. */
struct alog *alog_new(struct loop *loop, struct mdio *md, struct bitmap *const *bms,
		      unsigned nbms, int data_fd,
		      struct actlog *al, uint32_t al_extent_bytes, uint32_t bm_extent_bytes,
		      void (*wake)(void *arg), void *arg);
void alog_free(struct alog *a);

/* Reads the on-disk log into al (before any write is admitted).  After a crash as
 * primary (crashed), marks each of its extents in every slot's bitmap,
 * since their writes may be on this node only, and keeps them in the log.  Returns the
 * number of extents marked, or -1 after logging why. */
int alog_recover(struct alog *a, bool crashed);

/* The log changed (actlog_dirty()): writes the bitmap's changed pages and
 * a snapshot, unless one is in flight (then the next follows it) or a
 * failed one waits for alog_retry().  wake() runs once it is durable. */
void alog_write(struct alog *a);

/* Every bitmap slot's changed pages to disk, after flushing the data area
 * if a bit was cleared in any slot (rule 8): every bitmap write of the
 * node goes through here.  0, or -1 with err set. */
int alog_save_bitmap(struct mdio *md, struct bitmap *const *bms, unsigned n, int data_fd,
		     char *err, size_t len);

/* After a snapshot could not be written, writes wait and nothing is retried
 * until this is called (the node's tick, once a second). */
void alog_retry(struct alog *a);

/* Why the last snapshot failed, "" while they succeed (for status). */
const char *alog_error(const struct alog *a);

/* Snapshots written to disk since start (each a 4 KiB RWF_DSYNC write). */
uint64_t alog_writes(const struct alog *a);

#endif
