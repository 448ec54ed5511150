/* Applying the replication stream.  See apply.h. */
#include "apply.h"

#include <errno.h>
#include <fcntl.h>
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
			return w < 0 ? errno : EIO;
		p += w;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int zero_range(int fd, uint64_t off, uint64_t len, bool no_hole)
{
	static const uint8_t zeros[1 << 16];

	/* The primary's order of methods (store.h), each tried on any
	 * failure: this path learns nothing for next time. */
	for (enum store_zero m = no_hole ? STORE_ZERO_RANGE : STORE_ZERO_PUNCH;
	     m < STORE_ZERO_WRITE; m++)
		if (fallocate(fd, store_zero_mode(m), (off_t)off, (off_t)len) == 0)
			return 0;
	for (uint64_t done = 0; done < len;) {
		uint64_t k = len - done < sizeof(zeros) ? len - done : sizeof(zeros);
		int err = apply_write(fd, zeros, k, off + done, false);

		if (err)
			return err;
		done += k;
	}
	return 0;
}

int apply_zero(int fd, uint64_t off, uint64_t len, bool no_hole, bool fua)
{
	int err = zero_range(fd, off, len, no_hole);

	return err ? err : fua ? apply_flush(fd) : 0;
}

int apply_flush(int fd)
{
	return fdatasync(fd) < 0 ? errno : 0;
}
