/* The torture writer's log.  See tlog.h. */
#include "tlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TLOG_MAGIC   "NBDTLOG1"
#define TLOG_VERSION 1U
#define TLOG_BUF     (1U << 20)

struct tlog {
	int fd;
	size_t used;
	uint8_t buf[TLOG_BUF];
};

struct tlog_reader {
	int fd;
	size_t used, off;
	uint8_t buf[TLOG_BUF];
};

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t read_full(int fd, uint8_t *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

struct tlog *tlog_create(const char *path, const struct tlog_header *h)
{
	struct tlog *l = calloc(1, sizeof(*l));
	uint8_t *p;

	if (!l)
		return NULL;
	l->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		free(l);
		return NULL;
	}
	p = l->buf;
	memset(p, 0, TLOG_HDR_SIZE);
	memcpy(p, TLOG_MAGIC, 8);
	put_le(p + 8, TLOG_VERSION, 4);
	put_le(p + 12, h->block_size, 4);
	put_le(p + 16, h->area_blocks, 8);
	put_le(p + 24, h->seed, 8);
	put_le(p + 32, h->writer, 4);
	put_le(p + 36, h->conns, 4);
	l->used = TLOG_HDR_SIZE;
	return l;
}

int tlog_append(struct tlog *l, const struct tlog_rec *r)
{
	uint8_t *p;

	if (l->used + TLOG_REC_SIZE > TLOG_BUF) {
		int rc = write_all(l->fd, l->buf, l->used);

		if (rc < 0)
			return rc;
		l->used = 0;
	}
	p = l->buf + l->used;
	put_le(p, r->clock, 8);
	put_le(p + 8, r->x, 8);
	put_le(p + 16, r->arg, 4);
	p[20] = r->type;
	p[21] = r->flags;
	put_le(p + 22, r->conn, 2);
	l->used += TLOG_REC_SIZE;
	return 0;
}

int tlog_close(struct tlog *l)
{
	int rc = write_all(l->fd, l->buf, l->used);

	if (rc == 0 && fsync(l->fd) < 0)
		rc = -errno;
	if (close(l->fd) < 0 && rc == 0)
		rc = -errno;
	free(l);
	return rc;
}

struct tlog_reader *tlog_reader_open(const char *path, struct tlog_header *h)
{
	struct tlog_reader *r = calloc(1, sizeof(*r));
	uint8_t hdr[TLOG_HDR_SIZE];
	int err = EINVAL;

	if (!r)
		return NULL;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		err = errno;
		goto fail;
	}
	if (read_full(r->fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, TLOG_MAGIC, 8) != 0 || get_le(hdr + 8, 4) != TLOG_VERSION)
		goto fail;
	h->block_size = (uint32_t)get_le(hdr + 12, 4);
	h->area_blocks = get_le(hdr + 16, 8);
	h->seed = get_le(hdr + 24, 8);
	h->writer = (uint32_t)get_le(hdr + 32, 4);
	h->conns = (uint32_t)get_le(hdr + 36, 4);
	return r;
fail:
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	errno = err;
	return NULL;
}

int tlog_reader_next(struct tlog_reader *r, struct tlog_rec *rec)
{
	const uint8_t *p;

	if (r->used - r->off < TLOG_REC_SIZE) {
		size_t left = r->used - r->off;
		ssize_t n;

		memmove(r->buf, r->buf + r->off, left);
		r->used = left;
		r->off = 0;
		n = read_full(r->fd, r->buf + left, TLOG_BUF - left);
		if (n < 0)
			return (int)n;
		r->used += (size_t)n;
		if (r->used == 0)
			return 0;
		if (r->used < TLOG_REC_SIZE)
			return -EINVAL;
	}
	p = r->buf + r->off;
	rec->clock = get_le(p, 8);
	rec->x = get_le(p + 8, 8);
	rec->arg = (uint32_t)get_le(p + 16, 4);
	rec->type = p[20];
	rec->flags = p[21];
	rec->conn = (uint16_t)get_le(p + 22, 2);
	r->off += TLOG_REC_SIZE;
	return 1;
}

void tlog_reader_close(struct tlog_reader *r)
{
	if (!r)
		return;
	close(r->fd);
	free(r);
}
