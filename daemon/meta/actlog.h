/* The activity log's in-memory logic (as DRBD's): the set of hot extents
 * (of al_extent_bytes each) that may hold writes not yet known to be on the
 * peer's disk.  After a primary crash, every extent in the on-disk log is
 * resynced, so the log must cover every write that was ever submitted and is
 * not yet durable on both sides:
 *
 *  - rule 1 (DESIGN.md): an extent is in the durable snapshot before any
 *    write into it is submitted;
 *  - rule 2: an extent leaves the log only when no write into it is in
 *    flight and a peer FLUSH covering every write into it was acknowledged.
 *
 * Epochs: the daemon numbers its peer flushes.  A write carries the epoch it
 * is sent in, and actlog_flushed(e) says that every write with epoch <= e is
 * durable on both sides.  Epochs only grow for the daemon's lifetime, across
 * reconnects too, and begin at ACTLOG_EPOCH_FIRST: nothing is flushed before
 * the first actlog_flushed() (DESIGN.md rule 7), so a write begun at a lower
 * epoch (a caller's zero-filled counter) counts as of ACTLOG_EPOCH_FIRST.
 *
 * How the daemon drives it, for each activity-log extent a write touches:
 *
 *	switch (actlog_begin(al, extent, epoch)) {
 *	case ACTLOG_HIT:	submit now;
 *	case ACTLOG_ADDED:
 *	case ACTLOG_PENDING:	need = actlog_seq(al); submit once
 *				actlog_persisted_seq(al) >= need;
 *	case ACTLOG_BUSY:	park the write; retry after actlog_end() or
 *				actlog_flushed();
 *	}
 *
 * and, while actlog_dirty(), keeps one snapshot write in flight (never two,
 * so that a torn write damages only the copy being replaced):
 *	v = actlog_seq(al); n = actlog_snapshot(al, ext, META_AL_MAX);
 *	meta_al_encode(++disk_seq, ext, n, blk); write it to the other copy;
 *	on completion actlog_persisted(al, v).
 * When the write has completed locally and on the peer, actlog_end().
 *
 * Standalone (no peer): the daemon sets the dirty-bitmap bits of every write
 * before submitting it, so the bitmap covers the extent and eviction needs
 * only that no write into it is in flight.  The bitmap pages must then be
 * durable before the snapshot that drops the extent: write the dirty bitmap
 * pages before each snapshot.  On losing the peer, first mark every extent
 * in the log in the bitmap (their writes may not be on the peer's disk),
 * then actlog_set_standalone(al, true).
 *
 * Each slot holds an extent, a count of writes in flight and the epoch of
 * its last write.  Hits cost O(1) (a hash of extent to slot); eviction takes
 * the least recently used evictable slot, O(1) while epochs grow.  Nothing
 * is allocated after actlog_new().  Pure bookkeeping, no I/O, not
 * thread-safe. */
#ifndef BLKREP_ACTLOG_H
#define BLKREP_ACTLOG_H

#include <stdbool.h>
#include <stdint.h>

#define ACTLOG_SLOTS_MIN	16U
#define ACTLOG_SLOTS_MAX	1000U
#define ACTLOG_EPOCH_FIRST	1U	/* the first epoch; 0 is "flushed before anything" */

struct actlog;

enum actlog_result {
	ACTLOG_HIT,	/* in the durable log: submit the write now */
	ACTLOG_ADDED,	/* inserted (maybe evicting the LRU evictable slot): persist
			 * a snapshot first */
	ACTLOG_PENDING,	/* in the log but inserted since the last durable snapshot:
			 * wait for that persist, as after ACTLOG_ADDED */
	ACTLOG_BUSY,	/* full and nothing evictable: nothing changed, retry later */
};

/* Creates an empty log of nslots slots (ACTLOG_SLOTS_MIN..MAX).  Returns NULL
 * if nslots is out of range or on allocation failure. */
struct actlog *actlog_new(unsigned nslots);
void actlog_free(struct actlog *al);

/* Before a write into extent is submitted.  On HIT, ADDED and PENDING the
 * write is counted in flight in the extent (until actlog_end()) and the
 * extent's epoch is raised to epoch; on BUSY nothing changes. */
enum actlog_result actlog_begin(struct actlog *al, uint32_t extent, uint64_t epoch);

/* A write counted by actlog_begin() completed.  Ignored for an extent not in
 * the log or with no write in flight. */
void actlog_end(struct actlog *al, uint32_t extent);

/* Every write with epoch <= epoch is durable on both sides (a peer FLUSH was
 * acknowledged).  A lower epoch than before is ignored. */
void actlog_flushed(struct actlog *al, uint64_t epoch);

/* Standalone: eviction needs only that no write is in flight (see above). */
void actlog_set_standalone(struct actlog *al, bool on);

/* The content's sequence number: it rises by one with every insertion.  It
 * is the log's own count, not the on-disk seq of meta_al_encode(). */
uint64_t actlog_seq(const struct actlog *al);

/* A snapshot taken when actlog_seq() was seq is durable.  Older or future
 * values are clipped. */
void actlog_persisted(struct actlog *al, uint64_t seq);
uint64_t actlog_persisted_seq(const struct actlog *al);

/* True while an insertion is not yet in a durable snapshot. */
bool actlog_dirty(const struct actlog *al);

/* True once after an extent was evicted (dropped from the log) since the
 * last call: before a snapshot without it becomes durable, the local data
 * area must be flushed (DESIGN.md rule 8).  actlog_load() does not count. */
bool actlog_take_dropped(struct actlog *al);

/* Writes up to max of the extents in the log into ext, least recently used
 * first, and returns how many.  max >= the slot count gets them all. */
unsigned actlog_snapshot(const struct actlog *al, uint32_t *ext, unsigned max);

/* After a restart: replaces the content by the recovered extents ext[0..n),
 * the later ones the more recent, duplicates ignored, as evictable entries
 * (no write in flight, epoch 0).  If there are more than slots, the most
 * recent stay.  The content counts as durable (it came from disk).  All of
 * them need resyncing after a primary crash: the caller records them (in the
 * bitmap) first, since they may be evicted at once.  Returns the count. */
unsigned actlog_load(struct actlog *al, const uint32_t *ext, unsigned n);

bool actlog_contains(const struct actlog *al, uint32_t extent);

/* Extents in the log. */
unsigned actlog_count(const struct actlog *al);

/* Writes in flight into extent (0 if it is not in the log). */
unsigned actlog_refs(const struct actlog *al, uint32_t extent);

#endif
