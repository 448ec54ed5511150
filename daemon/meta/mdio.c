/* A node's metadata on disk.  See mdio.h. */
#include "mdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "nbd/store.h"
#include "utils/bitmap.h"

struct mdio {
	int data_fd;
	int meta_fd;		/* == data_fd for internal metadata */
	bool external;
	bool probe;		/* the layout follows the superblock's max_peers */
	uint32_t extent;
	uint64_t backing_bytes;
	char backing[256];
	struct meta_layout layout;
	int sb_next;		/* the superblock copy the next write goes to */
	int al_next;		/* the activity-log copy not holding the newest */
	uint64_t al_seq;		/* of the newest durable activity-log copy */
	char where[300];
	uint8_t blk[2][META_BLOCK_BYTES];
};

/* One metadata read (rbuf) or write (wbuf), all of it or an error. */
static int mdio_io(struct mdio *m, void *rbuf, const void *wbuf, size_t len, uint64_t off,
		   char *err, size_t errlen)
{
	ssize_t n = rbuf ? pread(m->meta_fd, rbuf, len, (off_t)off)
			 : pwrite(m->meta_fd, wbuf, len, (off_t)off);

	if (n == (ssize_t)len)
		return 0;
	snprintf(err, errlen, "%s: %s metadata at %llu: %s", m->where,
		 rbuf ? "reading" : "writing", (unsigned long long)off,
		 n < 0 ? strerror(errno) : rbuf ? "short read" : "short write");
	return -1;
}

static int mdio_pread(struct mdio *m, void *buf, size_t len, uint64_t off, char *err,
		      size_t errlen)
{
	return mdio_io(m, buf, NULL, len, off, err, errlen);
}

static int mdio_pwrite(struct mdio *m, const void *buf, size_t len, uint64_t off, char *err,
		       size_t errlen)
{
	return mdio_io(m, NULL, buf, len, off, err, errlen);
}

static int mdio_sync(struct mdio *m, char *err, size_t errlen)
{
	if (fdatasync(m->meta_fd) == 0)
		return 0;
	snprintf(err, errlen, "%s: fdatasync: %s", m->where, strerror(errno));
	return -1;
}

static int open_rw(const char *path, int extra, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | extra, 0600);

	if (fd < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return fd;
}

/* The layout for max_peers slots.  External metadata: the file must hold
 * the whole meta area; with grow, a short regular file is extended. */
static int mdio_set_layout(struct mdio *m, unsigned max_peers, bool grow, char *err,
			   size_t errlen)
{
	struct meta_layout want;
	const char *why;
	uint64_t size;
	bool blk;

	if (!m->external) {
		if (meta_layout_internal(m->backing_bytes, m->extent, max_peers, &m->layout,
					 &why) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s", m->backing, why);
		return -1;
	}
	if (store_fd_size(m->meta_fd, m->where, &size, &blk, err, errlen) < 0)
		return -1;
	if (meta_layout_external(m->backing_bytes, UINT64_MAX, m->extent, max_peers, &want,
				 &why) < 0)
		goto bad;
	if (size < want.meta_bytes && grow && !blk) {
		if (ftruncate(m->meta_fd, (off_t)want.meta_bytes) < 0) {
			snprintf(err, errlen, "%s: %s", m->where, strerror(errno));
			return -1;
		}
		size = want.meta_bytes;
	}
	if (meta_layout_external(m->backing_bytes, size, m->extent, max_peers, &m->layout,
				 &why) == 0)
		return 0;
bad:
	snprintf(err, errlen, "%s: %s", m->where, why);
	return -1;
}

struct mdio *mdio_open(const struct config *cfg, const struct config_node *node, bool create,
		       unsigned max_peers, char *err, size_t errlen)
{
	struct mdio *m = calloc(1, sizeof(*m));
	bool blk;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->meta_fd = -1;
	m->extent = config_bitmap_granularity(cfg);
	m->probe = max_peers == 0;
	snprintf(m->backing, sizeof(m->backing), "%s", node->backing);
	m->data_fd = open_rw(node->backing, 0, err, errlen);
	if (m->data_fd < 0 ||
	    store_fd_size(m->data_fd, node->backing, &m->backing_bytes, &blk, err, errlen))
		goto fail;
	if (node->meta) {
		snprintf(m->where, sizeof(m->where), "%s", node->meta);
		m->external = true;
		m->meta_fd = open_rw(node->meta, create ? O_CREAT : 0, err, errlen);
		if (m->meta_fd < 0)
			goto fail;
	} else {
		snprintf(m->where, sizeof(m->where), "%s (internal)", node->backing);
		m->meta_fd = m->data_fd;
	}
	if (mdio_set_layout(m, max_peers ? max_peers : 1, create, err, errlen) < 0)
		goto fail;
	return m;
fail:
	mdio_close(m);
	return NULL;
}

void mdio_close(struct mdio *m)
{
	if (!m)
		return;
	if (m->meta_fd >= 0 && m->meta_fd != m->data_fd)
		close(m->meta_fd);
	if (m->data_fd >= 0)
		close(m->data_fd);
	free(m);
}

const struct meta_layout *mdio_layout(const struct mdio *m)
{
	return &m->layout;
}

const char *mdio_where(const struct mdio *m)
{
	return m->where;
}

/* Reads and picks the superblock at the current layout's offsets. */
static int mdio_pick_sb(struct mdio *m, struct meta_sb *sb, const char **why, char *err,
			size_t errlen)
{
	int which;

	if (mdio_pread(m, m->blk[0], META_BLOCK_BYTES, m->layout.sb_offset[0], err, errlen) ||
	    mdio_pread(m, m->blk[1], META_BLOCK_BYTES, m->layout.sb_offset[1], err, errlen))
		return -2;
	if (meta_sb_pick(m->blk[0], m->blk[1], sb, &which, why) < 0)
		return -1;
	m->sb_next = 1 - which;
	return 0;
}

/* Internal metadata ends at the store's end, so where its superblock is
 * depends on the number of slots: each count is tried, fewest first (a
 * create with more slots overwrote any superblock of fewer), until a
 * superblock says it is that count's.  The first place with blkrep's magic
 * but no valid superblock stops the search: an older superblock further on
 * must not stand in for a damaged one. */
int mdio_read_sb(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen)
{
	const char *why = META_WHY_NONE;

	for (unsigned p = 1; p <= (m->probe ? META_PEERS_MAX : 1); p++) {
		int rc;

		if (m->probe && mdio_set_layout(m, p, false, err, errlen) < 0) {
			if (p == 1)
				return -1;
			continue;	/* an external file too small for p slots */
		}
		rc = mdio_pick_sb(m, sb, &why, err, errlen);
		if (rc == -2)
			return -1;
		if (rc == 0 && (!m->probe || sb->max_peers == p))
			return 0;
		if (rc < 0 && strcmp(why, META_WHY_NONE))
			break;
		why = META_WHY_NONE;
	}
	/* A store never created: say what to do. */
	snprintf(err, errlen, "%s: %s%s", m->where, why,
		 strcmp(why, META_WHY_NONE) ? "" : "; run: blkrep create");
	return -1;
}

int mdio_use_slots(struct mdio *m, unsigned max_peers, char *err, size_t errlen)
{
	m->probe = false;
	return mdio_set_layout(m, max_peers, true, err, errlen);
}

int mdio_write_sb(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen)
{
	sb->seq++;
	meta_sb_encode(sb, m->blk[0]);
	if (mdio_pwrite(m, m->blk[0], META_BLOCK_BYTES, m->layout.sb_offset[m->sb_next], err,
			errlen) ||
	    mdio_sync(m, err, errlen))
		return -1;
	m->sb_next = 1 - m->sb_next;
	return 0;
}

static int mdio_zero_bitmap(struct mdio *m, char *err, size_t errlen)
{
	static const uint8_t zeros[64 << 10];

	uint64_t total = m->layout.bm_bytes * m->layout.max_peers;

	for (uint64_t done = 0; done < total;) {
		uint64_t n = total - done;

		n = n < sizeof(zeros) ? n : sizeof(zeros);
		if (mdio_pwrite(m, zeros, n, m->layout.bm_offset + done, err, errlen) < 0)
			return -1;
		done += n;
	}
	return 0;
}

int mdio_format(struct mdio *m, struct meta_sb *sb, char *err, size_t errlen)
{
	if (sb->max_peers != m->layout.max_peers) {
		snprintf(err, errlen, "%s: the superblock has %u peer slots, the layout %u",
			 m->where, sb->max_peers, m->layout.max_peers);
		return -1;
	}
	/* Both copies valid; A (seq 1) wins over B (seq 0). */
	for (int i = 1; i >= 0; i--) {
		sb->seq = (uint64_t)(1 - i);
		meta_sb_encode(sb, m->blk[0]);
		meta_al_encode((uint64_t)(1 - i), NULL, 0, m->blk[1]);
		if (mdio_pwrite(m, m->blk[0], META_BLOCK_BYTES, m->layout.sb_offset[i], err,
				errlen) ||
		    mdio_pwrite(m, m->blk[1], META_BLOCK_BYTES, m->layout.al_offset[i], err,
				errlen))
			return -1;
	}
	m->sb_next = 1;
	m->al_next = 1;
	m->al_seq = 1;
	if (mdio_zero_bitmap(m, err, errlen) < 0)
		return -1;
	return mdio_sync(m, err, errlen);
}

int mdio_read_al(struct mdio *m, uint32_t *ext, unsigned max, unsigned *n, char *err,
		 size_t errlen)
{
	const char *why;
	uint64_t seq;
	int which;

	if (mdio_pread(m, m->blk[0], META_BLOCK_BYTES, m->layout.al_offset[0], err, errlen) ||
	    mdio_pread(m, m->blk[1], META_BLOCK_BYTES, m->layout.al_offset[1], err, errlen))
		return -1;
	if (meta_al_pick(m->blk[0], m->blk[1], &seq, ext, max, n, &which, &why) < 0) {
		snprintf(err, errlen, "%s: activity log: %s", m->where, why);
		return -1;
	}
	m->al_next = 1 - which;
	m->al_seq = seq;
	return 0;
}

/* Nothing moves here: a snapshot whose write fails, torn perhaps, is
 * retried on the same copy, and the other one keeps the last good
 * snapshot (DESIGN.md rule 10). */
uint64_t mdio_al_next(struct mdio *m, int *fd, uint64_t *off)
{
	*fd = m->meta_fd;
	*off = m->layout.al_offset[m->al_next];
	return m->al_seq + 1;
}

void mdio_al_done(struct mdio *m, bool ok)
{
	if (!ok)
		return;
	m->al_seq++;
	m->al_next = 1 - m->al_next;
}

int mdio_read_bitmap(struct mdio *m, unsigned slot, struct bitmap *bm, char *err,
		     size_t errlen)
{
	uint64_t base = meta_layout_bm_offset(&m->layout, slot);

	for (uint64_t p = 0; p < bitmap_pages(bm); p++) {
		if (mdio_pread(m, m->blk[0], META_BLOCK_BYTES, base + p * META_BLOCK_BYTES, err,
			       errlen) < 0)
			return -1;
		if (bitmap_decode_page(bm, p, m->blk[0]) < 0) {
			snprintf(err, errlen, "%s: bitmap slot %u page %llu out of range", m->where,
				 slot, (unsigned long long)p);
			return -1;
		}
		bitmap_clear_dirty(bm, p);
	}
	return 0;
}

/* Marks every dirty page clean: they are all on disk now. */
static void mdio_bitmap_clean(struct bitmap *bm)
{
	for (uint64_t p = bitmap_next_dirty_page(bm, 0); p < bitmap_pages(bm);
	     p = bitmap_next_dirty_page(bm, p + 1))
		bitmap_clear_dirty(bm, p);
}

/* The pages stay dirty until they are written and the fdatasync after
 * them succeeded (DESIGN.md rule 10): a failure at either step leaves them
 * to be written again, so a later call cannot find "nothing changed" and
 * report success for bits that never reached the disk.  Nothing can change
 * the bitmap meanwhile: this is synchronous, on the bitmap's only thread. */
/* Writes the dirty pages of bm, slot slot; *wrote says whether there were
 * any. */
static int write_dirty(struct mdio *m, unsigned slot, struct bitmap *bm, bool *wrote, char *err,
		       size_t errlen)
{
	uint64_t base = meta_layout_bm_offset(&m->layout, slot);

	for (uint64_t p = bitmap_next_dirty_page(bm, 0); p < bitmap_pages(bm);
	     p = bitmap_next_dirty_page(bm, p + 1)) {
		(void)bitmap_encode_page(bm, p, m->blk[0]);
		if (mdio_pwrite(m, m->blk[0], META_BLOCK_BYTES, base + p * META_BLOCK_BYTES, err,
				errlen) < 0)
			return -1;
		*wrote = true;
	}
	return 0;
}

/* Slots first .. first + n - 1 from bms[0 .. n): one fdatasync for all. */
static int write_slots(struct mdio *m, unsigned first, struct bitmap *const *bms, unsigned n,
		       char *err, size_t errlen)
{
	bool wrote = false;

	for (unsigned i = 0; i < n; i++)
		if (write_dirty(m, first + i, bms[i], &wrote, err, errlen) < 0)
			return -1;
	if (!wrote)
		return 0;	/* nothing changed: no write, no flush */
	if (mdio_sync(m, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		mdio_bitmap_clean(bms[i]);
	return 0;
}

int mdio_write_bitmap(struct mdio *m, unsigned slot, struct bitmap *bm, char *err,
		      size_t errlen)
{
	return write_slots(m, slot, &bm, 1, err, errlen);
}

int mdio_write_bitmaps(struct mdio *m, struct bitmap *const *bms, unsigned n, char *err,
		       size_t errlen)
{
	return write_slots(m, 0, bms, n, err, errlen);
}
