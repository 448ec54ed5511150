/* daemon/savefile: what savefile_write() keeps, savefile_read() gives back
 * record by record; a damaged file is refused before a single record is
 * handed on, so `restore-saved` writes all of it or none. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/meta/savefile.h"
#include "utils/bitmap.h"

#define EXT 65536U
#define SIZE (8 * EXT)

static char dir[] = "/tmp/blkrep-test-savefile.XXXXXX";
static char data_path[128], save_path[256];

struct seen {
	unsigned records;
	uint64_t offs[8];
	int bad_data;
};

static int count(void *arg, uint64_t off, uint32_t len, const uint8_t *data, char *err,
		 size_t errlen)
{
	struct seen *s = arg;

	(void)err, (void)errlen;
	if (s->records < 8)
		s->offs[s->records] = off;
	s->records++;
	for (uint32_t i = 0; i < len; i++)
		s->bad_data += data[i] != (uint8_t)(off / EXT + 1);
	return 0;
}

/* A data file whose extent k holds the byte k + 1, and a save file of
 * extents 1, 4 and 7. */
static void setup(void)
{
	struct bitmap *bm = bitmap_new(SIZE / EXT);
	uint8_t ext[EXT];
	uint64_t bytes = 0;
	char err[256] = "";
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(data_path, sizeof(data_path), "%s/data", dir);
	snprintf(save_path, sizeof(save_path), "%s/r0-alpha.saved", dir);
	fd = open(data_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	for (unsigned k = 0; k < SIZE / EXT; k++) {
		memset(ext, (int)(k + 1), EXT);
		cr_assert_eq(pwrite(fd, ext, EXT, (off_t)k * EXT), (ssize_t)EXT);
	}
	bitmap_set(bm, 1);
	bitmap_set(bm, 4);
	bitmap_set(bm, 7);
	cr_assert_eq(savefile_write(save_path, sizeof(save_path), "r0", "alpha", fd, bm, EXT,
				    SIZE, &bytes, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(bytes, 3 * EXT);
	close(fd);
	bitmap_free(bm);
}

static void teardown(void)
{
	unlink(data_path);
	unlink(save_path);
	rmdir(dir);
}

/* Flips one byte of the save file at off. */
static void damage(off_t off)
{
	int fd = open(save_path, O_RDWR);
	uint8_t b;

	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0xff;
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

TestSuite(savefile, .init = setup, .fini = teardown);

Test(savefile, every_record_comes_back_in_order)
{
	struct seen s = { 0 };
	uint64_t bytes = 0;
	char err[256] = "";

	cr_assert_eq(savefile_read(save_path, SIZE, count, &s, &bytes, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(s.records, 3);
	cr_assert_eq(s.offs[0], 1 * EXT);
	cr_assert_eq(s.offs[1], 4 * EXT);
	cr_assert_eq(s.offs[2], 7 * EXT);
	cr_assert_eq(s.bad_data, 0);
	cr_assert_eq(bytes, 3 * EXT);
}

Test(savefile, a_damaged_last_record_is_refused_before_any_is_handed_on)
{
	struct seen s = { 0 };
	uint64_t bytes = 1;
	char err[256] = "";

	damage((off_t)SAVEFILE_HDR + 3 * SAVEFILE_REC + 3 * EXT - 1); /* last data byte */
	cr_assert_eq(savefile_read(save_path, SIZE, count, &s, &bytes, err, sizeof(err)), -1);
	cr_assert_eq(s.records, 0, "%u records handed on before the damage was found", s.records);
	cr_assert_eq(bytes, 0);
	cr_assert_not_null(strstr(err, "after 2 good records"), "%s", err);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
}

Test(savefile, a_truncated_file_is_refused_before_any_is_handed_on)
{
	struct seen s = { 0 };
	uint64_t bytes = 1;
	char err[256] = "";

	cr_assert_eq(truncate(save_path, SAVEFILE_HDR + 3 * SAVEFILE_REC + 3 * EXT - 100), 0);
	cr_assert_eq(savefile_read(save_path, SIZE, count, &s, &bytes, err, sizeof(err)), -1);
	cr_assert_eq(s.records, 0);
	cr_assert_not_null(strstr(err, "truncated"), "%s", err);
}

Test(savefile, a_record_past_the_volume_is_refused)
{
	struct seen s = { 0 };
	uint64_t bytes = 0;
	char err[256] = "";

	cr_assert_eq(savefile_read(save_path, 6 * EXT, count, &s, &bytes, err, sizeof(err)), -1);
	cr_assert_eq(s.records, 0);
	cr_assert(err[0], "a reason");
}

/* Record k's head: k-th of the three records of EXT bytes each. */
static off_t head_at(unsigned k)
{
	return (off_t)SAVEFILE_HDR + (off_t)k * (SAVEFILE_REC + EXT);
}

static void put64(int fd, off_t at, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	cr_assert_eq(pwrite(fd, b, 8, at), 8);
}

Test(savefile, a_moved_offset_is_caught_by_the_sum)
{
	struct seen s = { 0 };
	uint64_t bytes = 0;
	char err[256] = "";
	int fd = open(save_path, O_RDWR);

	/* 4 * EXT -> 5 * EXT: still ascending, still inside the volume */
	put64(fd, head_at(1), 5 * EXT);
	close(fd);
	cr_assert_eq(savefile_read(save_path, SIZE, count, &s, &bytes, err, sizeof(err)), -1);
	cr_assert_eq(s.records, 0);
	cr_assert_not_null(strstr(err, "checksum"), "%s", err);
}

Test(savefile, a_version_1_file_is_still_read)
{
	struct seen s = { 0 };
	uint64_t bytes = 0;
	uint8_t data[EXT], v1[4] = { 1, 0, 0, 0 };
	char err[256] = "";
	int fd = open(save_path, O_RDWR);
	const uint64_t offs[3] = { 1 * EXT, 4 * EXT, 7 * EXT };

	/* version 1: the same records, summed with seed 0 */
	cr_assert_eq(pwrite(fd, v1, 4, 8), 4);
	for (unsigned k = 0; k < 3; k++) {
		memset(data, (int)(offs[k] / EXT + 1), EXT);
		put64(fd, head_at(k) + 12, savefile_sum(1, offs[k], data, EXT));
	}
	close(fd);
	cr_assert_eq(savefile_read(save_path, SIZE, count, &s, &bytes, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(s.records, 3);
	cr_assert_eq(s.bad_data, 0);
	cr_assert_neq(savefile_sum(1, 4 * EXT, data, EXT), savefile_sum(2, 4 * EXT, data, EXT),
		      "version 2 sums cover the offset");
}

/* restore-saved checks who wrote a file: the names in its header. */
Test(savefile, header_names_who_wrote_it)
{
	char res[SAVEFILE_NAME], node[SAVEFILE_NAME], err[256] = "";
	uint8_t h[SAVEFILE_HDR] = { 0 };

	cr_assert_eq(savefile_names(save_path, res, node, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(res, "r0");
	cr_assert_str_eq(node, "alpha");
	memset(h + 32, 'r', 48); /* no NUL: cut at 47 */
	memcpy(h + 80, "a\nb", 3);
	savefile_header_names(h, res, node);
	cr_assert_eq(strlen(res), 47);
	cr_assert_str_eq(node, "a?b");
	cr_assert_eq(savefile_names(data_path, res, node, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not a blkrep save file"), "%s", err);
}
