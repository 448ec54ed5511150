/* utils/extent: the extents a byte range touches. */
#include <criterion/criterion.h>

#include "utils/extent.h"

Test(extent, edges_and_counts)
{
	cr_assert_eq(extent_first(4095, 4096), 0);
	cr_assert_eq(extent_first(4096, 4096), 1);
	cr_assert_eq(extent_last(0, 4096, 4096), 0);
	cr_assert_eq(extent_last(1, 4096, 4096), 1);
	cr_assert_eq(extent_count(0, 0, 4096), 0);
	cr_assert_eq(extent_count(4095, 2, 4096), 2, "straddles an edge");
	cr_assert_eq(extent_count(8192, 4096, 4096), 1);
	cr_assert_eq(extent_count(100, 3 * 4096, 4096), 4);
	for (uint64_t off = 0; off < 3 * 64; off += 7)
		for (uint64_t len = 1; len < 200; len += 5)
			cr_assert_eq(extent_count(off, len, 64),
				     (off + len + 63) / 64 - off / 64);
	cr_assert_eq(extent_cover(0, 4096), 0);
	cr_assert_eq(extent_cover(1, 4096), 1);
	cr_assert_eq(extent_cover(8192, 4096), 2);
}
