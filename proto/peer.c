/* The established replication link's data path: the send queue, SENDMSG,
 * RECV, framing, and delivering what arrives.  A WRITE going out
 * (peer_send_ref() to its SENDMSG) and its ACK coming back (RECV to
 * the peer_on_ack() callback) run in this file only, with proto/msg.c's header codec (a
 * leaf) as their one call outside it, and, with TLS in userspace,
 * proto/tlsrec.c's records (a leaf too).  The connection's life (connecting,
 * listening, the handshake, keepalive, dropping and finishing a link) is
 * proto/link.c, which calls in here by name; this file reaches it only
 * through p->life, which link.c registers (calls go one way).  See peer.h
 * for the protocol.
 *
 * At most one RECV is in flight, into rbuf (or, for a payload of
 * DIRECT_MIN bytes or more, straight into dbuf), and one SENDMSG with a
 * batch of queued messages.  With TLS in userspace the RECV goes into cin,
 * whose records are opened into rbuf or dbuf as messages can be
 * delivered, and a batch is sealed into cout, up to SEAL_MAX bytes per
 * SEND; with kTLS the kernel does that and this file sees plaintext.  Every completion handler ends in
 * peer_after(); callbacks run only inside handlers (p->in_handler), so a
 * peer_*() call made from a callback only sets state and leaves the I/O to
 * that peer_after(). */
#include "proto/peer_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sendq.h"
#include "proto/tls.h"
#include "proto/tlsrec.h"
#include "utils/bufio.h"
#include "utils/clock.h"
#include "utils/fifo.h"

/* --- the send queue (proto/sendq.h): pure bookkeeping, unit-tested ---
 *
 * q->out[tail..head) (indices modulo entries) are queued; the first nbatch
 * of them are in the batch being sent. */

struct out {
	uint8_t hdr[MSG_HDR_SIZE];
	const void *data;
	uint32_t len;
	bool copied; /* data is in the arena */
};

struct sendq {
	struct out *out;
	unsigned entries;
	uint32_t head, tail;
	unsigned nbatch;
	struct fifo *arena;
	struct iovec iov[SENDQ_IOVS];
	unsigned iov_pos, iov_cnt;
	struct msghdr msg;
};

struct sendq *sendq_new(unsigned entries, size_t arena_bytes)
{
	struct sendq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->entries = entries;
	q->out = calloc(entries, sizeof(*q->out));
	q->arena = fifo_new(arena_bytes);
	if (!q->out || !q->arena) {
		sendq_free(q);
		return NULL;
	}
	return q;
}

void sendq_free(struct sendq *q)
{
	if (!q)
		return;
	fifo_free(q->arena);
	free(q->out);
	free(q);
}

int sendq_push(struct sendq *q, const struct msg_hdr *h, const void *payload, unsigned reserve,
	       bool by_ref)
{
	struct out *o = &q->out[q->head % q->entries];
	void *copy;

	if (q->head - q->tail + reserve >= q->entries)
		return -ENOBUFS;
	msg_hdr_encode(o->hdr, h);
	o->len = h->length;
	o->data = NULL;
	o->copied = false;
	if (h->length && by_ref) {
		o->data = payload;
	} else if (h->length) {
		copy = fifo_alloc(q->arena, h->length);
		if (!copy)
			return -ENOBUFS;
		memcpy(copy, payload, h->length);
		o->data = copy;
		o->copied = true;
	}
	q->head++;
	return 0;
}

const void *sendq_pop(struct sendq *q)
{
	const struct out *o = &q->out[q->tail % q->entries];

	q->tail++;
	if (q->nbatch)
		q->nbatch--;
	if (o->copied) {
		(void)fifo_release(q->arena, o->data, o->len);
		return NULL;
	}
	return o->data;
}

unsigned sendq_len(const struct sendq *q)
{
	return q->head - q->tail;
}

size_t sendq_arena_room(const struct sendq *q)
{
	return fifo_room(q->arena);
}

unsigned sendq_batch(struct sendq *q)
{
	uint32_t i;

	q->iov_cnt = q->iov_pos = q->nbatch = 0;
	for (i = q->tail; i != q->head && q->iov_cnt + 2 <= SENDQ_IOVS; i++) {
		const struct out *o = &q->out[i % q->entries];

		iov_push(q->iov, &q->iov_cnt, o->hdr, MSG_HDR_SIZE);
		if (o->len)
			iov_push(q->iov, &q->iov_cnt, o->data, o->len);
		q->nbatch++;
	}
	return q->nbatch;
}

struct msghdr *sendq_msghdr(struct sendq *q)
{
	q->msg.msg_iov = q->iov + q->iov_pos;
	q->msg.msg_iovlen = q->iov_cnt - q->iov_pos;
	return &q->msg;
}

bool sendq_sent(struct sendq *q, size_t n)
{
	return iov_advance(q->iov, &q->iov_pos, q->iov_cnt, n);
}

unsigned sendq_in_batch(const struct sendq *q)
{
	return q->nbatch;
}

void sendq_reset(struct sendq *q)
{
	q->head = q->tail = 0;
	q->nbatch = 0;
	fifo_reset(q->arena);
}

/* --- the ring and the handlers' common parts --- */

struct io_uring_sqe *peer_sqe(struct peer *p, struct ioop *op, bool *busy)
{
	*busy = true;
	p->pending++;
	return loop_sqe(p->loop, op);
}

void peer_kick(struct peer *p)
{
	if (p->kick_busy || p->in_handler)
		return;
	io_uring_prep_nop(peer_sqe(p, &p->kick_op, &p->kick_busy));
}

void peer_handler_enter(struct peer *p, bool *busy)
{
	*busy = false;
	p->pending--;
	p->in_handler = true;
}

/* --- dropping a link --- */

/* Keeps why for peer_last_error() and logs it, unless it is what was
 * logged last: a refused or failing connection is retried every few
 * seconds, and one line per distinct reason is enough. */
void peer_note_error(struct peer *p, enum log_level lvl, const char *why)
{
	snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	if (strcmp(p->logged, why) == 0)
		return;
	snprintf(p->logged, sizeof(p->logged), "%s", why);
	peer_log(lvl, p, "%s", why);
}

void peer_link_drop(struct peer *p, const char *why)
{
	if (!peer_link_alive(p))
		return;
	p->dead = true;
	snprintf(p->down_why, sizeof(p->down_why), "%s", why);
	if (p->freeing) {
		/* no log, no callback */
	} else if (p->stage == L_UP) {
		snprintf(p->last_error, sizeof(p->last_error), "%s", why);
		snprintf(p->logged, sizeof(p->logged), "%s", why);
		if (p->enabled)
			peer_log(LOG_WARN, p, "connection lost: %s", why);
		else
			peer_log(LOG_INFO, p, "connection closed: %s", why);
	} else {
		peer_note_error(p, p->enabled ? LOG_WARN : LOG_INFO, why);
	}
	(void)shutdown(p->fd, SHUT_RDWR);
	if (p->connect_busy)
		peer_cancel(p, &p->connect_op);
	if (p->connector)
		peer_backoff(p, p->stage == L_UP);
}

void peer_backoff(struct peer *p, bool was_up)
{
	if (was_up)
		p->backoff_ms = BACKOFF_MIN_MS;
	p->next_connect_ms = clock_now_ms() + p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* --- sending --- */

int peer_send_ctl(struct peer *p, uint16_t type, uint64_t seq, const void *payload, uint32_t len)
{
	struct msg_hdr h = { .type = type, .length = len, .seq = seq };

	return sendq_push(p->q, &h, payload, 0, false);
}

/* Takes the oldest message off the queue; a payload by reference goes
 * back to its owner. */
void peer_queue_pop(struct peer *p, bool notify)
{
	const void *ref = sendq_pop(p->q);

	if (ref && notify && p->ops->released)
		p->ops->released(p->arg, ref);
}

static bool user_tls(const struct peer *p)
{
	return p->tls && !p->ktls;
}

static void send_submit(struct peer *p)
{
	struct io_uring_sqe *sqe = peer_sqe(p, &p->send_op, &p->send_busy);

	if (user_tls(p))
		io_uring_prep_send(sqe, p->fd, p->cout + p->cout_pos, p->cout_len - p->cout_pos,
				   MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, p->fd, sendq_msghdr(p->q), MSG_NOSIGNAL);
}

/* Userspace TLS: seals the next SEAL_MAX bytes of the batch into cout, in
 * records of up to 16 KiB gathered across messages, encrypted straight
 * from the queued headers and payloads (proto/tlsrec.h).  False after
 * dropping the link. */
static bool seal(struct peer *p)
{
	struct msghdr *m = sendq_msghdr(p->q);
	size_t left = 0, total = 0, i = 0, off = 0;
	uint8_t *out = p->cout;

	for (size_t k = 0; k < m->msg_iovlen; k++)
		left += m->msg_iov[k].iov_len;
	while (left && total < SEAL_MAX) {
		size_t plen = left < TLSREC_PLAIN_MAX ? left : TLSREC_PLAIN_MAX, need = plen;
		int n = tlsrec_seal_begin(p->tx, plen, out);

		while (n >= 0 && need) {
			size_t piece = m->msg_iov[i].iov_len - off;

			out += n;
			if (piece > need)
				piece = need;
			n = tlsrec_seal_add(p->tx, (const uint8_t *)m->msg_iov[i].iov_base + off,
					    piece, out);
			need -= piece;
			off += piece;
			if (off == m->msg_iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (n < 0 || (out += n, n = tlsrec_seal_end(p->tx, out)) < 0) {
			peer_link_drop(p, "TLS: cannot encrypt (libcrypto)");
			return false;
		}
		out += n;
		tls_count_sent(p->tls, plen);
		total += plen;
		left -= plen;
	}
	p->sealed = sendq_sent(p->q, total);
	p->cout_pos = 0;
	p->cout_len = (uint32_t)(out - p->cout);
	return true;
}

/* Long-lived links take fresh keys by reconnecting before the cipher's
 * limit (6.1's kernel TLS cannot take a KeyUpdate).  False after
 * dropping the link. */
static bool key_fresh(struct peer *p)
{
	char why[ERR_MAX];

	if (!p->tls || tls_blocks_sent(p->tls) < p->rekey_blocks)
		return true;
	snprintf(why, sizeof(why),
		 "rekeying: %llu cipher blocks sent under one TLS key, reconnecting for new keys",
		 (unsigned long long)tls_blocks_sent(p->tls));
	peer_link_drop(p, why);
	return false;
}

/* One SENDMSG at a time, with everything queued so far: a short send must
 * never interleave with another. */
void peer_send_kick(struct peer *p)
{
	if (p->send_busy || !peer_link_alive(p) || p->stage < L_HELLO || p->shut_wr)
		return;
	if (user_tls(p) && p->cout_pos < p->cout_len)
		return send_submit(p);
	if (user_tls(p) && sendq_in_batch(p->q)) /* more of the batch to seal */
		return seal(p) ? send_submit(p) : (void)0;
	if (!sendq_len(p->q) || !key_fresh(p))
		return;
	(void)sendq_batch(p->q);
	if (!user_tls(p) || seal(p))
		send_submit(p);
}

/* n bytes went out: true once the whole batch has (its messages may be
 * popped). */
static bool sent(struct peer *p, size_t n)
{
	if (p->ktls)
		tls_count_sent(p->tls, n);
	if (!user_tls(p))
		return sendq_sent(p->q, n);
	p->cout_pos += (uint32_t)n;
	if (p->cout_pos < p->cout_len || !p->sealed)
		return false;
	p->sealed = false;
	return true;
}

static void on_send(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, send_op);
	size_t n = res > 0 ? (size_t)res : 0;
	char why[ERR_MAX];

	peer_handler_enter(p, &p->send_busy);
	if (!peer_link_alive(p))
		return peer_after(p); /* link_finish() releases the queue */
	if (res == -EAGAIN || res == -EINTR) {
		send_submit(p);
		return peer_after(p);
	}
	if (res < 0) {
		snprintf(why, sizeof(why), "send: %s", strerror(-res));
		peer_link_drop(p, p->stage == L_CLOSING ? p->refusal : why);
		return peer_after(p);
	}
	p->last_tx_ms = clock_now_ms();
	if (!sent(p, n)) {
		/* short send, or more of the batch: before anything else */
		if (!user_tls(p) || p->cout_pos < p->cout_len || seal(p))
			send_submit(p);
		return peer_after(p);
	}
	while (sendq_in_batch(p->q))
		peer_queue_pop(p, true);
	if (p->wait_room) { /* room for answers again, perhaps */
		p->wait_room = false;
		peer_input(p);
	}
	if (p->want_writable && peer_send_space(p) >= PEER_QUEUE / 4 &&
	    sendq_arena_room(p->q) >= ARENA_SIZE / 4) {
		p->want_writable = false;
		if (p->ops->writable)
			p->ops->writable(p->arg);
	}
	peer_after(p);
}

static int peer_queue(struct peer *p, const struct msg_hdr *h, const void *payload, bool by_ref)
{
	int rc;

	if (p->freeing || !peer_link_alive(p) || p->stage != L_UP)
		return -ENOTCONN;
	/* A payload larger than a copy would be the caller's buffer: reused
	 * by the caller before it is on the socket, unless it says it keeps
	 * it (peer_send_ref). */
	if (h->length > (by_ref ? MSG_MAX_DATA : PEER_COPY_MAX) || (h->length && !payload))
		return -EINVAL;
	rc = sendq_push(p->q, h, payload, QUEUE_RESERVE, by_ref);
	if (rc == -ENOBUFS) {
		p->want_writable = true;
		return rc;
	}
	/* In a handler, peer_after() sends everything queued in one batch. */
	if (!p->in_handler)
		peer_send_kick(p);
	return 0;
}

int peer_send(struct peer *p, const struct msg_hdr *h, const void *payload)
{
	return peer_queue(p, h, payload, false);
}

int peer_send_ref(struct peer *p, const struct msg_hdr *h, const void *payload)
{
	return peer_queue(p, h, payload, true);
}

unsigned peer_send_space(const struct peer *p)
{
	uint32_t used = sendq_len(p->q) + QUEUE_RESERVE;

	return used >= PEER_QUEUE ? 0 : PEER_QUEUE - used;
}

/* --- receiving and delivering --- */

void peer_recv_arm(struct peer *p)
{
	struct io_uring_sqe *sqe;

	if (p->recv_busy || !peer_link_alive(p) || p->stage < L_HELLO ||
	    ((p->paused || p->wait_room) && p->stage == L_UP))
		return;
	if (p->stage == L_CLOSING)
		p->rpos = p->rend = 0; /* discarding */
	if (user_tls(p)) {
		/* Opened records go only now, with no RECV writing into cin. */
		memmove(p->cin, p->cin + p->cin_pos, p->cin_len - p->cin_pos);
		p->cin_len -= p->cin_pos;
		p->cin_pos = 0;
		if (p->cin_len == CIN_SIZE)
			return; /* records wait for room to decrypt into */
		sqe = peer_sqe(p, &p->recv_op, &p->recv_busy);
		io_uring_prep_recv(sqe, p->fd, p->cin + p->cin_len, CIN_SIZE - p->cin_len, 0);
		p->recv_direct = false;
		return;
	}
	if (p->direct && p->dlen < p->cur.length) {
		sqe = peer_sqe(p, &p->recv_op, &p->recv_busy);
		io_uring_prep_recv(sqe, p->fd, p->dbuf + p->dlen, p->cur.length - p->dlen, 0);
		p->recv_direct = true;
		return;
	}
	rbuf_compact(p->rbuf, RBUF_SIZE, &p->rpos, &p->rend);
	sqe = peer_sqe(p, &p->recv_op, &p->recv_busy);
	io_uring_prep_recv(sqe, p->fd, p->rbuf + p->rend, RBUF_SIZE - p->rend, 0);
	p->recv_direct = false;
}

static void on_recv(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, recv_op);
	char why[ERR_MAX];

	peer_handler_enter(p, &p->recv_busy);
	if (!peer_link_alive(p) || res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		/* dropped, or try again */
	} else if (res < 0) {
		if (p->ktls && res == -EBADMSG)
			snprintf(why, sizeof(why), "TLS: a record failed authentication (kernel TLS)");
		else if (p->ktls && res == -EIO)
			snprintf(why, sizeof(why), "TLS: a record that is not data (an alert?)");
		else
			snprintf(why, sizeof(why), "receive: %s", strerror(-res));
		peer_link_drop(p, p->stage == L_CLOSING ? p->refusal : why);
	} else if (res == 0) {
		peer_link_drop(p, p->stage == L_CLOSING ? p->refusal : "peer closed the connection");
	} else {
		p->last_rx_ms = clock_now_ms();
		if (p->stage == L_CLOSING)
			p->rpos = p->rend = p->cin_pos = p->cin_len = 0;
		else if (user_tls(p))
			p->cin_len += (uint32_t)res; /* decrypted by peer_input() */
		else if (p->recv_direct)
			p->dlen += (uint32_t)res;
		else
			p->rend += (uint32_t)res;
		peer_input(p);
	}
	peer_after(p);
}

/* One message from the peer.  Until the link is up, and for a REFUSE at
 * any time, that is the handshake's, in link.c.  Once up, PING and PONG
 * stay here, an ACK or FLUSH_ACK goes to the peer_on_ack() callback when there is one, and
 * anything else to ops->message. */
static void deliver(struct peer *p, const struct msg_hdr *h, const uint8_t *payload)
{
	char why[ERR_MAX];

	if (p->stage != L_UP || h->type == MSG_REFUSE)
		return p->life->handshake(p, h, payload);
	switch (h->type) {
	case MSG_PING:
		/* Best effort: if the queue is full, bytes are flowing. */
		(void)peer_send_ctl(p, MSG_PONG, h->seq, NULL, 0);
		return;
	case MSG_PONG:
		return;
	case MSG_HELLO:
	case MSG_AUTH:
		snprintf(why, sizeof(why), "unexpected %s after the handshake",
			 msg_type_name(h->type));
		return peer_link_drop(p, why);
	case MSG_ACK:
	case MSG_FLUSH_ACK:
		if (p->ack)
			return p->ack(p->ack_arg, h);
		break;
	default:
		break;
	}
	p->ops->message(p->arg, h, payload);
}

static bool input_stopped(const struct peer *p)
{
	return !peer_link_alive(p) || p->stage == L_CLOSING ||
	       ((p->paused || p->wait_room) && p->stage == L_UP);
}

/* Messages the receiver must answer. */
static bool asks_answer(uint16_t type)
{
	switch (type) {
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_FLUSH:
	case MSG_RESYNC_DATA:
	case MSG_RESYNC_REQ:
	case MSG_VERIFY_REQ:
		return true;
	default:
		return false;
	}
}

/* A request is delivered only while its answer fits in the send queue
 * (and, for VERIFY_REQ, its checksums in the arena: 2x, since the free
 * space may be split in two).  Otherwise it waits, unread, until a send
 * completes: a burst of requests (thousands of TRIM headers in one
 * receive) is paced by TCP instead of overflowing the queue of answers.
 * Only the side that receives requests waits, and what it waits for, the
 * other side reading, never waits on it. */
static bool room_for_answer(struct peer *p, const struct msg_hdr *h)
{
	if (p->stage != L_UP || !asks_answer(h->type))
		return true;
	p->wait_room = peer_send_space(p) < PEER_ANSWER_ROOM ||
		       (h->type == MSG_VERIFY_REQ && sendq_arena_room(p->q) < 2 * MSG_MAX_DIGESTS);
	return !p->wait_room;
}

/* Delivers every complete message received, until the link stops. */
static void peer_parse_input(struct peer *p)
{
	char why[ERR_MAX];
	const char *bad;
	struct msg_hdr h;

	while (!input_stopped(p)) {
		uint32_t avail = p->rend - p->rpos, n;
		const uint8_t *payload;

		if (p->direct) {
			if (p->dlen < p->cur.length || !room_for_answer(p, &p->cur))
				return;
			p->direct = false;
			deliver(p, &p->cur, p->dbuf);
			continue;
		}
		if (avail < MSG_HDR_SIZE)
			return;
		if (p->stage == L_HELLO && !p->tls && p->rbuf[p->rpos] == 22 &&
		    p->rbuf[p->rpos + 1] == 3) /* a TLS handshake record */
			return peer_link_drop(p, "the peer speaks TLS: set allow-unencrypted on both "
						 "nodes or on neither");
		if (msg_hdr_decode(p->rbuf + p->rpos, &h, &bad) < 0 ||
		    (p->stage == L_UP &&
		     msg_hdr_check_bounds(&h, p->size_bytes, p->bitmap_bits, &bad) < 0)) {
			snprintf(why, sizeof(why), "bad message from the peer: %s", bad);
			return peer_link_drop(p, why);
		}
		if (h.length >= DIRECT_MIN) {
			p->rpos += MSG_HDR_SIZE;
			n = avail - MSG_HDR_SIZE < h.length ? avail - MSG_HDR_SIZE : h.length;
			memcpy(p->dbuf, p->rbuf + p->rpos, n);
			p->rpos += n;
			p->dlen = n;
			p->cur = h;
			p->direct = true;
			continue;
		}
		if (avail < MSG_HDR_SIZE + h.length || !room_for_answer(p, &h))
			return;
		payload = h.length ? p->rbuf + p->rpos + MSG_HDR_SIZE : NULL;
		/* Consumed before the call: the callback may pause us. */
		p->rpos += MSG_HDR_SIZE + h.length;
		deliver(p, &h, payload);
	}
}

/* Userspace TLS: where the next record's plaintext (at most max bytes)
 * goes: straight into dbuf when the large payload being received takes all
 * of it, into rbuf otherwise, or, for a record that ends one large payload
 * and begins what follows, into spill first.  NULL: rbuf is full. */
static uint8_t *open_dst(struct peer *p, size_t max)
{
	if (p->direct && p->cur.length - p->dlen >= max)
		return p->dbuf + p->dlen;
	rbuf_compact(p->rbuf, RBUF_SIZE, &p->rpos, &p->rend);
	if (RBUF_SIZE - p->rend < max)
		return NULL;
	return p->direct ? p->spill : p->rbuf + p->rend;
}

/* Puts n bytes of plaintext where the parser expects them. */
static void deposit(struct peer *p, const uint8_t *dst, size_t n)
{
	size_t first = 0;

	if (dst == p->spill) {
		first = p->cur.length - p->dlen < n ? p->cur.length - p->dlen : n;
		memcpy(p->dbuf + p->dlen, p->spill, first);
		memcpy(p->rbuf + p->rend, p->spill + first, n - first);
	} else if (p->direct) {
		first = n;
	}
	p->dlen += (uint32_t)first;
	p->rend += (uint32_t)(n - first);
}

/* A record that is not data ends the link: an alert (a certificate this
 * node's peer only refused after this node's handshake completed, as TLS
 * 1.3 allows, or a close), or anything else. */
static void alert(struct peer *p, uint8_t type, const uint8_t *msg, size_t len)
{
	char why[ERR_MAX];
	uint8_t desc = len >= 2 ? msg[1] : 255;

	if (type != 21)
		snprintf(why, sizeof(why), "TLS: a record of type %u, not data", type);
	else if (desc >= 42 && desc <= 48)
		snprintf(why, sizeof(why),
			 "authentication failed: the peer refused this node's certificate (%s)",
			 tlsrec_alert_name(desc));
	else
		snprintf(why, sizeof(why), "TLS: the peer sent an alert (%s)",
			 tlsrec_alert_name(desc));
	peer_link_drop(p, why);
}

/* Opens the next whole record in cin; false when there is none, or no room
 * for it yet, or after dropping the link. */
static bool open_record(struct peer *p)
{
	uint8_t *rec = p->cin + p->cin_pos, *dst, type;
	uint32_t have = p->cin_len - p->cin_pos;
	const char *bad;
	size_t plen;
	int len;

	if (have < TLS_HDR_SIZE)
		return false;
	len = tls_record_len(rec, &bad);
	if (len < TLSREC_TAG + 1) {
		peer_link_drop(p, "TLS: a malformed record");
		return false;
	}
	if (have < TLS_HDR_SIZE + (uint32_t)len || !(dst = open_dst(p, (size_t)len - TLSREC_TAG)))
		return false;
	if (tlsrec_open(p->rx, rec, TLS_HDR_SIZE + (size_t)len, dst, &plen, &type) < 0) {
		peer_link_drop(p, "TLS: a record failed authentication");
		return false;
	}
	if (type != TLSREC_TYPE_DATA) {
		alert(p, type, dst, plen);
		return false;
	}
	p->cin_pos += TLS_HDR_SIZE + (uint32_t)len;
	deposit(p, dst, plen);
	return true;
}

/* Userspace TLS: opens records as long as messages can be delivered; what
 * stays sealed waits in cin, and no RECV is armed once cin is full, so TCP
 * paces the peer as without TLS.  A RECV may be in flight into cin's end
 * meanwhile: what was opened leaves cin only in peer_recv_arm(). */
static void tls_pull(struct peer *p)
{
	do
		peer_parse_input(p);
	while (!input_stopped(p) && open_record(p));
}

void peer_input(struct peer *p)
{
	if (user_tls(p) && p->stage != L_CLOSING)
		tls_pull(p);
	else
		peer_parse_input(p);
}

static void on_kick(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, kick_op);

	(void)res;
	peer_handler_enter(p, &p->kick_busy);
	if (!p->freeing)
		peer_input(p);
	peer_after(p);
}

void peer_recv_pause(struct peer *p, bool paused)
{
	if (p->freeing || paused == p->paused)
		return;
	p->paused = paused;
	if (!paused) {
		/* Our silence, not the peer's. */
		p->last_rx_ms = clock_now_ms();
		peer_kick(p);
	}
}

/* --- after any event --- */

/* An established link with nothing else to do: up, its timer ticking, and
 * nothing to accept, adopt or finish. */
static bool link_steady(const struct peer *p)
{
	return !p->freeing && p->enabled && peer_link_alive(p) && p->stage == L_UP &&
	       p->timer_busy && p->stash_fd < 0 &&
	       (p->connector || p->hub || (p->listen_fd >= 0 && p->accept_busy));
}

/* Moves the peer on after any event; the last thing every handler does,
 * and it may free p.  A steady link only needs its send and receive
 * armed, which stays in this file; anything else (finishing a dropped
 * link, connecting, accepting, the timer) is link.c's p->life->after(),
 * which arms the send and receive too. */
void peer_after(struct peer *p)
{
	if (!link_steady(p))
		return p->life->after(p);
	peer_send_kick(p);
	peer_recv_arm(p);
	p->in_handler = false;
}

void peer_io_setup(struct peer *p)
{
	p->recv_op.done = on_recv;
	p->send_op.done = on_send;
	p->kick_op.done = on_kick;
}

void peer_on_ack(struct peer *p, void (*ack)(void *arg, const struct msg_hdr *h), void *arg)
{
	p->ack = ack;
	p->ack_arg = arg;
}
