/* The NBD server on an event loop: the listening sockets, every client
 * connection and the backing store.  It accepts clients and shares the
 * bounded buffer pool fairly among them (see docs/ARCHITECTURE.md). */
#ifndef BLKREP_SERVER_H
#define BLKREP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/listen.h"
#include "nbd/handshake.h"

struct server_opts {
	const char *path;		/* backing file or block device */
	const char *name;		/* export name besides "", or NULL */
	const char *description;	/* or NULL */
	bool read_only;
	bool direct;
	const char *listen[LISTEN_MAX];	/* addresses; none = default */
	int nlisten;
	size_t pool_bytes;		/* payload buffer pool */
	uint64_t size_limit;		/* export only the first bytes; 0: all */
	/* Optional: told before any write, TRIM or WRITE_ZEROES is submitted
	 * (a standalone primary marks the range out of sync). */
	void (*on_write)(void *arg, uint64_t offset, uint64_t length);
	void *on_write_arg;
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

/* Calls the on_write hook: before a write-type request is submitted. */
void server_will_write(struct server *s, uint64_t offset, uint64_t length);

/* Takes a buffer of len bytes, or returns NULL and queues c to be resumed
 * by conn_resume() once the pool can serve it. */
void *server_get_buffer(struct server *s, struct conn *c, size_t len);
void server_put_buffer(struct server *s, void *buf);
void server_forget(struct server *s, struct conn *c);	/* c is gone */

/* Calls conn_flush(c) once the current batch of completions is drained. */
void server_flush_later(struct server *s, struct conn *c);

#endif
