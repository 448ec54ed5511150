/* The secondary's side of the stream: applying a replicated write, zeroing
 * or flush to the data area, synchronously and in stream order (the peer
 * waits for the acknowledgement anyway).  Functions return 0 or -errno
 * (the acknowledgement carries it positive: the wire codec's convention). */
#ifndef BLKREP_APPLY_H
#define BLKREP_APPLY_H

#include <stdbool.h>
#include <stdint.h>

/* Writes len bytes at off; fua: durable before returning. */
int apply_write(int fd, const uint8_t *p, uint64_t len, uint64_t off, bool fua);

/* Zeroes a range as the primary did: punch a hole (unless no_hole), else
 * zero range, else write zeros; fua: durable before returning. */
int apply_zero(int fd, uint64_t off, uint64_t len, bool no_hole, bool fua);

/* fdatasync. */
int apply_flush(int fd);

#endif
