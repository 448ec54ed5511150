/* Byte-buffer bookkeeping shared by the socket code (NBD connections and
 * the peer link): pure, no I/O. */
#ifndef BLKREP_BUFIO_H
#define BLKREP_BUFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Appends a vector to iov[*cnt] (the caller keeps *cnt in bounds). */
void iov_push(struct iovec *iov, unsigned *cnt, const void *base, size_t len);

/* n bytes of iov[*pos..cnt) went out (a SENDMSG's result): moves *pos
 * past the vectors sent whole and trims the first one sent in part.
 * Returns true once all of them are sent; false: resubmit the rest,
 * iov + *pos. */
bool iov_advance(struct iovec *iov, unsigned *pos, unsigned cnt, size_t n);

/* A receive buffer of size bytes holding unparsed input in [*pos, *end):
 * makes room before the next receive.  Empty, it starts again at 0; when
 * less than half of it is left after *end, the unparsed bytes move to the
 * front. */
void rbuf_compact(uint8_t *buf, uint32_t size, uint32_t *pos, uint32_t *end);

#endif
