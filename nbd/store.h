/* The backing store: a regular file or a block device, opened for the
 * io_uring data path.  It knows the store's size, which file descriptor
 * suits a request (O_DIRECT when aligned), which ways of zeroing the store
 * supports (learnt at run time, announced once), and where its holes are.
 * Daemon-level code: returns -1 and fills err on failure. */
#ifndef BLKREP_STORE_H
#define BLKREP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_opts {
	bool read_only;
	bool direct;		/* O_DIRECT for aligned requests */
	uint64_t size_limit;	/* serve only the first bytes (a node's data area); 0: all */
};

/* Ways to zero a range, cheapest first. */
enum store_zero {
	STORE_ZERO_PUNCH,	/* fallocate PUNCH_HOLE: reads return zeros */
	STORE_ZERO_RANGE,	/* fallocate ZERO_RANGE: zeros, stays allocated */
	STORE_ZERO_WRITE,	/* write zero buffers: always works, slow */
};

struct store;

/* The size of an open regular file or block device (BLKGETSIZE64).  Returns
 * 0, or -1 with a reason naming path in err. */
int store_fd_size(int fd, const char *path, uint64_t *size, bool *is_blockdev, char *err,
		  size_t errlen);

/* Opens path.  On failure returns NULL with a one-line reason in err. */
struct store *store_open(const char *path, const struct store_opts *o, char *err,
			 size_t errlen);
void store_close(struct store *st);

uint64_t store_size(const struct store *st);

/* O_DIRECT alignment in bytes, or 1 when the store is buffered. */
uint32_t store_align(const struct store *st);

/* The descriptor for a request at off/len: the O_DIRECT one when the store
 * was opened --direct and the request is aligned, the buffered one else. */
int store_fd_for(const struct store *st, uint64_t off, uint64_t len);

/* Should a plain (non-FUA) write on fd be done with pwrite() inline rather
 * than through io_uring?  True for the buffered descriptor of a filesystem
 * without non-blocking buffered writes (ext4, tmpfs): io_uring would hand
 * each such write to a worker thread, two context switches per write. */
bool store_write_inline(const struct store *st, int fd);

/* The first zeroing method at or after `from` that the store has not been
 * found to lack.  no_hole excludes PUNCH (WRITE_ZEROES with NO_HOLE). */
enum store_zero store_zero_method(const struct store *st, enum store_zero from,
				  bool no_hole);

/* Records that a method failed with EOPNOTSUPP; logs the fallback once. */
void store_zero_unsupported(struct store *st, enum store_zero m);

/* fallocate() mode for PUNCH or RANGE. */
int store_zero_mode(enum store_zero m);

/* Zeros are written from one shared buffer of this size. */
#define STORE_ZERO_BUF	(1U << 20)

/* Zeroes len bytes at off of fd, blocking, without a store: punch a hole
 * (unless no_hole), else zero range, else write zeros.  0 or -errno.  The
 * secondary applies a replicated TRIM or WRITE_ZEROES so. */
int store_zero_fd(int fd, uint64_t off, uint64_t len, bool no_hole);

/* Prepares sqe for one step of zeroing off..off+len with method m: the
 * whole range in one fallocate(), or, writing zeros, the next
 * STORE_ZERO_BUF bytes after the first done ones.  Completes with what
 * fallocate() or pwrite() returns (-EOPNOTSUPP: try the next method). */
struct io_uring_sqe;
void store_prep_zero(const struct store *st, struct io_uring_sqe *sqe, enum store_zero m,
		     uint64_t off, uint64_t len, uint64_t done);

/* Finds the extent that starts at off and ends before off + len: returns its
 * length and sets *hole when it reads as zeros because it is unallocated.
 * Stores that cannot tell (block devices) report one data extent. */
uint64_t store_extent(const struct store *st, uint64_t off, uint64_t len, bool *hole);

#endif
