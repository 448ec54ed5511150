/* The NBD server's event loop: one io_uring that owns the listening
 * sockets, every connection, the signal fd and the backing store.  It
 * accepts clients, dispatches completions to conn.c, and shares the bounded
 * buffer pool fairly: a connection that finds the pool empty waits in FIFO
 * order until enough is returned. */
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
};

/* Runs the server until SIGINT or SIGTERM.  Returns the process exit code. */
int server_run(const struct server_opts *o);

/* --- for conn.c --- */
struct server;
struct conn;
struct io_uring_sqe;
struct store;

/* A submission queue entry; submits pending ones when the queue is full. */
struct io_uring_sqe *server_sqe(struct server *s);
struct store *server_store(struct server *s);
const struct nbd_hs_export *server_export(const struct server *s);

/* Takes a buffer of len bytes, or returns NULL and queues c to be resumed
 * by conn_resume() once the pool can serve it. */
void *server_get_buffer(struct server *s, struct conn *c, size_t len);
void server_put_buffer(struct server *s, void *buf);
void server_forget(struct server *s, struct conn *c);	/* c is gone */

/* Calls conn_flush(c) once the current batch of completions is drained. */
void server_flush_later(struct server *s, struct conn *c);

#endif
