/* The torture tool's block format.  Pure code, no I/O.
 *
 * Every block nbdtorture writes starts with a 64-byte little-endian header
 * saying who wrote it and where it belongs, followed by pseudo-random fill
 * derived from (seed, seq, block), so that a block copied from elsewhere,
 * left by another run or half-written is recognisable:
 *
 *   0 magic "BLKRTORT" | 8 writer u32 | 12 conn u32 | 16 seq u64
 *   24 block u64 | 32 seed u64 | 40 XXH64 of the whole block with this
 *   field zeroed u64 | 48..63 zero
 */
#ifndef BLKREP_TORTURE_TBLOCK_H
#define BLKREP_TORTURE_TBLOCK_H

#include <stddef.h>
#include <stdint.h>

#define TBLOCK_MAGIC	 0x54524f54524b4c42ULL /* "BLKRTORT" read little-endian */
#define TBLOCK_HDR_SIZE	 64
#define TBLOCK_MIN_SIZE	 512
#define TBLOCK_MAX_SIZE	 (1U << 20)

struct tblock_hdr {
	uint32_t writer;
	uint32_t conn;
	uint64_t seq;
	uint64_t block;
	uint64_t seed;
};

enum tblock_kind {
	TBLOCK_ZERO,	/* every byte zero */
	TBLOCK_VALID,	/* magic and checksum right: *h says whose it is */
	TBLOCK_TORN,	/* magic present, checksum wrong */
	TBLOCK_GARBAGE, /* nonzero, no magic */
};

/* Fills buf (size bytes, a power of two in [TBLOCK_MIN_SIZE,
 * TBLOCK_MAX_SIZE]) with the block h describes, checksum included. */
void tblock_fill(void *buf, size_t size, const struct tblock_hdr *h);

/* Classifies the size bytes at buf; for TBLOCK_VALID fills *h.  Whether a
 * valid block belongs where it was found is the caller's question. */
enum tblock_kind tblock_decode(const void *buf, size_t size, struct tblock_hdr *h);

/* "zero", "valid", "torn", "garbage". */
const char *tblock_kind_name(enum tblock_kind k);

#endif
