/* The metadata codec.  Superblock (offsets in bytes, little-endian):
 *
 *	   0  magic "BLKREPMD"		 152  data_bytes u64
 *	   8  version u32		 160  extent_bytes u32
 *	  12  flags u32			 164  al_extent_bytes u32
 *	  16  seq u64			 168  al_slots u32
 *	  24  resource name [64]	 172  nbd_index i32
 *	  88  node name [64]		 176  gen current, bitmap, history[4] u64
 *	 224  disk u8, peer disk u8 (v1; v2: zero), mode u8, reserved u8
 *	 228  agreed_bytes u64 (0 in metadata written before it existed)
 *	 236  v1: reserved, zero ... 4088  XXH64 u64
 *	 236  v2: max_peers u32
 *	 240  v2: META_PEERS_MAX slots of 80 bytes: node name [64], bitmap gen
 *	      u64, disk u8, reserved [3], flags u32
 *	 800  v2: reserved, zero ... 4088  XXH64 u64
 * In version 2 the bitmap id at 184 (gen bitmap) is zero: the bitmap ids
 * are the slots'.
 *
 * Activity-log block: magic "BLKREPAL", seq u64 at 8, count u32 at 16, count
 * extent numbers u32 from 20, zero up to the XXH64 at 4088.
 *
 * Decoding is strict (unused bytes must be zero), so a block that decodes
 * re-encodes to the same bytes. */
#include "meta.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "utils/namefield.h"

#define BLK		META_BLOCK_BYTES
#define CSUM_OFF	(BLK - 8)

#define SB_MAGIC	"BLKREPMD"
#define SB_VERSION	8
#define SB_FLAGS	12
#define SB_SEQ		16
#define SB_RESOURCE	24
#define SB_NODE		88
#define SB_DATA_BYTES	152
#define SB_EXTENT	160
#define SB_AL_EXTENT	164
#define SB_AL_SLOTS	168
#define SB_NBD_INDEX	172
#define SB_GEN		176
#define SB_DISK		224
#define SB_PEER_DISK	225
#define SB_MODE		226
#define SB_AGREED	228
#define SB_END_V1	236	/* first unused byte of version 1 */
#define SB_MAX_PEERS	236
#define SB_SLOTS	240
#define SLOT_BYTES	80
#define SLOT_GEN	64
#define SLOT_DISK	72
#define SLOT_FLAGS	76
#define SB_END		(SB_SLOTS + META_PEERS_MAX * SLOT_BYTES)	/* first unused byte */

#define AL_MAGIC	"BLKREPAL"
#define AL_SEQ		8
#define AL_COUNT	16
#define AL_EXT		20

/* Versions up to this are taken for real, newer ones; above, for garbage. */
#define VERSION_PLAUSIBLE	0xffffU

/* Why a block was refused, from least to most important for pick. */
enum refusal {
	OK,
	NO_MAGIC,
	CORRUPT,
	NEWER,
};

_Static_assert(META_AL_MAX == (CSUM_OFF - AL_EXT) / 4, "META_AL_MAX is what fits");
_Static_assert(META_AL_MAX >= META_AL_SLOTS_MAX, "a snapshot holds the largest log");

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* XXH64 of the block with its checksum field taken as zero. */
static uint64_t block_csum(const uint8_t *blk)
{
	uint8_t tmp[BLK];

	memcpy(tmp, blk, CSUM_OFF);
	memset(tmp + CSUM_OFF, 0, 8);
	return XXH64(tmp, BLK, 0);
}

static void seal(uint8_t *blk)
{
	put_le64(blk + CSUM_OFF, block_csum(blk));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- layout ---- */

#define FIXED_BYTES	(4 * (uint64_t)BLK)	/* two superblocks, two AL blocks */

static uint64_t bitmap_bytes(uint64_t data_bytes, uint32_t extent_bytes)
{
	uint64_t nbits = div_up(data_bytes, extent_bytes);

	return div_up(div_up(nbits, 8), BLK) * BLK;
}

static void fill_layout(struct meta_layout *l, uint64_t data_bytes, uint32_t extent_bytes,
			unsigned max_peers, uint64_t meta_offset)
{
	memset(l, 0, sizeof(*l));
	l->data_bytes = data_bytes;
	l->extent_bytes = extent_bytes;
	l->nbits = div_up(data_bytes, extent_bytes);
	l->bm_bytes = bitmap_bytes(data_bytes, extent_bytes);
	l->max_peers = max_peers;
	l->meta_bytes = FIXED_BYTES + max_peers * l->bm_bytes;
	l->sb_offset[0] = meta_offset;
	l->sb_offset[1] = meta_offset + BLK;
	l->al_offset[0] = meta_offset + 2 * BLK;
	l->al_offset[1] = meta_offset + 3 * BLK;
	l->bm_offset = meta_offset + FIXED_BYTES;
}

uint64_t meta_layout_bm_offset(const struct meta_layout *l, unsigned i)
{
	return l->bm_offset + (uint64_t)i * l->bm_bytes;
}

static int check_extent(uint32_t extent_bytes, unsigned max_peers, const char **why)
{
	if (max_peers < 1 || max_peers > META_PEERS_MAX) {
		*why = "max-peers must be 1 to 7";
		return -1;
	}
	if (!is_pow2(extent_bytes) || extent_bytes < META_EXTENT_MIN ||
	    extent_bytes > META_EXTENT_MAX) {
		*why = "extent size must be a power of two from 4 KiB to 1 MiB";
		return -1;
	}
	return 0;
}

/* The data area depends on the bitmap size and the bitmap size on the data
 * area.  With p bitmap pages per slot and n slots the data area is at most
 * the room left, end - FIXED - 4096 n p, and at most what p pages cover,
 * p * 32768 * extent: one falls and one rises with p, so the best p is
 * where they cross, the floor or the ceiling of end - FIXED over (32768 *
 * extent + 4096 n).  Both are multiples of 4096, so no rounding and no
 * iteration is needed. */
int meta_layout_internal(uint64_t backing_bytes, uint32_t extent_bytes, unsigned max_peers,
			 struct meta_layout *l, const char **why)
{
	uint64_t end = backing_bytes / BLK * BLK, page_covers, p0, best = 0, n = max_peers;

	if (check_extent(extent_bytes, max_peers, why))
		return -1;
	page_covers = (uint64_t)BLK * 8 * extent_bytes;
	if (end <= FIXED_BYTES + n * BLK) {
		*why = "backing store too small for data and metadata";
		return -1;
	}
	p0 = (end - FIXED_BYTES) / (page_covers + n * BLK);
	for (uint64_t p = p0; p <= p0 + 1; p++) {
		uint64_t room, covered, d;

		if (p == 0 || FIXED_BYTES + n * p * BLK >= end)
			continue;
		room = end - FIXED_BYTES - n * p * BLK;
		covered = p > UINT64_MAX / page_covers ? UINT64_MAX : p * page_covers;
		d = room < covered ? room : covered;
		if (d > best)
			best = d;
	}
	if (best == 0) {
		*why = "backing store too small for data and metadata";
		return -1;
	}
	fill_layout(l, best, extent_bytes, max_peers, 0);
	fill_layout(l, best, extent_bytes, max_peers, end - l->meta_bytes);
	return 0;
}

int meta_layout_external(uint64_t backing_bytes, uint64_t meta_file_bytes,
			 uint32_t extent_bytes, unsigned max_peers, struct meta_layout *l,
			 const char **why)
{
	uint64_t data_bytes = backing_bytes / BLK * BLK;

	if (check_extent(extent_bytes, max_peers, why))
		return -1;
	if (data_bytes == 0) {
		*why = "backing store too small (under 4096 bytes)";
		return -1;
	}
	if (meta_file_bytes < FIXED_BYTES + max_peers * bitmap_bytes(data_bytes, extent_bytes)) {
		*why = "meta file too small for this backing store";
		return -1;
	}
	fill_layout(l, data_bytes, extent_bytes, max_peers, 0);
	return 0;
}

/* ---- superblock ---- */

int meta_sb_check_layout(const struct meta_sb *sb, const struct meta_layout *l, char *why,
			 size_t len)
{
	if (sb->data_bytes != l->data_bytes)
		snprintf(why, len,
			 "data_bytes (the data area's size): superblock says %" PRIu64
			 ", the backing store's layout %" PRIu64,
			 sb->data_bytes, l->data_bytes);
	else if (sb->extent_bytes != l->extent_bytes)
		snprintf(why, len,
			 "extent_bytes (the bitmap granularity): superblock says %" PRIu32
			 ", the layout (bitmap-granularity) %" PRIu32,
			 sb->extent_bytes, l->extent_bytes);
	else
		return 0;
	return -1;
}

void meta_sb_defaults(struct meta_sb *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->version = META_VERSION;
	sb->extent_bytes = META_EXTENT_DEFAULT;
	sb->al_extent_bytes = META_AL_EXTENT_DEFAULT;
	sb->al_slots = META_AL_SLOTS_DEFAULT;
	sb->disk = META_DISK_INCONSISTENT;
	sb->mode = META_MODE_SYNC;
	sb->nbd_index = -1;
	sb->max_peers = 1;
}

int meta_sb_slot(const struct meta_sb *sb, const char *name)
{
	if (!name[0])
		return -1;
	for (unsigned i = 0; i < sb->max_peers && i < META_PEERS_MAX; i++)
		if (!strcmp(sb->slot[i].node, name))
			return (int)i;
	return -1;
}

int meta_sb_assign_slots(struct meta_sb *sb, const char *const *peers, unsigned n)
{
	unsigned missing = 0, free_slots = 0, next = 0;

	for (unsigned i = 0; i < n; i++)
		missing += meta_sb_slot(sb, peers[i]) < 0;
	for (unsigned i = 0; i < sb->max_peers; i++)
		free_slots += !sb->slot[i].node[0];
	if (missing > free_slots)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (meta_sb_slot(sb, peers[i]) >= 0)
			continue;
		while (sb->slot[next].node[0])
			next++;
		snprintf(sb->slot[next].node, META_NAME_BYTES, "%s", peers[i]);
	}
	return (int)missing;
}

static void put_name(uint8_t *p, const char *name)
{
	size_t n = strnlen(name, META_NAME_MAX);

	memset(p, 0, META_NAME_BYTES);
	memcpy(p, name, n);
}

static void put_slot(uint8_t *p, const struct meta_slot *s)
{
	put_name(p, s->node);
	put_le64(p + SLOT_GEN, s->bitmap_gen);
	p[SLOT_DISK] = (uint8_t)s->disk;
	put_le32(p + SLOT_FLAGS, s->flags);
}

void meta_sb_encode(const struct meta_sb *sb, uint8_t *blk)
{
	/* The bitmap ids live in the slots now. */
	assert(sb->gen.bitmap == 0);
	memset(blk, 0, BLK);
	memcpy(blk, SB_MAGIC, 8);
	put_le32(blk + SB_VERSION, META_VERSION);
	put_le32(blk + SB_FLAGS, sb->flags);
	put_le64(blk + SB_SEQ, sb->seq);
	put_name(blk + SB_RESOURCE, sb->resource);
	put_name(blk + SB_NODE, sb->node);
	put_le64(blk + SB_DATA_BYTES, sb->data_bytes);
	put_le32(blk + SB_EXTENT, sb->extent_bytes);
	put_le32(blk + SB_AL_EXTENT, sb->al_extent_bytes);
	put_le32(blk + SB_AL_SLOTS, sb->al_slots);
	put_le32(blk + SB_NBD_INDEX, (uint32_t)sb->nbd_index);
	put_le64(blk + SB_GEN, sb->gen.current);
	for (int i = 0; i < META_GEN_HISTORY; i++)
		put_le64(blk + SB_GEN + 16 + 8 * i, sb->gen.history[i]);
	blk[SB_DISK] = (uint8_t)sb->disk;
	blk[SB_MODE] = (uint8_t)sb->mode;
	put_le64(blk + SB_AGREED, sb->agreed_bytes);
	put_le32(blk + SB_MAX_PEERS, sb->max_peers);
	for (unsigned i = 0; i < sb->max_peers && i < META_PEERS_MAX; i++)
		put_slot(blk + SB_SLOTS + i * SLOT_BYTES, &sb->slot[i]);
	seal(blk);
}

/* A name field (see utils/namefield.h), copied out with its NUL. */
static bool get_name(const uint8_t *p, char *name)
{
	if (!namefield_valid(p, META_NAME_BYTES))
		return false;
	memcpy(name, p, strlen((const char *)p) + 1);
	return true;
}

static enum refusal check_version(uint32_t version, const char **why)
{
	static __thread char msg[80];

	if (version == META_VERSION || version == 1)
		return OK;
	if (version > META_VERSION && version <= VERSION_PLAUSIBLE) {
		snprintf(msg, sizeof(msg), "metadata version %" PRIu32
			 " is newer than this blkrep (%u)", version, META_VERSION);
		*why = msg;
		return NEWER;
	}
	snprintf(msg, sizeof(msg), "unknown metadata version %" PRIu32 " (corrupt)", version);
	*why = msg;
	return CORRUPT;
}

/* One slot of a version 2 block: NULL if valid, else why not. */
static const char *get_slot(const uint8_t *p, struct meta_sb *sb, unsigned i)
{
	struct meta_slot *s = &sb->slot[i];

	if (i >= sb->max_peers)
		return all_zero(p, SLOT_BYTES) ? NULL
					       : "metadata unused peer slot is not zero (corrupt)";
	if (p[0] ? !get_name(p, s->node) : !all_zero(p, META_NAME_BYTES))
		return "metadata peer slot name is not a printable NUL-terminated string (corrupt)";
	s->bitmap_gen = get_le64(p + SLOT_GEN);
	s->flags = get_le32(p + SLOT_FLAGS);
	if (p[SLOT_DISK] > META_DISK_UPTODATE)
		return "metadata peer slot disk state unknown (corrupt)";
	s->disk = (enum meta_disk)p[SLOT_DISK];
	if (!s->node[0] && !all_zero(p, SLOT_BYTES))
		return "metadata free peer slot is not zero (corrupt)";
	if (s->flags || !all_zero(p + SLOT_DISK + 1, 3))
		return "metadata peer slot has unknown flags or reserved bytes (corrupt)";
	if (s->node[0] && !strcmp(s->node, sb->node))
		return "metadata peer slot names the node itself (corrupt)";
	for (unsigned j = 0; j < i; j++)
		if (s->node[0] && !strcmp(s->node, sb->slot[j].node))
			return "metadata names one peer in two slots (corrupt)";
	return NULL;
}

/* The fields version 2 added; version 1's bitmap id and peer disk become
 * slot 0's. */
static const char *get_slots(const uint8_t *blk, uint32_t version, struct meta_sb *sb)
{
	const char *why = NULL;

	if (version == 1) {
		sb->max_peers = 1;
		sb->slot[0].bitmap_gen = get_le64(blk + SB_GEN + 8);
		sb->slot[0].disk = (enum meta_disk)blk[SB_PEER_DISK];
		return blk[SB_PEER_DISK] > META_DISK_UPTODATE
			       ? "metadata disk state unknown (corrupt)"
		       : !all_zero(blk + SB_END_V1, CSUM_OFF - SB_END_V1)
			       ? "metadata unused bytes are not zero (corrupt)"
			       : NULL;
	}
	sb->max_peers = get_le32(blk + SB_MAX_PEERS);
	if (sb->max_peers < 1 || sb->max_peers > META_PEERS_MAX)
		return "metadata peer slot count (max-peers) out of range (corrupt)";
	if (get_le64(blk + SB_GEN + 8) || blk[SB_PEER_DISK] ||
	    !all_zero(blk + SB_END, CSUM_OFF - SB_END))
		return "metadata unused bytes are not zero (corrupt)";
	for (unsigned i = 0; i < META_PEERS_MAX && !why; i++)
		why = get_slot(blk + SB_SLOTS + i * SLOT_BYTES, sb, i);
	return why;
}

/* Checks the fields of a block whose magic, version and checksum are good. */
static enum refusal sb_fields(const uint8_t *blk, struct meta_sb *sb, const char **why)
{
	uint8_t disk = blk[SB_DISK], mode = blk[SB_MODE];
	const char *slots_why;

	memset(sb, 0, sizeof(*sb));
	sb->version = get_le32(blk + SB_VERSION);
	sb->seq = get_le64(blk + SB_SEQ);
	sb->flags = get_le32(blk + SB_FLAGS);
	sb->data_bytes = get_le64(blk + SB_DATA_BYTES);
	sb->extent_bytes = get_le32(blk + SB_EXTENT);
	sb->al_extent_bytes = get_le32(blk + SB_AL_EXTENT);
	sb->al_slots = get_le32(blk + SB_AL_SLOTS);
	sb->nbd_index = (int32_t)get_le32(blk + SB_NBD_INDEX);
	sb->agreed_bytes = get_le64(blk + SB_AGREED);
	sb->gen.current = get_le64(blk + SB_GEN);
	for (int i = 0; i < META_GEN_HISTORY; i++)
		sb->gen.history[i] = get_le64(blk + SB_GEN + 16 + 8 * i);

	if (!get_name(blk + SB_RESOURCE, sb->resource))
		*why = "metadata resource name is not a printable NUL-terminated string (corrupt)";
	else if (!get_name(blk + SB_NODE, sb->node))
		*why = "metadata node name is not a printable NUL-terminated string (corrupt)";
	else if (sb->data_bytes == 0 || sb->data_bytes % BLK)
		*why = "metadata data size is zero or not a multiple of 4096 (corrupt)";
	else if (!is_pow2(sb->extent_bytes) || sb->extent_bytes < META_EXTENT_MIN ||
		 sb->extent_bytes > META_EXTENT_MAX)
		*why = "metadata extent size out of range (corrupt)";
	else if (!is_pow2(sb->al_extent_bytes) || sb->al_extent_bytes < META_AL_EXTENT_MIN ||
		 sb->al_extent_bytes > META_AL_EXTENT_MAX ||
		 div_up(sb->data_bytes, sb->al_extent_bytes) > (uint64_t)UINT32_MAX + 1)
		*why = "metadata activity-log extent size out of range (corrupt)";
	else if (sb->al_slots < META_AL_SLOTS_MIN || sb->al_slots > META_AL_SLOTS_MAX)
		*why = "metadata activity-log slot count out of range (corrupt)";
	else if (sb->flags & ~META_F_ALL)
		*why = "metadata has unknown flags (corrupt)";
	else if (disk > META_DISK_UPTODATE)
		*why = "metadata disk state unknown (corrupt)";
	else if (mode > META_MODE_ASYNC)
		*why = "metadata replication mode unknown (corrupt)";
	else if (sb->nbd_index < -1)
		*why = "metadata NBD device index invalid (corrupt)";
	else if (sb->agreed_bytes % BLK || sb->agreed_bytes > sb->data_bytes)
		*why = "metadata agreed export size is not a multiple of 4096 or exceeds the data "
		       "area (corrupt)";
	else if (blk[SB_MODE + 1])
		*why = "metadata unused bytes are not zero (corrupt)";
	else if ((slots_why = get_slots(blk, sb->version, sb)))
		*why = slots_why;
	else {
		sb->disk = (enum meta_disk)disk;
		sb->mode = (enum meta_mode)mode;
		return OK;
	}
	return CORRUPT;
}

static enum refusal sb_decode(const uint8_t *blk, struct meta_sb *sb, const char **why)
{
	enum refusal r;

	if (memcmp(blk, SB_MAGIC, 8)) {
		*why = META_WHY_NONE;
		return NO_MAGIC;
	}
	/* Before the checksum: a newer version may checksum differently. */
	r = check_version(get_le32(blk + SB_VERSION), why);
	if (r != OK)
		return r;
	if (get_le64(blk + CSUM_OFF) != block_csum(blk)) {
		*why = "metadata checksum mismatch (corrupt)";
		return CORRUPT;
	}
	return sb_fields(blk, sb, why);
}

int meta_sb_decode(const uint8_t *blk, struct meta_sb *sb, const char **why)
{
	return sb_decode(blk, sb, why) == OK ? 0 : -1;
}

/* Shared by both picks: given the verdicts and seqs of the two copies,
 * returns the copy to use (0 or 1), or -1, and sets *why. */
static int pick(enum refusal ra, const char *why_a, uint64_t seq_a, enum refusal rb,
		const char *why_b, uint64_t seq_b, const char **why)
{
	if (ra == NEWER || rb == NEWER) {
		*why = ra == NEWER ? why_a : why_b;
		return -1;
	}
	if (ra == OK && rb == OK) {
		*why = NULL;
		return seq_b > seq_a ? 1 : 0;
	}
	if (ra == OK) {
		*why = why_b;
		return 0;
	}
	if (rb == OK) {
		*why = why_a;
		return 1;
	}
	*why = rb > ra ? why_b : why_a;
	return -1;
}

int meta_sb_pick(const uint8_t *a, const uint8_t *b, struct meta_sb *out, int *which,
		 const char **why)
{
	struct meta_sb sa = { 0 }, sb = { 0 };
	const char *why_a = NULL, *why_b = NULL;
	enum refusal ra, rb;
	int w;

	ra = sb_decode(a, &sa, &why_a);
	rb = sb_decode(b, &sb, &why_b);
	w = pick(ra, why_a, sa.seq, rb, why_b, sb.seq, why);
	if (w < 0)
		return -1;
	*out = w ? sb : sa;
	*which = w;
	return 0;
}

/* ---- activity log ---- */

void meta_al_encode(uint64_t seq, const uint32_t *ext, unsigned n, uint8_t *blk)
{
	if (n > META_AL_MAX)
		n = META_AL_MAX;
	memset(blk, 0, BLK);
	memcpy(blk, AL_MAGIC, 8);
	put_le64(blk + AL_SEQ, seq);
	put_le32(blk + AL_COUNT, n);
	for (unsigned i = 0; i < n; i++)
		put_le32(blk + AL_EXT + 4 * i, ext[i]);
	seal(blk);
}

/* Validates an AL block without copying the extents out. */
static enum refusal al_check(const uint8_t *blk, unsigned max, uint64_t *seq, unsigned *n,
			     const char **why)
{
	uint32_t count;

	*seq = 0;
	*n = 0;
	if (memcmp(blk, AL_MAGIC, 8)) {
		*why = "no activity log here";
		return NO_MAGIC;
	}
	if (get_le64(blk + CSUM_OFF) != block_csum(blk)) {
		*why = "activity log checksum mismatch (corrupt)";
		return CORRUPT;
	}
	count = get_le32(blk + AL_COUNT);
	if (count > META_AL_MAX) {
		*why = "activity log entry count out of range (corrupt)";
		return CORRUPT;
	}
	if (count > max) {
		*why = "activity log holds more extents than fit";
		return CORRUPT;
	}
	if (!all_zero(blk + AL_EXT + 4 * count, CSUM_OFF - AL_EXT - 4 * count)) {
		*why = "activity log unused bytes are not zero (corrupt)";
		return CORRUPT;
	}
	*seq = get_le64(blk + AL_SEQ);
	*n = count;
	return OK;
}

static void al_copy(const uint8_t *blk, uint32_t *ext, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ext[i] = get_le32(blk + AL_EXT + 4 * i);
}

int meta_al_decode(const uint8_t *blk, uint64_t *seq, uint32_t *ext, unsigned max, unsigned *n,
		   const char **why)
{
	if (al_check(blk, max, seq, n, why) != OK)
		return -1;
	al_copy(blk, ext, *n);
	return 0;
}

int meta_al_pick(const uint8_t *a, const uint8_t *b, uint64_t *seq, uint32_t *ext, unsigned max,
		 unsigned *n, int *which, const char **why)
{
	const char *why_a = NULL, *why_b = NULL;
	uint64_t seq_a, seq_b;
	unsigned n_a, n_b;
	enum refusal ra, rb;
	int w;

	ra = al_check(a, max, &seq_a, &n_a, &why_a);
	rb = al_check(b, max, &seq_b, &n_b, &why_b);
	w = pick(ra, why_a, seq_a, rb, why_b, seq_b, why);
	if (w < 0)
		return -1;
	*seq = w ? seq_b : seq_a;
	*n = w ? n_b : n_a;
	al_copy(w ? b : a, ext, *n);
	*which = w;
	return 0;
}

/* ---- text ---- */

const char *meta_disk_name(enum meta_disk d)
{
	switch (d) {
	case META_DISK_INCONSISTENT:
		return "inconsistent";
	case META_DISK_OUTDATED:
		return "outdated";
	case META_DISK_CONSISTENT:
		return "consistent";
	case META_DISK_UPTODATE:
		return "uptodate";
	}
	return "unknown";
}

int meta_sb_to_text(const struct meta_sb *sb, char *buf, size_t len)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} flag_names[] = {
		{ META_F_CRASHED_PRIMARY, "crashed-primary" },
		{ META_F_CLEAN, "clean" },
		{ META_F_ZEROED, "zeroed" },
		{ META_F_WAS_PRIMARY, "was-primary" },
	};
	char flags[96] = "", nbd[24] = "none";
	size_t fl = 0;
	int n;

	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (sb->flags & flag_names[i].flag)
			fl += (size_t)snprintf(flags + fl, sizeof(flags) - fl, "%s%s",
					       fl ? " " : "", flag_names[i].name);
	if (sb->flags & ~META_F_ALL)
		snprintf(flags + fl, sizeof(flags) - fl, "%s0x%" PRIx32, fl ? " " : "",
			 sb->flags & ~META_F_ALL);
	else if (!sb->flags)
		strcpy(flags, "none");
	if (sb->nbd_index >= 0)
		snprintf(nbd, sizeof(nbd), "/dev/nbd%" PRId32, sb->nbd_index);
	n = snprintf(buf, len,
		     "version:          %" PRIu32 "\n"
		     "seq:              %" PRIu64 "\n"
		     "resource:         %.*s\n"
		     "node:             %.*s\n"
		     "data_bytes:       %" PRIu64 "\n"
		     "extent_bytes:     %" PRIu32 "\n"
		     "al_extent_bytes:  %" PRIu32 "\n"
		     "al_slots:         %" PRIu32 "\n"
		     "generation:       %016" PRIX64 "\n"
		     "history:          %016" PRIX64 " %016" PRIX64 " %016" PRIX64
		     " %016" PRIX64 "\n"
		     "flags:            %s\n"
		     "disk:             %s\n"
		     "mode:             %s\n"
		     "nbd:              %s\n"
		     "agreed_bytes:     %" PRIu64 "\n"
		     "max_peers:        %" PRIu32 "\n",
		     sb->version, sb->seq, (int)META_NAME_MAX, sb->resource, (int)META_NAME_MAX,
		     sb->node, sb->data_bytes, sb->extent_bytes, sb->al_extent_bytes, sb->al_slots,
		     sb->gen.current, sb->gen.history[0], sb->gen.history[1], sb->gen.history[2],
		     sb->gen.history[3], flags, meta_disk_name(sb->disk),
		     sb->mode == META_MODE_SYNC ? "sync" : sb->mode == META_MODE_ASYNC ? "async" : "unknown",
		     nbd, sb->agreed_bytes, sb->max_peers);
	for (unsigned i = 0; i < sb->max_peers && i < META_PEERS_MAX; i++) {
		const struct meta_slot *s = &sb->slot[i];

		if (!s->node[0] && !s->bitmap_gen)
			continue;
		n += snprintf(buf + ((size_t)n < len ? (size_t)n : len),
			      (size_t)n < len ? len - (size_t)n : 0,
			      "slot %u:           peer %.*s, bitmap_gen %016" PRIX64 ", peer_disk %s\n",
			      i, (int)META_NAME_MAX, s->node[0] ? s->node : "(unassigned)",
			      s->bitmap_gen, meta_disk_name(s->disk));
	}
	return n;
}
