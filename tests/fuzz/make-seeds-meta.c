/* Writes the fuzz_meta seed corpus.  From the repository root:
 *   cc -I. -D_GNU_SOURCE tests/fuzz/make-seeds-meta.c daemon/meta/meta.c utils/bitmap.c utils/namefield.c -lxxhash -o /tmp/seeds && /tmp/seeds */
#include <stdio.h>
#include <string.h>
#include "daemon/meta/meta.h"
#include "utils/bitmap.h"

#define BLK 4096
static uint8_t in[2 * BLK + 12 + 4096];

static void sb(uint8_t *blk, uint64_t seq, uint32_t flags)
{
	struct meta_sb s;

	meta_sb_defaults(&s);
	s.seq = seq;
	strcpy(s.resource, "r0");
	strcpy(s.node, seq % 2 ? "alpha" : "beta");
	s.data_bytes = (1ULL << 30) - 20480;
	s.gen.current = 0x1234567890abcdefULL + seq;
	s.gen.bitmap = 0x42;
	s.gen.history[0] = 0x99;
	s.flags = flags;
	s.disk = META_DISK_UPTODATE;
	s.nbd_index = (int32_t)seq % 3 - 1;
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
	in[BLK + 8] = 2;
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

	memset(in, 0, sizeof(in));
	save("zeros", 0);
	return 0;
}
