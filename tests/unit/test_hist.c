/* Unit tests for utils/hist: bucket edges (a bound is inclusive, as
 * Prometheus's le), the +Inf bucket, cumulative counts and the sum. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "utils/hist.h"

Test(hist, edges_are_inclusive)
{
	struct hist h = { 0 };

	hist_record(&h, hist_bound_ns(0));
	hist_record(&h, hist_bound_ns(0) + 1);
	cr_assert_eq(h.bucket[0], 1);
	cr_assert_eq(h.bucket[1], 1);
	cr_assert_eq(h.count, 2);
	cr_assert_eq(h.sum_ns, 2 * hist_bound_ns(0) + 1);
}

Test(hist, above_the_last_bound_is_inf)
{
	struct hist h = { 0 };

	hist_record(&h, hist_bound_ns(HIST_BUCKETS - 1) + 1);
	cr_assert_eq(h.bucket[HIST_BUCKETS], 1);
	cr_assert_eq(hist_cumulative(&h, HIST_BUCKETS - 1), 0);
	cr_assert_eq(hist_cumulative(&h, HIST_BUCKETS), 1);
	cr_assert_eq(hist_bound_ns(HIST_BUCKETS), UINT64_MAX);
}

Test(hist, cumulative_counts_grow)
{
	struct hist h = { 0 };

	for (uint64_t ns = 1000; ns < 10000000000ULL; ns *= 3)
		hist_record(&h, ns);
	for (unsigned i = 1; i <= HIST_BUCKETS; i++)
		cr_assert_geq(hist_cumulative(&h, i), hist_cumulative(&h, i - 1));
	cr_assert_eq(hist_cumulative(&h, HIST_BUCKETS), h.count);
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		cr_assert_gt(hist_bound_ns(i), hist_bound_ns(i - 1));
}
