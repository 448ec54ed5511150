/* Fixed-size name fields on disk and on the wire (resource and node names):
 * 1..size-1 printable ASCII bytes, then NUL padding to the end, so each name
 * has exactly one encoding.  Pure. */
#ifndef BLKREP_NAMEFIELD_H
#define BLKREP_NAMEFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if the size-byte field at p holds a valid name. */
bool namefield_valid(const uint8_t *p, size_t size);

#endif
