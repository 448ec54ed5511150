/* The minimal NBD client.  See client.h. */
#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

#include "nbd/wire.h"

int nbd_io_all(int fd, void *p, size_t len, bool out)
{
	uint8_t *b = p;

	while (len) {
		ssize_t n = out ? write(fd, b, len) : read(fd, b, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_client_call(int fd, uint64_t *cookie, uint16_t type, uint16_t flags, uint64_t off,
		    uint32_t len, const void *out, void *in)
{
	struct nbd_request r = { .flags = flags, .type = type, .cookie = ++*cookie,
				 .offset = off, .length = len };
	uint8_t hdr[NBD_REQUEST_SIZE], rep[NBD_SIMPLE_REPLY_SIZE];
	uint32_t error;
	uint64_t got;

	nbd_request_encode(hdr, &r);
	if (nbd_io_all(fd, hdr, sizeof(hdr), true) < 0 ||
	    (out && nbd_io_all(fd, (void *)(uintptr_t)out, len, true) < 0) ||
	    nbd_io_all(fd, rep, sizeof(rep), false) < 0 ||
	    nbd_simple_reply_decode(rep, &error, &got) < 0 || got != r.cookie)
		return -EIO;
	if (error)
		return -(int)error;
	return in ? nbd_io_all(fd, in, len, false) : 0;
}
