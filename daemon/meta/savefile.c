/* Save files.  See savefile.h. */
#include "savefile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "utils/bitmap.h"
#include "utils/extent.h"

#define MAGIC "BLKRSAVE"

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

const char *savefile_dir(void)
{
	const char *d = getenv("BLKREP_SAVE_DIR");

	return d && *d ? d : "/var/lib/blkrep";
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = write(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* mkdir -p, mode 0700 for what it creates. */
static void make_dirs(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		(void)mkdir(p, 0700);
		*s = '/';
	}
	(void)mkdir(p, 0700);
}

static int open_new(char *path, size_t pathlen, const char *resource, const char *node,
		    char *err, size_t errlen)
{
	char stamp[32];
	time_t now = time(NULL);
	int fd;

	if (!*path) {
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
		make_dirs(savefile_dir());
		snprintf(path, pathlen, "%s/%s-%s-%s-%d.saved", savefile_dir(), resource, node,
			 stamp, (int)getpid());
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return fd;
}

uint64_t savefile_sum(uint32_t version, uint64_t off, const void *data, size_t len)
{
	return XXH64(data, len, version >= 2 ? off : 0);
}

/* One record: its header, then the data read from data_fd. */
static int save_record(int out, int data_fd, uint8_t *buf, uint64_t off, uint32_t len)
{
	uint8_t rec[SAVEFILE_REC];

	if (pread(data_fd, buf, len, (off_t)off) != (ssize_t)len)
		return -1;
	put_le(rec, off, 8);
	put_le(rec + 8, len, 4);
	put_le(rec + 12, savefile_sum(SAVEFILE_VERSION, off, buf, len), 8);
	return write_all(out, rec, sizeof(rec)) < 0 || write_all(out, buf, len) < 0 ? -1 : 0;
}

static void encode_header(uint8_t *h, const char *resource, const char *node, uint32_t records,
			  uint64_t bytes)
{
	memset(h, 0, SAVEFILE_HDR);
	memcpy(h, MAGIC, 8);
	put_le(h + 8, SAVEFILE_VERSION, 4);
	put_le(h + 12, records, 4);
	put_le(h + 16, (uint64_t)time(NULL), 8);
	put_le(h + 24, bytes, 8);
	memcpy(h + 32, resource, strnlen(resource, 47));
	memcpy(h + 80, node, strnlen(node, 47));
}

int savefile_write(char *path, size_t pathlen, const char *resource, const char *node,
		   int data_fd, const struct bitmap *bm, uint32_t extent_bytes, uint64_t limit,
		   uint64_t *bytes, char *err, size_t errlen)
{
	uint8_t hdr[SAVEFILE_HDR], *buf = malloc(extent_bytes);
	uint64_t nbits = extent_cover(limit, extent_bytes);
	uint32_t records = 0;
	int fd;

	*bytes = 0;
	err[0] = '\0';
	fd = buf ? open_new(path, pathlen, resource, node, err, errlen) : -1;
	encode_header(hdr, resource, node, 0, 0);
	if (fd < 0 || write_all(fd, hdr, sizeof(hdr)) < 0)
		goto fail;
	for (uint64_t b = bitmap_next_set(bm, 0); b < nbits; b = bitmap_next_set(bm, b + 1)) {
		uint64_t off = b * extent_bytes;
		uint32_t len = (uint32_t)(off + extent_bytes > limit ? limit - off : extent_bytes);

		if (save_record(fd, data_fd, buf, off, len) < 0)
			goto fail;
		records++;
		*bytes += len;
	}
	encode_header(hdr, resource, node, records, *bytes);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != sizeof(hdr) || fsync(fd) < 0)
		goto fail;
	close(fd);
	free(buf);
	return 0;
fail:
	if (fd >= 0 && !*err)
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

/* --- reading --- */

enum parse_stage { PS_HEADER, PS_HEAD, PS_DATA, PS_END };

struct savefile_parser {
	enum parse_stage stage;
	uint64_t limit;
	uint32_t version;
	uint32_t records_left;
	uint64_t bytes_declared, bytes_seen;
	uint64_t next_off;		/* records ascend without overlap */
	uint64_t off, sum;		/* the record whose data comes next */
	uint32_t len;
};

struct savefile_parser *savefile_parser_new(uint64_t limit)
{
	struct savefile_parser *p = calloc(1, sizeof(*p));

	if (p)
		p->limit = limit;
	return p;
}

void savefile_parser_free(struct savefile_parser *p)
{
	free(p);
}

size_t savefile_parser_want(const struct savefile_parser *p)
{
	switch (p->stage) {
	case PS_HEADER:
		return SAVEFILE_HDR;
	case PS_HEAD:
		return SAVEFILE_REC;
	case PS_DATA:
		return p->len;
	default:
		return 0;
	}
}

static int parse_fail(struct savefile_parser *p, const char *reason, const char **why)
{
	p->stage = PS_END;
	*why = reason;
	return -1;
}

/* After the header or a record: the next record head, or the end. */
static int parse_next(struct savefile_parser *p, const char **why)
{
	if (p->records_left) {
		p->stage = PS_HEAD;
		return 0;
	}
	if (p->bytes_seen != p->bytes_declared)
		return parse_fail(p, "its records do not add up to the size in its header", why);
	p->stage = PS_END;
	return 0;
}

static int parse_header(struct savefile_parser *p, const uint8_t *h, const char **why)
{
	if (memcmp(h, MAGIC, 8) != 0)
		return parse_fail(p, "not a blkrep save file", why);
	p->version = (uint32_t)get_le(h + 8, 4);
	if (p->version != 1 && p->version != 2)
		return parse_fail(p, "unknown save file version", why);
	p->records_left = (uint32_t)get_le(h + 12, 4);
	p->bytes_declared = get_le(h + 24, 8);
	return parse_next(p, why);
}

static int parse_head(struct savefile_parser *p, const uint8_t *r, const char **why)
{
	p->off = get_le(r, 8);
	p->len = (uint32_t)get_le(r + 8, 4);
	p->sum = get_le(r + 12, 8);
	if (p->len == 0 || p->len > SAVEFILE_MAX_REC)
		return parse_fail(p, "a record has a bad length", why);
	if (p->off > p->limit || p->len > p->limit - p->off)
		return parse_fail(p, "a record lies outside the volume", why);
	if (p->off < p->next_off)
		return parse_fail(p, "records overlap or are out of order", why);
	p->stage = PS_DATA;
	return 0;
}

int savefile_parser_feed(struct savefile_parser *p, const uint8_t *in, size_t len, uint64_t *off,
			 const char **why)
{
	if (p->stage == PS_END || len != savefile_parser_want(p))
		return parse_fail(p, "internal error: fed the wrong number of bytes", why);
	if (p->stage == PS_HEADER)
		return parse_header(p, in, why);
	if (p->stage == PS_HEAD)
		return parse_head(p, in, why);
	if (savefile_sum(p->version, p->off, in, len) != p->sum)
		return parse_fail(p, "a record's checksum does not match its data", why);
	p->bytes_seen += len;
	p->next_off = p->off + len;
	p->records_left--;
	*off = p->off;
	return parse_next(p, why) < 0 ? -1 : 1;
}

static void name_field(const uint8_t *f, char *out)
{
	size_t n = strnlen((const char *)f, SAVEFILE_NAME - 1);

	for (size_t i = 0; i < n; i++)
		out[i] = f[i] >= 0x20 && f[i] < 0x7f ? (char)f[i] : '?';
	out[n] = '\0';
}

void savefile_header_names(const uint8_t *h, char *resource, char *node)
{
	name_field(h + 32, resource);
	name_field(h + 80, node);
}

/* Reads len bytes; returns len, fewer at the end of the file, or -1. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Why the file ended before the parser wanted no more, or went on. */
static void read_error(const char *path, ssize_t n, size_t want, uint32_t records, char *err,
		      size_t errlen)
{
	if (n < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if (want)
		snprintf(err, errlen, "%s: truncated after %u records", path, records);
	else
		snprintf(err, errlen, "%s: bytes after its last record (an interrupted save?)",
			 path);
}

/* Feeds the parser until it wants no more, then checks that the file
 * ends.  Returns 0, or -1 with err. */
static int read_records(int fd, const char *path, struct savefile_parser *p, uint8_t *buf,
			int (*each)(void *arg, uint64_t off, uint32_t len, const uint8_t *data,
				    char *err, size_t errlen),
			void *arg, uint64_t *bytes, char *err, size_t errlen)
{
	const char *why = NULL;
	bool header_done = false;
	uint32_t records = 0;
	uint64_t off;
	size_t want;
	ssize_t n = 0;
	int rc;

	while ((want = savefile_parser_want(p)) > 0) {
		n = read_full(fd, buf, want);
		if (n < 0 || (size_t)n < want)
			break;
		rc = savefile_parser_feed(p, buf, want, &off, &why);
		if (rc < 0 && !header_done)
			snprintf(err, errlen, "%s: %s", path, why);
		else if (rc < 0)
			snprintf(err, errlen, "%s: %s (after %u good records)", path, why, records);
		if (rc < 0)
			return -1;
		header_done = true;
		if (rc == 0)
			continue;
		if (each && each(arg, off, (uint32_t)want, buf, err, errlen) < 0)
			return -1;
		records++;
		*bytes += want;
	}
	if (want == 0 && (n = read_full(fd, buf, 1)) == 0)
		return 0;
	read_error(path, n, want, records, err, errlen);
	return -1;
}

/* One pass over the file; each NULL: only check it. */
static int read_pass(const char *path, uint64_t limit,
		     int (*each)(void *arg, uint64_t off, uint32_t len, const uint8_t *data,
				 char *err, size_t errlen),
		     void *arg, uint64_t *bytes, char *err, size_t errlen)
{
	struct savefile_parser *p = savefile_parser_new(limit);
	uint8_t *buf = malloc(SAVEFILE_MAX_REC);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	*bytes = 0;
	if (fd < 0 || !buf || !p)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else
		rc = read_records(fd, path, p, buf, each, arg, bytes, err, errlen);
	if (fd >= 0)
		close(fd);
	savefile_parser_free(p);
	free(buf);
	return rc;
}

int savefile_names(const char *path, char *resource, char *node, char *err, size_t errlen)
{
	uint8_t h[SAVEFILE_HDR];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read_full(fd, h, sizeof(h));

	if (fd >= 0)
		close(fd);
	if (n < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if ((size_t)n < sizeof(h) || memcmp(h, MAGIC, 8) != 0)
		snprintf(err, errlen, "%s: not a blkrep save file", path);
	else
		savefile_header_names(h, resource, node);
	return n == (ssize_t)sizeof(h) && memcmp(h, MAGIC, 8) == 0 ? 0 : -1;
}

int savefile_read(const char *path, uint64_t limit,
		  int (*each)(void *arg, uint64_t off, uint32_t len, const uint8_t *data,
			      char *err, size_t errlen),
		  void *arg, uint64_t *bytes, char *err, size_t errlen)
{
	if (read_pass(path, limit, NULL, NULL, bytes, err, errlen) < 0) {
		*bytes = 0;
		return -1;
	}
	return read_pass(path, limit, each, arg, bytes, err, errlen);
}
