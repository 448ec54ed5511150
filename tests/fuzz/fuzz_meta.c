// fuzz-sources: daemon/meta/meta.c utils/bitmap.c utils/namefield.c
/* libFuzzer harness for the metadata codec and the bitmap's on-disk form.
 *
 * Input (zero-padded to 8192 + 12 bytes when shorter): copies A and B
 * (4096 bytes each), given to both meta_sb_pick() and meta_al_pick(); then
 * nbits u32, page u32 and first_byte u32 (little-endian) for a bitmap, and
 * the rest, merged into it as a peer's chunk.  Block A is also decoded as a
 * bitmap page.  Checked: whatever decodes re-encodes to the same bytes (a
 * version 1 block with tests/meta_v1.h's encoder), the
 * pick agrees with decoding each copy alone, and the bitmap's count and bits
 * match the bytes it was given. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/meta/meta.h"
#include "utils/bitmap.h"
#include "tests/fuzz/check.h"
#include "tests/meta_v1.h"

#define BLK		META_BLOCK_BYTES
#define HDR		12
#define MAX_NBITS	(3 * BITMAP_PAGE_BITS + 77)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Encodes sb as the version it was read as. */
static void reencode(const struct meta_sb *sb, uint8_t *blk)
{
	if (sb->version == 1)
		meta_v1_encode(sb, blk);
	else
		meta_sb_encode(sb, blk);
}

static void check_sb(const uint8_t *a, const uint8_t *b)
{
	struct meta_sb out, one;
	uint8_t again[BLK];
	const char *why = NULL, *why1 = NULL;
	char text[4096];
	int which = -1, ok_a, ok_b;

	ok_a = meta_sb_decode(a, &one, &why1) == 0;
	if (ok_a) {
		FUZZ_CHECK(one.gen.bitmap == 0);
		FUZZ_CHECK(one.max_peers >= 1 && one.max_peers <= META_PEERS_MAX);
		reencode(&one, again);
		FUZZ_CHECK(memcmp(again, a, BLK) == 0);
	} else {
		FUZZ_CHECK(why1 && *why1);
	}
	ok_b = meta_sb_decode(b, &one, &why1) == 0;
	if (meta_sb_pick(a, b, &out, &which, &why) < 0) {
		FUZZ_CHECK(why && *why);
		return;
	}
	FUZZ_CHECK(which == 0 || which == 1);
	FUZZ_CHECK(which == 0 ? ok_a : ok_b);
	FUZZ_CHECK(why == NULL || *why);
	reencode(&out, again);
	FUZZ_CHECK(memcmp(again, which ? b : a, BLK) == 0);
	FUZZ_CHECK(meta_sb_to_text(&out, text, sizeof(text)) > 0);
	FUZZ_CHECK(strlen(text) < sizeof(text));
	(void)meta_sb_to_text(&out, text, 7);
	FUZZ_CHECK(strlen(text) == 6);
}

static void check_al(const uint8_t *a, const uint8_t *b)
{
	static uint32_t ext[META_AL_MAX];
	uint8_t again[BLK];
	uint64_t seq;
	unsigned n = 0, small_n;
	const char *why = NULL;
	int which = -1;

	if (meta_al_pick(a, b, &seq, ext, META_AL_MAX, &n, &which, &why) < 0) {
		FUZZ_CHECK(why && *why);
		return;
	}
	FUZZ_CHECK(which == 0 || which == 1);
	FUZZ_CHECK(n <= META_AL_MAX);
	meta_al_encode(seq, ext, n, again);
	FUZZ_CHECK(memcmp(again, which ? b : a, BLK) == 0);
	/* A caller with less room is refused, never overrun. */
	if (n > 0)
		FUZZ_CHECK(meta_al_decode(which ? b : a, &seq, ext, n - 1, &small_n, &why) < 0);
}

static void check_bitmap(const uint8_t *page_bytes, const uint8_t *hdr, const uint8_t *rest,
			 size_t rest_len)
{
	uint64_t nbits = get_le32(hdr) % MAX_NBITS + 1;
	struct bitmap *bm = bitmap_new(nbits);
	uint64_t page, first_bit, before, want = 0;
	uint8_t out[BITMAP_PAGE_BYTES];
	int64_t added;

	FUZZ_CHECK(bm);
	page = get_le32(hdr + 4) % (bitmap_pages(bm) + 1);	/* one past the end too */
	if (page == bitmap_pages(bm)) {
		FUZZ_CHECK(bitmap_decode_page(bm, page, page_bytes) < 0);
		FUZZ_CHECK(bitmap_encode_page(bm, page, out) < 0);
		page = 0;
	}
	FUZZ_CHECK(bitmap_decode_page(bm, page, page_bytes) == 0);
	FUZZ_CHECK(bitmap_next_dirty_page(bm, 0) == bitmap_pages(bm));
	for (uint64_t i = 0; i < BITMAP_PAGE_BITS; i++) {
		uint64_t bit = page * BITMAP_PAGE_BITS + i;
		int on = page_bytes[i / 8] >> (i % 8) & 1;

		if (bit >= nbits)
			break;
		FUZZ_CHECK(bitmap_test(bm, bit) == on);
		want += (uint64_t)on;
	}
	FUZZ_CHECK(bitmap_count(bm) == want);
	FUZZ_CHECK(bitmap_encode_page(bm, page, out) == 0);
	for (size_t i = 0; i < BITMAP_PAGE_BYTES; i++) {
		uint64_t bit0 = page * BITMAP_PAGE_BITS + 8 * i;
		uint8_t mask = bit0 >= nbits ? 0 : nbits - bit0 >= 8 ? 0xff :
			       (uint8_t)((1U << (nbits - bit0)) - 1);

		FUZZ_CHECK(out[i] == (page_bytes[i] & mask));
	}

	first_bit = (uint64_t)(get_le32(hdr + 8) % (MAX_NBITS / 8 + 2)) * 8;
	before = bitmap_count(bm);
	added = bitmap_merge_bytes(bm, first_bit, rest, rest_len);
	FUZZ_CHECK(added >= 0);
	FUZZ_CHECK(bitmap_count(bm) == before + (uint64_t)added);
	for (size_t i = 0; i < rest_len && first_bit + 8 * i < nbits; i++)
		for (unsigned k = 0; k < 8; k++)
			if (rest[i] >> k & 1)
				FUZZ_CHECK(first_bit + 8 * i + k >= nbits ||
					   bitmap_test(bm, first_bit + 8 * i + k));
	if (added > 0)
		FUZZ_CHECK(bitmap_next_dirty_page(bm, 0) < bitmap_pages(bm));
	FUZZ_CHECK(bitmap_merge_bytes(bm, first_bit | 1, rest, rest_len) < 0);
	bitmap_free(bm);
}

static void check_layout(const uint8_t *hdr)
{
	uint64_t backing = (uint64_t)get_le32(hdr) << (hdr[8] % 33);
	uint32_t extent = 1U << (hdr[9] % 24);
	unsigned max_peers = hdr[10] % (META_PEERS_MAX + 2);	/* 0 and 8 refused */
	struct meta_layout l;
	const char *why = NULL;

	if (meta_layout_internal(backing, extent, max_peers, &l, &why) < 0) {
		FUZZ_CHECK(why && *why);
		return;
	}
	FUZZ_CHECK(max_peers >= 1 && max_peers <= META_PEERS_MAX);
	FUZZ_CHECK(l.meta_bytes == 4 * (uint64_t)BLK + max_peers * l.bm_bytes);
	FUZZ_CHECK(meta_layout_bm_offset(&l, max_peers - 1) + l.bm_bytes ==
		   l.sb_offset[0] + l.meta_bytes);
	FUZZ_CHECK(l.data_bytes > 0 && l.data_bytes % BLK == 0);
	FUZZ_CHECK(l.nbits * extent >= l.data_bytes);
	FUZZ_CHECK(l.bm_bytes * 8 >= l.nbits);
	FUZZ_CHECK(l.data_bytes <= l.sb_offset[0]);
	FUZZ_CHECK(l.sb_offset[0] + l.meta_bytes <= backing);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t padded[2 * BLK + HDR];
	const uint8_t *in = data;

	if (size < sizeof(padded)) {
		memset(padded, 0, sizeof(padded));
		memcpy(padded, data, size);
		in = padded;
		size = sizeof(padded);
	}
	check_sb(in, in + BLK);
	check_al(in, in + BLK);
	check_bitmap(in, in + 2 * BLK, in + 2 * BLK + HDR, size - 2 * BLK - HDR);
	check_layout(in + 2 * BLK);
	return 0;
}
