/* One NBD client connection: its handshake, its request slots, their
 * hand-off to the replicator, and its single send chain.  The loop hands it the completions of what it
 * submitted (ioop callbacks); its owner (the server) wakes it when a buffer
 * it waited for is free (conn_resume).  A connection frees itself once it
 * is dead and nothing of it is in flight.
 *
 * Calls go one way: the server calls conn_*(); a connection reaches its
 * owner only through the struct conn_host it was given, and calls the
 * replicator's struct repl_ops directly; the replicator answers through
 * repl_done() (nbd/repl.h), defined here. */
#ifndef BLKREP_CONN_H
#define BLKREP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbd/repl.h"

struct conn;
struct ioop;
struct io_uring_sqe;
struct loop;
struct nbd_hs_export;
struct store;

/* What a connection is given by its owner, which outlives it.  Every
 * callback is required and gets arg first. */
struct conn_host {
	struct loop *loop;
	struct store *st;
	const struct nbd_hs_export *exp;
	void *arg;
	/* A buffer of len bytes, or NULL: c is queued and resumed by
	 * conn_resume() once the pool can serve it. */
	void *(*get_buffer)(void *arg, struct conn *c, size_t len);
	void (*put_buffer)(void *arg, void *buf);
	/* The replicator its write-type requests and FLUSHes go to
	 * (nbd/repl.h), called directly; NULL: none, nothing replicated. */
	const struct repl_ops *repl;
	void *repl_arg;
	/* repl->submit() answered REPL_BUSY: c waits, reading nothing more,
	 * until conn_repl_retry(c) offers the request again. */
	void (*park)(void *arg, struct conn *c);
	/* Call conn_flush(c) once the current batch of completions is
	 * drained. */
	void (*flush_later)(void *arg, struct conn *c);
	/* c is gone: forget it. */
	void (*gone)(void *arg, struct conn *c);
};

/* Takes over a connected socket and starts the handshake.  On failure the
 * socket is closed and NULL returned.  h is kept, not copied. */
struct conn *conn_new(const struct conn_host *h, int fd);
/* A client already in the transmission phase with these flags (the
 * kernel's NBD client, handed the other end of a socketpair). */
struct conn *conn_new_tx(const struct conn_host *h, int fd, uint16_t tflags);

/* Requests in flight per connection (the kernel client's queue depth). */
#define CONN_SLOTS	128

/* Its request parked by host->park() may go on now (or park again). */
void conn_repl_retry(struct conn *c);

/* The buffer the connection waited for, from get_buffer(). */
void conn_resume(struct conn *c, void *buf);

/* Sends the replies that completed during the last batch of completions. */
void conn_flush(struct conn *c);

/* Once a second: a connection that holds buffers other clients wait for
 * (contended) and made no progress for CONN_STALL_TICKS ticks is dropped;
 * so is one still in the handshake after CONN_HANDSHAKE_TICKS ticks. */
#define CONN_STALL_TICKS	2
#define CONN_HANDSHAKE_TICKS	10
void conn_tick(struct conn *c, bool contended);

/* Graceful stop: read no further requests, finish and answer the ones in
 * flight, then close.  With hard, drop the connection now. */
void conn_stop(struct conn *c, bool hard);
/* Frees c at once, waiting for nothing: for an owner freed without running
 * its loop again (node_abandon()). */
void conn_abandon(struct conn *c);

#endif
