/* Sizes for people: "0 B", "512 B", "48.0 MiB", "1.0 GiB" (binary units,
 * one decimal).  Pure. */
#ifndef BLKREP_HUMAN_H
#define BLKREP_HUMAN_H

#include <stddef.h>
#include <stdint.h>

/* The longest text human_bytes() writes, with its NUL ("1023.9 EiB"). */
#define HUMAN_BYTES_LEN 16

/* Writes bytes in the largest binary unit that leaves at least 1 (bytes
 * under 1 KiB exactly, in B) to buf; returns buf. */
const char *human_bytes(uint64_t bytes, char *buf, size_t len);

/* A progress percentage, done of done + left, that never says 100 while
 * pending (bytes still out of sync) is not 0. */
unsigned human_percent(uint64_t done, uint64_t left, uint64_t pending);

#endif
