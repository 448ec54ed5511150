/* The torture writer: writes tblock-format blocks over several NBD
 * connections at once, up to qd requests in flight on each, with FLUSH and
 * FUA at random, and logs every issue and every reply (tlog.h).
 *
 * One thread and poll(), so that every event takes the next value of one
 * global clock: a write's seq is the clock at its issue, a reply's clock
 * comes after every issue it could have answered.  Two writes whose block
 * ranges overlap are never in flight together, so each block's history is
 * the order in which writes to it were issued. */
#ifndef BLKREP_TORTURE_TWRITER_H
#define BLKREP_TORTURE_TWRITER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tnbd.h"

struct twriter_opts {
	struct tnbd_target target;
	const char *log_path;
	uint32_t conns;
	uint32_t qd;
	uint32_t block_size;
	uint32_t max_blocks;
	uint64_t area_blocks; /* 0: (export size - area_offset) / block_size */
	uint64_t area_offset; /* bytes, a multiple of block_size: where block 0 of
			       * the area is on the export (the checker's
			       * --image-offset), so that runs can share an export */
	double seconds;	      /* 0: no time limit */
	uint64_t max_writes;  /* 0: no count limit */
	uint64_t seed;
	uint32_t writer;
	double flush_prob;
	double fua_prob;
	bool quiet;
	/* Raised by the caller's SIGTERM/SIGINT handler: 1 stops issuing and
	 * waits (bounded) for the replies in flight, 2 or more stops at once. */
	volatile sig_atomic_t *stop_signals;
};

enum twriter_stop {
	TWRITER_STOP_TIME,
	TWRITER_STOP_WRITES,
	TWRITER_STOP_SIGNAL,
	TWRITER_STOP_CONN_LOST,
	TWRITER_STOP_PROTOCOL,
	TWRITER_STOP_LOG_ERROR,
};

struct twriter_stats {
	uint64_t writes_issued, writes_acked, writes_failed;
	uint64_t flushes_issued, flushes_acked, flushes_failed;
	uint64_t bytes_acked;
	uint64_t area_blocks;
	double seconds;
	enum twriter_stop stop;
};

/* Runs the workload until a limit, a signal or a lost connection.
 * Returns 0 when it ran (whatever stopped it: see st->stop), or -1 when
 * it could not start or the log could not be written, with a one-line
 * reason in err. */
int twriter_run(const struct twriter_opts *o, struct twriter_stats *st, char *err,
		size_t errlen);

/* "time", "writes", "signal", "connection lost", "protocol error", "log error". */
const char *twriter_stop_name(enum twriter_stop s);

#endif
