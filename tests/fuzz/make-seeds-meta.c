/* Writes the fuzz_meta seed corpus.  From the repository root:
 *   cc -I. -D_GNU_SOURCE tests/fuzz/make-seeds-meta.c daemon/meta/meta.c utils/bitmap.c utils/namefield.c -lxxhash -o /tmp/seeds && /tmp/seeds */
#include <stdio.h>
#include <string.h>
#include "daemon/meta/meta.h"
#include "utils/bitmap.h"
#include "tests/meta_v1.h"

#define BLK 4096
static uint8_t in[2 * BLK + 12 + 4096];

static void sb_fill(struct meta_sb *sp, uint64_t seq, uint32_t flags)
{
	struct meta_sb s;

	meta_sb_defaults(&s);
	s.seq = seq;
	strcpy(s.resource, "r0");
	strcpy(s.node, seq % 2 ? "alpha" : "beta");
	s.data_bytes = (1ULL << 30) - 20480;
	s.gen.current = 0x1234567890abcdefULL + seq;
	s.gen.history[0] = 0x99;
	strcpy(s.slot[0].node, seq % 2 ? "beta" : "alpha");
	s.slot[0].bitmap_gen = 0x42;
	s.flags = flags;
	s.disk = META_DISK_UPTODATE;
	s.nbd_index = (int32_t)seq % 3 - 1;
	*sp = s;
}

static void sb(uint8_t *blk, uint64_t seq, uint32_t flags)
{
	struct meta_sb s;

	sb_fill(&s, seq, flags);
	meta_sb_encode(&s, blk);
}

/* Version 1, as blkrep before metadata version 2 wrote it. */
static void sb_v1(uint8_t *blk, uint64_t seq, uint32_t flags)
{
	struct meta_sb s;

	sb_fill(&s, seq, flags);
	s.slot[0].disk = META_DISK_OUTDATED;
	meta_v1_encode(&s, blk);
}

/* Seven slots: five named (two stale), two free. */
static void sb_slots(uint8_t *blk, uint64_t seq)
{
	static const char *const names[] = { "omega", "gamma", "", "delta", "", "eps", "zeta" };
	struct meta_sb s;

	sb_fill(&s, seq, META_F_CLEAN);
	s.max_peers = META_PEERS_MAX;
	for (unsigned i = 0; i < META_PEERS_MAX; i++) {
		strcpy(s.slot[i].node, names[i]);
		s.slot[i].bitmap_gen = names[i][0] ? 0x1000 + i : 0;
		s.slot[i].disk = names[i][0] ? (enum meta_disk)(i % 4) : META_DISK_INCONSISTENT;
	}
	meta_sb_encode(&s, blk);
}

static void al(uint8_t *blk, uint64_t seq, unsigned n)
{
	static uint32_t ext[META_AL_MAX];

	for (unsigned i = 0; i < n; i++)
		ext[i] = i * 7 + (uint32_t)seq;
	meta_al_encode(seq, ext, n, blk);
}

static void tail(uint32_t nbits, uint32_t page, uint32_t first_byte, size_t extra)
{
	uint8_t *h = in + 2 * BLK;

	for (int i = 0; i < 4; i++) {
		h[i] = (uint8_t)(nbits >> (8 * i));
		h[4 + i] = (uint8_t)(page >> (8 * i));
		h[8 + i] = (uint8_t)(first_byte >> (8 * i));
	}
	for (size_t i = 0; i < extra; i++)
		h[12 + i] = (uint8_t)(i * 37 + 1);
}

static void save(const char *name, size_t extra)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_meta/%s", name);
	f = fopen(path, "wb");
	fwrite(in, 1, 2 * BLK + 12 + extra, f);
	fclose(f);
}

int main(void)
{
	sb(in, 1, META_F_CLEAN); sb(in + BLK, 2, META_F_CRASHED_PRIMARY | META_F_WAS_PRIMARY);
	tail(100000, 1, 3, 64);
	save("sb_both_valid", 64);

	sb(in, 5, META_F_ZEROED); sb(in + BLK, 6, 0);
	memset(in + BLK + 2048, 0, 2048);
	tail(32768 * 2 + 5, 2, 8192, 300);
	save("sb_torn_newest", 300);

	sb(in, 3, 0); sb(in + BLK, 4, 0);
	in[BLK + 8] = 3;
	tail(9, 0, 0, 2);
	save("sb_newer_version", 2);

	memset(in, 0, 2 * BLK);
	sb(in + BLK, 1, META_F_CLEAN);
	tail(1, 0, 0, 0);
	save("sb_only_b", 0);

	al(in, 10, 0); al(in + BLK, 11, 257);
	tail(4096, 0, 4, 4096);
	save("al_both_valid", 4096);

	al(in, 20, META_AL_MAX); al(in + BLK, 21, 3);
	in[BLK + 100] ^= 1;
	tail(32768 * 3, 3, 12000, 16);
	save("al_corrupt_newest", 16);

	sb(in, 9, META_F_CLEAN); al(in + BLK, 9, 16);
	memset(in, 0xff, 0);
	tail(77, 0, 1, 8);
	for (int i = 0; i < 4096; i++) in[i] = (uint8_t)(i * 13);
	sb(in + 0, 9, 0);
	save("mixed_sb_al", 8);

	sb_v1(in, 1, META_F_CLEAN); sb_v1(in + BLK, 2, META_F_WAS_PRIMARY);
	tail(4096, 0, 0, 0);
	in[2 * BLK + 10] = 1;	/* layout: one slot */
	save("sb_v1_both", 0);

	sb_v1(in, 7, META_F_CLEAN); sb(in + BLK, 8, META_F_CLEAN);
	tail(100000, 0, 0, 0);
	in[2 * BLK + 10] = 3;
	save("sb_v1_then_v2", 0);

	sb_slots(in, 4); sb_slots(in + BLK, 5);
	in[BLK + 300] ^= 1;
	tail(32768, 1, 0, 0);
	in[2 * BLK + 10] = 7;
	save("sb_seven_slots", 0);

	memset(in, 0, sizeof(in));
	save("zeros", 0);
	return 0;
}
