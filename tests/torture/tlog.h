/* The torture writer's log: a binary file, a 64-byte header then 24-byte
 * records in clock order, all little-endian.
 *
 *   header: 0 magic "NBDTLOG1" | 8 version u32 (1) | 12 block_size u32
 *           16 area_blocks u64 | 24 seed u64 | 32 writer u32 | 36 conns u32
 *           40..63 zero
 *   record: 0 clock u64 | 8 x u64 | 16 arg u32 | 20 type u8 | 21 flags u8
 *           22 conn u16
 *
 * WRITE: clock = seq (issue clock), x = first block, arg = nblocks, flags
 * bit 0 = FUA.  FLUSH: clock = its issue clock.  REPLY: clock = reply
 * clock, x = the clock of the request answered, arg = NBD error (0: acked).
 * STOP: clock, arg = enum tlog_stop.
 *
 * The writer buffers records and writes them out when the buffer fills and
 * at tlog_close().  Functions return 0 or -errno. */
#ifndef BLKREP_TORTURE_TLOG_H
#define BLKREP_TORTURE_TLOG_H

#include <stdint.h>

#define TLOG_HDR_SIZE 64
#define TLOG_REC_SIZE 24
#define TLOG_FUA      1U

enum tlog_type { TLOG_WRITE = 1, TLOG_FLUSH = 2, TLOG_REPLY = 3, TLOG_STOP = 4 };

struct tlog_header {
	uint32_t block_size;
	uint64_t area_blocks;
	uint64_t seed;
	uint32_t writer;
	uint32_t conns;
};

struct tlog_rec {
	uint64_t clock;
	uint64_t x;
	uint32_t arg;
	uint8_t type;
	uint8_t flags;
	uint16_t conn;
};

struct tlog;

/* Creates (truncates) path and writes the header.  NULL with errno set. */
struct tlog *tlog_create(const char *path, const struct tlog_header *h);

/* Appends one record (written out when the buffer is full). */
int tlog_append(struct tlog *l, const struct tlog_rec *r);

/* Writes out what is buffered, fsyncs and closes; frees l either way. */
int tlog_close(struct tlog *l);

struct tlog_reader;

/* Opens path and reads its header into *h.  NULL with errno set (EINVAL
 * for a file that is not a version 1 log). */
struct tlog_reader *tlog_reader_open(const char *path, struct tlog_header *h);

/* The next record: 1, 0 at the end, -EINVAL for a truncated record, or
 * -errno from read. */
int tlog_reader_next(struct tlog_reader *r, struct tlog_rec *rec);

void tlog_reader_close(struct tlog_reader *r);

#endif
