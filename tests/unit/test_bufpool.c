/* Unit tests for utils/bufpool: alignment, exhaustion, merging back to one
 * block, used() accounting, and a random stress run that fills every live
 * buffer with its own pattern so any overlap shows up as a corrupted one. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utils/bufpool.h"

#define KiB	((size_t)1 << 10)
#define MiB	((size_t)1 << 20)
#define BLK	((size_t)BUFPOOL_MIN_BLOCK)

static bool aligned(const void *p)
{
	return ((uintptr_t)p % BLK) == 0;
}

/* What a request of len costs: the next power of two, at least a block. */
static size_t rounded(size_t len)
{
	size_t n = BLK;

	while (n < len)
		n *= 2;
	return n;
}

Test(bufpool, arena_rounds_down_to_a_power_of_two)
{
	static const struct {
		size_t arena, max;
	} cases[] = {
		{ 0, BLK },
		{ 100, BLK },
		{ BLK, BLK },
		{ 3 * BLK, 2 * BLK },
		{ MiB, MiB },
		{ MiB + BLK - 1, MiB },
		{ 2 * MiB - 1, MiB },
		{ 64 * MiB, 64 * MiB },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bufpool *p = bufpool_new(cases[i].arena);

		cr_assert_not_null(p);
		cr_assert_eq(bufpool_max(p), cases[i].max, "arena %zu: max %zu, want %zu",
			     cases[i].arena, bufpool_max(p), cases[i].max);
		cr_assert_eq(bufpool_used(p), 0);
		bufpool_free(p);
	}
}

Test(bufpool, free_null_is_harmless)
{
	bufpool_free(NULL);
}

Test(bufpool, buffers_are_4096_aligned)
{
	static const size_t sizes[] = { 1, 511, 512, 4095, 4096, 4097, 12288, 65536, 100000 };
	struct bufpool *p = bufpool_new(MiB);
	void *b[sizeof(sizes) / sizeof(sizes[0])];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		b[i] = bufpool_get(p, sizes[i]);
		cr_assert_not_null(b[i]);
		cr_assert(aligned(b[i]), "%p for %zu bytes is not aligned", b[i], sizes[i]);
		memset(b[i], 0x5a, sizes[i]);	/* ASan: it really is that big */
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bufpool_put(p, b[i]);
	cr_assert_eq(bufpool_used(p), 0);
	bufpool_free(p);
}

Test(bufpool, impossible_sizes_return_null)
{
	struct bufpool *p = bufpool_new(MiB);

	cr_assert_null(bufpool_get(p, 0));
	cr_assert_null(bufpool_get(p, MiB + 1));
	cr_assert_null(bufpool_get(p, SIZE_MAX));
	cr_assert_eq(bufpool_used(p), 0);
	bufpool_free(p);
}

/* The whole arena in one buffer, then nothing else fits. */
Test(bufpool, max_size_buffer_takes_the_arena)
{
	struct bufpool *p = bufpool_new(MiB);
	void *all = bufpool_get(p, MiB);

	cr_assert_not_null(all);
	memset(all, 0xff, MiB);
	cr_assert_eq(bufpool_used(p), MiB);
	cr_assert_null(bufpool_get(p, 1));
	bufpool_put(p, all);
	cr_assert_eq(bufpool_used(p), 0);
	cr_assert_not_null(bufpool_get(p, MiB));
	bufpool_free(p);
}

Test(bufpool, exhaustion_returns_null_and_buffers_are_distinct)
{
	enum { N = 256 };	/* 1 MiB of 4 KiB blocks */
	struct bufpool *p = bufpool_new(MiB);
	uint8_t *b[N];

	for (int i = 0; i < N; i++) {
		b[i] = bufpool_get(p, BLK);
		cr_assert_not_null(b[i], "block %d of %d", i, N);
		memset(b[i], i, BLK);
	}
	cr_assert_eq(bufpool_used(p), MiB);
	cr_assert_null(bufpool_get(p, 1));
	cr_assert_null(bufpool_get(p, BLK));
	for (int i = 0; i < N; i++)
		for (size_t j = 0; j < BLK; j++)
			cr_assert_eq(b[i][j], (uint8_t)i, "block %d overwritten", i);
	for (int i = 0; i < N; i++)
		bufpool_put(p, b[i]);
	bufpool_free(p);
}

Test(bufpool, used_counts_rounded_block_sizes)
{
	struct bufpool *p = bufpool_new(MiB);
	void *a = bufpool_get(p, 1);
	void *b = bufpool_get(p, BLK + 1);
	void *c = bufpool_get(p, 3 * BLK + 1);
	void *d = bufpool_get(p, 64 * KiB);

	cr_assert(a && b && c && d);
	cr_assert_eq(bufpool_used(p), BLK + 2 * BLK + 4 * BLK + 64 * KiB);
	bufpool_put(p, c);
	cr_assert_eq(bufpool_used(p), BLK + 2 * BLK + 64 * KiB);
	bufpool_put(p, a);
	bufpool_put(p, d);
	cr_assert_eq(bufpool_used(p), 2 * BLK);
	bufpool_put(p, b);
	cr_assert_eq(bufpool_used(p), 0);
	bufpool_free(p);
}

static void fill_with_blocks(struct bufpool *p, void **b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		b[i] = bufpool_get(p, BLK);
		cr_assert_not_null(b[i]);
	}
	cr_assert_null(bufpool_get(p, 1));
}

/* Blocks come back in any order; the buddies must all merge again. */
Test(bufpool, everything_returned_merges_back)
{
	enum { N = 256 };
	struct bufpool *p = bufpool_new(MiB);
	void *b[N];
	size_t order[N];

	fill_with_blocks(p, b, N);
	for (size_t i = 0; i < N; i++)	/* forwards */
		bufpool_put(p, b[i]);
	cr_assert_not_null(b[0] = bufpool_get(p, MiB));
	bufpool_put(p, b[0]);

	fill_with_blocks(p, b, N);
	for (size_t i = N; i-- > 0;)	/* backwards */
		bufpool_put(p, b[i]);
	cr_assert_not_null(b[0] = bufpool_get(p, MiB));
	bufpool_put(p, b[0]);

	srand(42);
	for (size_t i = 0; i < N; i++)
		order[i] = i;
	for (size_t i = N - 1; i > 0; i--) {	/* Fisher-Yates */
		size_t j = (size_t)rand() % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	fill_with_blocks(p, b, N);
	for (size_t i = 0; i < N; i++)
		bufpool_put(p, b[order[i]]);
	cr_assert_eq(bufpool_used(p), 0);
	cr_assert_not_null(bufpool_get(p, MiB));
	bufpool_free(p);
}

/* Half the blocks free but no two adjacent: no 8 KiB block exists. */
Test(bufpool, fragmentation_is_real_until_buddies_return)
{
	enum { N = 64 };
	struct bufpool *p = bufpool_new(N * BLK);
	void *b[N];

	fill_with_blocks(p, b, N);
	for (size_t i = 0; i < N; i += 2)
		bufpool_put(p, b[i]);
	cr_assert_eq(bufpool_used(p), N / 2 * BLK);
	cr_assert_null(bufpool_get(p, 2 * BLK));
	b[0] = bufpool_get(p, BLK);
	cr_assert_not_null(b[0]);
	bufpool_put(p, b[0]);
	for (size_t i = 1; i < N; i += 2)
		bufpool_put(p, b[i]);
	cr_assert_eq(bufpool_used(p), 0);
	cr_assert_not_null(bufpool_get(p, N * BLK));
	bufpool_free(p);
}

/* Two halves of the arena are both available and do not overlap. */
Test(bufpool, two_halves)
{
	struct bufpool *p = bufpool_new(4 * MiB);
	uint8_t *a = bufpool_get(p, 2 * MiB);
	uint8_t *b = bufpool_get(p, 2 * MiB - 1);

	cr_assert(a && b);
	cr_assert(a + 2 * MiB <= b || b + 2 * MiB <= a);
	cr_assert_null(bufpool_get(p, 1));
	bufpool_free(p);
}

/* The stress test's bookkeeping for one live buffer. */
struct live {
	uint8_t *buf;
	size_t len;
	uint32_t id;
};

static uint8_t pattern(uint32_t id, size_t i)
{
	return (uint8_t)(id ^ (id >> 8) ^ (i * 31) ^ (i >> 9));
}

static void stamp(const struct live *l)
{
	for (size_t i = 0; i < l->len; i++)
		l->buf[i] = pattern(l->id, i);
}

static void verify(const struct live *l)
{
	for (size_t i = 0; i < l->len; i++)
		if (l->buf[i] != pattern(l->id, i))
			cr_assert_fail("buffer %u (%zu bytes) corrupted at %zu", l->id, l->len, i);
}

/* Random sizes skewed small, up to a quarter of the arena. */
static size_t random_len(size_t max)
{
	switch (rand() % 4) {
	case 0:
		return 1 + (size_t)rand() % BLK;
	case 1:
		return 1 + (size_t)rand() % (16 * BLK);
	default:
		return 1 + (size_t)rand() % (max / 4);
	}
}

/* Random gets and puts; every live buffer carries a pattern, so two live
 * buffers sharing a byte corrupt one of them, and every put checks. */
Test(bufpool, random_stress_never_overlaps)
{
	enum { SLOTS = 512, OPS = 20000 };
	const size_t arena = 4 * MiB;
	static struct live slot[SLOTS];
	struct bufpool *p = bufpool_new(arena);
	size_t used = 0, nulls = 0;
	uint32_t next_id = 1;

	srand(1234);
	for (int op = 0; op < OPS; op++) {
		struct live *l = &slot[(size_t)rand() % SLOTS];

		if (l->buf) {
			verify(l);
			bufpool_put(p, l->buf);
			used -= rounded(l->len);
			l->buf = NULL;
		} else {
			l->len = random_len(arena);
			l->buf = bufpool_get(p, l->len);
			if (!l->buf) {
				nulls++;
				/* Fragmentation may refuse, an empty pool not. */
				cr_assert_neq(used, 0, "empty pool refused %zu bytes", l->len);
				continue;
			}
			cr_assert(aligned(l->buf));
			l->id = next_id++;
			stamp(l);
			used += rounded(l->len);
		}
		cr_assert_eq(bufpool_used(p), used, "op %d: used %zu, expected %zu", op,
			     bufpool_used(p), used);
		cr_assert_leq(used, arena);
	}
	cr_assert_gt(nulls, 0, "the stress never filled the pool");
	for (size_t i = 0; i < SLOTS; i++) {
		if (!slot[i].buf)
			continue;
		verify(&slot[i]);
		bufpool_put(p, slot[i].buf);
	}
	cr_assert_eq(bufpool_used(p), 0);
	cr_assert_not_null(bufpool_get(p, arena));
	bufpool_free(p);
}
