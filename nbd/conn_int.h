/* A connection's parts share this: struct conn, struct slot and the calls
 * between conn.c (the connection: handshake, receiving and decoding
 * requests, sending replies, its life) and conn_slot.c (a request's life:
 * its buffer, disk I/O, zeroing fallbacks, replication, its reply).
 * Nothing else includes it. */
#ifndef BLKREP_CONN_INT_H
#define BLKREP_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "nbd/conn.h"
#include "utils/ioop.h"
#include "nbd/handshake.h"
#include "nbd/request.h"
#include "nbd/wire.h"

#define RBUF_SIZE	(64U << 10)	/* >= NBD_HS_MAX_OPTION */
#define SEND_IOVS	64
#define DIRECT_RECV_MIN	(16U << 10)	/* payloads this big skip rbuf */
#define STATUS_BUF	4096U		/* block status descriptors */
#define STATUS_MAX	256
#define NOSLOT		0xffff
/* Buffer bytes one connection may hold (one request may exceed it), so
 * that a client that stops reading replies cannot take the whole pool. */
#define CONN_QUOTA	(16U << 20)

enum stage { ST_FREE, ST_WAIT_BUF, ST_PAYLOAD, ST_IO, ST_SYNC, ST_QUEUED };

struct slot {
	struct ioop op;
	uint8_t stage;
	uint8_t zero;		/* enum store_zero being tried */
	uint16_t next;		/* free list or reply queue */
	struct conn *c;
	struct nbd_request req;
	uint32_t error;		/* NBD error to reply with */
	uint8_t *buf;
	uint64_t done;		/* bytes received, read, written or zeroed */
	uint32_t hdr_len;
	uint32_t data_len;	/* bytes of buf sent after hdr */
	bool repl_started;	/* repl_begin() accepted it */
	bool in_repl;		/* its range is in the owner's in-flight set */
	bool remote;		/* the peer has not answered yet */
	bool local_done;	/* its reply waits only for the peer */
	struct repl_req rr;
	uint8_t hdr[32];
};

struct conn {
	struct ioop recv_op;
	struct ioop send_op;
	const struct conn_host *host;
	struct store *st;
	int fd;
	unsigned pending;	/* submissions not yet completed */
	bool dead;		/* socket shut down; free once pending == 0 */
	bool stopping;		/* read no more requests */
	bool in_tx;		/* handshake done */
	bool close_after_send;
	bool recv_busy, recv_direct;
	bool send_busy, sending_hs;
	bool flush_queued;	/* in the server's end-of-batch send list */
	struct nbd_hs *hs;	/* until its last output is sent */
	struct nbd_session sess;

	uint8_t *rbuf;
	uint32_t rpos, rend;
	struct slot *payload;	/* WRITE whose payload is being received */
	uint64_t discard;	/* payload bytes of a rejected WRITE */
	struct slot *blocked;	/* waiting for a buffer */
	struct slot *parked;	/* waiting for an overlapping write to finish */
	size_t held;		/* buffer bytes held by this connection's slots */
	uint32_t progress;	/* completions that moved data; for conn_tick */
	uint32_t seen_progress;
	unsigned stalled_ticks;

	uint16_t free_head, nfree;
	uint16_t q_head, q_tail;	/* replies ready to send */
	uint16_t batch[SEND_IOVS];
	unsigned nbatch, iov_pos, iov_cnt;
	struct iovec iov[SEND_IOVS];
	struct msghdr msg;
	struct slot slots[CONN_SLOTS];
};

/* --- conn_slot.c --- */

/* A free slot (c->nfree > 0), reset for a new request. */
struct slot *slot_take(struct conn *c);
/* Bytes of buffer a request needs before it can start. */
uint32_t req_buf_len(const struct nbd_request *r);
/* Gives the slot and its buffer back (and its range to the owner). */
void slot_release(struct slot *s);
/* Queues the slot's reply, or, while the peer has not answered, notes
 * that only the peer is awaited. */
void slot_reply(struct slot *s);
/* The buffer is there: receive the payload, or start the disk work. */
void slot_begin(struct slot *s);
/* Starts (or continues) the disk work of a request whose buffer and
 * payload are ready. */
void slot_submit(struct slot *s);
/* The slot's disk operation completed with res. */
void slot_io_done(struct slot *s, int res);

#endif
