/* Fixed-bucket latency histograms.  See hist.h. */
#include "utils/hist.h"

/* 50 us to 5 s: a local write on a fast disk to a peer's ACK over a slow
 * link. */
static const uint64_t bounds_ns[HIST_BUCKETS] = {
	50000,	  100000,   250000,    500000,	  1000000,   2500000,	 5000000,    10000000,
	25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

uint64_t hist_bound_ns(unsigned i)
{
	return i < HIST_BUCKETS ? bounds_ns[i] : UINT64_MAX;
}

void hist_record(struct hist *h, uint64_t ns)
{
	unsigned i = 0;

	while (i < HIST_BUCKETS && ns > bounds_ns[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_ns += ns;
}

uint64_t hist_cumulative(const struct hist *h, unsigned i)
{
	uint64_t n = 0;

	for (unsigned b = 0; b <= i && b <= HIST_BUCKETS; b++)
		n += h->bucket[b];
	return n;
}
