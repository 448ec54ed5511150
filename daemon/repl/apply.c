/* Applying the replication stream.  See apply.h. */
#include "apply.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nbd/store.h"

int apply_write(int fd, const uint8_t *p, uint64_t len, uint64_t off, bool fua)
{
	while (len) {
		struct iovec iov = { (void *)(uintptr_t)p, len };
		ssize_t w = pwritev2(fd, &iov, 1, (off_t)off, fua ? RWF_DSYNC : 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

int apply_zero(int fd, uint64_t off, uint64_t len, bool no_hole, bool fua)
{
	int err = store_zero_fd(fd, off, len, no_hole);

	return err ? err : fua ? apply_flush(fd) : 0;
}

int apply_flush(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}
