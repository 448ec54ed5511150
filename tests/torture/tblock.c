/* The torture tool's block format.  See tblock.h. */
#include "tblock.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

#define OFF_MAGIC  0
#define OFF_WRITER 8
#define OFF_CONN   12
#define OFF_SEQ	   16
#define OFF_BLOCK  24
#define OFF_SEED   32
#define OFF_CSUM   40

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The checksum covers the whole block with its own field read as zero. */
static uint64_t block_checksum(const uint8_t *b, size_t size)
{
	static const uint8_t zero8[8];
	XXH64_state_t st;

	XXH64_reset(&st, 0);
	XXH64_update(&st, b, OFF_CSUM);
	XXH64_update(&st, zero8, 8);
	XXH64_update(&st, b + OFF_CSUM + 8, size - OFF_CSUM - 8);
	return XXH64_digest(&st);
}

void tblock_fill(void *buf, size_t size, const struct tblock_hdr *h)
{
	uint8_t *b = buf;
	uint64_t state = h->seed ^ (h->seq * 0x9e3779b97f4a7c15ULL) ^
			 (h->block * 0xc2b2ae3d27d4eb4fULL);

	memset(b, 0, TBLOCK_HDR_SIZE);
	put_le64(b + OFF_MAGIC, TBLOCK_MAGIC);
	put_le32(b + OFF_WRITER, h->writer);
	put_le32(b + OFF_CONN, h->conn);
	put_le64(b + OFF_SEQ, h->seq);
	put_le64(b + OFF_BLOCK, h->block);
	put_le64(b + OFF_SEED, h->seed);
	for (size_t off = TBLOCK_HDR_SIZE; off < size; off += 8) {
		uint64_t v = splitmix64(&state);

		memcpy(b + off, &v, 8);
	}
	put_le64(b + OFF_CSUM, block_checksum(b, size));
}

static int all_zero(const uint8_t *b, size_t size)
{
	uint64_t acc = 0;

	for (size_t off = 0; off < size; off += 8) {
		uint64_t v;

		memcpy(&v, b + off, 8);
		acc |= v;
	}
	return acc == 0;
}

enum tblock_kind tblock_decode(const void *buf, size_t size, struct tblock_hdr *h)
{
	const uint8_t *b = buf;

	if (get_le64(b + OFF_MAGIC) != TBLOCK_MAGIC)
		return all_zero(b, size) ? TBLOCK_ZERO : TBLOCK_GARBAGE;
	if (get_le64(b + OFF_CSUM) != block_checksum(b, size))
		return TBLOCK_TORN;
	h->writer = get_le32(b + OFF_WRITER);
	h->conn = get_le32(b + OFF_CONN);
	h->seq = get_le64(b + OFF_SEQ);
	h->block = get_le64(b + OFF_BLOCK);
	h->seed = get_le64(b + OFF_SEED);
	return TBLOCK_VALID;
}

const char *tblock_kind_name(enum tblock_kind k)
{
	switch (k) {
	case TBLOCK_ZERO:
		return "zero";
	case TBLOCK_VALID:
		return "valid";
	case TBLOCK_TORN:
		return "torn";
	case TBLOCK_GARBAGE:
		return "garbage";
	}
	return "unknown";
}
