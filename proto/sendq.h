/* The peer link's send queue: messages waiting for the socket, oldest
 * first, each a header and a payload that is either copied into an arena
 * (utils/fifo) or the caller's buffer by reference.  Messages leave in
 * batches of one SENDMSG: sendq_batch() gathers them into iovecs,
 * sendq_sent() counts what a send moved, and once a batch is out its
 * messages are popped.  Pure bookkeeping: no I/O, no logging.
 *
 * Defined in proto/peer.c, whose data path it is part of (a message going
 * out never leaves that file); this header is its contract, for peer.c,
 * link.c and the unit test (tests/unit/test_bufio.c).
 *
 * Errors: sendq_push() returns -ENOBUFS when a message does not fit now. */
#ifndef BLKREP_SENDQ_H
#define BLKREP_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/msg.h"

/* iovecs of one batch: two a message (header, payload). */
#define SENDQ_IOVS 128

struct sendq;

/* An empty queue of `entries` messages (a power of two) whose copied
 * payloads share an arena of arena_bytes.  NULL when out of memory. */
struct sendq *sendq_new(unsigned entries, size_t arena_bytes);
void sendq_free(struct sendq *q);

/* Queues h with its h->length bytes of payload: copied, or with by_ref
 * the caller's buffer, which must stay valid until the message is popped.
 * Leaves `reserve` entries free.  Returns 0, or -ENOBUFS (no entry or no
 * arena room now). */
int sendq_push(struct sendq *q, const struct msg_hdr *h, const void *payload, unsigned reserve,
	       bool by_ref);

/* Takes the oldest message off the queue and gives its copy back.
 * Returns the caller's payload if it was queued by reference (its owner
 * may have it back), else NULL. */
const void *sendq_pop(struct sendq *q);

/* Messages queued (a batch being sent included). */
unsigned sendq_len(const struct sendq *q);

/* Arena bytes neither held by copies nor lost to a wrap; a copy of half
 * of them always fits in one piece. */
size_t sendq_arena_room(const struct sendq *q);

/* Starts a batch with the messages queued, oldest first, as many as
 * SENDQ_IOVS vectors hold.  Returns how many it took (0: none queued). */
unsigned sendq_batch(struct sendq *q);

/* What is left of the batch to send, for SENDMSG. */
struct msghdr *sendq_msghdr(struct sendq *q);

/* n bytes of the batch went out.  True once all of it has: its messages
 * (sendq_in_batch()) are then popped by the caller. */
bool sendq_sent(struct sendq *q, size_t n);

/* Messages of the batch still on the queue. */
unsigned sendq_in_batch(const struct sendq *q);

/* Forgets every message without popping (after the caller popped those
 * it needed to). */
void sendq_reset(struct sendq *q);

#endif
