/* The replication seam between the NBD side and the replicator that
 * mirrors its writes to the peer: the request both sides see, the
 * replicator's table of calls, and the NBD side's one entry for
 * replicators, repl_done().
 *
 * A connection hands each write-type request and FLUSH to the replicator
 * itself, through the struct repl_ops its server was given; the replicator
 * answers through repl_done(), which finds the connection from rr: it
 * never names a connection, and nothing of the NBD side calls it but
 * through this table. */
#ifndef BLKREP_REPL_H
#define BLKREP_REPL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "utils/clock.h"

/* A request offered to the replicator.  The connection owns it (it is in
 * the request's slot) until end(), or abandon(). */
struct repl_req {
	uint16_t type;		/* NBD_CMD_WRITE, _TRIM, _WRITE_ZEROES or _FLUSH */
	uint16_t flags;		/* NBD_CMD_FLAG_FUA, _NO_HOLE */
	uint32_t length;
	uint64_t offset;
	const void *payload;	/* WRITE data, valid until end() */
	uint64_t seq;		/* the replicator's own */
	uint32_t repl_pending;	/* the replicator's own: answers it still waits for */
	int local_err;		/* 0, or the local disk's error (-errno) */
	/* For the replicator's latency figures (CLOCK_MONOTONIC): */
	uint64_t start_ns;	/* set by the replicator when it accepts rr */
	uint64_t local_ns;	/* when the local disk finished: repl_local_done() */
};

/* What became of a write-type request or FLUSH offered to the replicator. */
enum repl_verdict {
	REPL_LOCAL, /* not replicated (no peer, or async): answer on the local result */
	REPL_SENT,  /* sent: the reply also waits for repl_done() */
	REPL_BUSY,  /* not now: parked until server_repl_wake() */
	REPL_FAIL,  /* never: fails with EIO, nothing written (end() is not called) */
};

struct repl_ops {
	/* Required.  Offered each write-type request and FLUSH once its
	 * payload is in, before the local disk sees it; a request answered
	 * REPL_BUSY is offered again (the same rr) later.
	 *   REPL_SENT: rr went to the peer; repl_done(rr, err) follows
	 *     exactly once, and the reply waits for it and the local disk.
	 *   REPL_LOCAL: not replicated (no peer, or async); the reply waits
	 *     for the local disk only.
	 *   REPL_BUSY: not now.  The replicator keeps write ranges in flight
	 *     from overlapping (DESIGN.md rule 3: both replicas then apply
	 *     overlapping writes in the same order): a write that overlaps
	 *     one it accepted and end() did not yet close gets REPL_BUSY, as
	 *     does any request when there is no room to send it.  The request
	 *     waits, parked by its server, until the replicator calls
	 *     server_repl_wake() (nbd/server.h), then comes again.
	 *   REPL_FAIL: the replicator may no longer write (the node was
	 *     demoted while the request waited): it fails with EIO. */
	enum repl_verdict (*submit)(void *arg, struct repl_req *rr);
	/* Required.  A write-type request (not a FLUSH) that submit()
	 * accepted (REPL_SENT or REPL_LOCAL) is done with: answered, with
	 * rr->local_err set if the local disk failed it, or dropped with its
	 * connection.  Exactly once per acceptance, after repl_done() when it
	 * was REPL_SENT.  Its range stops being in flight here. */
	void (*end)(void *arg, struct repl_req *rr);
	/* Optional: the local disk did a client's FLUSH (err 0) or failed
	 * it (-errno). */
	void (*flush_done)(void *arg, int err);
	/* Optional: rr, which submit() answered REPL_BUSY, will not be
	 * offered again (its client left before it was retried). */
	void (*abandon)(void *arg, struct repl_req *rr);
};

/* repl_done()'s err when the client must get EIO whatever its local disk
 * did: the replicator may not acknowledge the write (a primary that lost
 * its quorum under on-no-quorum = io-error, or that another node
 * replaced meanwhile). */
#define REPL_FAILED (-ECANCELED)

/* The NBD side's entry for replicators: the peer is done with rr, which
 * submit() answered REPL_SENT: it acknowledged it (err 0, or -errno: its
 * disk failed it), or the link was lost (the replicator has recorded the range as
 * out of sync).  The client's reply goes out once the local disk is done
 * too, with the local result.  Defined in nbd/conn.c. */
void repl_done(struct repl_req *rr, int err);

/* The NBD side says that the local disk is done with a request (written,
 * or failed), for the replicator's local write latency; accepted: the
 * replicator accepted rr (a write, not yet ended).  Inline: one clock read
 * per write, none for other requests. */
static inline void repl_local_done(struct repl_req *rr, bool accepted)
{
	if (accepted)
		rr->local_ns = clock_now_ns();
}

#endif
