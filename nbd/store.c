/* Backing store: a file or block device.  See store.h. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "utils/log.h"

struct store {
	int fd;			/* buffered */
	int dfd;		/* O_DIRECT, or -1 */
	uint64_t size;
	uint32_t align;
	bool read_only;
	bool is_blockdev;
	bool inline_writes;
	bool lacks[STORE_ZERO_WRITE];	/* methods found unsupported */
};

int store_fd_size(int fd, const char *path, uint64_t *size, bool *is_blockdev, char *err,
		  size_t errlen)
{
	struct stat sb;

	*is_blockdev = false;
	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISBLK(sb.st_mode)) {
		*is_blockdev = true;
		if (ioctl(fd, BLKGETSIZE64, size) < 0) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(errno));
			return -1;
		}
	} else if (S_ISREG(sb.st_mode)) {
		*size = (uint64_t)sb.st_size;
	} else {
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		return -1;
	}
	return 0;
}

/* O_DIRECT alignment: the device's logical block size, or 4096 for files
 * (safe for every filesystem blkrep runs on). */
static void store_open_direct(struct store *st, const char *path, int flags)
{
	int lbs = 0;

	st->dfd = open(path, flags | O_DIRECT);
	if (st->dfd < 0) {
		log_warn("%s: O_DIRECT not supported here (%s); using buffered I/O",
			 path, strerror(errno));
		return;
	}
	st->align = 4096;
	if (st->is_blockdev && ioctl(st->dfd, BLKSSZGET, &lbs) == 0 && lbs > 0)
		st->align = (uint32_t)lbs;
}

/* Rewrites the first byte with itself using RWF_NOWAIT: a filesystem that
 * cannot write buffered data without blocking answers EOPNOTSUPP. */
static void store_probe_nowait(struct store *st)
{
	char byte;
	struct iovec iov = { &byte, 1 };

	if (st->read_only || st->size == 0 || pread(st->fd, &byte, 1, 0) != 1)
		return;
	if (pwritev2(st->fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EOPNOTSUPP) {
		st->inline_writes = true;
		log_debug("backing filesystem has no non-blocking buffered writes: "
			  "plain writes are done inline, not on io_uring workers");
	}
}

struct store *store_open(const char *path, const struct store_opts *o, char *err,
			 size_t errlen)
{
	int flags = (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct store *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->dfd = -1;
	st->align = 1;
	st->read_only = o->read_only;
	st->fd = open(path, flags);
	if (st->fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (store_fd_size(st->fd, path, &st->size, &st->is_blockdev, err, errlen) < 0)
		goto fail;
	if (o->size_limit && o->size_limit < st->size)
		st->size = o->size_limit;
	if (o->direct)
		store_open_direct(st, path, flags);
	store_probe_nowait(st);
	return st;
fail:
	store_close(st);
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->fd >= 0)
		close(st->fd);
	if (st->dfd >= 0)
		close(st->dfd);
	free(st);
}

uint64_t store_size(const struct store *st)
{
	return st->size;
}

uint32_t store_align(const struct store *st)
{
	return st->align;
}

int store_fd_for(const struct store *st, uint64_t off, uint64_t len)
{
	uint64_t mask = st->align - 1;

	if (st->dfd >= 0 && !(off & mask) && !(len & mask))
		return st->dfd;
	return st->fd;
}

bool store_write_inline(const struct store *st, int fd)
{
	return st->inline_writes && fd == st->fd;
}

enum store_zero store_zero_method(const struct store *st, enum store_zero from,
				  bool no_hole)
{
	enum store_zero m = from;

	if (no_hole && m == STORE_ZERO_PUNCH)
		m = STORE_ZERO_RANGE;
	while (m < STORE_ZERO_WRITE && st->lacks[m])
		m++;
	return m;
}

void store_zero_unsupported(struct store *st, enum store_zero m)
{
	static const char *const name[] = { "punch hole", "zero range" };

	if (m >= STORE_ZERO_WRITE || st->lacks[m])
		return;
	st->lacks[m] = true;
	log_warn("backing store does not support fallocate %s; falling back to %s",
		 name[m], m == STORE_ZERO_PUNCH && !st->lacks[STORE_ZERO_RANGE] ?
				  "zero range" : "writing zeros");
}

int store_zero_mode(enum store_zero m)
{
	return m == STORE_ZERO_PUNCH ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
				       FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

/* In .bss: zero pages the kernel maps on first read, shared by every store
 * and by store_zero_fd(); never written. */
static uint8_t zeros[STORE_ZERO_BUF] __attribute__((aligned(4096)));

int store_zero_fd(int fd, uint64_t off, uint64_t len, bool no_hole)
{
	/* The methods in the same order as store_zero_method(), each tried on
	 * any failure: a caller without a store learns nothing for next time. */
	for (enum store_zero m = no_hole ? STORE_ZERO_RANGE : STORE_ZERO_PUNCH;
	     m < STORE_ZERO_WRITE; m++)
		if (fallocate(fd, store_zero_mode(m), (off_t)off, (off_t)len) == 0)
			return 0;
	while (len) {
		size_t k = len < STORE_ZERO_BUF ? (size_t)len : STORE_ZERO_BUF;
		ssize_t w = pwrite(fd, zeros, k, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

void store_prep_zero(const struct store *st, struct io_uring_sqe *sqe, enum store_zero m,
		     uint64_t off, uint64_t len, uint64_t done)
{
	uint64_t left = len - done;
	unsigned chunk = (unsigned)(left < STORE_ZERO_BUF ? left : STORE_ZERO_BUF);

	if (m != STORE_ZERO_WRITE) {
		io_uring_prep_fallocate(sqe, store_fd_for(st, off, len), store_zero_mode(m),
					(off_t)off, (off_t)len);
		return;
	}
	io_uring_prep_write(sqe, store_fd_for(st, off + done, chunk), zeros, chunk,
			    off + done);
}

uint64_t store_extent(const struct store *st, uint64_t off, uint64_t len, bool *hole)
{
	off_t data, end;

	*hole = false;
	if (st->is_blockdev)
		return len;
	data = lseek(st->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		/* ENXIO: no data from off to the end of the file. */
		*hole = errno == ENXIO;
		return len;
	}
	if ((uint64_t)data > off) {
		*hole = true;
		return (uint64_t)data - off < len ? (uint64_t)data - off : len;
	}
	end = lseek(st->fd, (off_t)off, SEEK_HOLE);
	if (end < 0 || (uint64_t)end <= off)
		return len;
	return (uint64_t)end - off < len ? (uint64_t)end - off : len;
}
