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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/gen.h"
#include "daemon/mdio.h"
#include "daemon/meta.h"
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
	m = mdio_open(cfg, node, false, err, sizeof(err));
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
		 "[resource]\nname = r0\nallow-unauthenticated = yes\n"
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
	cr_assert_eq(mdio_read_bitmap(m, bm, err, sizeof(err)), 0, "%s", err);
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
	cr_assert_eq(mdio_write_bitmap(md, bm, err, sizeof(err)), -1, "the fault did not fail");
	cr_assert(strstr(err, want), "%s", err);
	/* Nothing reached the disk: asked again, it must not say it did. */
	err[0] = '\0';
	cr_assert_eq(mdio_write_bitmap(md, bm, err, sizeof(err)), -1,
		     "a bitmap write that failed is reported as success when retried");
	cr_assert(strstr(err, want), "%s", err);
	heal();
	cr_assert_eq(mdio_write_bitmap(md, bm, err, sizeof(err)), 0, "%s", err);
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
