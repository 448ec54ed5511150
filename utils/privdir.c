/* A private directory.  See privdir.h. */
#include "utils/privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *privdir_why_not(const struct stat *sb, uid_t euid, char *buf, size_t len)
{
	if (!S_ISDIR(sb->st_mode))
		snprintf(buf, len, "not a directory");
	else if (sb->st_uid != euid)
		snprintf(buf, len, "owned by uid %u, not by this process's user (uid %u)",
			 (unsigned)sb->st_uid, (unsigned)euid);
	else if (sb->st_mode & (S_IWGRP | S_IWOTH))
		snprintf(buf, len, "writable by group or others (mode %04o): chmod 700 it",
			 (unsigned)(sb->st_mode & 07777));
	else
		return NULL;
	return buf;
}

int privdir_open(const char *path, char *err, size_t errlen)
{
	bool made = mkdir(path, 0700) == 0;
	char why[128];
	struct stat sb;
	int fd;

	if (!made && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create it: %s", path, strerror(errno));
		return -1;
	}
	/* Checked on the descriptor the caller then uses: nothing can be
	 * swapped in between. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (privdir_why_not(&sb, geteuid(), why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto fail;
	}
	/* A umask of 0277 would have made it 0500. */
	if (made && (sb.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int privdir_open_parent(const char *path, char *err, size_t errlen)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	if (!slash || (size_t)(slash - path) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: not an absolute path", path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return privdir_open(dir, err, errlen);
}

int privdir_open_file(const char *path, int flags, mode_t mode, char *err, size_t errlen)
{
	int dfd = privdir_open_parent(path, err, errlen), fd;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, strrchr(path, '/') + 1, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 && errno == ELOOP)
		snprintf(err, errlen, "%s: a symbolic link: refusing to follow it", path);
	else if (fd < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	close(dfd);
	return fd;
}

int privdir_write_file(const char *path, const char *text, mode_t mode, char *err, size_t errlen)
{
	int fd = privdir_open_file(path, O_WRONLY | O_CREAT | O_TRUNC, mode, err, errlen);
	size_t len = strlen(text);
	bool ok;

	if (fd < 0)
		return -1;
	errno = EIO; /* what a short write, which sets none, is reported as */
	ok = write(fd, text, len) == (ssize_t)len;
	if (close(fd) != 0 || !ok) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
