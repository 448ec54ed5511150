/* A bounded pool of I/O buffers: a buddy allocator over one arena that is
 * allocated once.  Nothing is allocated per request, and the memory used for
 * payloads never exceeds the arena, whatever clients send.  Pure bookkeeping,
 * no I/O; not thread-safe (one pool per event loop). */
#ifndef BLKREP_BUFPOOL_H
#define BLKREP_BUFPOOL_H

#include <stddef.h>

#define BUFPOOL_MIN_BLOCK	4096U

struct bufpool;

/* Creates a pool of arena_bytes (rounded down to a power of two, at least
 * BUFPOOL_MIN_BLOCK) whose buffers are 4096-aligned, so O_DIRECT can use
 * them.  Returns NULL on allocation failure. */
struct bufpool *bufpool_new(size_t arena_bytes);
void bufpool_free(struct bufpool *pool);

/* Returns a buffer of at least len bytes (len > 0), or NULL when the pool
 * has no free block that large right now (the caller waits and retries) or
 * len exceeds bufpool_max(). */
void *bufpool_get(struct bufpool *pool, size_t len);

/* Returns a buffer obtained from bufpool_get(). */
void bufpool_put(struct bufpool *pool, void *buf);

/* Largest single buffer the pool can ever hand out. */
size_t bufpool_max(const struct bufpool *pool);

/* Bytes currently handed out (rounded up to block sizes). */
size_t bufpool_used(const struct bufpool *pool);

#endif
