/* The NBD server on an event loop: the listening sockets, every client
 * connection and the backing store.  It accepts clients, shares the
 * bounded buffer pool fairly among them, and holds the connections whose
 * request the replicator cannot take yet (see docs/ARCHITECTURE.md).  It
 * is not on a request's way to the replicator: each connection calls the
 * struct repl_ops it is given (nbd/repl.h). */
#ifndef BLKREP_SERVER_H
#define BLKREP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "nbd/conn.h"
#include "nbd/listen.h"
#include "nbd/repl.h"
#include "nbd/handshake.h"

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
	const struct repl_ops *repl;	/* optional: what writes are mirrored by */
	void *repl_arg;
	/* Who may connect to a Unix listener besides root and this process's
	 * user (SO_PEERCRED), and owns its socket file (so that it can reach
	 * the 0600 socket); 0 or (uid_t)-1: nobody else. */
	uid_t unix_uid;
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
 * also on failure (-1).  It may use the slots accepted clients cannot. */
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

/* Requests one server can have in flight: its connections' slots.
 * Accepted clients get all but SERVER_ADOPT_RESERVE of them, so that idle
 * clients never lock out server_adopt() (attach, restore-saved). */
#define SERVER_CONNS_MAX	128
#define SERVER_ADOPT_RESERVE	8
#define SERVER_ACCEPT_MAX	(SERVER_CONNS_MAX - SERVER_ADOPT_RESERVE)
#define SERVER_REQS_MAX		(SERVER_CONNS_MAX * CONN_SLOTS)

/* Connections wait with a request the replicator answered REPL_BUSY. */
bool server_parked(const struct server *s);
/* The replicator may take them now: parked requests are offered again,
 * in order, once the current batch of completions is drained. */
void server_repl_wake(struct server *s);

#endif
