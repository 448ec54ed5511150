/* One NBD client connection: its handshake, its request slots, and its
 * single send chain.  The loop hands it the completions of what it
 * submitted (ioop callbacks); the server wakes it when a buffer it waited
 * for is free (conn_resume).  A connection frees itself once it is dead and
 * nothing of it is in flight. */
#ifndef BLKREP_CONN_H
#define BLKREP_CONN_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct server;

/* Takes over a connected socket and starts the handshake.  On failure the
 * socket is closed and NULL returned. */
struct conn *conn_new(struct server *s, int fd);
/* A client already in the transmission phase with these flags (the
 * kernel's NBD client, handed the other end of a socketpair). */
struct conn *conn_new_tx(struct server *s, int fd, uint16_t tflags);

/* Requests in flight per connection (the kernel client's queue depth). */
#define CONN_SLOTS	128

/* Its request parked by server_repl_begin() may go on now (or park again). */
void conn_repl_retry(struct conn *c);

/* The buffer the connection waited for, from server_get_buffer(). */
void conn_resume(struct conn *c, void *buf);

/* Sends the replies that completed during the last batch of completions. */
void conn_flush(struct conn *c);

/* Once a second: a connection that holds buffers other clients wait for
 * (contended) and made no progress for CONN_STALL_TICKS ticks is dropped. */
#define CONN_STALL_TICKS	2
void conn_tick(struct conn *c, bool contended);

/* Graceful stop: read no further requests, finish and answer the ones in
 * flight, then close.  With hard, drop the connection now. */
void conn_stop(struct conn *c, bool hard);

#endif
