/* A witness's state file.  See wstate.h. */
#include "daemon/witness/wstate.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "daemon/meta/gen.h"
#include "proto/msg.h"

#define W_MAGIC	   "BLKRWITN"
#define W_VERSION  8
#define W_RESOURCE 16
#define W_NODE	   (W_RESOURCE + WSTATE_NAME)
#define W_SEQ	   (W_NODE + WSTATE_NAME)
#define W_CURRENT  (W_SEQ + 8)
#define W_HISTORY  (W_CURRENT + 8)
#define W_END	   (W_HISTORY + 8 * WSTATE_HISTORY)
#define W_SUM	   (WSTATE_SIZE - 8)

_Static_assert(W_END <= W_SUM, "the state fits its file");
_Static_assert(WSTATE_HISTORY == GEN_HISTORY, "a witness keeps a node's history");

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

void wstate_init(struct wstate *s, const char *resource, const char *node)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->resource, sizeof(s->resource), "%s", resource);
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->current = GEN_CREATED;
}

void wstate_encode(uint8_t buf[WSTATE_SIZE], const struct wstate *s)
{
	uint32_t version = htole32(WSTATE_VERSION);

	memset(buf, 0, WSTATE_SIZE);
	memcpy(buf, W_MAGIC, 8);
	memcpy(buf + W_VERSION, &version, 4);
	memcpy(buf + W_RESOURCE, s->resource, strnlen(s->resource, WSTATE_NAME - 1));
	memcpy(buf + W_NODE, s->node, strnlen(s->node, WSTATE_NAME - 1));
	put64(buf + W_SEQ, s->seq);
	put64(buf + W_CURRENT, s->current);
	for (int i = 0; i < WSTATE_HISTORY; i++)
		put64(buf + W_HISTORY + 8 * i, s->history[i]);
	put64(buf + W_SUM, XXH64(buf, W_SUM, 0));
}

/* A NUL-terminated name, zero-padded after it. */
static bool name_ok(const uint8_t *p)
{
	size_t n = strnlen((const char *)p, WSTATE_NAME);

	if (n == 0 || n == WSTATE_NAME)
		return false;
	for (size_t i = n; i < WSTATE_NAME; i++)
		if (p[i])
			return false;
	return true;
}

static bool zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int wstate_decode(const uint8_t *buf, size_t len, struct wstate *s, const char **why)
{
	uint32_t version;

	*why = NULL;
	if (len != WSTATE_SIZE || memcmp(buf, W_MAGIC, 8) != 0)
		*why = "not a witness state file";
	else if (get64(buf + W_SUM) != XXH64(buf, W_SUM, 0))
		*why = "checksum mismatch (the file is corrupt)";
	else if (memcpy(&version, buf + W_VERSION, 4), le32toh(version) != WSTATE_VERSION)
		*why = "unknown version";
	else if (!zero(buf + W_VERSION + 4, 4) || !zero(buf + W_END, W_SUM - W_END) ||
		 !name_ok(buf + W_RESOURCE) || !name_ok(buf + W_NODE))
		*why = "malformed";
	else if (get64(buf + W_CURRENT) == 0)
		*why = "no current generation";
	if (*why)
		return -1;
	memset(s, 0, sizeof(*s));
	memcpy(s->resource, buf + W_RESOURCE, WSTATE_NAME);
	memcpy(s->node, buf + W_NODE, WSTATE_NAME);
	s->seq = get64(buf + W_SEQ);
	s->current = get64(buf + W_CURRENT);
	for (int i = 0; i < WSTATE_HISTORY; i++)
		s->history[i] = get64(buf + W_HISTORY + 8 * i);
	return 0;
}

bool wstate_apply_gen(struct wstate *s, uint64_t new_current)
{
	if (new_current == 0 || new_current == s->current)
		return false;
	memmove(s->history + 1, s->history, sizeof(s->history) - sizeof(s->history[0]));
	s->history[0] = s->current;
	s->current = new_current;
	return true;
}

enum wstate_verdict wstate_message(struct wstate *s, bool *dirty, const struct msg_hdr *h,
				   const uint8_t *payload, struct msg_hello *hello,
				   const char **why)
{
	struct msg_gen g;

	switch (h->type) {
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, hello, why) < 0)
			return WSTATE_DROP;
		return WSTATE_HELLO;
	case MSG_GEN:
		if (msg_gen_decode(payload, h->length, &g, why) < 0)
			return WSTATE_DROP;
		if (s->current && g.old_current != s->current && g.new_current != s->current) {
			*why = "its step does not start from this witness's generation";
			return WSTATE_STALE;
		}
		if (wstate_apply_gen(s, g.new_current))
			*dirty = true;
		return WSTATE_NOTHING;
	case MSG_FLUSH:
		return WSTATE_FLUSH;
	case MSG_MARK:
		return WSTATE_NOTHING;
	default:
		*why = "a witness keeps no data";
		return WSTATE_DROP;
	}
}

int wstate_load(const char *path, const char *resource, const char *node, struct wstate *s,
		bool *created, char *err, size_t errlen)
{
	uint8_t buf[WSTATE_SIZE + 1];
	const char *why;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*created = false;
	if (fd < 0 && errno == ENOENT) {
		wstate_init(s, resource, node);
		*created = true;
		return wstate_save(path, s, err, errlen);
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* One read: a regular file of this size reads whole; one byte more
	 * tells a longer file. */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (wstate_decode(buf, (size_t)n, s, &why) < 0) {
		snprintf(err, errlen,
			 "%s: %s: move it away to start afresh (the witness then forgets the "
			 "generation it saw: bring it up only while the primary is up)",
			 path, why);
		return -1;
	}
	if (strcmp(s->resource, resource) != 0 || strcmp(s->node, node) != 0) {
		snprintf(err, errlen,
			 "%s: the state of %s/%s, not of %s/%s: set another state-file for this "
			 "witness, or move the file away to start afresh",
			 path, s->resource, s->node, resource, node);
		return -1;
	}
	return 0;
}

/* Creates path's directory (the last component, 0700) if it is missing;
 * returns it opened, or -1. */
static int open_dir(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	int fd;

	snprintf(dir, len, "%.*s", slash && slash != path ? (int)(slash - path) : 1, path);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd;
}

static int write_tmp(const char *tmp, const uint8_t *buf)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, WSTATE_SIZE);
	if (n != WSTATE_SIZE || fsync(fd) < 0) {
		e = n >= 0 && n != WSTATE_SIZE ? EIO : errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

int wstate_save(const char *path, struct wstate *s, char *err, size_t errlen)
{
	uint8_t buf[WSTATE_SIZE];
	char tmp[4096], dir[4096];
	int dfd, e;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	s->seq++;
	wstate_encode(buf, s);
	errno = 0;
	dfd = open_dir(path, dir, sizeof(dir));
	if (dfd < 0 || write_tmp(tmp, buf) < 0 || rename(tmp, path) < 0 || fsync(dfd) < 0) {
		e = errno ? errno : EIO;
		snprintf(err, errlen, "%s: %s", dfd < 0 ? dir : path, strerror(e));
		if (dfd >= 0)
			close(dfd);
		s->seq--;
		errno = e;
		return -1;
	}
	close(dfd);
	return 0;
}
