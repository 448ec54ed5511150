/* A version 1 superblock encoder, for tests only (the daemon writes
 * version 2 and only reads version 1): encodes sb as version 2, then
 * rewrites the block as version 1 did, with slot 0's bitmap id and disk in
 * version 1's gen bitmap and peer disk fields (daemon/meta/meta.c). */
#ifndef BLKREP_TESTS_META_V1_H
#define BLKREP_TESTS_META_V1_H

#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/meta/meta.h"

static inline void meta_v1_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void meta_v1_encode(const struct meta_sb *sb, uint8_t *blk)
{
	struct meta_sb v2 = *sb;
	uint64_t h;

	v2.max_peers = 1;
	memset(v2.slot, 0, sizeof(v2.slot));
	meta_sb_encode(&v2, blk);
	blk[8] = 1;				/* version */
	meta_v1_put64(blk + 184, sb->slot[0].bitmap_gen);
	blk[225] = (uint8_t)sb->slot[0].disk;	/* peer disk */
	memset(blk + 236, 0, META_BLOCK_BYTES - 236);
	h = XXH64(blk, META_BLOCK_BYTES, 0);
	meta_v1_put64(blk + META_BLOCK_BYTES - 8, h);
}

#endif
