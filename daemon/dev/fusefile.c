/* The volume as a FUSE file on a loop device.  See fusefile.h. */
#define FUSE_USE_VERSION 31
#include "fusefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/loop.h>

#include "nbd/client.h"
#include "nbd/wire.h"
#include "utils/log.h"

#define VOLUME	"/volume"

struct fusefile {
	struct fuse *fuse;
	pthread_t thread;
	int nbd_fd;
	uint64_t size;
	uint64_t cookie;
	int loop_fd;
	int loop;
	char mountpoint[256];
	char path[300];
};

/* One request through the node's server. */
static int nbd_call(struct fusefile *f, uint16_t type, uint16_t flags, uint64_t off,
		    uint32_t len, const void *out, void *in)
{
	return nbd_client_call(f->nbd_fd, &f->cookie, type, flags, off, len, out, in);
}

static struct fusefile *ff(void)
{
	return fuse_get_context()->private_data;
}

/* --- the file system: / and /volume --- */

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, VOLUME) != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = (off_t)ff()->size;
	return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, VOLUME + 1, NULL, 0, 0);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, VOLUME) != 0)
		return -ENOENT;
	fi->direct_io = 1;	/* no second page cache above the loop device's */
	return 0;
}

/* Clips a request to the volume; the length that remains. */
static size_t clip(const struct fusefile *f, off_t off, size_t len)
{
	if (off < 0 || (uint64_t)off >= f->size)
		return 0;
	return (uint64_t)off + len > f->size ? (size_t)(f->size - (uint64_t)off) : len;
}

static int ff_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct fusefile *f = ff();
	int rc;

	(void)path;
	(void)fi;
	len = clip(f, off, len);
	rc = len ? nbd_call(f, NBD_CMD_READ, 0, (uint64_t)off, (uint32_t)len, NULL, buf) : 0;
	return rc < 0 ? rc : (int)len;
}

static int ff_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	struct fusefile *f = ff();
	size_t n = clip(f, off, len);
	int rc;

	(void)path;
	if (n < len && !n)
		return -ENOSPC;
	rc = nbd_call(f, NBD_CMD_WRITE, fi->flags & O_DSYNC ? NBD_CMD_FLAG_FUA : 0, (uint64_t)off,
		      (uint32_t)n, buf, NULL);
	return rc < 0 ? rc : (int)n;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return nbd_call(ff(), NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL);
}

static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct fusefile *f = ff();
	size_t n = clip(f, off, (size_t)len);

	(void)path;
	(void)fi;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && !(mode & FALLOC_FL_PUNCH_HOLE))
		return mode ? -EOPNOTSUPP : 0;	/* plain allocation: already there */
	if (!n)
		return 0;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		return nbd_call(f, NBD_CMD_TRIM, 0, (uint64_t)off, (uint32_t)n, NULL, NULL);
	if (mode & FALLOC_FL_ZERO_RANGE)
		return nbd_call(f, NBD_CMD_WRITE_ZEROES, 0, (uint64_t)off, (uint32_t)n, NULL, NULL);
	return 0;
}

static const struct fuse_operations ff_ops = {
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.fsync = ff_fsync,
	.fallocate = ff_fallocate,
};

/* --- mount, thread, loop device --- */

static void *ff_thread(void *arg)
{
	struct fusefile *f = arg;

	(void)fuse_loop(f->fuse);
	return NULL;
}

static int loop_bind(struct fusefile *f, char *err, size_t len)
{
	struct loop_info64 info = { .lo_flags = 0 };
	char dev[32];
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), file = -1;

	f->loop = ctl < 0 ? -1 : ioctl(ctl, LOOP_CTL_GET_FREE);
	if (ctl >= 0)
		close(ctl);
	if (f->loop < 0) {
		snprintf(err, len, "no free loop device: %s", strerror(errno));
		return -1;
	}
	snprintf(dev, sizeof(dev), "/dev/loop%d", f->loop);
	f->loop_fd = open(dev, O_RDWR | O_CLOEXEC);
	file = open(f->path, O_RDWR | O_CLOEXEC);
	memcpy(info.lo_file_name, f->path,
	       strlen(f->path) < LO_NAME_SIZE ? strlen(f->path) : LO_NAME_SIZE - 1);
	if (f->loop_fd < 0 || file < 0 || ioctl(f->loop_fd, LOOP_SET_FD, file) < 0 ||
	    ioctl(f->loop_fd, LOOP_SET_STATUS64, &info) < 0) {
		snprintf(err, len, "%s on %s: %s", dev, f->path, strerror(errno));
		if (file >= 0)
			close(file);
		return -1;
	}
	close(file);	/* the loop device holds it */
	return 0;
}

static void ff_free(struct fusefile *f)
{
	if (f->loop_fd >= 0)
		close(f->loop_fd);
	if (f->fuse)
		fuse_destroy(f->fuse);
	if (f->nbd_fd >= 0)
		close(f->nbd_fd);
	free(f);
}

static int ff_mount(struct fusefile *f, char *err, size_t len)
{
	char *argv[] = { "blkrep", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);

	(void)mkdir(f->mountpoint, 0700);
	f->fuse = fuse_new(&args, &ff_ops, sizeof(ff_ops), f);
	if (!f->fuse || fuse_mount(f->fuse, f->mountpoint) != 0) {
		snprintf(err, len, "cannot mount the FUSE file system at %s (is /dev/fuse there?)",
			 f->mountpoint);
		return -1;
	}
	if (pthread_create(&f->thread, NULL, ff_thread, f) != 0) {
		fuse_unmount(f->fuse);
		snprintf(err, len, "cannot start the FUSE thread");
		return -1;
	}
	return 0;
}

struct fusefile *fusefile_start(const char *mountpoint, int nbd_fd, uint64_t size, char *err,
				size_t len)
{
	struct fusefile *f = calloc(1, sizeof(*f));

	if (!f) {
		close(nbd_fd);
		snprintf(err, len, "out of memory");
		return NULL;
	}
	f->nbd_fd = nbd_fd;
	f->size = size;
	f->loop_fd = -1;
	f->loop = -1;
	snprintf(f->mountpoint, sizeof(f->mountpoint), "%s", mountpoint);
	snprintf(f->path, sizeof(f->path), "%s%s", mountpoint, VOLUME);
	if (ff_mount(f, err, len) < 0) {
		ff_free(f);
		return NULL;
	}
	return f;
}

int fusefile_bind(struct fusefile *f, char *err, size_t len)
{
	if (loop_bind(f, err, len) < 0) {
		if (f->loop_fd >= 0)
			close(f->loop_fd);
		f->loop_fd = f->loop = -1;
		return -1;
	}
	return f->loop;
}

int fusefile_unbind(struct fusefile *f, char *err, size_t len)
{
	char dev[32];
	int excl;

	if (f->loop_fd < 0)
		return 0;
	/* A mounted loop device refuses an exclusive open; LOOP_CLR_FD alone
	 * would only mark it for clearing on some kernels, and the FUSE file
	 * would go from under a live file system. */
	snprintf(dev, sizeof(dev), "/dev/loop%d", f->loop);
	excl = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (excl < 0) {
		snprintf(err, len, "%s: %s", dev,
			 errno == EBUSY ? "in use (unmount it first)" : strerror(errno));
		return -1;
	}
	close(excl);
	if (ioctl(f->loop_fd, LOOP_CLR_FD, 0) < 0) {
		snprintf(err, len, "/dev/loop%d: %s", f->loop,
			 errno == EBUSY ? "in use (unmount it first)" : strerror(errno));
		return -1;
	}
	close(f->loop_fd);
	f->loop_fd = f->loop = -1;
	return 0;
}

void fusefile_stop(struct fusefile *f)
{
	/* The thread is blocked reading /dev/fuse: unmounting (without
	 * closing that descriptor under it) ends the connection, its read
	 * fails with ENODEV and fuse_loop returns.  Only then is the
	 * descriptor closed. */
	fuse_exit(f->fuse);
	(void)umount2(f->mountpoint, MNT_DETACH);
	pthread_join(f->thread, NULL);
	fuse_unmount(f->fuse);
	(void)rmdir(f->mountpoint);
	ff_free(f);
}

int fusefile_loop(const struct fusefile *f)
{
	return f->loop;
}

/* --- what a killed daemon left --- */

/* Whether /dev/loopN is bound to path. */
static bool loop_backed_by(int n, const char *path)
{
	char sys[80], back[320];
	FILE *fp;
	bool same;

	snprintf(sys, sizeof(sys), "/sys/block/loop%d/loop/backing_file", n);
	fp = fopen(sys, "re");
	if (!fp)
		return false;
	same = fgets(back, sizeof(back), fp) && strcspn(back, "\n") == strlen(path) &&
	       strncmp(back, path, strlen(path)) == 0;
	fclose(fp);
	return same;
}

/* Unbinds /dev/loopN, or while it is in use marks it to clear itself. */
static void loop_reap(int n)
{
	struct loop_info64 info;
	char dev[32];
	int fd, excl;

	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	fd = open(dev, O_RDONLY | O_CLOEXEC);
	excl = fd < 0 ? -1 : open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (excl >= 0) {
		close(excl);
		if (ioctl(fd, LOOP_CLR_FD, 0) == 0) {
			log_info("%s was left over a dead FUSE file by a daemon killed while "
				 "attached: unbound", dev);
			close(fd);
			return;
		}
	}
	if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &info) == 0) {
		info.lo_flags |= LO_FLAGS_AUTOCLEAR;
		(void)ioctl(fd, LOOP_SET_STATUS64, &info);
	}
	log_warn("%s was left over a dead FUSE file by a daemon killed while attached, and "
		 "is still in use (a file system mounted on it?): its I/O fails; unmount it and "
		 "it goes away", dev);
	if (fd >= 0)
		close(fd);
}

int fusefile_reap(const char *mountpoint)
{
	char path[300];
	int found = 0;

	DIR *dir = opendir("/sys/block");
	struct dirent *e;
	int n;

	snprintf(path, sizeof(path), "%s%s", mountpoint, VOLUME);
	while (dir && (e = readdir(dir)))
		if (sscanf(e->d_name, "loop%d", &n) == 1 && loop_backed_by(n, path)) {
			loop_reap(n);
			found++;
		}
	if (dir)
		closedir(dir);
	if (umount2(mountpoint, MNT_DETACH) == 0) {
		log_info("%s: removed the dead FUSE mount of a daemon killed while attached",
			 mountpoint);
		found++;
	}
	(void)rmdir(mountpoint);
	return found;
}
