/* Unit tests for utils/bitmap: single bits and ranges against a byte-per-bit
 * model, the kept count, next_set, the on-disk page form (bit order, bits
 * past nbits, round trips), dirty-page tracking and merging a peer's bytes. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utils/bitmap.h"

#define PAGE_BITS	BITMAP_PAGE_BITS
#define PB		BITMAP_PAGE_BYTES

static uint64_t dirty_pages(const struct bitmap *bm, uint64_t *list, size_t max)
{
	uint64_t n = 0;

	for (uint64_t p = bitmap_next_dirty_page(bm, 0); p < bitmap_pages(bm);
	     p = bitmap_next_dirty_page(bm, p + 1))
		if (n < max)
			list[n++] = p;
	return n;
}

static void clean_all(struct bitmap *bm)
{
	for (uint64_t p = 0; p < bitmap_pages(bm); p++)
		bitmap_clear_dirty(bm, p);
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), bitmap_pages(bm));
}

Test(bitmap, new_is_clear_and_clean)
{
	static const uint64_t sizes[] = { 0, 1, 63, 64, 65, PAGE_BITS - 1, PAGE_BITS,
					  PAGE_BITS + 1, 3 * PAGE_BITS + 17 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct bitmap *bm = bitmap_new(sizes[i]);

		cr_assert_not_null(bm);
		cr_assert_eq(bitmap_nbits(bm), sizes[i]);
		cr_assert_eq(bitmap_pages(bm), (sizes[i] + PAGE_BITS - 1) / PAGE_BITS,
			     "nbits %lu: %lu pages", sizes[i], bitmap_pages(bm));
		cr_assert_eq(bitmap_count(bm), 0);
		cr_assert_eq(bitmap_next_set(bm, 0), sizes[i]);
		cr_assert_eq(bitmap_next_dirty_page(bm, 0), bitmap_pages(bm));
		bitmap_free(bm);
	}
	bitmap_free(NULL);
}

Test(bitmap, set_clear_test_and_count)
{
	struct bitmap *bm = bitmap_new(1000);

	bitmap_set(bm, 0);
	bitmap_set(bm, 63);
	bitmap_set(bm, 64);
	bitmap_set(bm, 999);
	bitmap_set(bm, 999);	/* twice counts once */
	bitmap_set(bm, 1000);	/* past the end: ignored */
	bitmap_set(bm, UINT64_MAX);
	cr_assert_eq(bitmap_count(bm), 4);
	cr_assert(bitmap_test(bm, 0) && bitmap_test(bm, 63) && bitmap_test(bm, 64) &&
		  bitmap_test(bm, 999));
	cr_assert_not(bitmap_test(bm, 1));
	cr_assert_not(bitmap_test(bm, 62));
	cr_assert_not(bitmap_test(bm, 1000));
	bitmap_clear(bm, 63);
	bitmap_clear(bm, 63);
	bitmap_clear(bm, 500);	/* already clear */
	cr_assert_eq(bitmap_count(bm), 3);
	cr_assert_not(bitmap_test(bm, 63));
	bitmap_free(bm);
}

Test(bitmap, next_set_walks_every_bit)
{
	static const uint64_t bits[] = { 5, 64, 127, 128, 4000, PAGE_BITS, 2 * PAGE_BITS + 3 };
	struct bitmap *bm = bitmap_new(2 * PAGE_BITS + 4);
	uint64_t b, k = 0;

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		bitmap_set(bm, bits[i]);
	for (b = bitmap_next_set(bm, 0); b < bitmap_nbits(bm); b = bitmap_next_set(bm, b + 1))
		cr_assert_eq(b, bits[k++]);
	cr_assert_eq(k, sizeof(bits) / sizeof(bits[0]));
	cr_assert_eq(bitmap_next_set(bm, 6), 64);
	cr_assert_eq(bitmap_next_set(bm, 128), 128);
	cr_assert_eq(bitmap_next_set(bm, 2 * PAGE_BITS + 4), 2 * PAGE_BITS + 4);
	cr_assert_eq(bitmap_next_set(bm, UINT64_MAX), 2 * PAGE_BITS + 4);
	bitmap_free(bm);
}

/* Ranges at every alignment against a model, including clipping. */
Test(bitmap, ranges_match_a_model)
{
	enum { N = 777 };
	struct bitmap *bm = bitmap_new(N);
	uint8_t model[N] = { 0 };

	srand(7);
	for (int op = 0; op < 3000; op++) {
		uint64_t first = (uint64_t)rand() % (N + 10), count = (uint64_t)rand() % 200;
		bool on = rand() % 2;
		uint64_t want = 0;

		if (rand() % 50 == 0)
			count = UINT64_MAX - (uint64_t)rand() % 3;	/* clip, no overflow */
		if (on)
			bitmap_set_range(bm, first, count);
		else
			bitmap_clear_range(bm, first, count);
		for (uint64_t i = first; i < N && i - first < count; i++)
			model[i] = on;
		for (int i = 0; i < N; i++) {
			cr_assert_eq(bitmap_test(bm, (uint64_t)i), model[i], "op %d bit %d", op, i);
			want += model[i];
		}
		cr_assert_eq(bitmap_count(bm), want, "op %d", op);
	}
	bitmap_free(bm);
}

Test(bitmap, whole_range_and_empty_range)
{
	struct bitmap *bm = bitmap_new(3 * PAGE_BITS + 5);

	bitmap_set_range(bm, 0, 0);
	cr_assert_eq(bitmap_count(bm), 0);
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), bitmap_pages(bm));
	bitmap_set_range(bm, 0, UINT64_MAX);
	cr_assert_eq(bitmap_count(bm), 3 * PAGE_BITS + 5);
	bitmap_clear_range(bm, 10, 3 * PAGE_BITS - 20);
	cr_assert_eq(bitmap_count(bm), 10 + 15);
	cr_assert_eq(bitmap_next_set(bm, 10), 3 * PAGE_BITS - 10);
	bitmap_clear_range(bm, 0, UINT64_MAX);
	cr_assert_eq(bitmap_count(bm), 0);
	cr_assert_eq(bitmap_next_set(bm, 0), bitmap_nbits(bm));
	bitmap_free(bm);
}

/* Bit i is bit i % 8 of byte i / 8; bits past nbits encode as zero. */
Test(bitmap, encode_bit_order_and_tail)
{
	struct bitmap *bm = bitmap_new(PAGE_BITS + 12);
	uint8_t out[PB];

	bitmap_set(bm, 0);
	bitmap_set(bm, 9);
	bitmap_set(bm, 63);
	bitmap_set(bm, 64);
	bitmap_set(bm, PAGE_BITS - 1);
	bitmap_set(bm, PAGE_BITS + 11);
	cr_assert_eq(bitmap_pages(bm), 2);
	cr_assert_eq(bitmap_encode_page(bm, 0, out), 0);
	cr_assert_eq(out[0], 0x01);
	cr_assert_eq(out[1], 0x02);
	cr_assert_eq(out[7], 0x80);
	cr_assert_eq(out[8], 0x01);
	cr_assert_eq(out[PB - 1], 0x80);
	for (size_t i = 2; i < PB - 1; i++)
		if (i != 7 && i != 8)
			cr_assert_eq(out[i], 0, "byte %zu", i);
	bitmap_set_range(bm, PAGE_BITS, 12);
	memset(out, 0xee, sizeof(out));
	cr_assert_eq(bitmap_encode_page(bm, 1, out), 0);
	cr_assert_eq(out[0], 0xff);
	cr_assert_eq(out[1], 0x0f);	/* bits 12.. are past nbits */
	for (size_t i = 2; i < PB; i++)
		cr_assert_eq(out[i], 0, "byte %zu of the last page", i);
	cr_assert_eq(bitmap_encode_page(bm, 2, out), -1);
	bitmap_free(bm);
}

Test(bitmap, page_round_trip)
{
	const uint64_t nbits = 3 * PAGE_BITS - 100;
	struct bitmap *a = bitmap_new(nbits), *b = bitmap_new(nbits);
	uint8_t page[PB];

	srand(11);
	for (int i = 0; i < 5000; i++)
		bitmap_set(a, (uint64_t)rand() % nbits);
	for (uint64_t p = 0; p < bitmap_pages(a); p++) {
		cr_assert_eq(bitmap_encode_page(a, p, page), 0);
		cr_assert_eq(bitmap_decode_page(b, p, page), 0);
	}
	cr_assert_eq(bitmap_count(b), bitmap_count(a));
	for (uint64_t i = 0; i < nbits; i++)
		cr_assert_eq(bitmap_test(a, i), bitmap_test(b, i), "bit %lu", i);
	/* Decoding matches the disk: nothing dirty. */
	cr_assert_eq(bitmap_next_dirty_page(b, 0), bitmap_pages(b));
	bitmap_free(a);
	bitmap_free(b);
}

/* Decode replaces (does not OR) and ignores bits past nbits. */
Test(bitmap, decode_replaces_and_ignores_the_tail)
{
	struct bitmap *bm = bitmap_new(PAGE_BITS + 10);
	uint8_t page[PB];

	bitmap_set_range(bm, 0, PAGE_BITS + 10);
	memset(page, 0xff, sizeof(page));
	cr_assert_eq(bitmap_decode_page(bm, 1, page), 0);
	cr_assert_eq(bitmap_count(bm), PAGE_BITS + 10);
	memset(page, 0, sizeof(page));
	page[0] = 0x81;
	cr_assert_eq(bitmap_decode_page(bm, 0, page), 0);
	cr_assert_eq(bitmap_count(bm), 2 + 10);
	cr_assert(bitmap_test(bm, 0) && bitmap_test(bm, 7));
	cr_assert_not(bitmap_test(bm, 1));
	cr_assert_eq(bitmap_next_set(bm, 8), PAGE_BITS);
	cr_assert_eq(bitmap_encode_page(bm, 1, page), 0);
	cr_assert_eq(page[0], 0xff);
	cr_assert_eq(page[1], 0x03);
	cr_assert_eq(page[2], 0);
	cr_assert_eq(bitmap_decode_page(bm, 2, page), -1);
	bitmap_free(bm);
}

Test(bitmap, changes_dirty_only_their_page)
{
	struct bitmap *bm = bitmap_new(4 * PAGE_BITS);
	uint64_t list[8];

	bitmap_set(bm, PAGE_BITS + 5);
	cr_assert_eq(dirty_pages(bm, list, 8), 1);
	cr_assert_eq(list[0], 1);
	clean_all(bm);

	bitmap_set(bm, PAGE_BITS + 5);		/* no change, no dirt */
	bitmap_clear(bm, 3 * PAGE_BITS);	/* already clear */
	bitmap_clear_range(bm, 2 * PAGE_BITS, PAGE_BITS);
	cr_assert_eq(dirty_pages(bm, list, 8), 0);

	bitmap_set_range(bm, PAGE_BITS - 1, 2);	/* straddles pages 0 and 1 */
	cr_assert_eq(dirty_pages(bm, list, 8), 2);
	cr_assert(list[0] == 0 && list[1] == 1);
	clean_all(bm);

	bitmap_clear(bm, PAGE_BITS + 5);
	cr_assert_eq(dirty_pages(bm, list, 8), 1);
	cr_assert_eq(list[0], 1);
	cr_assert_eq(bitmap_next_dirty_page(bm, 2), 4);
	bitmap_clear_dirty(bm, 1);
	bitmap_clear_dirty(bm, 99);	/* ignored */
	bitmap_mark_dirty(bm, 3);
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), 3);
	bitmap_mark_all_dirty(bm);
	cr_assert_eq(dirty_pages(bm, list, 8), 4);
	bitmap_free(bm);
}

/* The pattern the daemon uses: clear when taking the copy, and a change
 * while the write is in flight dirties the page again. */
Test(bitmap, change_during_writeback_stays_dirty)
{
	struct bitmap *bm = bitmap_new(2 * PAGE_BITS);
	uint8_t page[PB];

	bitmap_set(bm, 3);
	cr_assert_eq(bitmap_encode_page(bm, 0, page), 0);
	bitmap_clear_dirty(bm, 0);
	bitmap_set(bm, 4);
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), 0);
	bitmap_free(bm);
}

Test(bitmap, merge_ors_a_peer_chunk)
{
	struct bitmap *bm = bitmap_new(PAGE_BITS + 20);
	uint8_t chunk[8] = { 0x01, 0x00, 0xf0, 0, 0, 0, 0, 0x80 };
	uint64_t list[4];

	bitmap_set(bm, 64);	/* bit 0 of the chunk below: already set */
	clean_all(bm);
	cr_assert_eq(bitmap_merge_bytes(bm, 64, chunk, sizeof(chunk)), 4 + 1);
	cr_assert(bitmap_test(bm, 64));
	cr_assert(bitmap_test(bm, 64 + 20) && bitmap_test(bm, 64 + 23));
	cr_assert_not(bitmap_test(bm, 64 + 19));
	cr_assert(bitmap_test(bm, 64 + 63));
	cr_assert_eq(bitmap_count(bm), 6);
	cr_assert_eq(dirty_pages(bm, list, 4), 1);
	cr_assert_eq(list[0], 0);
	clean_all(bm);
	/* Merging it again changes nothing and dirties nothing. */
	cr_assert_eq(bitmap_merge_bytes(bm, 64, chunk, sizeof(chunk)), 0);
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), bitmap_pages(bm));
	bitmap_free(bm);
}

/* A peer with a larger data area: bits past nbits are dropped. */
Test(bitmap, merge_clips_at_nbits_and_checks_alignment)
{
	const uint64_t nbits = PAGE_BITS + 20;
	struct bitmap *bm = bitmap_new(nbits);
	uint8_t ones[PB];

	memset(ones, 0xff, sizeof(ones));
	cr_assert_eq(bitmap_merge_bytes(bm, 3, ones, 1), -1);
	cr_assert_eq(bitmap_merge_bytes(bm, PAGE_BITS, ones, sizeof(ones)), 20);
	cr_assert_eq(bitmap_count(bm), 20);
	cr_assert_eq(bitmap_merge_bytes(bm, nbits + 4, ones, 4), 0);
	cr_assert_eq(bitmap_merge_bytes(bm, UINT64_MAX - 7, ones, sizeof(ones)), 0);
	cr_assert_eq(bitmap_merge_bytes(bm, 0, ones, 0), 0);
	cr_assert_eq(bitmap_merge_bytes(bm, 0, ones, sizeof(ones)), (int64_t)PAGE_BITS);
	cr_assert_eq(bitmap_count(bm), nbits);
	cr_assert_eq(bitmap_encode_page(bm, 1, ones), 0);
	cr_assert_eq(ones[2], 0x0f);
	cr_assert_eq(ones[3], 0);
	bitmap_free(bm);
}

/* A whole bitmap exchanged page by page equals the union of both. */
Test(bitmap, merge_whole_bitmaps_is_the_union)
{
	const uint64_t nbits = 2 * PAGE_BITS + 999;
	struct bitmap *a = bitmap_new(nbits), *b = bitmap_new(nbits), *orig = bitmap_new(nbits);
	uint8_t page[PB];
	uint64_t want = 0;

	srand(3);
	for (int i = 0; i < 3000; i++) {
		uint64_t bit = (uint64_t)rand() % nbits;

		bitmap_set(a, bit);
		bitmap_set(orig, bit);
		bitmap_set(b, (uint64_t)rand() % nbits);
	}
	bitmap_set_range(b, 100, 300);
	for (uint64_t p = 0; p < bitmap_pages(b); p++) {
		cr_assert_eq(bitmap_encode_page(b, p, page), 0);
		cr_assert_geq(bitmap_merge_bytes(a, p * PAGE_BITS, page, sizeof(page)), 0);
	}
	for (uint64_t i = 0; i < nbits; i++) {
		bool u = bitmap_test(orig, i) || bitmap_test(b, i);

		cr_assert_eq(bitmap_test(a, i), u, "bit %lu", i);
		want += u;
	}
	cr_assert_eq(bitmap_count(a), want);
	bitmap_free(a);
	bitmap_free(b);
	bitmap_free(orig);
}

Test(bitmap, count_below_counts_only_bits_under_the_limit)
{
	struct bitmap *bm = bitmap_new(100000);

	bitmap_set(bm, 3);
	bitmap_set_range(bm, 40000, 10);
	bitmap_set(bm, 99999);
	cr_assert_eq(bitmap_count_below(bm, 0), 0);
	cr_assert_eq(bitmap_count_below(bm, 4), 1);
	cr_assert_eq(bitmap_count_below(bm, 40005), 6);
	cr_assert_eq(bitmap_count_below(bm, 99999), 11);
	cr_assert_eq(bitmap_count_below(bm, 1ULL << 40), 12, "clipped to nbits");
	bitmap_free(bm);
}

/* Rule 8's trigger: clearing a set bit (alone, in a range, or a page
 * decoded from disk) is remembered until forgotten; setting bits or
 * clearing clear ones is not. */
Test(bitmap, cleared_is_remembered_until_forgotten)
{
	struct bitmap *bm = bitmap_new(100000);

	cr_assert_not(bitmap_cleared(bm));
	bitmap_set_range(bm, 10, 50);
	bitmap_clear(bm, 70);
	bitmap_clear_range(bm, 200, 1000);
	cr_assert_not(bitmap_cleared(bm), "nothing set was cleared");
	bitmap_clear(bm, 10);
	cr_assert(bitmap_cleared(bm));
	cr_assert(bitmap_cleared(bm), "asking does not forget");
	bitmap_forget_cleared(bm);
	cr_assert_not(bitmap_cleared(bm));
	bitmap_clear_range(bm, 0, 30);
	cr_assert(bitmap_cleared(bm));
	bitmap_free(bm);
}
