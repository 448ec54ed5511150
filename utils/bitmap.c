/* Bits live in 64-bit words, bit i in word i / 64 at position i % 64, so a
 * page of 4096 bytes is exactly 512 words and encoding is a little-endian
 * store of each word whatever the host byte order.  Bits past nbits in the
 * last word are kept zero, which makes the count and the encoding exact
 * without masking on every read.  Dirty pages are a second bit set. */
#include "bitmap.h"

#include <stdlib.h>
#include <string.h>

#define WORD_BITS	64U
#define PAGE_WORDS	(BITMAP_PAGE_BYTES / 8)

struct bitmap {
	uint64_t nbits;
	uint64_t nwords;
	uint64_t npages;
	uint64_t count;		/* set bits */
	uint64_t *words;
	uint64_t *dirty;	/* one bit per page */
	bool cleared;		/* a set bit was cleared since bitmap_forget_cleared() */
};

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

struct bitmap *bitmap_new(uint64_t nbits)
{
	struct bitmap *bm = calloc(1, sizeof(*bm));

	if (!bm)
		return NULL;
	bm->nbits = nbits;
	bm->nwords = div_up(nbits, WORD_BITS);
	bm->npages = div_up(nbits, BITMAP_PAGE_BITS);
	if (bm->nwords > SIZE_MAX / sizeof(uint64_t))
		goto fail;
	/* One extra word each so that nbits == 0 never asks for 0 bytes. */
	bm->words = calloc((size_t)bm->nwords + 1, sizeof(uint64_t));
	bm->dirty = calloc((size_t)div_up(bm->npages, WORD_BITS) + 1, sizeof(uint64_t));
	if (!bm->words || !bm->dirty)
		goto fail;
	return bm;
fail:
	bitmap_free(bm);
	return NULL;
}

void bitmap_free(struct bitmap *bm)
{
	if (!bm)
		return;
	free(bm->words);
	free(bm->dirty);
	free(bm);
}

uint64_t bitmap_nbits(const struct bitmap *bm)
{
	return bm->nbits;
}

uint64_t bitmap_pages(const struct bitmap *bm)
{
	return bm->npages;
}

uint64_t bitmap_count_below(const struct bitmap *bm, uint64_t limit)
{
	uint64_t n = 0;

	if (limit >= bm->nbits)
		return bitmap_count(bm);
	for (uint64_t b = bitmap_next_set(bm, 0); b < limit; b = bitmap_next_set(bm, b + 1))
		n++;
	return n;
}

uint64_t bitmap_count(const struct bitmap *bm)
{
	return bm->count;
}

void bitmap_mark_dirty(struct bitmap *bm, uint64_t page)
{
	if (page < bm->npages)
		bm->dirty[page / WORD_BITS] |= (uint64_t)1 << (page % WORD_BITS);
}

void bitmap_clear_dirty(struct bitmap *bm, uint64_t page)
{
	if (page < bm->npages)
		bm->dirty[page / WORD_BITS] &= ~((uint64_t)1 << (page % WORD_BITS));
}

void bitmap_mark_all_dirty(struct bitmap *bm)
{
	for (uint64_t p = 0; p < bm->npages; p++)
		bitmap_mark_dirty(bm, p);
}

/* Replaces word w by v, keeping count and the dirty pages right. */
static void store_word(struct bitmap *bm, uint64_t w, uint64_t v)
{
	uint64_t old = bm->words[w];

	if (old == v)
		return;
	bm->cleared |= (old & ~v) != 0;
	bm->count -= (uint64_t)__builtin_popcountll(old & ~v);
	bm->count += (uint64_t)__builtin_popcountll(v & ~old);
	bm->words[w] = v;
	bitmap_mark_dirty(bm, w / PAGE_WORDS);
}

bool bitmap_cleared(const struct bitmap *bm)
{
	return bm->cleared;
}

void bitmap_forget_cleared(struct bitmap *bm)
{
	bm->cleared = false;
}

void bitmap_set(struct bitmap *bm, uint64_t bit)
{
	if (bit < bm->nbits)
		store_word(bm, bit / WORD_BITS,
			   bm->words[bit / WORD_BITS] | (uint64_t)1 << (bit % WORD_BITS));
}

void bitmap_clear(struct bitmap *bm, uint64_t bit)
{
	if (bit < bm->nbits)
		store_word(bm, bit / WORD_BITS,
			   bm->words[bit / WORD_BITS] & ~((uint64_t)1 << (bit % WORD_BITS)));
}

bool bitmap_test(const struct bitmap *bm, uint64_t bit)
{
	if (bit >= bm->nbits)
		return false;
	return (bm->words[bit / WORD_BITS] >> (bit % WORD_BITS)) & 1;
}

/* Sets (on) or clears the bits [first, first + count) clipped to nbits, a
 * word at a time. */
static void change_range(struct bitmap *bm, uint64_t first, uint64_t count, bool on)
{
	uint64_t end;

	if (first >= bm->nbits || count == 0)
		return;
	end = count > bm->nbits - first ? bm->nbits : first + count;
	while (first < end) {
		uint64_t w = first / WORD_BITS, lo = first % WORD_BITS;
		uint64_t n = end - first < WORD_BITS - lo ? end - first : WORD_BITS - lo;
		uint64_t mask = (n == WORD_BITS ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1)) << lo;

		store_word(bm, w, on ? bm->words[w] | mask : bm->words[w] & ~mask);
		first += n;
	}
}

void bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count)
{
	change_range(bm, first, count, true);
}

void bitmap_clear_range(struct bitmap *bm, uint64_t first, uint64_t count)
{
	change_range(bm, first, count, false);
}

/* The first set bit >= from in a bit set of n words, or n * 64. */
static uint64_t next_in_words(const uint64_t *words, uint64_t nwords, uint64_t from)
{
	uint64_t w = from / WORD_BITS, v;

	if (w >= nwords)
		return nwords * WORD_BITS;
	v = words[w] & (~(uint64_t)0 << (from % WORD_BITS));
	while (!v) {
		if (++w == nwords)
			return nwords * WORD_BITS;
		v = words[w];
	}
	return w * WORD_BITS + (uint64_t)__builtin_ctzll(v);
}

uint64_t bitmap_next_set(const struct bitmap *bm, uint64_t from)
{
	uint64_t bit;

	if (from >= bm->nbits)
		return bm->nbits;
	bit = next_in_words(bm->words, bm->nwords, from);
	return bit < bm->nbits ? bit : bm->nbits;
}

uint64_t bitmap_next_dirty_page(const struct bitmap *bm, uint64_t from)
{
	uint64_t page;

	if (from >= bm->npages)
		return bm->npages;
	page = next_in_words(bm->dirty, div_up(bm->npages, WORD_BITS), from);
	return page < bm->npages ? page : bm->npages;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Words of page `page`: [*first, *first + return value). */
static uint64_t page_words(const struct bitmap *bm, uint64_t page, uint64_t *first)
{
	*first = page * PAGE_WORDS;
	return bm->nwords - *first < PAGE_WORDS ? bm->nwords - *first : PAGE_WORDS;
}

int bitmap_encode_page(const struct bitmap *bm, uint64_t page, uint8_t *out)
{
	uint64_t first, n;

	if (page >= bm->npages)
		return -1;
	n = page_words(bm, page, &first);
	for (uint64_t i = 0; i < n; i++)
		put_le64(out + 8 * i, bm->words[first + i]);
	memset(out + 8 * n, 0, BITMAP_PAGE_BYTES - 8 * n);
	return 0;
}

/* Bits of word w that lie below nbits. */
static uint64_t valid_mask(const struct bitmap *bm, uint64_t w)
{
	uint64_t left = bm->nbits - w * WORD_BITS;

	return left >= WORD_BITS ? ~(uint64_t)0 : ((uint64_t)1 << left) - 1;
}

int bitmap_decode_page(struct bitmap *bm, uint64_t page, const uint8_t *in)
{
	uint64_t first, n;

	if (page >= bm->npages)
		return -1;
	n = page_words(bm, page, &first);
	for (uint64_t i = 0; i < n; i++)
		store_word(bm, first + i, get_le64(in + 8 * i) & valid_mask(bm, first + i));
	bitmap_clear_dirty(bm, page);
	return 0;
}

int64_t bitmap_merge_bytes(struct bitmap *bm, uint64_t first_bit, const uint8_t *bytes,
			   size_t nbytes)
{
	uint64_t before = bm->count, avail;

	if (first_bit % 8)
		return -1;
	if (first_bit >= bm->nbits)
		return 0;
	avail = div_up(bm->nbits - first_bit, 8);
	if (nbytes > avail)
		nbytes = (size_t)avail;
	for (size_t i = 0; i < nbytes; i++) {
		uint64_t bit = first_bit + 8 * (uint64_t)i, w = bit / WORD_BITS;
		uint64_t v = (uint64_t)bytes[i] << (bit % WORD_BITS);

		if (bytes[i])
			store_word(bm, w, bm->words[w] | (v & valid_mask(bm, w)));
	}
	return (int64_t)(bm->count - before);
}
