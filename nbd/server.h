/* The NBD server on an event loop: the listening sockets, every client
 * connection and the backing store.  It accepts clients and shares the
 * bounded buffer pool fairly among them (see docs/ARCHITECTURE.md). */
#ifndef BLKREP_SERVER_H
#define BLKREP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "nbd/listen.h"
#include "nbd/repl.h"
#include "nbd/handshake.h"

/* The peer is done with rr: it acknowledged it (err 0 or its error), or
 * the link was lost (the node has recorded the range as out of sync).
 * Defined by the server, which hands it to the connection that owns rr:
 * the replicator never names a connection. */
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

/* --- for the replicator --- */

/* Locks rr's range as if it were a client's write in flight (the resync,
 * DESIGN.md rule 4): false if a write overlaps it or SERVER_LOCKS_MAX are
 * held.  server_repl_end() unlocks it. */
#define SERVER_LOCKS_MAX 16
bool server_repl_lock(struct server *s, struct repl_req *rr);
void server_repl_end(struct server *s, struct repl_req *rr);
/* Client writes in flight or waiting on an overlap. */
bool server_repl_busy(const struct server *s);
/* The replicator has room again: parked requests are retried. */
void server_repl_wake(struct server *s);

#endif
