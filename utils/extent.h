/* Byte ranges and the fixed-size extents they touch (dirty-bitmap bits,
 * activity-log extents): the arithmetic written once.  Pure. */
#ifndef BLKREP_EXTENT_H
#define BLKREP_EXTENT_H

#include <stdint.h>

/* The extent of ext bytes that holds byte off. */
static inline uint64_t extent_first(uint64_t off, uint64_t ext)
{
	return off / ext;
}

/* The last extent that [off, off + len) touches; len >= 1. */
static inline uint64_t extent_last(uint64_t off, uint64_t len, uint64_t ext)
{
	return (off + len - 1) / ext;
}

/* How many extents [off, off + len) touches, partial ones at its edges
 * included; 0 for len 0. */
static inline uint64_t extent_count(uint64_t off, uint64_t len, uint64_t ext)
{
	return len ? extent_last(off, len, ext) - extent_first(off, ext) + 1 : 0;
}

/* Extents needed to cover bytes bytes (a device, a data area). */
static inline uint64_t extent_cover(uint64_t bytes, uint64_t ext)
{
	return (bytes + ext - 1) / ext;
}

#endif
