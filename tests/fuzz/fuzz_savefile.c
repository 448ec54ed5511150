// fuzz-sources: daemon/meta/savefile.c utils/bitmap.c
/* libFuzzer harness for the save-file reader (savefile_parser_*, the
 * decisions savefile_read() takes while it reads a file).
 *
 * Input: flags u8, limit u64 (little-endian: the volume size), then the
 * file.  Flag bit 0 first rewrites every record's sum to match its data
 * and bit 1 the header's record count and data bytes to match the records
 * (walking the file as an independent reader would), so that the fuzzer
 * gets past the checksums; without them the file is parsed as given.
 *
 * The file is fed want() bytes at a time, as savefile_read() does, and the
 * verdict (accepted: every record in, and the file ends right there) must
 * equal oracle_valid(), an independent statement of the format.  Every
 * record the parser hands out must be the one at that place in the file,
 * inside [0, limit), after the previous one, with a matching checksum.  A
 * refusal gives a one-line reason. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/meta/savefile.h"
#include "tests/fuzz/oracle.h"

#define F_FIX_SUMS	1
#define F_FIX_HEADER	2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A record's sum, restated: XXH64 of the data, seeded with the offset in
 * version 2 files, with 0 in version 1 files. */
static uint64_t sum_of(const uint8_t *f, uint64_t off, const uint8_t *data, size_t len)
{
	return XXH64(data, len, le(f + 8, 4) == 2 ? off : 0);
}

/* Walks the records as far as their lengths allow, fixing what flags say. */
static void fix_up(uint8_t *f, size_t size, unsigned flags)
{
	uint64_t bytes = 0;
	uint32_t n = 0;
	size_t pos = SAVEFILE_HDR;

	if (size < SAVEFILE_HDR)
		return;
	while (size - pos >= SAVEFILE_REC) {
		uint32_t len = (uint32_t)le(f + pos + 8, 4);

		if (len > size - pos - SAVEFILE_REC)
			break;
		if (flags & F_FIX_SUMS)
			put_le(f + pos + 12, sum_of(f, le(f + pos, 8), f + pos + SAVEFILE_REC, len), 8);
		pos += SAVEFILE_REC + len;
		bytes += len;
		n++;
	}
	if (flags & F_FIX_HEADER) {
		put_le(f + 12, n, 4);
		put_le(f + 24, bytes, 8);
	}
}

/* The format, restated: is the whole file a save file for a volume of
 * limit bytes? */
static bool oracle_valid(const uint8_t *f, size_t size, uint64_t limit)
{
	uint64_t records, declared, bytes = 0, end = 0;
	size_t pos = SAVEFILE_HDR;

	if (size < SAVEFILE_HDR || memcmp(f, "BLKRSAVE", 8) != 0 ||
	    (le(f + 8, 4) != 1 && le(f + 8, 4) != 2))
		return false;
	records = le(f + 12, 4);
	declared = le(f + 24, 8);
	for (uint64_t i = 0; i < records; i++) {
		uint64_t off, len;

		if (size - pos < SAVEFILE_REC)
			return false;
		off = le(f + pos, 8);
		len = le(f + pos + 8, 4);
		if (len == 0 || len > SAVEFILE_MAX_REC || len > size - pos - SAVEFILE_REC)
			return false;
		/* in the volume (no wrap: both are below 2^64 as 128-bit sums) */
		if ((unsigned __int128)off + len > limit || off < end)
			return false;
		if (sum_of(f, off, f + pos + SAVEFILE_REC, len) != le(f + pos + 12, 8))
			return false;
		end = off + len;
		bytes += len;
		pos += SAVEFILE_REC + len;
	}
	return pos == size && bytes == declared;
}

/* Feeds the file as savefile_read() does.  Returns whether it was accepted. */
static bool parse(const uint8_t *f, size_t size, uint64_t limit)
{
	struct savefile_parser *p = savefile_parser_new(limit);
	const char *why = NULL;
	size_t pos = 0, want, rec_at = 0;
	uint64_t off, end = 0;
	bool ok = false;
	int rc;

	FUZZ_CHECK(p);
	FUZZ_CHECK(savefile_parser_want(p) == SAVEFILE_HDR);
	while ((want = savefile_parser_want(p)) > 0) {
		FUZZ_CHECK(want == SAVEFILE_REC || want == SAVEFILE_HDR ||
			   want <= SAVEFILE_MAX_REC);
		if (size - pos < want)
			goto out;	/* truncated */
		rc = savefile_parser_feed(p, f + pos, want, &off, &why);
		if (rc < 0) {
			FUZZ_CHECK(why && *why && !strchr(why, '\n'));
			FUZZ_CHECK(savefile_parser_want(p) == 0);
			goto out;
		}
		if (rc == 0 && want == SAVEFILE_REC)
			rec_at = pos;
		if (rc == 1) {
			/* the record at that place in the file, checked */
			FUZZ_CHECK(rec_at + SAVEFILE_REC == pos);
			FUZZ_CHECK(off == le(f + rec_at, 8) && want == le(f + rec_at + 8, 4));
			FUZZ_CHECK(sum_of(f, off, f + pos, want) == le(f + rec_at + 12, 8));
			FUZZ_CHECK(off >= end && off + want <= limit && off + want > off);
			end = off + want;
		}
		pos += want;
	}
	ok = pos == size;	/* savefile_read() refuses trailing bytes */
	/* Once done it takes nothing more. */
	FUZZ_CHECK(savefile_parser_feed(p, f, 0, &off, &why) < 0 && why && *why);
out:
	savefile_parser_free(p);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t limit;
	uint8_t *f;
	size_t n;

	if (size < 9)
		return 0;
	limit = le(data + 1, 8);
	n = size - 9;
	f = malloc(n ? n : 1);
	FUZZ_CHECK(f);
	memcpy(f, data + 9, n);
	fix_up(f, n, data[0]);
	FUZZ_CHECK(parse(f, n, limit) == oracle_valid(f, n, limit));
	free(f);
	return 0;
}
