/* A byte FIFO for async replication's payload copies: allocations are
 * contiguous, taken at the tail and given back in the order they were
 * taken, so that an arena of max-lag bytes bounds what waits for the peer.
 * Pure bookkeeping over one arena allocated up front (its pages are touched
 * only as used); no I/O, not thread-safe. */
#ifndef BLKREP_FIFO_H
#define BLKREP_FIFO_H

#include <stddef.h>

struct fifo;

/* An empty FIFO of size bytes.  NULL on allocation failure or size 0. */
struct fifo *fifo_new(size_t size);
void fifo_free(struct fifo *f);

/* len contiguous bytes (len >= 1), or NULL when there is no room now
 * (or never: len > size).  A wrap leaves the arena's end unused until the
 * allocations before it are released. */
void *fifo_alloc(struct fifo *f, size_t len);

/* Gives back the oldest allocation still held: p, with the len it was
 * taken with (the caller's to get right).  Returns 0, or -1 (and changes
 * nothing) if p is not the oldest or len is more than is held. */
int fifo_release(struct fifo *f, const void *p, size_t len);

/* Takes back the newest allocation, p of len bytes, as if it had never
 * been made (the caller could not use it).  Returns 0, or -1 if p, len is
 * not the newest. */
int fifo_unalloc(struct fifo *f, const void *p, size_t len);

/* Gives back everything. */
void fifo_reset(struct fifo *f);

/* Bytes held by allocations (the wasted end of a wrap not counted). */
size_t fifo_used(const struct fifo *f);

/* Bytes free: neither held nor the wasted end of a wrap.  At most two
 * pieces, so an allocation of half of them always fits. */
size_t fifo_room(const struct fifo *f);

#endif
