/* The resource's secret file.  See config_secret.h. */
#include "daemon/config_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

bool config_secret_strong(const uint8_t *secret, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (secret[i] < 0x20 || secret[i] > 0x7e)
			return len >= CONFIG_SECRET_MIN_BINARY;
	return len >= CONFIG_SECRET_MIN_TEXT;
}

/* Who may read and write it: the daemon's user alone. */
static int check_owner_mode(const char *path, const struct stat *sb, char *err, size_t errlen)
{
	if (sb->st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s: secret file is owned by uid %u, not by this daemon's user (uid %u): "
			 "chown it",
			 path, (unsigned)sb->st_uid, (unsigned)geteuid());
		return -1;
	}
	if (sb->st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "%s: secret file is accessible by group or others (chmod 600 it)", path);
		return -1;
	}
	return 0;
}

int config_load_secret(const char *path, bool allow_weak, uint8_t *secret, size_t *len, char *err,
		       size_t errlen)
{
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: secret file: %s", path, strerror(errno));
		return -1;
	}
	/* Checked on the open descriptor, so the file cannot be swapped. */
	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: secret file: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: secret file is not a regular file", path);
		goto out;
	}
	if (check_owner_mode(path, &sb, err, errlen) < 0)
		goto out;
	/* One byte more than allowed tells a file that is too long. */
	for (;;) {
		uint8_t extra;
		uint8_t *dst = got < CONFIG_SECRET_MAX ? secret + got : &extra;

		n = read(fd, dst, got < CONFIG_SECRET_MAX ? CONFIG_SECRET_MAX - got : 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: secret file: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > CONFIG_SECRET_MAX) {
			snprintf(err, errlen, "%s: secret file is larger than %d bytes", path,
				 CONFIG_SECRET_MAX);
			goto out;
		}
	}
	while (got > 0 && (secret[got - 1] == '\n' || secret[got - 1] == '\r'))
		got--;
	if (got == 0) {
		snprintf(err, errlen, "%s: secret file is empty", path);
		goto out;
	}
	if (!allow_weak && !config_secret_strong(secret, got)) {
		snprintf(err, errlen,
			 "%s: secret is too weak: 128 bits are needed, i.e. at least %d characters "
			 "of text or %d bytes if any byte is not printable ASCII (it has %zu); make "
			 "one with `openssl rand -hex 32 >FILE`, or set allow-weak-secret = yes",
			 path, CONFIG_SECRET_MIN_TEXT, CONFIG_SECRET_MIN_BINARY, got);
		goto out;
	}
	*len = got;
	ret = 0;
out:
	if (ret < 0)
		memset(secret, 0, CONFIG_SECRET_MAX);
	close(fd);
	return ret;
}
