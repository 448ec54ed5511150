/* Save files: data blkrep is about to overwrite (a failback resync over a
 * former primary's own writes, or `resolve --discard-local`), kept so that
 * nothing is thrown away silently.  `blkrep restore-saved FILE` writes it
 * back through a primary.
 *
 * Format (integers little-endian):
 *	header, 128 bytes:
 *	  0  magic "BLKRSAVE"	  8  version u32 (2)	 12  records u32
 *	 16  created u64 (unix seconds)		 24  data bytes u64
 *	 32  resource [48], NUL-padded		 80  node [48], NUL-padded
 *	records, each:
 *	  offset u64, length u32, sum u64, then length bytes
 * The sum is savefile_sum(): XXH64 of the data seeded with the record's
 * offset, so a damaged offset is caught too.  Version 1 files (seed 0) are
 * still read.
 * Daemon-level: -1 with a one-line reason in err. */
#ifndef BLKREP_SAVEFILE_H
#define BLKREP_SAVEFILE_H

#include <stddef.h>
#include <stdint.h>

#define SAVEFILE_HDR	128
#define SAVEFILE_REC	20
#define SAVEFILE_MAX_REC (4U << 20)	/* bytes of data per record */
#define SAVEFILE_VERSION 2		/* written; 1 and 2 are read */

/* A record's sum in a file of that version. */
uint64_t savefile_sum(uint32_t version, uint64_t off, const void *data, size_t len);

struct bitmap;

/* Where save files go by default: $BLKREP_SAVE_DIR, else /var/lib/blkrep. */
const char *savefile_dir(void);

/* Writes the extents set in bm, below limit bytes, read from data_fd, into
 * path (or, if path is empty, a new file RESOURCE-NODE-DATE.saved in
 * savefile_dir(), whose name is written back into path), then fsyncs it.
 * *bytes gets the data saved. */
int savefile_write(char *path, size_t pathlen, const char *resource, const char *node,
		   int data_fd, const struct bitmap *bm, uint32_t extent_bytes, uint64_t limit,
		   uint64_t *bytes, char *err, size_t errlen);

/* Bytes of a name field in the header (at most 47 used, NUL-padded). */
#define SAVEFILE_NAME	48

/* Pure: the resource and node names of header h (SAVEFILE_HDR bytes) into
 * resource and node (SAVEFILE_NAME each), NUL-terminated; a byte that is
 * not printable ASCII becomes '?'. */
void savefile_header_names(const uint8_t *h, char *resource, char *node);

/* Reads path's header: -1 with err if it cannot be read or is not a save
 * file, else 0 and the names that wrote it (savefile_header_names()). */
int savefile_names(const char *path, char *resource, char *node, char *err, size_t errlen);

/* Reads path twice: first it checks the whole file with the parser below
 * (a damaged file is refused before anything is written); then it calls
 * each(arg, offset, length, data) for every record, in order, checking
 * each again (the file may have changed since); it stops at the first
 * failure (of the file or of each(), which returns -1 with its reason in
 * err).  *bytes gets the data handed to each().  Bytes after the last
 * record (a save that was interrupted) are refused. */
int savefile_read(const char *path, uint64_t limit,
		  int (*each)(void *arg, uint64_t off, uint32_t len, const uint8_t *data,
			      char *err, size_t errlen),
		  void *arg, uint64_t *bytes, char *err, size_t errlen);

/* The reader's decisions, as a pure machine (no I/O, no allocation after
 * _new): the caller reads exactly savefile_parser_want() bytes and feeds
 * them, until want() is 0; the file must end there.  It accepts only what
 * savefile_write() produces: the magic and version 1 or 2; records of 1 to
 * SAVEFILE_MAX_REC bytes, inside [0, limit), in ascending order without
 * overlap, each matching its XXH64; and exactly `records` of them, whose
 * lengths add up to the header's data bytes.  NULL on allocation failure. */
struct savefile_parser;
struct savefile_parser *savefile_parser_new(uint64_t limit);
void savefile_parser_free(struct savefile_parser *p);

/* Bytes to read next: the header, a record head or a record's data; 0
 * once every record is in (or after a failure). */
size_t savefile_parser_want(const struct savefile_parser *p);

/* Feeds exactly want() bytes.  Returns 1 when they were a record's data
 * and it checked out: its offset is in *off, its length is len;  0 when
 * more must be read; -1 with a static one-line reason in *why (and want()
 * is 0 from then on). */
int savefile_parser_feed(struct savefile_parser *p, const uint8_t *in, size_t len, uint64_t *off,
			 const char **why);

#endif
