/* The NBD server on an event loop: the listening sockets, every client
 * connection and the backing store.  It accepts clients and shares the
 * bounded buffer pool fairly among them (see docs/ARCHITECTURE.md). */
#ifndef BLKREP_SERVER_H
#define BLKREP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/listen.h"
#include "nbd/handshake.h"

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
};


/* The peer is done with rr: it acknowledged it (err 0 or its error), or
 * the link was lost (the node has recorded the range as out of sync). */
void server_repl_done(struct repl_req *rr, int err);

struct server_opts {
	const char *path;		/* backing file or block device */
	const char *name;		/* export name besides "", or NULL */
	const char *description;	/* or NULL */
	bool read_only;
	bool direct;
	const char *listen[LISTEN_MAX];	/* addresses; none = default */
	int nlisten;
	bool no_listen;			/* no listener at all (server_adopt() only) */
	size_t pool_bytes;		/* payload buffer pool */
	uint64_t size_limit;		/* export only the first bytes; 0: all */
	const struct repl_ops *repl;	/* optional */
	void *repl_arg;
};

struct server;
struct conn;
struct loop;
struct ioop;
struct io_uring_sqe;
struct store;

/* `blkrep serve`: a server alone on its own loop until SIGINT or SIGTERM.
 * Returns the process exit code. */
int server_run(const struct server_opts *o);

/* Opens the store, binds the listeners and starts accepting on loop.
 * Returns NULL after logging why. */
struct server *server_new(struct loop *loop, const struct server_opts *o);

/* Serves fd, a connected socket whose client skipped the handshake and
 * expects transmission flags tflags (the kernel's NBD client).  Takes fd,
 * also on failure (-1). */
int server_adopt(struct server *s, int fd, uint16_t tflags);

/* Stops accepting; connections finish what is in flight (hard: are
 * dropped).  server_done() is true once none is left and the server's
 * timers and accepts are cancelled. */
void server_stop(struct server *s, bool hard);
bool server_done(const struct server *s);

/* Once server_done(), or once the loop has stopped running: before that,
 * its timers and accepts still refer to it. */
void server_free(struct server *s);

/* --- for conn.c --- */

/* A submission queue entry whose completion goes to op. */
struct io_uring_sqe *server_sqe(struct server *s, struct ioop *op);
struct store *server_store(struct server *s);
const struct nbd_hs_export *server_export(const struct server *s);

/* Replication (none without opts.repl).  server_repl_begin() returns
 * REPL_BUSY if rr overlaps a write in flight or the replicator is busy: the
 * caller parks and is retried through conn_repl_retry(); REPL_SENT if the
 * peer got it (reply waits for server_repl_done()), REPL_LOCAL if not
 * replicated.  server_repl_end() when the request is answered. */
enum repl_verdict server_repl_begin(struct server *s, struct conn *c, struct repl_req *rr);
void server_repl_end(struct server *s, struct repl_req *rr);
/* The local disk did (0) or failed (-errno) a client's FLUSH: the
 * replicator is told. */
void server_flush_done(struct server *s, int err);

/* Locks rr's range as if it were a client's write in flight (the resync,
 * DESIGN.md rule 4): false if a write overlaps it or SERVER_LOCKS_MAX are
 * held.  server_repl_end()
 * unlocks it. */
#define SERVER_LOCKS_MAX 16
bool server_repl_lock(struct server *s, struct repl_req *rr);
/* Client writes in flight or waiting on an overlap. */
bool server_repl_busy(const struct server *s);
/* The replicator has room again: parked requests are retried. */
void server_repl_wake(struct server *s);

/* Takes a buffer of len bytes, or returns NULL and queues c to be resumed
 * by conn_resume() once the pool can serve it. */
void *server_get_buffer(struct server *s, struct conn *c, size_t len);
void server_put_buffer(struct server *s, void *buf);
void server_forget(struct server *s, struct conn *c);	/* c is gone */

/* Calls conn_flush(c) once the current batch of completions is drained. */
void server_flush_later(struct server *s, struct conn *c);

#endif
