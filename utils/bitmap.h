/* A dense bitmap of nbits bits, one per extent: the dirty (out-of-sync)
 * bitmap.  Besides the bits it tracks which 4096-byte on-disk pages changed
 * since they were last written, so the daemon writes back only those, and it
 * keeps the number of set bits, so out_of_sync_bytes costs nothing.
 *
 * On-disk form: little-endian bit order, bit i is bit (i % 8) of byte i / 8,
 * in pages of BITMAP_PAGE_BYTES; bits past nbits are zero on disk.
 *
 * Pure bookkeeping, no I/O; not thread-safe (one bitmap per event loop).
 * Bit and range arguments past nbits are clipped, never an error. */
#ifndef BLKREP_BITMAP_H
#define BLKREP_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BITMAP_PAGE_BYTES	4096U
#define BITMAP_PAGE_BITS	((uint64_t)BITMAP_PAGE_BYTES * 8)

struct bitmap;

/* Creates an all-clear bitmap of nbits bits (0 is allowed: no pages) with no
 * dirty page.  Returns NULL on allocation failure. */
struct bitmap *bitmap_new(uint64_t nbits);
void bitmap_free(struct bitmap *bm);

uint64_t bitmap_nbits(const struct bitmap *bm);

/* Single bits; bit >= nbits is ignored (test returns false).  A set or clear
 * that changes the bit marks its page dirty. */
void bitmap_set(struct bitmap *bm, uint64_t bit);
void bitmap_clear(struct bitmap *bm, uint64_t bit);
bool bitmap_test(const struct bitmap *bm, uint64_t bit);

/* Bits first .. first + count - 1, clipped to nbits.  Every page in which a
 * bit changed becomes dirty. */
void bitmap_set_range(struct bitmap *bm, uint64_t first, uint64_t count);
void bitmap_clear_range(struct bitmap *bm, uint64_t first, uint64_t count);

/* Number of set bits (kept up to date, O(1)). */
uint64_t bitmap_count(const struct bitmap *bm);

/* Number of set bits below bit limit (clipped to nbits). */
uint64_t bitmap_count_below(const struct bitmap *bm, uint64_t limit);

/* The first set bit >= from, or nbits when there is none. */
uint64_t bitmap_next_set(const struct bitmap *bm, uint64_t from);

/* Number of on-disk pages: ceil(ceil(nbits / 8) / BITMAP_PAGE_BYTES). */
uint64_t bitmap_pages(const struct bitmap *bm);

/* Writes page `page` in on-disk form into out (BITMAP_PAGE_BYTES bytes);
 * bits past nbits are zero.  Does not change the dirty state (see
 * bitmap_clear_dirty()).  Returns 0, or -1
 * if page >= bitmap_pages() (out is untouched). */
int bitmap_encode_page(const struct bitmap *bm, uint64_t page, uint8_t *out);

/* Replaces the bits of page `page` with the on-disk form in in
 * (BITMAP_PAGE_BYTES bytes), ignoring bits past nbits.  The page then equals
 * what is on disk, so it is no longer dirty.  Returns 0, or -1 if
 * page >= bitmap_pages() (nothing changes). */
int bitmap_decode_page(struct bitmap *bm, uint64_t page, const uint8_t *in);

/* The first dirty page >= from, or bitmap_pages() when there is none. */
uint64_t bitmap_next_dirty_page(const struct bitmap *bm, uint64_t from);

/* Marks a page clean.  Call it when taking the encoded copy for a write,
 * not when the write completes: a bit changed while the write is in flight
 * then dirties the page again and goes out with the next write.  If the
 * write fails, bitmap_mark_dirty() puts the page back.  A page past the end
 * is ignored. */
void bitmap_clear_dirty(struct bitmap *bm, uint64_t page);
void bitmap_mark_dirty(struct bitmap *bm, uint64_t page);

/* True if a set bit was cleared since bitmap_forget_cleared().  Writing
 * such a bitmap to disk forgets that a range may differ, so the local data
 * must be durable first (DESIGN.md rule 8): the caller flushes it, then
 * forgets, then writes. */
bool bitmap_cleared(const struct bitmap *bm);
void bitmap_forget_cleared(struct bitmap *bm);

/* Marks every page dirty: for writing a whole bitmap out (metadata create). */
void bitmap_mark_all_dirty(struct bitmap *bm);

/* ORs nbytes of a peer's bitmap in on-disk form (bit i of the chunk is bit
 * first_bit + i) into this one: the union of both sides' changes at connect.
 * Bits past nbits are ignored (the peer's data area may be larger); pages
 * that gain a bit become dirty.  Returns the number of bits newly set, or -1
 * if first_bit is not a multiple of 8. */
int64_t bitmap_merge_bytes(struct bitmap *bm, uint64_t first_bit, const uint8_t *bytes,
			   size_t nbytes);

#endif
