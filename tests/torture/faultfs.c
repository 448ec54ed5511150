/* faultfs: a fault-injecting, crash-simulating FUSE file system for
 * blkrep's tests.  It shows one backing file as MOUNTPOINT/disk, plus a
 * control file MOUNTPOINT/ctl.
 *
 *   faultfs [--crash] BACKING MOUNTPOINT      (stays in the foreground)
 *
 * Faults: a line written to ctl changes what the disk does from then on:
 *   fail eio|enospc [after N] [below BYTES]
 *                      writes, fallocates and fsyncs fail with that error
 *                      (once N more writes succeeded, with "after N"; with
 *                      "below", only writes starting below BYTES fail, and
 *                      fsync works: a bad region, the rest of the disk fine)
 *   heal                               everything works again
 *   nofallocate        fallocate fails with EOPNOTSUPP from now on, so
 *                      callers zero by writing (as on a store without
 *                      punch hole or zero range); "allocate" undoes it
 *   delay-writes USEC  each write to the disk sleeps USEC microseconds
 *                      before it is done (a slow disk: zeroing by writes
 *                      then takes a while; one thread serves every
 *                      request, so reads and other writes wait too);
 *                      "delay-writes 0" stops it
 * (heal leaves nofallocate and delay-writes as they are.)
 * Reading ctl gives one line of counters: mode, writes, failed, fsyncs,
 * held_bytes, then the settings fallocate (yes|no) and delay_us.
 *
 * Crash mode (--crash): a write is held in memory, not written to BACKING,
 * until an fsync or fdatasync of the disk (RWF_DSYNC and O_DSYNC writes
 * reach FUSE as a write and an fsync).  Reads see held writes.  Power
 * loss is SIGKILL of this process: whatever is held is gone and BACKING
 * holds only flushed data.  (A clean exit, SIGTERM or unmount, writes the
 * held data back, as an orderly shutdown of a disk would.)  Closing the
 * file flushes nothing, as close(2) on a real disk.  fallocate answers
 * EOPNOTSUPP in crash mode, so callers zero by writing (held like other
 * writes).
 *
 * Nothing survives faultfs's death but what it wrote to BACKING: FUSE
 * writes are write-through (no writeback cache is asked for), and the
 * kernel's read cache of the disk goes with the mount.  (The disk is not
 * opened direct_io: the kernel would then drop RWF_DSYNC, sending no FSYNC
 * after such a write.)  One thread serves every request (no locking);
 * this is a test tool, not fast. */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK "/disk"
#define CTL  "/ctl"
#define PAGE 4096U

struct faultfs {
	int fd;		 /* BACKING */
	uint64_t size;	 /* the disk's size, held writes included */
	bool crash;	 /* hold writes until fsync */
	int fail_errno;	 /* 0: healthy */
	uint64_t after;	 /* writes that still succeed before failing starts */
	uint64_t fail_below; /* 0, or only writes starting below it fail */
	bool no_fallocate; /* fallocate answers EOPNOTSUPP */
	unsigned delay_us; /* each write sleeps this long first */
	uint8_t **pages; /* crash mode: held pages, by page index */
	uint64_t npages;
	uint64_t *dirty; /* indexes of held pages */
	uint64_t ndirty, dirty_cap;
	uint64_t writes, failed, fsyncs;
};

static struct faultfs *fs(void)
{
	return fuse_get_context()->private_data;
}

/* The error a write-type operation at off gets now, or 0; counts the
 * writes of "after N".  With "below", only writes that start below it
 * fail (a bad region; fsync then succeeds). */
static int fault_now(struct faultfs *f, bool is_write, uint64_t off)
{
	if (!f->fail_errno || (f->fail_below && (!is_write || off >= f->fail_below)))
		return 0;
	if (f->after) {
		f->after -= is_write;
		return 0;
	}
	f->failed++;
	return f->fail_errno;
}

/* --- crash mode: held pages --- */

static int page_room(struct faultfs *f, uint64_t idx)
{
	uint64_t n = f->npages ? f->npages : 1024;
	uint8_t **p;

	if (idx < f->npages)
		return 0;
	while (n <= idx)
		n *= 2;
	p = realloc(f->pages, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + f->npages, 0, (n - f->npages) * sizeof(*p));
	f->pages = p;
	f->npages = n;
	return 0;
}

/* The held copy of page idx, made from BACKING on first use. */
static uint8_t *page_get(struct faultfs *f, uint64_t idx)
{
	uint8_t *pg;
	ssize_t got;

	if (page_room(f, idx) < 0)
		return NULL;
	if (f->pages[idx])
		return f->pages[idx];
	if (f->ndirty == f->dirty_cap) {
		uint64_t cap = f->dirty_cap ? 2 * f->dirty_cap : 1024;
		uint64_t *d = realloc(f->dirty, cap * sizeof(*d));

		if (!d)
			return NULL;
		f->dirty = d;
		f->dirty_cap = cap;
	}
	pg = calloc(1, PAGE);
	if (!pg)
		return NULL;
	got = pread(f->fd, pg, PAGE, (off_t)(idx * PAGE));
	if (got < 0) {
		free(pg);
		return NULL;
	}
	f->pages[idx] = pg;
	f->dirty[f->ndirty++] = idx;
	return pg;
}

static int held_write(struct faultfs *f, const char *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		uint64_t at = off + done, idx = at / PAGE, in = at % PAGE;
		size_t k = len - done < PAGE - in ? len - done : PAGE - in;
		uint8_t *pg = page_get(f, idx);

		if (!pg)
			return -ENOMEM;
		memcpy(pg + in, buf + done, k);
		done += k;
	}
	return 0;
}

static int held_read(struct faultfs *f, char *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		uint64_t at = off + done, idx = at / PAGE, in = at % PAGE;
		size_t k = len - done < PAGE - in ? len - done : PAGE - in;
		ssize_t got;

		if (idx < f->npages && f->pages[idx]) {
			memcpy(buf + done, f->pages[idx] + in, k);
		} else {
			got = pread(f->fd, buf + done, k, (off_t)at);
			if (got < 0)
				return -errno;
			memset(buf + done + got, 0, k - (size_t)got);
		}
		done += k;
	}
	return 0;
}

/* fsync: every held page goes to BACKING (the host does not crash, so
 * BACKING needs no fsync of its own). */
static int held_commit(struct faultfs *f)
{
	for (uint64_t i = 0; i < f->ndirty; i++) {
		uint64_t idx = f->dirty[i], at = idx * PAGE;
		size_t k = f->size - at < PAGE ? (size_t)(f->size - at) : PAGE;

		if (pwrite(f->fd, f->pages[idx], k, (off_t)at) != (ssize_t)k)
			return -EIO;
		free(f->pages[idx]);
		f->pages[idx] = NULL;
	}
	f->ndirty = 0;
	return 0;
}

/* --- the control file --- */

static void ctl_line(struct faultfs *f, char *out, size_t len)
{
	snprintf(out, len,
		 "mode %s%s writes %" PRIu64 " failed %" PRIu64 " fsyncs %" PRIu64
		 " held_bytes %" PRIu64 " fallocate %s delay_us %u\n",
		 f->fail_errno == EIO ? "eio" : f->fail_errno == ENOSPC ? "enospc" : "healthy",
		 f->fail_errno && f->after ? "-pending" : "", f->writes, f->failed, f->fsyncs,
		 f->ndirty * PAGE, f->no_fallocate ? "no" : "yes", f->delay_us);
}

/* "fail eio|enospc [after N] [below BYTES]": 0, or -1 if malformed. */
static int ctl_fail(struct faultfs *f, char *args)
{
	char *save = NULL, *what = strtok_r(args, " \t\n", &save), *w, *num;
	uint64_t after = 0, below = 0;

	if (!what || (strcmp(what, "eio") && strcmp(what, "enospc")))
		return -1;
	while ((w = strtok_r(NULL, " \t\n", &save))) {
		num = strtok_r(NULL, " \t\n", &save);
		if (!num)
			return -1;
		if (strcmp(w, "after") == 0)
			after = strtoull(num, NULL, 0);
		else if (strcmp(w, "below") == 0)
			below = strtoull(num, NULL, 0);
		else
			return -1;
	}
	f->fail_errno = what[1] == 'i' ? EIO : ENOSPC;
	f->after = after;
	f->fail_below = below;
	return 0;
}

static int ctl_command(struct faultfs *f, const char *buf, size_t len)
{
	char line[128], copy[128];

	snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) - 1 ? len : sizeof(line) - 1),
		 buf);
	memcpy(copy, line, sizeof(copy));
	if (strncmp(line, "heal", 4) == 0) {
		f->fail_errno = 0;
		f->after = f->fail_below = 0;
	} else if (strncmp(line, "nofallocate", 11) == 0) {
		f->no_fallocate = true;
	} else if (strncmp(line, "allocate", 8) == 0) {
		f->no_fallocate = false;
	} else if (strncmp(line, "delay-writes ", 13) == 0 && line[13] >= '0' && line[13] <= '9') {
		unsigned long us = strtoul(line + 13, NULL, 10);

		f->delay_us = us > 10000000UL ? 10000000U : (unsigned)us; /* at most 10 s */
	} else if (strncmp(line, "fail ", 5) != 0 || ctl_fail(f, copy + 5) < 0) {
		fprintf(stderr, "faultfs: unknown command: %s\n", line);
		return -EINVAL;
	}
	fprintf(stderr, "faultfs: %s", line);
	return (int)len;
}

/* --- the file system --- */

static int ffs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (strcmp(path, DISK) == 0) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = (off_t)fs()->size;
	} else if (strcmp(path, CTL) == 0) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = 0;
	} else {
		return -ENOENT;
	}
	return 0;
}

static int ffs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, DISK + 1, NULL, 0, 0);
	fill(buf, CTL + 1, NULL, 0, 0);
	return 0;
}

static int ffs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, DISK) && strcmp(path, CTL))
		return -ENOENT;
	/* ctl: every read asks us.  Not the disk: with direct_io the kernel
	 * drops RWF_DSYNC (no FSYNC follows the write).  Without it, writes
	 * are still write-through (no writeback cache), so the page cache
	 * holds nothing that has not reached us, and dies with the mount. */
	fi->direct_io = strcmp(path, CTL) == 0;
	return 0;
}

static int ffs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)size;
	(void)fi;
	/* `echo cmd > ctl` truncates first; the disk keeps its size. */
	return strcmp(path, CTL) == 0 ? 0 : -EPERM;
}

static int ffs_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct faultfs *f = fs();
	char line[256];
	size_t n;
	int rc;

	(void)fi;
	if (strcmp(path, CTL) == 0) {
		ctl_line(f, line, sizeof(line));
		n = strlen(line);
		if ((size_t)off >= n)
			return 0;
		n = n - (size_t)off < len ? n - (size_t)off : len;
		memcpy(buf, line + off, n);
		return (int)n;
	}
	if ((uint64_t)off >= f->size)
		return 0;
	if ((uint64_t)off + len > f->size)
		len = (size_t)(f->size - (uint64_t)off);
	if (f->crash) {
		rc = held_read(f, buf, len, (uint64_t)off);
		return rc < 0 ? rc : (int)len;
	}
	rc = (int)pread(f->fd, buf, len, off);
	return rc < 0 ? -errno : rc;
}

static int ffs_write(const char *path, const char *buf, size_t len, off_t off,
		     struct fuse_file_info *fi)
{
	struct faultfs *f = fs();
	int err, rc;

	(void)fi;
	if (strcmp(path, CTL) == 0)
		return ctl_command(f, buf, len);
	f->writes++;
	if (f->delay_us)
		usleep(f->delay_us); /* one thread: every request waits meanwhile */
	err = fault_now(f, true, (uint64_t)off);
	if (err)
		return -err;
	if (!f->crash) {
		rc = (int)pwrite(f->fd, buf, len, off);
		if (rc > 0 && (uint64_t)off + (uint64_t)rc > f->size)
			f->size = (uint64_t)off + (uint64_t)rc;
		return rc < 0 ? -errno : rc;
	}
	rc = held_write(f, buf, len, (uint64_t)off);
	if (rc < 0)
		return rc;
	if ((uint64_t)off + len > f->size)
		f->size = (uint64_t)off + len;
	return (int)len;
}

static int ffs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct faultfs *f = fs();
	int err;

	(void)datasync;
	(void)fi;
	if (strcmp(path, DISK) != 0)
		return 0;
	f->fsyncs++;
	err = fault_now(f, false, 0);
	if (err)
		return -err;
	return f->crash ? held_commit(f) : 0;
}

static int ffs_fallocate(const char *path, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct faultfs *f = fs();
	int err;

	(void)fi;
	if (strcmp(path, DISK) != 0 || f->no_fallocate)
		return -EOPNOTSUPP;
	err = fault_now(f, true, (uint64_t)off);
	if (err)
		return -err;
	if (f->crash)
		return -EOPNOTSUPP; /* zeroing by writes keeps it in the held set */
	return fallocate(f->fd, mode, off, len) < 0 ? -errno : 0;
}

static void ffs_destroy(void *data)
{
	struct faultfs *f = data;

	/* A clean unmount is an orderly shutdown, not a power loss. */
	if (f->crash && held_commit(f) < 0)
		fprintf(stderr, "faultfs: writing held data back failed\n");
}

static const struct fuse_operations ffs_ops = {
	.getattr = ffs_getattr,
	.readdir = ffs_readdir,
	.open = ffs_open,
	.truncate = ffs_truncate,
	.read = ffs_read,
	.write = ffs_write,
	.fsync = ffs_fsync,
	.fallocate = ffs_fallocate,
	.destroy = ffs_destroy,
};

static int usage(void)
{
	fprintf(stderr, "usage: faultfs [--crash] BACKING MOUNTPOINT\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct faultfs f;
	char *fargv[] = { argv[0], "-o", "fsname=faultfs,subtype=faultfs", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse *fuse;
	struct stat st;
	int i = 1, rc;

	if (i < argc && strcmp(argv[i], "--crash") == 0) {
		f.crash = true;
		i++;
	}
	if (argc - i != 2)
		return usage();
	f.fd = open(argv[i], O_RDWR | O_CLOEXEC);
	if (f.fd < 0 || fstat(f.fd, &st) < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", argv[i], strerror(errno));
		return 1;
	}
	f.size = (uint64_t)st.st_size;
	fuse = fuse_new(&args, &ffs_ops, sizeof(ffs_ops), &f);
	if (!fuse || fuse_mount(fuse, argv[i + 1]) != 0) {
		fprintf(stderr, "faultfs: cannot mount on %s\n", argv[i + 1]);
		return 1;
	}
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		fuse_unmount(fuse);
		return 1;
	}
	fprintf(stderr, "faultfs: %s on %s%s\n", argv[i], argv[i + 1],
		f.crash ? " (crash mode)" : "");
	rc = fuse_loop(fuse); /* one thread: no locking */
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	fuse_unmount(fuse);
	fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	return rc ? 1 : 0;
}
