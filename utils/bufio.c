/* Byte-buffer bookkeeping for sockets.  See bufio.h. */
#include "utils/bufio.h"

#include <string.h>

void iov_push(struct iovec *iov, unsigned *cnt, const void *base, size_t len)
{
	iov[*cnt].iov_base = (void *)(uintptr_t)base;
	iov[*cnt].iov_len = len;
	(*cnt)++;
}

bool iov_advance(struct iovec *iov, unsigned *pos, unsigned cnt, size_t n)
{
	while (n && *pos < cnt) {
		struct iovec *v = &iov[*pos];
		size_t k = n < v->iov_len ? n : v->iov_len;

		v->iov_base = (uint8_t *)v->iov_base + k;
		v->iov_len -= k;
		n -= k;
		if (!v->iov_len)
			(*pos)++;
	}
	return *pos >= cnt;
}

void rbuf_compact(uint8_t *buf, uint32_t size, uint32_t *pos, uint32_t *end)
{
	if (*pos == *end)
		*pos = *end = 0;
	if (*pos && size - *end < size / 2) {
		memmove(buf, buf + *pos, *end - *pos);
		*end -= *pos;
		*pos = 0;
	}
}
