/* The resync source: copies the extents set in the dirty bitmap to the
 * peer, in the background, while application writes go on.
 *
 * It walks the bitmap, joins neighbouring dirty extents into chunks of up
 * to RESYNC_CHUNK bytes, locks each chunk's range against application
 * writes (DESIGN.md rule 4: from before it is read until the peer has
 * applied it), reads it through the node's ring and hands it to the node,
 * which sends it as RESYNC_DATA in the same ordered stream as application
 * writes.  It never clears a bit: the node does that once a peer FLUSH
 * sent after the chunk is acknowledged (rule 2).  Each pass sends every
 * dirty extent once; when a pass has sent everything and every chunk is
 * acknowledged, ops->idle() lets the node flush, check the bitmap and
 * either finish or start another pass (bits set again meanwhile).
 *
 * Rate: a fixed cap in bytes per second, or adaptive (0): one chunk in
 * flight while application writes are, RESYNC_SLOTS otherwise. */
#ifndef BLKREP_RESYNC_H
#define BLKREP_RESYNC_H

#include <stdbool.h>
#include <stdint.h>

#define RESYNC_CHUNK	(1U << 20)
#define RESYNC_SLOTS	8

struct bitmap;
struct loop;
struct repl_req;
struct resync;

struct resync_ops {
	/* Locks rr's range against application writes; false if one is in
	 * flight there (the chunk is tried again later). */
	bool (*lock)(void *arg, struct repl_req *rr);
	void (*unlock)(void *arg, struct repl_req *rr);
	/* Sends rr as RESYNC_DATA: 0, then resync_acked() follows exactly
	 * once; -ENOBUFS: no room (call resync_pump() when there is); any
	 * other value: the link is going (the chunk is dropped). */
	int (*send)(void *arg, struct repl_req *rr);
	/* The pass is over: everything sent was acknowledged. */
	void (*idle)(void *arg);
	/* Application writes in flight (the adaptive rate yields to them). */
	bool (*app_busy)(void *arg);
	/* Optional: the walk stopped because the local disk failed a read. */
	void (*failed)(void *arg);
};

/* A resync reading from fd (the data area) the extents of bm.  Allocates
 * its RESYNC_SLOTS chunk buffers.  NULL after logging why. */
struct resync *resync_new(struct loop *loop, int fd, struct bitmap *bm, uint32_t extent_bytes,
			  const struct resync_ops *ops, void *arg);
void resync_free(struct resync *r);

/* Starts a resync of the extents set in bm below limit_bytes (the
 * replicated area), at rate bytes per second (0: adaptive). */
void resync_start(struct resync *r, uint64_t limit_bytes, uint64_t rate);

/* `adjust`: a running resync goes on at rate (0: adaptive) from now. */
void resync_set_rate(struct resync *r, uint64_t rate);

/* Another pass over the bitmap, after idle() found bits set again. */
void resync_next_pass(struct resync *r);

/* The lock set changed (a promotion started the NBD server while chunks
 * were locked with no server to lock them in): every chunk read or sent
 * but not yet acknowledged is locked again, so that a client write to its
 * range waits until the peer applied it (rule 4). */
void resync_relock(struct resync *r);

/* The link is gone: chunks not yet sent are dropped and unlocked (their
 * bits stay set).  Chunks sent are the node's to fail with resync_acked(). */
void resync_stop(struct resync *r);

/* The resync is over; statistics stay readable. */
void resync_finish(struct resync *r);

/* Starts whatever the rate and the free slots allow.  The node calls it
 * after every batch of completions (a loop hook) and when the link has
 * room again. */
void resync_pump(struct resync *r);

/* The peer applied rr (err 0) or failed it, or the link went (err != 0):
 * the chunk's range is unlocked and its slot freed. */
void resync_acked(struct resync *r, struct repl_req *rr, int err);

bool resync_running(const struct resync *r);

/* Progress of the resync running (or last run): bytes acknowledged by the
 * peer, bytes to copy in all, and the average rate since it started. */
void resync_progress(const struct resync *r, uint64_t *done, uint64_t *total,
		     uint64_t *bytes_per_second);

#endif
