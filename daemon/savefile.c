/* Save files.  See savefile.h. */
#include "savefile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "utils/bitmap.h"

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

/* One record: its header, then the data read from data_fd. */
static int save_record(int out, int data_fd, uint8_t *buf, uint64_t off, uint32_t len)
{
	uint8_t rec[SAVEFILE_REC];

	if (pread(data_fd, buf, len, (off_t)off) != (ssize_t)len)
		return -1;
	put_le(rec, off, 8);
	put_le(rec + 8, len, 4);
	put_le(rec + 12, XXH64(buf, len, 0), 8);
	return write_all(out, rec, sizeof(rec)) < 0 || write_all(out, buf, len) < 0 ? -1 : 0;
}

static void encode_header(uint8_t *h, const char *resource, const char *node, uint32_t records,
			  uint64_t bytes)
{
	memset(h, 0, SAVEFILE_HDR);
	memcpy(h, MAGIC, 8);
	put_le(h + 8, 1, 4);
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
	uint64_t nbits = (limit + extent_bytes - 1) / extent_bytes;
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

static int read_all(int fd, void *p, size_t len)
{
	ssize_t n = read(fd, p, len);

	return n == (ssize_t)len ? 0 : -1;
}

static int check_header(const uint8_t *h, uint32_t *records)
{
	if (memcmp(h, MAGIC, 8) != 0 || get_le(h + 8, 4) != 1)
		return -1;
	*records = (uint32_t)get_le(h + 12, 4);
	return 0;
}

int savefile_read(const char *path, uint64_t limit,
		  int (*each)(void *arg, uint64_t off, uint32_t len, const uint8_t *data,
			      char *err, size_t errlen),
		  void *arg, uint64_t *bytes, char *err, size_t errlen)
{
	uint8_t hdr[SAVEFILE_HDR], rec[SAVEFILE_REC], *buf = malloc(SAVEFILE_MAX_REC);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	uint32_t records;

	*bytes = 0;
	if (fd < 0 || !buf) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (read_all(fd, hdr, sizeof(hdr)) < 0 || check_header(hdr, &records) < 0) {
		snprintf(err, errlen, "%s: not a blkrep save file", path);
		goto out;
	}
	for (uint32_t i = 0; i < records; i++) {
		uint64_t off;
		uint32_t len;

		if (read_all(fd, rec, sizeof(rec)) < 0 ||
		    (len = (uint32_t)get_le(rec + 8, 4)) == 0 || len > SAVEFILE_MAX_REC ||
		    (off = get_le(rec, 8)) > limit || len > limit - off ||
		    read_all(fd, buf, len) < 0 || XXH64(buf, len, 0) != get_le(rec + 12, 8)) {
			snprintf(err, errlen, "%s: record %u is damaged or outside the volume",
				 path, i + 1);
			goto out;
		}
		if (each(arg, off, len, buf, err, errlen) < 0)
			goto out;
		*bytes += len;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
