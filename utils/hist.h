/* A latency histogram with fixed buckets, for the Prometheus metrics
 * (daemon/ctl/metrics.h).  A value type, embedded in its owner: recording
 * is on the write path, so it allocates nothing and costs a short scan of
 * a constant table and three additions.  Pure: no clock, no I/O. */
#ifndef BLKREP_HIST_H
#define BLKREP_HIST_H

#include <stdint.h>

/* The finite upper bounds, in nanoseconds (hist_bound_ns()); one more
 * bucket counts what is above the last (le="+Inf"). */
#define HIST_BUCKETS 16

struct hist {
	uint64_t bucket[HIST_BUCKETS + 1]; /* per bucket, not cumulative */
	uint64_t count;
	uint64_t sum_ns;
};

/* Bucket i's upper bound in nanoseconds, i < HIST_BUCKETS. */
uint64_t hist_bound_ns(unsigned i);

/* Counts one observation of ns nanoseconds. */
void hist_record(struct hist *h, uint64_t ns);

/* Observations up to and including bucket i (i == HIST_BUCKETS: all). */
uint64_t hist_cumulative(const struct hist *h, unsigned i);

#endif
