/* utils/fifo: contiguous allocations given back in order, bounded by the
 * arena, with wraps. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "utils/fifo.h"

Test(fifo, allocations_are_bounded_by_the_arena)
{
	struct fifo *f = fifo_new(100);
	void *a = fifo_alloc(f, 60), *b;

	cr_assert_not_null(a);
	cr_assert_null(fifo_alloc(f, 41), "more than is left");
	b = fifo_alloc(f, 40);
	cr_assert_eq((uint8_t *)b, (uint8_t *)a + 60);
	cr_assert_eq(fifo_used(f), 100);
	cr_assert_null(fifo_alloc(f, 1));
	cr_assert_null(fifo_alloc(f, 0));
	cr_assert_null(fifo_alloc(f, 101), "never fits");
	fifo_free(f);
}

Test(fifo, release_must_be_in_order)
{
	struct fifo *f = fifo_new(100);
	void *a = fifo_alloc(f, 10), *b = fifo_alloc(f, 20);

	cr_assert_eq(fifo_release(f, b, 20), -1, "not the oldest");
	cr_assert_eq(fifo_release(f, a, 31), -1, "more than is held");
	cr_assert_eq(fifo_release(f, a, 10), 0);
	cr_assert_eq(fifo_release(f, b, 20), 0);
	cr_assert_eq(fifo_used(f), 0);
	cr_assert_eq(fifo_release(f, b, 20), -1, "nothing held");
	fifo_free(f);
}

Test(fifo, a_wrap_reuses_the_start_and_skips_the_end)
{
	struct fifo *f = fifo_new(100);
	uint8_t *a = fifo_alloc(f, 40), *b = fifo_alloc(f, 40), *c;

	cr_assert_null(fifo_alloc(f, 30), "neither the end nor the start is free");
	cr_assert_eq(fifo_release(f, a, 40), 0);
	c = fifo_alloc(f, 30);
	cr_assert_eq(c, a, "wrapped to the start");
	cr_assert_null(fifo_alloc(f, 11), "only [30, 40) is free now");
	cr_assert_not_null(fifo_alloc(f, 10));
	cr_assert_eq(fifo_release(f, b, 40), 0);
	cr_assert_eq(fifo_release(f, c, 30), 0, "after the end, the start is next");
	cr_assert_eq(fifo_used(f), 10);
	fifo_free(f);
}

/* A long random run: every held allocation keeps the bytes written into
 * it (no later one overlaps it), and the byte count always matches. */
Test(fifo, random_run_never_overlaps)
{
	enum { SIZE = 1000, MAXQ = 64 };
	struct fifo *f = fifo_new(SIZE);
	struct { uint8_t *p; size_t len; uint8_t tag; } q[MAXQ];
	unsigned qh = 0, qn = 0, seed = 12345;
	size_t held = 0;
	uint8_t tag = 1;

	for (int i = 0; i < 200000; i++) {
		seed = seed * 1103515245 + 12345;
		if ((seed >> 16) % 2 && qn < MAXQ) {
			size_t len = 1 + (seed >> 8) % 300;
			uint8_t *p = fifo_alloc(f, len);

			if (!p)
				continue;
			q[(qh + qn) % MAXQ].p = p;
			q[(qh + qn) % MAXQ].len = len;
			q[(qh + qn) % MAXQ].tag = tag;
			memset(p, tag, len);
			tag = (uint8_t)(tag % 250 + 1);
			qn++;
			held += len;
		} else if (qn) {
			uint8_t *p = q[qh].p;

			for (size_t k = 0; k < q[qh].len; k++)
				cr_assert_eq(p[k], q[qh].tag, "overwritten while held");
			cr_assert_eq(fifo_release(f, p, q[qh].len), 0);
			held -= q[qh].len;
			qh = (qh + 1) % MAXQ;
			qn--;
		}
		cr_assert_eq(fifo_used(f), held);
	}
	fifo_free(f);
}

Test(fifo, the_newest_allocation_can_be_taken_back)
{
	struct fifo *f = fifo_new(100);
	uint8_t *a = fifo_alloc(f, 60), *b = fifo_alloc(f, 30), *c;

	cr_assert_eq(fifo_unalloc(f, a, 60), -1, "not the newest");
	cr_assert_eq(fifo_unalloc(f, b, 30), 0);
	cr_assert_eq(fifo_used(f), 60);
	cr_assert_eq(fifo_release(f, a, 60), 0);
	a = fifo_alloc(f, 70);	/* [0, 70) after the reset */
	cr_assert_eq(fifo_release(f, a, 70) == 0 && fifo_used(f) == 0, true);
	a = fifo_alloc(f, 80);
	b = fifo_alloc(f, 10);
	cr_assert_eq(fifo_release(f, a, 80), 0);
	c = fifo_alloc(f, 50);	/* wraps to the start */
	cr_assert_eq(fifo_unalloc(f, c, 50), 0, "the wrap is undone too");
	c = fifo_alloc(f, 10);
	cr_assert_eq(c, b + 10, "the end is used again once the wrap is undone");
	fifo_free(f);
}
