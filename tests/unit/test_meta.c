/* Unit tests for daemon/meta: layout arithmetic (checked against a
 * brute-force definition of "largest data area that fits"), superblock and
 * activity-log round trips, byte-level format facts, every refusal, and the
 * choice between the A and B copies. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/meta/meta.h"
#include "tests/meta_v1.h"

#define KiB	((uint64_t)1 << 10)
#define MiB	((uint64_t)1 << 20)
#define GiB	((uint64_t)1 << 30)
#define TiB	((uint64_t)1 << 40)
#define BLK	META_BLOCK_BYTES

/* ---- layout ---- */

/* The meta area for a data area, straight from the definition. */
static uint64_t meta_for(uint64_t data_bytes, uint64_t extent)
{
	uint64_t nbits = (data_bytes + extent - 1) / extent;
	uint64_t bytes = (nbits + 7) / 8;

	return 4 * BLK + (bytes + BLK - 1) / BLK * BLK;
}

static void check_internal(uint64_t backing, uint32_t extent)
{
	uint64_t end = backing / BLK * BLK;
	struct meta_layout l;
	const char *why = NULL;

	cr_assert_eq(meta_layout_internal(backing, extent, 1, &l, &why), 0, "%lu/%u: %s", backing,
		     extent, why);
	cr_assert_gt(l.data_bytes, 0);
	cr_assert_eq(l.data_bytes % BLK, 0);
	cr_assert_eq(l.extent_bytes, extent);
	cr_assert_eq(l.nbits, (l.data_bytes + extent - 1) / extent);
	cr_assert_geq(l.nbits * extent, l.data_bytes, "bitmap covers the data");
	cr_assert_geq(l.bm_bytes * 8, l.nbits);
	cr_assert_eq(l.bm_bytes % BLK, 0);
	cr_assert_eq(l.meta_bytes, meta_for(l.data_bytes, extent));
	cr_assert_eq(l.meta_bytes, 4 * BLK + l.bm_bytes);
	/* Meta at the very end, after the data, everything aligned. */
	cr_assert_eq(l.sb_offset[0] + l.meta_bytes, end, "%lu/%u", backing, extent);
	cr_assert_leq(l.data_bytes + l.meta_bytes, backing);
	cr_assert_leq(l.data_bytes, l.sb_offset[0]);
	cr_assert_leq(l.sb_offset[0] - l.data_bytes, BLK, "at most one block unused");
	cr_assert_eq(l.sb_offset[0] % BLK, 0);
	cr_assert_eq(l.sb_offset[1], l.sb_offset[0] + BLK);
	cr_assert_eq(l.al_offset[0], l.sb_offset[0] + 2 * BLK);
	cr_assert_eq(l.al_offset[1], l.sb_offset[0] + 3 * BLK);
	cr_assert_eq(l.bm_offset, l.sb_offset[0] + 4 * BLK);
	cr_assert_eq(l.bm_offset + l.bm_bytes, end);
	/* As large as possible: one more block of data no longer fits. */
	cr_assert_gt((unsigned __int128)l.data_bytes + BLK + meta_for(l.data_bytes + BLK, extent),
		     end,
		     "%lu/%u: data %lu is not the largest", backing, extent, l.data_bytes);
}

Test(meta_layout, internal_known_sizes)
{
	static const struct {
		uint64_t backing;
		uint32_t extent;
		uint64_t data, meta;
	} cases[] = {
		{ 64 * MiB, 64 * KiB, 64 * MiB - 20 * KiB, 20 * KiB },
		{ 64 * MiB, MiB, 64 * MiB - 20 * KiB, 20 * KiB },
		{ GiB, 64 * KiB, GiB - 20 * KiB, 20 * KiB },
		{ GiB, MiB, GiB - 20 * KiB, 20 * KiB },
		/* 16 Mi extents: 2 MiB of bitmap. */
		{ TiB, 64 * KiB, TiB - 16 * KiB - 2 * MiB, 16 * KiB + 2 * MiB },
		/* 1 Mi extents: 128 KiB of bitmap. */
		{ TiB, MiB, TiB - 16 * KiB - 128 * KiB, 16 * KiB + 128 * KiB },
		/* 4 KiB extents: a page covers 128 MiB, so 8 pages here. */
		{ GiB, 4 * KiB, GiB - 16 * KiB - 8 * 4 * KiB, 16 * KiB + 8 * 4 * KiB },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meta_layout l;
		const char *why;

		check_internal(cases[i].backing, cases[i].extent);
		cr_assert_eq(meta_layout_internal(cases[i].backing, cases[i].extent, 1, &l, &why), 0);
		cr_assert_eq(l.data_bytes, cases[i].data, "case %zu: data %lu", i, l.data_bytes);
		cr_assert_eq(l.meta_bytes, cases[i].meta, "case %zu: meta %lu", i, l.meta_bytes);
	}
}

/* Around the sizes where one more bitmap page is needed, unaligned sizes,
 * tiny ones, and huge ones. */
Test(meta_layout, internal_edges_and_random)
{
	static const uint32_t extents[] = { 4096, 8192, 64 * KiB, 256 * KiB, MiB };

	for (size_t e = 0; e < sizeof(extents) / sizeof(extents[0]); e++) {
		uint64_t page_covers = (uint64_t)BLK * 8 * extents[e];

		for (uint64_t pages = 1; pages <= 4; pages++) {
			uint64_t edge = pages * page_covers + 4 * BLK + pages * BLK;

			for (int64_t d = -3 * (int64_t)BLK; d <= 3 * (int64_t)BLK; d += 512)
				check_internal(edge + (uint64_t)d, extents[e]);
		}
		for (uint64_t b = 6 * BLK; b < 6 * BLK + 3 * BLK; b += 1000)
			check_internal(b, extents[e]);
		check_internal(UINT64_MAX, extents[e]);
		check_internal(UINT64_MAX / 3, extents[e]);
	}
	srand(5);
	for (int i = 0; i < 2000; i++) {
		uint64_t b = ((uint64_t)rand() << 31 ^ (uint64_t)rand()) >> (rand() % 40);

		if (b > 6 * BLK)
			check_internal(b, extents[(size_t)rand() % 5]);
	}
}

Test(meta_layout, internal_refusals)
{
	static const uint32_t bad_extents[] = { 0, 1, 2048, 3000, 4097, 2 * MiB, 3 * MiB,
						UINT32_MAX, 1U << 31 };
	struct meta_layout l;
	const char *why = NULL;

	for (size_t i = 0; i < sizeof(bad_extents) / sizeof(bad_extents[0]); i++) {
		why = NULL;
		cr_assert_eq(meta_layout_internal(GiB, bad_extents[i], 1, &l, &why), -1, "extent %u",
			     bad_extents[i]);
		cr_assert_not_null(why);
		cr_assert(strstr(why, "extent size"), "%s", why);
	}
	for (uint64_t b = 0; b < 6 * BLK; b += 512) {
		why = NULL;
		cr_assert_eq(meta_layout_internal(b, 64 * KiB, 1, &l, &why), -1, "backing %lu", b);
		cr_assert(why && strstr(why, "too small"), "%s", why);
	}
	/* The smallest that works: four blocks, a bitmap page, one data block. */
	cr_assert_eq(meta_layout_internal(6 * BLK, 64 * KiB, 1, &l, &why), 0);
	cr_assert_eq(l.data_bytes, BLK);
	cr_assert_eq(l.nbits, 1);
}

Test(meta_layout, external)
{
	struct meta_layout l;
	const char *why = NULL;

	cr_assert_eq(meta_layout_external(GiB + 1000, 20 * KiB, 64 * KiB, 1, &l, &why), 0, "%s", why);
	cr_assert_eq(l.data_bytes, GiB);
	cr_assert_eq(l.nbits, 16384);
	cr_assert_eq(l.sb_offset[0], 0);
	cr_assert_eq(l.sb_offset[1], BLK);
	cr_assert_eq(l.al_offset[0], 2 * BLK);
	cr_assert_eq(l.al_offset[1], 3 * BLK);
	cr_assert_eq(l.bm_offset, 4 * BLK);
	cr_assert_eq(l.bm_bytes, BLK);
	cr_assert_eq(l.meta_bytes, 20 * KiB);

	cr_assert_eq(meta_layout_external(TiB, 16 * KiB + 2 * MiB, 64 * KiB, 1, &l, &why), 0);
	cr_assert_eq(l.data_bytes, TiB);
	cr_assert_eq(l.bm_bytes, 2 * MiB);

	cr_assert_eq(meta_layout_external(TiB, 16 * KiB + 2 * MiB - 1, 64 * KiB, 1, &l, &why), -1);
	cr_assert(strstr(why, "meta file too small"), "%s", why);
	cr_assert_eq(meta_layout_external(GiB, 20 * KiB - 1, 64 * KiB, 1, &l, &why), -1);
	cr_assert_eq(meta_layout_external(BLK - 1, GiB, 64 * KiB, 1, &l, &why), -1);
	cr_assert(strstr(why, "too small"), "%s", why);
	cr_assert_eq(meta_layout_external(GiB, GiB, 5000, 1, &l, &why), -1);
	cr_assert(strstr(why, "extent size"), "%s", why);
}

/* ---- superblock ---- */

static struct meta_sb sample_sb(void)
{
	struct meta_sb sb;

	meta_sb_defaults(&sb);
	sb.seq = 0x0102030405060708ULL;
	strcpy(sb.resource, "r0");
	strcpy(sb.node, "alpha-1.example");
	sb.data_bytes = GiB - 20 * KiB;
	sb.extent_bytes = 64 * KiB;
	sb.al_extent_bytes = 4 * MiB;
	sb.al_slots = 1000;
	sb.gen.current = 0x1111222233334444ULL;
	for (int i = 0; i < META_GEN_HISTORY; i++)
		sb.gen.history[i] = 0xa000000000000000ULL + (uint64_t)i;
	sb.flags = META_F_CRASHED_PRIMARY | META_F_ZEROED | META_F_WAS_PRIMARY;
	sb.disk = META_DISK_UPTODATE;
	sb.max_peers = 3;	/* slot 2 free */
	strcpy(sb.slot[0].node, "beta");
	sb.slot[0].bitmap_gen = 0x5555666677778888ULL;
	sb.slot[0].disk = META_DISK_OUTDATED;
	strcpy(sb.slot[1].node, "gamma");
	sb.slot[1].disk = META_DISK_UPTODATE;
	sb.mode = META_MODE_ASYNC;
	sb.nbd_index = 3;
	sb.agreed_bytes = GiB - 64 * KiB;
	return sb;
}

static void assert_sb_eq(const struct meta_sb *a, const struct meta_sb *b)
{
	cr_assert_eq(a->seq, b->seq);
	cr_assert_str_eq(a->resource, b->resource);
	cr_assert_str_eq(a->node, b->node);
	cr_assert_eq(a->data_bytes, b->data_bytes);
	cr_assert_eq(a->extent_bytes, b->extent_bytes);
	cr_assert_eq(a->al_extent_bytes, b->al_extent_bytes);
	cr_assert_eq(a->al_slots, b->al_slots);
	cr_assert_eq(a->gen.current, b->gen.current);
	cr_assert_eq(a->gen.bitmap, 0);
	cr_assert_eq(b->gen.bitmap, 0);
	for (int i = 0; i < META_GEN_HISTORY; i++)
		cr_assert_eq(a->gen.history[i], b->gen.history[i]);
	cr_assert_eq(a->flags, b->flags);
	cr_assert_eq(a->disk, b->disk);
	cr_assert_eq(a->max_peers, b->max_peers);
	for (unsigned i = 0; i < META_PEERS_MAX; i++) {
		cr_assert_str_eq(a->slot[i].node, b->slot[i].node, "slot %u", i);
		cr_assert_eq(a->slot[i].bitmap_gen, b->slot[i].bitmap_gen, "slot %u", i);
		cr_assert_eq(a->slot[i].disk, b->slot[i].disk, "slot %u", i);
		cr_assert_eq(a->slot[i].flags, b->slot[i].flags, "slot %u", i);
	}
	cr_assert_eq(a->mode, b->mode);
	cr_assert_eq(a->nbd_index, b->nbd_index);
	cr_assert_eq(a->agreed_bytes, b->agreed_bytes);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The checksum as documented: XXH64 seed 0 over the block with its last 8
 * bytes zero, stored little-endian in those bytes. */
static void reseal(uint8_t *blk)
{
	uint64_t h;

	memset(blk + BLK - 8, 0, 8);
	h = XXH64(blk, BLK, 0);
	for (int i = 0; i < 8; i++)
		blk[BLK - 8 + i] = (uint8_t)(h >> (8 * i));
}

Test(meta_sb, round_trip_and_canonical_bytes)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK], again[BLK];
	const char *why = NULL;

	memset(blk, 0xcc, sizeof(blk));
	meta_sb_encode(&in, blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	assert_sb_eq(&in, &out);
	meta_sb_encode(&out, again);
	cr_assert_arr_eq(blk, again, BLK);

	/* Defaults with the minimum a valid superblock needs. */
	meta_sb_defaults(&in);
	strcpy(in.resource, "x");
	strcpy(in.node, "y");
	in.data_bytes = BLK;
	meta_sb_encode(&in, blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	assert_sb_eq(&in, &out);
	cr_assert_eq(out.nbd_index, -1);
	cr_assert_eq(out.al_extent_bytes, 4 * MiB);
}

Test(meta_sb, format_facts)
{
	struct meta_sb in = sample_sb();
	uint8_t blk[BLK], copy[BLK];

	meta_sb_encode(&in, blk);
	cr_assert_arr_eq(blk, "BLKREPMD", 8);
	cr_assert_eq(blk[8], 2);	/* version, little-endian */
	cr_assert_eq(blk[9] | blk[10] | blk[11], 0);
	cr_assert_eq(le64(blk + 16), in.seq);
	cr_assert_eq(blk[16], 0x08);	/* little-endian seq */
	cr_assert_str_eq((const char *)blk + 24, "r0");
	cr_assert_str_eq((const char *)blk + 88, "alpha-1.example");
	memcpy(copy, blk, BLK);
	reseal(copy);
	cr_assert_arr_eq(copy, blk, BLK, "checksum is XXH64 of the block, last 8 bytes zero");
}

Test(meta_sb, long_names_are_cut_to_63)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	memset(in.resource, 'r', sizeof(in.resource));	/* no NUL at all */
	meta_sb_encode(&in, blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	cr_assert_eq(strlen(out.resource), META_NAME_MAX);
	cr_assert_eq(out.resource[0], 'r');
}

/* Any single corrupted byte after the magic and version is a checksum
 * mismatch, including in the checksum itself. */
Test(meta_sb, every_flipped_byte_is_a_checksum_mismatch)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	meta_sb_encode(&in, blk);
	for (size_t i = 12; i < BLK; i++) {
		blk[i] ^= 0x10;
		why = NULL;
		cr_assert_eq(meta_sb_decode(blk, &out, &why), -1, "byte %zu", i);
		cr_assert_str_eq(why, "metadata checksum mismatch (corrupt)", "byte %zu", i);
		blk[i] ^= 0x10;
	}
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0);
}

Test(meta_sb, wrong_magic)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	meta_sb_encode(&in, blk);
	for (size_t i = 0; i < 8; i++) {
		blk[i] ^= 1;
		cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
		cr_assert_str_eq(why, "no blkrep metadata here");
		blk[i] ^= 1;
	}
	memset(blk, 0, sizeof(blk));
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert_str_eq(why, "no blkrep metadata here");
	meta_al_encode(1, NULL, 0, blk);	/* an AL block is not a superblock */
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert_str_eq(why, "no blkrep metadata here");
}

Test(meta_sb, versions)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	meta_sb_encode(&in, blk);
	put32(blk + 8, 3);
	reseal(blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert_str_eq(why, "metadata version 3 is newer than this blkrep (2)");
	/* Said before the checksum is looked at: a newer layout may differ. */
	blk[100] ^= 1;
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert_str_eq(why, "metadata version 3 is newer than this blkrep (2)");
	put32(blk + 8, 0);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert_str_eq(why, "unknown metadata version 0 (corrupt)");
	put32(blk + 8, 0x01000001);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert(strstr(why, "unknown metadata version"), "%s", why);
}

/* Each field check, with a correct checksum so that it is the field that
 * is refused. */
Test(meta_sb, field_refusals)
{
	static const struct {
		size_t off;
		int width;	/* 1 or 4 bytes, or 0: write bytes[] */
		uint32_t value;
		const char *bytes;
		const char *why;
	} cases[] = {
		{ 24, 0, 0, "", "resource name" },			/* empty */
		{ 24, 0, 0, "r\x01", "resource name" },			/* control char */
		{ 24, 0, 0, "r\xc3\xa9", "resource name" },		/* not ASCII */
		{ 27, 1, 'z', NULL, "resource name" },			/* garbage after NUL */
		{ 88, 0, 0, "", "node name" },
		{ 151, 1, 'z', NULL, "node name" },			/* last pad byte */
		{ 152, 4, 0, NULL, "data size" },			/* data_bytes low word */
		{ 152, 4, 4097, NULL, "data size" },
		{ 160, 4, 3000, NULL, "extent size" },
		{ 160, 4, 2048, NULL, "extent size" },
		{ 160, 4, 2 << 20, NULL, "extent size" },
		{ 164, 4, 0, NULL, "activity-log extent size" },
		{ 164, 4, 6 << 20, NULL, "activity-log extent size" },
		{ 164, 4, 1U << 31, NULL, "activity-log extent size" },
		{ 168, 4, 15, NULL, "slot count" },
		{ 168, 4, 1001, NULL, "slot count" },
		{ 12, 4, 1U << 4, NULL, "flags" },
		{ 224, 1, 4, NULL, "disk state" },
		{ 225, 1, 2, NULL, "unused bytes" },			/* v1's peer disk */
		{ 184, 1, 1, NULL, "unused bytes" },			/* v1's bitmap id */
		{ 226, 1, 2, NULL, "mode" },
		{ 172, 4, (uint32_t)-2, NULL, "NBD" },
		{ 227, 1, 1, NULL, "unused bytes" },
		{ 228, 4, 4097, NULL, "agreed export size" },		/* not a multiple */
		{ 228, 4, 12 * 1024, NULL, "agreed export size" },	/* > data_bytes */
		{ 236, 4, 0, NULL, "max-peers" },
		{ 236, 4, 8, NULL, "max-peers" },
		{ 240, 0, 0, "b\x01", "peer slot name" },		/* slot 0 */
		{ 240, 0, 0, "alpha-1.example", "the node itself" },
		{ 320, 0, 0, "beta", "two slots" },			/* slot 1 */
		{ 312, 1, 4, NULL, "peer slot disk" },
		{ 313, 1, 1, NULL, "reserved" },
		{ 316, 4, 1, NULL, "flags" },
		{ 400 + 64, 1, 1, NULL, "free peer slot" },		/* slot 2: free */
		{ 400 + 76, 1, 1, NULL, "free peer slot" },
		{ 480, 1, 'x', NULL, "unused peer slot" },		/* slot 3: unused */
		{ 480 + 79, 1, 1, NULL, "unused peer slot" },
		{ 800, 1, 1, NULL, "unused bytes" },
		{ 4087, 1, 1, NULL, "unused bytes" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meta_sb in = sample_sb(), out;
		uint8_t blk[BLK];
		const char *why = NULL;

		in.data_bytes = 8 * KiB;	/* so that a low word of 0 is 0 */
		in.agreed_bytes = 4 * KiB;
		meta_sb_encode(&in, blk);
		if (cases[i].width == 1) {
			blk[cases[i].off] = (uint8_t)cases[i].value;
		} else if (cases[i].width == 4) {
			put32(blk + cases[i].off, cases[i].value);
		} else {
			memset(blk + cases[i].off, 0, META_NAME_BYTES);
			memcpy(blk + cases[i].off, cases[i].bytes, strlen(cases[i].bytes));
		}
		reseal(blk);
		cr_assert_eq(meta_sb_decode(blk, &out, &why), -1, "case %zu", i);
		cr_assert(strstr(why, cases[i].why), "case %zu: %s", i, why);
		cr_assert(strstr(why, "(corrupt)"), "case %zu: %s", i, why);
	}
}

Test(meta_sb, unterminated_name)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	meta_sb_encode(&in, blk);
	memset(blk + 88, 'n', META_NAME_BYTES);
	reseal(blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert(strstr(why, "node name"), "%s", why);
}

/* The AL extent count must fit in 32 bits: 16 TiB of 4 KiB extents is the
 * most that does. */
Test(meta_sb, al_extents_must_fit_32_bits)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why;

	in.al_extent_bytes = 4096;
	in.data_bytes = (uint64_t)4096 << 32;
	meta_sb_encode(&in, blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	in.data_bytes += 4096;
	meta_sb_encode(&in, blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
}

static void encode_seq(uint8_t *blk, uint64_t seq)
{
	struct meta_sb sb = sample_sb();

	sb.seq = seq;
	meta_sb_encode(&sb, blk);
}

Test(meta_sb, pick_higher_seq)
{
	uint8_t a[BLK], b[BLK];
	struct meta_sb out;
	const char *why = "unset";
	int which = -1;

	encode_seq(a, 5);
	encode_seq(b, 6);
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 1);
	cr_assert_eq(out.seq, 6);
	cr_assert_null(why);
	cr_assert_eq(meta_sb_pick(b, a, &out, &which, &why), 0);
	cr_assert_eq(which, 0);
	cr_assert_eq(out.seq, 6);
	encode_seq(b, 5);	/* a tie goes to A */
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 0);
	/* Seqs compare as 64-bit numbers, not bytes. */
	encode_seq(a, 0x100);
	encode_seq(b, 0xff);
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 0);
}

/* A torn write of the newer copy: the older valid one is used, and the
 * reason is reported for a warning. */
Test(meta_sb, pick_falls_back_past_a_corrupt_newest)
{
	uint8_t a[BLK], b[BLK];
	struct meta_sb out;
	const char *why = NULL;
	int which = -1;

	encode_seq(a, 7);
	encode_seq(b, 8);
	memset(b + 2048, 0, 2048);	/* second half never reached the disk */
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 0);
	cr_assert_eq(out.seq, 7);
	cr_assert_str_eq(why, "metadata checksum mismatch (corrupt)");

	encode_seq(b, 8);
	memset(a, 0, BLK);	/* only B was ever written */
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 1);
	cr_assert_eq(out.seq, 8);
	cr_assert_str_eq(why, "no blkrep metadata here");
}

Test(meta_sb, pick_refusals)
{
	uint8_t a[BLK], b[BLK];
	struct meta_sb out;
	const char *why = NULL;
	int which = -1;

	memset(a, 0, BLK);
	memset(b, 0xff, BLK);
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), -1);
	cr_assert_str_eq(why, "no blkrep metadata here");

	encode_seq(b, 3);
	b[500] ^= 4;	/* corrupt beats absent, whichever side */
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), -1);
	cr_assert_str_eq(why, "metadata checksum mismatch (corrupt)");
	cr_assert_eq(meta_sb_pick(b, a, &out, &which, &why), -1);
	cr_assert_str_eq(why, "metadata checksum mismatch (corrupt)");

	encode_seq(a, 4);
	a[600] ^= 4;
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), -1);
	cr_assert_str_eq(why, "metadata checksum mismatch (corrupt)");

	/* Upgraded metadata: never fall back to the old version's copy. */
	encode_seq(a, 9);
	encode_seq(b, 10);
	put32(b + 8, 3);
	reseal(b);
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), -1);
	cr_assert_str_eq(why, "metadata version 3 is newer than this blkrep (2)");
	cr_assert_eq(meta_sb_pick(b, a, &out, &which, &why), -1);
	cr_assert_str_eq(why, "metadata version 3 is newer than this blkrep (2)");
}

Test(meta_sb, text_dump)
{
	struct meta_sb sb = sample_sb();
	char buf[2048], small[40];
	int n;

	n = meta_sb_to_text(&sb, buf, sizeof(buf));
	cr_assert_eq((size_t)n, strlen(buf));
	cr_assert(strstr(buf, "resource:         r0\n"), "%s", buf);
	cr_assert(strstr(buf, "node:             alpha-1.example\n"), "%s", buf);
	cr_assert(strstr(buf, "data_bytes:       1073721344\n"), "%s", buf);
	cr_assert(strstr(buf, "generation:       1111222233334444\n"), "%s", buf);
	cr_assert(strstr(buf, "flags:            crashed-primary zeroed was-primary\n"), "%s", buf);
	cr_assert(strstr(buf, "disk:             uptodate\n"), "%s", buf);
	cr_assert(strstr(buf, "max_peers:        3\n"), "%s", buf);
	cr_assert(strstr(buf, "slot 0:           peer beta, bitmap_gen 5555666677778888, "
			      "peer_disk outdated\n"), "%s", buf);
	cr_assert(strstr(buf, "slot 1:           peer gamma, bitmap_gen 0000000000000000, "
			      "peer_disk uptodate\n"), "%s", buf);
	cr_assert_null(strstr(buf, "slot 2"), "a free slot is not shown: %s", buf);
	cr_assert(strstr(buf, "mode:             async\n"), "%s", buf);
	cr_assert(strstr(buf, "nbd:              /dev/nbd3\n"), "%s", buf);
	cr_assert_eq(meta_sb_to_text(&sb, small, sizeof(small)), n);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	meta_sb_defaults(&sb);
	meta_sb_to_text(&sb, buf, sizeof(buf));
	cr_assert(strstr(buf, "flags:            none\n"), "%s", buf);
	cr_assert(strstr(buf, "nbd:              none\n"), "%s", buf);
	cr_assert(strstr(buf, "mode:             sync\n"), "%s", buf);
	cr_assert_str_eq(meta_disk_name(META_DISK_CONSISTENT), "consistent");
	cr_assert_str_eq(meta_disk_name((enum meta_disk)9), "unknown");
}

/* ---- activity log ---- */

Test(meta_al, max_holds_the_largest_log)
{
	cr_assert_geq(META_AL_MAX, 1000);
	cr_assert_geq(META_AL_MAX, META_AL_SLOTS_MAX);
	cr_assert_leq(20 + 4 * (size_t)META_AL_MAX + 8, BLK);
}

Test(meta_al, round_trip)
{
	static const unsigned counts[] = { 0, 1, 2, 257, 1000, META_AL_MAX };
	static uint32_t in[META_AL_MAX + 5], out[META_AL_MAX];

	for (unsigned i = 0; i < META_AL_MAX + 5; i++)
		in[i] = i * 2654435761U;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		uint8_t blk[BLK];
		uint64_t seq = 0;
		unsigned n = 12345;
		const char *why = NULL;

		memset(blk, 0xa5, sizeof(blk));
		meta_al_encode(0xdeadbeef00000000ULL + c, in, counts[c], blk);
		cr_assert_arr_eq(blk, "BLKREPAL", 8);
		cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), 0, "%s", why);
		cr_assert_eq(seq, 0xdeadbeef00000000ULL + c);
		cr_assert_eq(n, counts[c]);
		for (unsigned i = 0; i < n; i++)
			cr_assert_eq(out[i], in[i]);
	}
	/* More than fit are cut, not overflowed. */
	{
		uint8_t blk[BLK];
		uint64_t seq;
		unsigned n;
		const char *why;

		meta_al_encode(1, in, META_AL_MAX + 5, blk);
		cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), 0);
		cr_assert_eq(n, META_AL_MAX);
	}
}

Test(meta_al, refusals)
{
	uint32_t ext[4] = { 1, 2, 3, 4 }, out[META_AL_MAX];
	uint8_t blk[BLK];
	uint64_t seq;
	unsigned n;
	const char *why;

	meta_al_encode(9, ext, 4, blk);
	cr_assert_eq(meta_al_decode(blk, &seq, out, 3, &n, &why), -1);
	cr_assert_str_eq(why, "activity log holds more extents than fit");
	cr_assert_eq(meta_al_decode(blk, &seq, out, 4, &n, &why), 0);

	for (size_t i = 8; i < BLK; i += 7) {
		blk[i] ^= 0x40;
		cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), -1);
		cr_assert_str_eq(why, "activity log checksum mismatch (corrupt)", "byte %zu", i);
		blk[i] ^= 0x40;
	}
	blk[3] = 'X';
	cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), -1);
	cr_assert_str_eq(why, "no activity log here");

	meta_al_encode(9, ext, 4, blk);
	put32(blk + 16, META_AL_MAX + 1);
	reseal(blk);
	cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), -1);
	cr_assert_str_eq(why, "activity log entry count out of range (corrupt)");
	put32(blk + 16, UINT32_MAX);
	reseal(blk);
	cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), -1);

	meta_al_encode(9, ext, 4, blk);
	blk[20 + 4 * 4] = 1;	/* just past the last entry */
	reseal(blk);
	cr_assert_eq(meta_al_decode(blk, &seq, out, META_AL_MAX, &n, &why), -1);
	cr_assert_str_eq(why, "activity log unused bytes are not zero (corrupt)");
}

Test(meta_al, pick)
{
	uint32_t ea[2] = { 10, 11 }, eb[3] = { 20, 21, 22 }, out[META_AL_MAX];
	uint8_t a[BLK], b[BLK];
	uint64_t seq = 0;
	unsigned n = 0;
	int which = -1;
	const char *why = "unset";

	meta_al_encode(100, ea, 2, a);
	meta_al_encode(101, eb, 3, b);
	cr_assert_eq(meta_al_pick(a, b, &seq, out, META_AL_MAX, &n, &which, &why), 0);
	cr_assert_eq(which, 1);
	cr_assert_eq(seq, 101);
	cr_assert_eq(n, 3);
	cr_assert(out[0] == 20 && out[1] == 21 && out[2] == 22);
	cr_assert_null(why);

	b[30] ^= 1;	/* torn newest: the older snapshot still covers */
	cr_assert_eq(meta_al_pick(a, b, &seq, out, META_AL_MAX, &n, &which, &why), 0);
	cr_assert_eq(which, 0);
	cr_assert_eq(seq, 100);
	cr_assert_eq(n, 2);
	cr_assert(out[0] == 10 && out[1] == 11);
	cr_assert_str_eq(why, "activity log checksum mismatch (corrupt)");

	a[30] ^= 1;
	cr_assert_eq(meta_al_pick(a, b, &seq, out, META_AL_MAX, &n, &which, &why), -1);
	cr_assert_str_eq(why, "activity log checksum mismatch (corrupt)");

	memset(a, 0, BLK);
	memset(b, 0, BLK);
	cr_assert_eq(meta_al_pick(a, b, &seq, out, META_AL_MAX, &n, &which, &why), -1);
	cr_assert_str_eq(why, "no activity log here");

	meta_al_encode(5, ea, 2, b);
	cr_assert_eq(meta_al_pick(a, b, &seq, out, META_AL_MAX, &n, &which, &why), 0);
	cr_assert_eq(which, 1);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(why, "no activity log here");
}

/* The agreed export size: metadata written before the field existed reads
 * as 0 ("not agreed yet"), and a set one survives a round trip. */
Test(meta_sb, agreed_size)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why = NULL;

	in.agreed_bytes = 0;
	meta_sb_encode(&in, blk);
	cr_assert_eq(le64(blk + 228), 0);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	cr_assert_eq(out.agreed_bytes, 0);
	in.agreed_bytes = 32 * MiB;
	meta_sb_encode(&in, blk);
	cr_assert_eq(le64(blk + 228), 32 * MiB);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	cr_assert_eq(out.agreed_bytes, 32 * MiB);
}

/* A superblock whose geometry is not the layout's is refused, naming the
 * field: an edited data_bytes would make the export cover the metadata. */
Test(meta_sb, geometry_must_match_the_layout)
{
	struct meta_layout l;
	struct meta_sb sb;
	const char *why;
	char buf[256];

	cr_assert_eq(meta_layout_internal(256ULL << 20, 64U << 10, 1, &l, &why), 0);
	meta_sb_defaults(&sb);
	sb.data_bytes = l.data_bytes;
	sb.extent_bytes = l.extent_bytes;
	cr_assert_eq(meta_sb_check_layout(&sb, &l, buf, sizeof(buf)), 0);
	sb.data_bytes = l.data_bytes + 4096;
	cr_assert_eq(meta_sb_check_layout(&sb, &l, buf, sizeof(buf)), -1);
	cr_assert(strstr(buf, "data_bytes (the data area's size): superblock says"), "%s", buf);
	sb.data_bytes = l.data_bytes - 4096;
	cr_assert_eq(meta_sb_check_layout(&sb, &l, buf, sizeof(buf)), -1, "smaller too");
	sb.data_bytes = l.data_bytes;
	sb.extent_bytes = 4096;
	cr_assert_eq(meta_sb_check_layout(&sb, &l, buf, sizeof(buf)), -1);
	cr_assert_str_eq(buf, "extent_bytes (the bitmap granularity): superblock says 4096, "
			      "the layout (bitmap-granularity) 65536");
}

/* ---- version 2: one bitmap slot per peer ---- */

/* With one slot the layout is version 1's, so version 1 metadata is
 * upgraded by rewriting its superblock; with three, the data area gives
 * room for three bitmaps and nothing else moves but the slots. */
Test(meta_layout, slots)
{
	struct meta_layout one, three, ext;
	const char *why = NULL;
	uint64_t backing = GiB + 12345, end = backing / BLK * BLK;

	cr_assert_eq(meta_layout_internal(backing, 64 * KiB, 1, &one, &why), 0, "%s", why);
	cr_assert_eq(one.max_peers, 1);
	cr_assert_eq(one.meta_bytes, meta_for(one.data_bytes, 64 * KiB), "version 1's size");
	cr_assert_eq(meta_layout_bm_offset(&one, 0), one.bm_offset);

	cr_assert_eq(meta_layout_internal(backing, 64 * KiB, 3, &three, &why), 0, "%s", why);
	cr_assert_eq(three.max_peers, 3);
	cr_assert_eq(three.meta_bytes, 4 * BLK + 3 * three.bm_bytes);
	cr_assert_eq(three.sb_offset[0] + three.meta_bytes, end, "the meta area ends the store");
	cr_assert_leq(three.data_bytes, three.sb_offset[0]);
	cr_assert_leq(three.sb_offset[0] - three.data_bytes, BLK, "at most one block unused");
	cr_assert_lt(three.data_bytes, one.data_bytes);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(meta_layout_bm_offset(&three, i),
			     three.sb_offset[0] + 4 * BLK + i * three.bm_bytes, "slot %u", i);
	cr_assert_eq(meta_layout_bm_offset(&three, 2) + three.bm_bytes, end);

	cr_assert_eq(meta_layout_external(GiB, 4 * BLK + 3 * BLK, 64 * KiB, 3, &ext, &why), 0,
		     "%s", why);
	cr_assert_eq(meta_layout_bm_offset(&ext, 2), 6 * BLK);
	cr_assert_eq(meta_layout_external(GiB, 4 * BLK + 3 * BLK - 1, 64 * KiB, 3, &ext, &why),
		     -1);
	cr_assert(strstr(why, "meta file too small"), "%s", why);

	cr_assert_eq(meta_layout_internal(GiB, 64 * KiB, 0, &ext, &why), -1);
	cr_assert(strstr(why, "max-peers"), "%s", why);
	cr_assert_eq(meta_layout_internal(GiB, 64 * KiB, META_PEERS_MAX + 1, &ext, &why), -1);
	cr_assert_eq(meta_layout_external(GiB, GiB, 64 * KiB, 8, &ext, &why), -1);
	cr_assert_eq(meta_layout_internal(GiB, 64 * KiB, META_PEERS_MAX, &ext, &why), 0);
}

/* Version 1 is read as version 2 with one slot holding its bitmap id and
 * peer disk; the slot's name is for the daemon to fill in. */
Test(meta_sb, version_1_is_read_as_one_slot)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t blk[BLK];
	const char *why = NULL;
	char text[2048];

	meta_v1_encode(&in, blk);
	cr_assert_eq(blk[8], 1);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), 0, "%s", why);
	cr_assert_eq(out.version, 1);
	cr_assert_eq(out.max_peers, 1);
	cr_assert_str_eq(out.slot[0].node, "");
	cr_assert_eq(out.slot[0].bitmap_gen, 0x5555666677778888ULL);
	cr_assert_eq(out.slot[0].disk, META_DISK_OUTDATED);
	cr_assert_eq(out.gen.bitmap, 0);
	cr_assert_eq(out.gen.current, in.gen.current);
	cr_assert_eq(out.agreed_bytes, in.agreed_bytes);
	meta_sb_to_text(&out, text, sizeof(text));
	cr_assert(strstr(text, "version:          1\n"), "%s", text);
	cr_assert(strstr(text, "slot 0:           peer (unassigned), bitmap_gen 5555666677778888"),
		  "%s", text);

	/* Version 1 had no fields past 236. */
	blk[300] = 1;
	reseal(blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert(strstr(why, "unused bytes"), "%s", why);
	meta_v1_encode(&in, blk);
	blk[225] = 9;
	reseal(blk);
	cr_assert_eq(meta_sb_decode(blk, &out, &why), -1);
	cr_assert(strstr(why, "disk state"), "%s", why);
}

/* After an upgrade one copy is version 1 and the other version 2: the
 * higher seq wins as between any two copies. */
Test(meta_sb, pick_across_the_upgrade)
{
	struct meta_sb in = sample_sb(), out;
	uint8_t a[BLK], b[BLK];
	const char *why = NULL;
	int which = -1;

	in.seq = 5;
	meta_v1_encode(&in, a);
	in.seq = 6;
	meta_sb_encode(&in, b);
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0, "%s", why);
	cr_assert_eq(which, 1);
	cr_assert_eq(out.version, 2);
	cr_assert_eq(out.max_peers, 3);
	b[700] ^= 1;	/* the version 2 write torn: version 1 again, upgraded again */
	cr_assert_eq(meta_sb_pick(a, b, &out, &which, &why), 0);
	cr_assert_eq(which, 0);
	cr_assert_eq(out.version, 1);
}

Test(meta_sb, assign_slots)
{
	struct meta_sb sb = sample_sb();	/* beta, gamma, one free */
	const char *two[] = { "gamma", "delta" }, *three[] = { "beta", "delta", "eps" };

	cr_assert_eq(meta_sb_slot(&sb, "gamma"), 1);
	cr_assert_eq(meta_sb_slot(&sb, "delta"), -1);
	cr_assert_eq(meta_sb_slot(&sb, ""), -1, "a free slot is no peer's");
	cr_assert_eq(meta_sb_assign_slots(&sb, two, 2), 1);
	cr_assert_eq(meta_sb_slot(&sb, "delta"), 2, "the first free slot");
	cr_assert_eq(meta_sb_slot(&sb, "beta"), 0, "a slot no longer in the list is kept");
	cr_assert_eq(meta_sb_assign_slots(&sb, two, 2), 0, "nothing new");
	cr_assert_eq(meta_sb_assign_slots(&sb, three, 3), -1, "no free slot for eps");
	cr_assert_eq(meta_sb_slot(&sb, "eps"), -1, "refused: unchanged");

	/* Version 1's slot keeps its bitmap id once named. */
	meta_sb_defaults(&sb);
	sb.slot[0].bitmap_gen = 77;
	cr_assert_eq(meta_sb_assign_slots(&sb, three, 1), 1);
	cr_assert_str_eq(sb.slot[0].node, "beta");
	cr_assert_eq(sb.slot[0].bitmap_gen, 77);
	cr_assert_eq(meta_sb_assign_slots(&sb, two, 2), -1, "two peers, one slot");
}
