/* The torture tool's checker: what a replica may hold, given the writer's
 * log.  Pure code, no I/O: the caller feeds it the log's events in clock
 * order, then every block of the area as read from the replica, and asks
 * for the verdict of one mode.
 *
 * A block's history is the list of writes issued to it, in issue order;
 * the writer never has two overlapping writes in flight, so that order is
 * the order they took effect.  A block found holding the write at position
 * p of its history holds every write at positions <= p, present or
 * replaced; the writes after p are missing from it.
 *
 * Errors: functions returning int give 0 or -errno (-EINVAL for a log that
 * contradicts itself, -ENOMEM). */
#ifndef BLKREP_TORTURE_TCHECK_H
#define BLKREP_TORTURE_TCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcheck;

/* What the log's header says about the run. */
struct tcheck_run {
	uint32_t block_size; /* a power of two, TBLOCK_MIN_SIZE..TBLOCK_MAX_SIZE */
	uint64_t area_blocks;
	uint64_t seed;
	uint32_t writer;
};

enum tcheck_mode {
	TCHECK_SYNC,	/* pair connected at the failure: every acked write */
	TCHECK_DURABLE, /* power loss: acked FUA writes, and acked writes a later acked FLUSH covers */
	TCHECK_ASYNC,	/* happens-before, and acked-but-missing bytes within max_lag */
};

/* What one block read from the replica is. */
enum tcheck_found {
	TCHECK_FOUND_ZERO,
	TCHECK_FOUND_WRITE,   /* a write the log issued to this block */
	TCHECK_FOUND_STALE,   /* valid, but not written here by this run */
	TCHECK_FOUND_TORN,    /* magic present, checksum wrong */
	TCHECK_FOUND_GARBAGE, /* nonzero, no magic */
};

struct tcheck_result {
	enum tcheck_mode mode;
	uint64_t writes_checked;      /* writes the mode makes promises for */
	uint64_t blocks_checked;      /* blocks read and classified */
	uint64_t lost;		      /* of those, writes missing from a block */
	uint64_t lost_blocks;	      /* (write, block) pairs missing */
	uint64_t stale, torn, garbage;
	uint64_t hb_violations;	      /* async: acked before the newest present write's issue, missing */
	uint64_t acked_missing_bytes; /* acked writes' blocks neither present nor replaced */
	uint64_t max_lag;	      /* the bound applied (async only) */
	uint64_t newest_present_seq;  /* T: the largest issue clock found present (0: none) */
	bool ok;
};

/* A checker for run; NULL on a bad run description or no memory. */
struct tcheck *tcheck_new(const struct tcheck_run *run);
void tcheck_free(struct tcheck *tc);

/* Log events, in clock order (clocks strictly increasing).  A write's seq
 * is its issue clock; a FLUSH is named by its issue clock too.  fua: the
 * write carried FUA.  A reply names the request by that clock; error 0 is
 * an acknowledgement, anything else leaves the request unacknowledged. */
int tcheck_log_write(struct tcheck *tc, uint64_t seq, uint32_t conn, uint64_t first_block,
		     uint32_t nblocks, bool fua);
int tcheck_log_flush(struct tcheck *tc, uint64_t id);
int tcheck_log_reply(struct tcheck *tc, uint64_t clock, uint64_t id, uint32_t error);

/* Ends the log; blocks may be fed after it.  0 or -ENOMEM. */
int tcheck_log_end(struct tcheck *tc);

/* Classifies block number blockno (< area_blocks) read from the replica
 * (block_size bytes at data) and remembers it for the verdict. */
enum tcheck_found tcheck_block(struct tcheck *tc, uint64_t blockno, const void *data);

/* The verdict of mode over the blocks fed so far (blocks never fed are
 * not judged).  max_lag applies to TCHECK_ASYNC only. */
void tcheck_result(const struct tcheck *tc, enum tcheck_mode mode, uint64_t max_lag,
		   struct tcheck_result *r);

/* One block missing a write the mode promised (for messages). */
struct tcheck_missing {
	uint64_t block;
	uint64_t lost_seq;  /* the write missing */
	uint64_t found_seq; /* the write found there instead (0: zeros) */
};

/* Fills up to max examples of what tcheck_result counts as lost (in async
 * mode: acked writes missing) in block order; returns how many. */
size_t tcheck_missing_examples(const struct tcheck *tc, enum tcheck_mode mode,
			       struct tcheck_missing *out, size_t max);

/* Counts from the log: writes issued and acknowledged. */
uint64_t tcheck_writes_logged(const struct tcheck *tc);
uint64_t tcheck_writes_acked(const struct tcheck *tc);

const char *tcheck_mode_name(enum tcheck_mode mode);

#endif
