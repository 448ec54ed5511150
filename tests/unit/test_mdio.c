/* Unit tests for daemon/mdio on a real temporary backing file (internal
 * metadata): a failed metadata write is never reported as success later,
 * nor allowed to overwrite the last good copy (DESIGN.md rule 10).
 *
 * Failures are made without a seam in mdio: the test swaps the file
 * descriptor mdio holds (dup2 onto its number) for /dev/null, where writes
 * succeed and fdatasync fails with EINVAL, or for a read-only descriptor
 * of the same file, where writes fail with EBADF; then puts the real one
 * back.  Criterion runs every test in its own process. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/meta/actlog.h"
#include "daemon/meta/alog.h"
#include "daemon/config.h"
#include "daemon/meta/gen.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "daemon/meta/mdio.h"
#include "daemon/meta/meta.h"
#include "daemon/meta/local.h"
#include "tests/meta_v1.h"
#include "tests/unit/loop_until.h"
#include "utils/bitmap.h"

#define BACKING_BYTES (8U << 20)

static char dir[64], img[128];
static struct config *cfg;
static struct mdio *md;
static int real_fd = -1; /* a copy of mdio's descriptor, to put back */
static int md_fd = -1;	 /* the number mdio uses */

/* The descriptor of this process open on path (mdio's, the only one). */
static int fd_of(const char *path)
{
	char link[PATH_MAX], name[300];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int found = -1;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		ssize_t n;

		snprintf(name, sizeof(name), "/proc/self/fd/%s", e->d_name);
		n = readlink(name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, path) == 0)
			found = atoi(e->d_name);
	}
	closedir(d);
	cr_assert_geq(found, 0, "no descriptor open on %s", path);
	return found;
}

static struct mdio *open_md(void)
{
	const struct config_node *node;
	char err[512] = "";
	struct mdio *m;

	node = config_node_by_index(cfg, 0);
	cr_assert_not_null(node);
	m = mdio_open(cfg, node, false, 1, err, sizeof(err));
	cr_assert_not_null(m, "%s", err);
	return m;
}

static void setup(void)
{
	char text[1024], err[512] = "";
	struct meta_sb sb;
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/blkrep-mdio.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/a.img", dir);
	fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, BACKING_BYTES), 0);
	close(fd);
	snprintf(text, sizeof(text),
		 "[resource]\nname = r0\nallow-unauthenticated = yes\nallow-unencrypted = yes\n"
		 "[node alpha]\naddress = 127.0.0.1:7789\nbacking = %s\n"
		 "[node beta]\naddress = 127.0.0.1:7790\nbacking = %s/b.img\n",
		 img, dir);
	cr_assert_eq(config_parse_string(text, "t.conf", &cfg, err, sizeof(err)), 0, "%s", err);
	md = open_md();
	meta_sb_defaults(&sb);
	snprintf(sb.resource, sizeof(sb.resource), "r0");
	snprintf(sb.node, sizeof(sb.node), "alpha");
	sb.data_bytes = mdio_layout(md)->data_bytes;
	sb.extent_bytes = mdio_layout(md)->extent_bytes;
	sb.gen.current = GEN_CREATED;
	sb.nbd_index = -1;
	cr_assert_eq(mdio_format(md, &sb, err, sizeof(err)), 0, "%s", err);
	md_fd = fd_of(img);
	real_fd = dup(md_fd);
	cr_assert_geq(real_fd, 0);
}

static void teardown(void)
{
	mdio_close(md);
	config_free(cfg);
	if (real_fd >= 0)
		close(real_fd);
	unlink(img);
	rmdir(dir);
}

TestSuite(mdio, .init = setup, .fini = teardown, .timeout = 20);

/* From now on mdio's writes succeed and its fdatasync fails (EINVAL). */
static void fail_sync(void)
{
	int null = open("/dev/null", O_RDWR);

	cr_assert_geq(null, 0);
	cr_assert_eq(dup2(null, md_fd), md_fd);
	close(null);
}

/* From now on mdio's writes fail (EBADF). */
static void fail_writes(void)
{
	int ro = open(img, O_RDONLY);

	cr_assert_geq(ro, 0);
	cr_assert_eq(dup2(ro, md_fd), md_fd);
	close(ro);
}

/* The real file again. */
static void heal(void)
{
	cr_assert_eq(dup2(real_fd, md_fd), md_fd);
}

/* The bitmap as a fresh reader finds it on disk. */
static struct bitmap *bitmap_on_disk(void)
{
	struct mdio *m = open_md();
	struct bitmap *bm = bitmap_new(mdio_layout(m)->nbits);
	char err[512] = "";

	cr_assert_not_null(bm);
	cr_assert_eq(mdio_read_bitmap(m, 0, bm, err, sizeof(err)), 0, "%s", err);
	mdio_close(m);
	return bm;
}

/* --- the bitmap (issue 12, item 7) --- */

static void bitmap_write_fails_until_healed(void (*fault)(void), const char *want)
{
	struct bitmap *bm = bitmap_new(mdio_layout(md)->nbits), *disk;
	char err[512] = "";

	cr_assert_not_null(bm);
	bitmap_set(bm, 5);
	fault();
	cr_assert_eq(mdio_write_bitmap(md, 0, bm, err, sizeof(err)), -1, "the fault did not fail");
	cr_assert(strstr(err, want), "%s", err);
	/* Nothing reached the disk: asked again, it must not say it did. */
	err[0] = '\0';
	cr_assert_eq(mdio_write_bitmap(md, 0, bm, err, sizeof(err)), -1,
		     "a bitmap write that failed is reported as success when retried");
	cr_assert(strstr(err, want), "%s", err);
	heal();
	cr_assert_eq(mdio_write_bitmap(md, 0, bm, err, sizeof(err)), 0, "%s", err);
	disk = bitmap_on_disk();
	cr_assert(bitmap_test(disk, 5), "the bit never reached the disk");
	cr_assert_eq(bitmap_count(disk), 1);
	/* Written and flushed: now there is nothing left to write. */
	cr_assert_eq(bitmap_next_dirty_page(bm, 0), bitmap_pages(bm));
	bitmap_free(disk);
	bitmap_free(bm);
}

Test(mdio, failed_bitmap_fdatasync_is_not_reported_as_success_later)
{
	bitmap_write_fails_until_healed(fail_sync, "fdatasync");
}

Test(mdio, failed_bitmap_write_is_not_reported_as_success_later)
{
	bitmap_write_fails_until_healed(fail_writes, "writing metadata");
}

/* --- the activity log's A/B copies (issue 12, item 8) --- */

/* Copy i of the activity log as it is on disk. */
static void al_copy(int i, uint8_t *blk)
{
	const struct meta_layout *l = mdio_layout(md);

	cr_assert_eq(pread(real_fd, blk, META_BLOCK_BYTES, (off_t)l->al_offset[i]),
		     (ssize_t)META_BLOCK_BYTES);
}

/* Decodes copy i: its seq, and its extents into ext (room for META_AL_MAX). */
static int al_decode(int i, uint64_t *seq, uint32_t *ext, unsigned *n)
{
	uint8_t blk[META_BLOCK_BYTES];
	const char *why;

	al_copy(i, blk);
	return meta_al_decode(blk, seq, ext, META_AL_MAX, n, &why);
}

/* A write torn by a crash: half a block of garbage over copy i. */
static void al_tear(int i)
{
	uint8_t junk[META_BLOCK_BYTES / 2];

	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(pwrite(real_fd, junk, sizeof(junk), (off_t)mdio_layout(md)->al_offset[i]),
		     (ssize_t)sizeof(junk));
}

/* What a fresh reader (a restart) finds in the log: n extents into ext. */
static void al_read_back(uint32_t *ext, unsigned *n)
{
	struct mdio *m = open_md();
	char err[512] = "";

	cr_assert_eq(mdio_read_al(m, ext, META_AL_MAX, n, err, sizeof(err)), 0,
		     "no activity log left: %s", err);
	mdio_close(m);
}

/* The seam a caller writing through its ring uses: where mdio_al_next()
 * says, then mdio_al_done() with the outcome. */
static uint64_t al_write(const uint32_t *ext, unsigned n, bool tear, int *copy)
{
	const struct meta_layout *l = mdio_layout(md);
	uint8_t blk[META_BLOCK_BYTES];
	uint64_t seq, off;
	int fd;

	seq = mdio_al_next(md, &fd, &off);
	cr_assert_eq(fd, md_fd);
	cr_assert(off == l->al_offset[0] || off == l->al_offset[1]);
	*copy = off == l->al_offset[1];
	if (tear) {
		al_tear(*copy);
	} else {
		meta_al_encode(seq, ext, n, blk);
		cr_assert_eq(pwrite(fd, blk, sizeof(blk), (off_t)off), (ssize_t)sizeof(blk));
	}
	mdio_al_done(md, !tear);
	return seq;
}

Test(mdio, al_copy_and_seq_advance_only_when_a_snapshot_is_durable)
{
	uint32_t ext[META_AL_MAX], e7[] = { 7 }, e78[] = { 7, 8 };
	uint64_t seq, s1, s2, s3, s4;
	unsigned n;
	int fd, c1, c2, c3, c4;
	uint64_t off1, off2;
	char err[512] = "";

	cr_assert_eq(mdio_read_al(md, ext, META_AL_MAX, &n, err, sizeof(err)), 0, "%s", err);
	/* Asking twice is not writing twice. */
	s1 = mdio_al_next(md, &fd, &off1);
	cr_assert_eq(mdio_al_next(md, &fd, &off2), s1);
	cr_assert_eq(off1, off2);

	s1 = al_write(e7, 1, false, &c1); /* the last good snapshot */
	s2 = al_write(e78, 2, true, &c2); /* fails, torn */
	cr_assert_neq(c2, c1, "a new snapshot went to the copy holding the last good one");
	s3 = al_write(e78, 2, true, &c3); /* the retry: fails, torn too */
	cr_assert_eq(c3, c2, "the retry of a failed snapshot went to the last good copy");
	cr_assert_geq(s3, s2);
	cr_assert_gt(s3, s1);
	cr_assert_eq(al_decode(c1, &seq, ext, &n), 0, "the last good copy was damaged");
	cr_assert(seq == s1 && n == 1 && ext[0] == 7);
	al_read_back(ext, &n);
	cr_assert(n == 1 && ext[0] == 7, "a restart finds %u extents, not the last good {7}", n);

	s4 = al_write(e78, 2, false, &c4); /* works at last */
	cr_assert_eq(c4, c2);
	cr_assert_gt(s4, s1);
	al_read_back(ext, &n);
	cr_assert(n == 2 && ext[0] == 7 && ext[1] == 8);
	/* and only now the next one goes to the other copy */
	(void)al_write(e7, 1, false, &c1);
	cr_assert_eq(c1, 1 - c4);
}

/* The same through daemon/alog, the ring and a real failing write: after a
 * failed snapshot, alog_retry()'s snapshot must go to the copy the failed
 * one went to, never over the last good one. */
static int woken;
static struct alog *alog;
static struct actlog *al;
static struct ticker ticker;
static struct loop *ring;

static void on_wake(void *arg)
{
	(void)arg;
	woken++;
}

static bool run_until(bool (*cond)(void))
{
	return loop_run_until(ring, cond, 5000);
}

static int want_woken;

static bool is_woken(void)
{
	return woken >= want_woken;
}

static bool has_failed(void)
{
	return alog_error(alog)[0] != '\0';
}

/* What the primary does for a write whose extent missed: the extent goes
 * into the log, the write waits for the snapshot (daemon/repl/primary.c). */
static enum actlog_result log_extent(uint32_t e)
{
	enum actlog_result r = actlog_begin(al, e, ACTLOG_EPOCH_FIRST);

	actlog_end(al, e);
	alog_write(alog);
	return r;
}

Test(mdio, alog_retries_a_failed_snapshot_on_the_same_copy)
{
	uint32_t ext[META_AL_MAX];
	uint8_t good[META_BLOCK_BYTES], now[META_BLOCK_BYTES];
	struct bitmap *bm = bitmap_new(mdio_layout(md)->nbits);
	uint64_t seq_a, seq_b;
	unsigned n;

	cr_assert_not_null(bm);
	ring = loop_new();
	cr_assert_not_null(ring);
	ticker_start(&ticker, ring, 20);
	FILE *data = tmpfile(); /* the data area: flushed only when the log drops */

	cr_assert_not_null(data);
	al = actlog_new(16);
	cr_assert_not_null(al);
	alog = alog_new(ring, md, &bm, 1, fileno(data), al, 4U << 20, mdio_layout(md)->extent_bytes,
			on_wake, NULL);
	cr_assert_not_null(alog);
	cr_assert_eq(alog_recover(alog, false), 0);

	/* Extent 0 logged: the last good snapshot, in copy B (A held the
	 * formatted one). */
	cr_assert_eq(log_extent(0), ACTLOG_ADDED);
	want_woken = 1;
	cr_assert(run_until(is_woken), "the first snapshot never became durable");
	cr_assert_eq(actlog_begin(al, 0, ACTLOG_EPOCH_FIRST), ACTLOG_HIT);
	actlog_end(al, 0);
	cr_assert_eq(al_decode(1, &seq_b, ext, &n), 0);
	cr_assert(n == 1 && ext[0] == 0, "copy B holds %u extents", n);
	al_copy(1, good);

	/* Extent 1: its snapshot (to copy A) fails; say the failed write tore
	 * copy A. */
	fail_writes();
	cr_assert_eq(log_extent(1), ACTLOG_ADDED);
	cr_assert(run_until(has_failed), "the snapshot write did not fail");
	al_tear(0);
	al_read_back(ext, &n);
	cr_assert(n == 1 && ext[0] == 0, "a restart now finds %u extents, not {0}", n);

	/* The retry works: it must have gone to copy A. */
	heal();
	alog_retry(alog);
	want_woken = woken + 1;
	cr_assert(run_until(is_woken), "the retried snapshot never became durable");
	al_copy(1, now);
	cr_assert(memcmp(good, now, META_BLOCK_BYTES) == 0,
		  "the retry overwrote copy B, which held the last good snapshot");
	cr_assert_eq(al_decode(0, &seq_a, ext, &n), 0, "copy A was not rewritten");
	cr_assert_gt(seq_a, seq_b);
	cr_assert(n == 2, "copy A holds %u extents", n);
	al_read_back(ext, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(actlog_begin(al, 1, ACTLOG_EPOCH_FIRST), ACTLOG_HIT);
	actlog_end(al, 1);
	alog_free(alog);
	actlog_free(al);
	loop_free(ring);
	bitmap_free(bm);
}

/* --- the superblock's A/B copies: shown safe --- */

Test(mdio, failed_superblock_write_never_touches_the_last_good_copy)
{
	uint8_t good[META_BLOCK_BYTES], now[META_BLOCK_BYTES];
	const struct meta_layout *l = mdio_layout(md);
	struct meta_sb sb, back;
	const char *why;
	struct mdio *m;
	char err[512] = "";

	cr_assert_eq(mdio_read_sb(md, &sb, err, sizeof(err)), 0, "%s", err);
	sb.al_slots = 100;
	cr_assert_eq(mdio_write_sb(md, &sb, err, sizeof(err)), 0, "%s", err);
	/* Which copy holds it now: the last good one. */
	cr_assert_eq(pread(real_fd, good, sizeof(good), (off_t)l->sb_offset[1]),
		     (ssize_t)sizeof(good));
	cr_assert_eq(meta_sb_decode(good, &back, &why), 0, "%s", why);
	cr_assert_eq(back.seq, sb.seq, "the write after format should be in copy B");
	sb.al_slots = 200;
	fail_sync();
	cr_assert_eq(mdio_write_sb(md, &sb, err, sizeof(err)), -1);
	/* Say it tore copy A, and the retry fails and tears it again. */
	cr_assert_eq(pwrite(real_fd, "torn", 4, (off_t)l->sb_offset[0] + 100), 4);
	fail_writes();
	cr_assert_eq(mdio_write_sb(md, &sb, err, sizeof(err)), -1);
	cr_assert_eq(pwrite(real_fd, "torn", 4, (off_t)l->sb_offset[0] + 200), 4);
	cr_assert_eq(pread(real_fd, now, sizeof(now), (off_t)l->sb_offset[1]),
		     (ssize_t)sizeof(now));
	cr_assert(memcmp(good, now, sizeof(now)) == 0,
		  "a failed write overwrote the last good copy");
	m = open_md();
	cr_assert_eq(mdio_read_sb(m, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(back.al_slots, 100, "a restart finds %u, not the last good 100",
		     back.al_slots);
	mdio_close(m);
	/* Healed: the next write goes to copy A, with a higher seq. */
	heal();
	cr_assert_eq(mdio_write_sb(md, &sb, err, sizeof(err)), 0, "%s", err);
	m = open_md();
	cr_assert_eq(mdio_read_sb(m, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(back.al_slots, 200);
	mdio_close(m);
	cr_assert_eq(pread(real_fd, now, sizeof(now), (off_t)l->sb_offset[1]),
		     (ssize_t)sizeof(now));
	cr_assert(memcmp(good, now, sizeof(now)) == 0);
}

/* --- bitmap slots (metadata version 2) --- */

/* Fresh metadata with max_peers slots on the test's store; slot 0 is
 * beta's when named. */
static void format_slots(unsigned max_peers, bool name_beta)
{
	const struct config_node *node = config_node_by_index(cfg, 0);
	char err[512] = "";
	struct meta_sb sb;
	struct mdio *m = mdio_open(cfg, node, true, 0, err, sizeof(err));

	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(mdio_use_slots(m, max_peers, err, sizeof(err)), 0, "%s", err);
	meta_sb_defaults(&sb);
	snprintf(sb.resource, sizeof(sb.resource), "r0");
	snprintf(sb.node, sizeof(sb.node), "alpha");
	if (name_beta)
		snprintf(sb.slot[0].node, sizeof(sb.slot[0].node), "beta");
	sb.max_peers = max_peers;
	sb.data_bytes = mdio_layout(m)->data_bytes;
	sb.extent_bytes = mdio_layout(m)->extent_bytes;
	sb.gen.current = GEN_CREATED;
	cr_assert_eq(mdio_format(m, &sb, err, sizeof(err)), 0, "%s", err);
	mdio_close(m);
}

/* The layout of internal metadata follows the superblock's slot count:
 * a reader that does not know it finds it, and each slot's bitmap is
 * its own. */
Test(mdio, three_slots_are_found_and_kept_apart)
{
	const struct config_node *node = config_node_by_index(cfg, 0);
	struct bitmap *bm[3];
	struct meta_sb sb;
	char err[512] = "";
	struct mdio *m;

	format_slots(3, true);
	m = mdio_open(cfg, node, false, 0, err, sizeof(err));
	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(mdio_read_sb(m, &sb, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sb.max_peers, 3);
	cr_assert_eq(mdio_layout(m)->max_peers, 3);
	cr_assert_eq(mdio_layout(m)->data_bytes, sb.data_bytes);
	for (unsigned i = 0; i < 3; i++) {
		bm[i] = bitmap_new(mdio_layout(m)->nbits);
		cr_assert_not_null(bm[i]);
		bitmap_set(bm[i], 10 * i + 1);
		cr_assert_eq(mdio_write_bitmap(m, i, bm[i], err, sizeof(err)), 0, "%s", err);
	}
	for (unsigned i = 0; i < 3; i++) {
		bitmap_clear_range(bm[i], 0, bitmap_nbits(bm[i]));
		cr_assert_eq(mdio_read_bitmap(m, i, bm[i], err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(bitmap_count(bm[i]), 1, "slot %u", i);
		cr_assert(bitmap_test(bm[i], 10 * i + 1), "slot %u holds its own bit", i);
		bitmap_free(bm[i]);
	}
	mdio_close(m);
}

/* Version 1 metadata: up reads it as one slot, names the slot after the
 * config's peer and writes it as version 2 at once; the bitmap and its
 * generation are kept. */
Test(mdio, local_open_upgrades_version_1)
{
	const struct config_node *node = config_node_by_index(cfg, 0);
	struct meta_sb sb, *got;
	uint8_t blk[META_BLOCK_BYTES];
	struct bitmap *bm = bitmap_new(mdio_layout(md)->nbits);
	char err[512] = "";
	struct local *l;
	int fd = open(img, O_RDWR);

	cr_assert_geq(fd, 0);
	cr_assert_eq(mdio_read_sb(md, &sb, err, sizeof(err)), 0, "%s", err);
	sb.gen.current = 0x1234;
	sb.slot[0].bitmap_gen = 0x99;
	sb.slot[0].disk = META_DISK_OUTDATED;
	sb.disk = META_DISK_UPTODATE;
	sb.seq = 7;
	meta_v1_encode(&sb, blk);
	cr_assert_eq(pwrite(fd, blk, sizeof(blk), (off_t)mdio_layout(md)->sb_offset[0]),
		     (ssize_t)sizeof(blk));
	close(fd);
	bitmap_set(bm, 3);
	cr_assert_eq(mdio_write_bitmap(md, 0, bm, err, sizeof(err)), 0, "%s", err);

	l = local_open(cfg, node);
	cr_assert_not_null(l);
	got = local_sb(l);
	cr_assert_eq(local_max_peers(l), 1);
	cr_assert_eq(local_slot(l, "beta"), 0);
	cr_assert_eq(local_slot(l, "gamma"), -1);
	cr_assert_eq(got->slot[0].bitmap_gen, 0x99);
	cr_assert_eq(got->slot[0].disk, META_DISK_OUTDATED);
	cr_assert_eq(got->gen.current, 0x1234);
	cr_assert(bitmap_test(local_slot_bm(l, 0), 3), "the bitmap is kept");
	cr_assert_eq(local_slot_out_of_sync(l, 0, UINT64_MAX), mdio_layout(md)->extent_bytes);
	local_close(l);

	/* On disk: version 2, slot named. */
	cr_assert_eq(mdio_read_sb(md, &sb, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sb.version, 2);
	cr_assert_str_eq(sb.slot[0].node, "beta");
	cr_assert_eq(sb.slot[0].bitmap_gen, 0x99);
	bitmap_free(bm);
}

/* Metadata made with more slots than the config needs: the peer gets the
 * first, the others stay free, and the data area is smaller. */
Test(mdio, local_open_names_a_free_slot)
{
	struct local *l;

	format_slots(3, false);
	l = local_open(cfg, config_node_by_index(cfg, 0));
	cr_assert_not_null(l);
	cr_assert_eq(local_max_peers(l), 3);
	cr_assert_eq(local_slot(l, "beta"), 0);
	cr_assert_str_eq(local_sb(l)->slot[1].node, "");
	cr_assert_lt(local_sb(l)->data_bytes, mdio_layout(md)->data_bytes);
	/* Bits in a free slot (a crash marks every slot) are no peer's. */
	bitmap_set(local_slot_bm(l, 2), 0);
	cr_assert_eq(local_out_of_sync(l, UINT64_MAX), 0);
	bitmap_set(local_slot_bm(l, 0), 1);
	cr_assert_eq(local_out_of_sync(l, UINT64_MAX), local_sb(l)->extent_bytes);
	local_new_gen(l, 1U << 0);
	cr_assert_eq(local_sb(l)->slot[0].bitmap_gen, GEN_CREATED);
	cr_assert_eq(local_sb(l)->slot[1].bitmap_gen, 0, "a free slot takes no id");
	local_close(l);
}

/* All slots' pages go with one flush, and stay dirty, every slot's, until
 * the writes and that flush succeeded (rule 10 for N slots). */
Test(mdio, slots_written_together_stay_dirty_until_flushed)
{
	const struct config_node *node = config_node_by_index(cfg, 0);
	struct bitmap *bm[2], *disk;
	char err[512] = "";
	struct mdio *m;
	int fd = dup(0), real, null;

	close(fd);	/* the number mdio_open() gets next */
	format_slots(2, true);
	m = mdio_open(cfg, node, false, 2, err, sizeof(err));
	cr_assert_not_null(m, "%s", err);
	real = dup(fd);
	for (unsigned i = 0; i < 2; i++) {
		bm[i] = bitmap_new(mdio_layout(m)->nbits);
		bitmap_set(bm[i], 7 + i);
	}
	null = open("/dev/null", O_RDWR);
	cr_assert_eq(dup2(null, fd), fd);
	close(null);
	cr_assert_eq(mdio_write_bitmaps(m, bm, 2, err, sizeof(err)), -1, "fdatasync on /dev/null");
	cr_assert_lt(bitmap_next_dirty_page(bm[0], 0), bitmap_pages(bm[0]), "slot 0 still dirty");
	cr_assert_lt(bitmap_next_dirty_page(bm[1], 0), bitmap_pages(bm[1]), "slot 1 still dirty");
	cr_assert_eq(dup2(real, fd), fd);
	cr_assert_eq(mdio_write_bitmaps(m, bm, 2, err, sizeof(err)), 0, "%s", err);
	for (unsigned i = 0; i < 2; i++) {
		cr_assert_eq(bitmap_next_dirty_page(bm[i], 0), bitmap_pages(bm[i]));
		disk = bitmap_new(mdio_layout(m)->nbits);
		cr_assert_eq(mdio_read_bitmap(m, i, disk, err, sizeof(err)), 0, "%s", err);
		cr_assert(bitmap_test(disk, 7 + i) && bitmap_count(disk) == 1, "slot %u on disk", i);
		bitmap_free(disk);
		bitmap_free(bm[i]);
	}
	close(real);
	mdio_close(m);
}
