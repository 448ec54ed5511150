/* The replication seam between the NBD server and the node that mirrors
 * its writes: the types both sides see, nothing else. */
#ifndef BLKREP_REPL_H
#define BLKREP_REPL_H

#include <stdbool.h>
#include <stdint.h>

/* The replication seam: a node mirrors every write-type request and FLUSH
 * to its peer.  The request's reply waits for both the local disk and
 * server_repl_done().  Write ranges in flight never overlap (DESIGN.md rule
 * 3): a write overlapping one still in flight waits for it, so both replicas
 * apply overlapping writes in the same order. */
struct repl_req {
	uint16_t type;		/* NBD_CMD_WRITE, _TRIM, _WRITE_ZEROES or _FLUSH */
	uint16_t flags;		/* NBD_CMD_FLAG_FUA, _NO_HOLE */
	uint32_t length;
	uint64_t offset;
	const void *payload;	/* WRITE data, valid until server_repl_done() */
	uint64_t seq;		/* the replicator's own */
	bool internal;		/* the node's own (resync), not a client's */
	int local_err;		/* 0, or the local disk's error (-errno) */
};

/* What became of a write-type request or FLUSH offered to the replicator. */
enum repl_verdict {
	REPL_LOCAL, /* not replicated (no peer, or async): answer on the local result */
	REPL_SENT,  /* sent: the reply also waits for server_repl_done() */
	REPL_BUSY,  /* not now: parked until server_repl_wake() */
};

struct repl_ops {
	/* Returns REPL_SENT if rr went to the peer: server_repl_done(rr, ...)
	 * then follows exactly once; REPL_LOCAL: not replicated (no peer);
	 * REPL_BUSY: no room to send now: the request waits until the node
	 * calls server_repl_wake(). */
	enum repl_verdict (*submit)(void *arg, struct repl_req *rr);
	/* Optional: a client's write that submit() accepted is answered
	 * (rr->local_err: with the local disk's error). */
	void (*end)(void *arg, struct repl_req *rr);
	/* Optional: the local disk did a client's FLUSH (err 0) or failed
	 * it (-errno). */
	void (*flush_done)(void *arg, int err);
	/* Optional: rr, which submit() answered REPL_BUSY, will not be
	 * offered again (its client left before it was retried). */
	void (*abandon)(void *arg, struct repl_req *rr);
};

#endif
