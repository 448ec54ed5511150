/* The resource's secret file.  See config_secret.h. */
#include "daemon/config_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

int config_load_secret(const char *path, uint8_t *secret, size_t *len, char *err, size_t errlen)
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
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "%s: secret file is accessible by group or others (chmod 600 it)", path);
		goto out;
	}
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
	*len = got;
	ret = 0;
out:
	if (ret < 0)
		memset(secret, 0, CONFIG_SECRET_MAX);
	close(fd);
	return ret;
}
