/* The replication link on the event loop.  See peer.h for the protocol
 * (who connects, the handshake, keepalive); this file is its I/O.
 *
 * One connection at a time, its state in struct peer (p->fd, p->stage).
 * Every io_uring operation has its own ioop and busy flag, and at most one
 * of each kind is in flight: one RECV into rbuf (or, for a payload of
 * DIRECT_MIN bytes or more, straight into dbuf), one SENDMSG with a batch
 * of queued messages, one ACCEPT or CONNECT, one TIMEOUT ticking every
 * TICK_MS, and one NOP ("kick") to get back onto the loop.
 *
 * A dropped connection is shut down, not closed: it is closed, its queue
 * released and ops->down called only once every operation on it has
 * completed, because the kernel may still be writing into rbuf or reading
 * a queued payload until then.
 *
 * Every completion handler ends in peer_after(), which finishes dropped
 * links and (re)arms whatever should be in flight.  Callbacks run only
 * inside handlers (p->in_handler), so a peer_*() call made from a callback
 * only sets state and leaves the I/O to that peer_after(). */
#include "peer.h"

#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/ioop.h"
#include "daemon/loop.h"
#include "daemon/sendq.h"
#include "proto/auth.h"
#include "utils/bufio.h"
#include "utils/clock.h"
#include "utils/log.h"

#define TICK_MS		100
#define PING_IDLE_MS	1000 /* nothing received or sent: PING */
#define SILENT_MS	5000 /* nothing received: the peer is gone */
#define HANDSHAKE_MS	5000 /* from connect() or accept() to up */
#define LINGER_MS	1000 /* after sending REFUSE, for the peer to read it */
#define BACKOFF_MIN_MS	200
#define BACKOFF_MAX_MS	5000
#define LISTEN_RETRY_MS 1000
#define ACCEPT_RETRY_MS 100

#define RBUF_SIZE  (128U << 10) /* > header + any payload below DIRECT_MIN */
#define DIRECT_MIN (16U << 10)	/* payloads this big are received into dbuf */
#define ARENA_SIZE (256U << 10) /* copies of peer_send()'s payloads */
/* Queue entries peer_send() leaves free for PING, PONG and REFUSE. */
#define QUEUE_RESERVE 8
#define ERR_MAX	      (MSG_MAX_REASON + 160)
#define ADDR_MAX      300

_Static_assert(RBUF_SIZE > 2 * (MSG_HDR_SIZE + DIRECT_MIN + MSG_MAX_HELLO),
	       "a message below DIRECT_MIN must fit in half of rbuf");
_Static_assert(MSG_MAX_HELLO < DIRECT_MIN && MSG_MAX_REASON < DIRECT_MIN,
	       "handshake messages are parsed in rbuf");
_Static_assert(MSG_MAX_DIGESTS <= PEER_COPY_MAX && MSG_MAX_BITMAP <= PEER_COPY_MAX &&
		       MSG_MAX_HELLO <= PEER_COPY_MAX && MSG_MAX_REASON <= PEER_COPY_MAX,
	       "peer_send() copies every payload but data");
_Static_assert(ARENA_SIZE >= 4 * PEER_COPY_MAX, "the arena holds several of the largest copies");

enum stage {
	L_NONE,	      /* no connection */
	L_CONNECTING, /* CONNECT in flight */
	L_HELLO,      /* our HELLO sent, waiting for theirs */
	L_AUTH,	      /* our AUTH sent, waiting for theirs */
	L_STATE,      /* we accepted the peer, waiting for its STATE */
	L_UP,
	L_CLOSING, /* REFUSE queued: send it, then wait for EOF */
};

struct peer {
	struct ioop accept_op, connect_op, recv_op, send_op, timer_op, kick_op;
	struct loop *loop;
	const struct peer_ops *ops;
	void *arg;

	char resource[MSG_NAME_SIZE], my_node[MSG_NAME_SIZE], peer_node[MSG_NAME_SIZE];
	char my_addr[ADDR_MAX], peer_addr[ADDR_MAX];
	uint8_t *secret;
	size_t secret_len;
	uint16_t version_min, version_max;
	bool connector; /* my_node sorts first: we connect, never listen */
	struct sockaddr_storage my_sa, peer_sa;
	socklen_t my_sa_len, peer_sa_len;

	bool enabled, freeing, in_handler, paused;
	bool wait_room; /* a request waits for room for its answer */
	bool accept_busy, connect_busy, recv_busy, send_busy, timer_busy, kick_busy;
	bool timer_cancelled;
	unsigned pending; /* operations in flight */

	int listen_fd, stash_fd; /* stash: accepted while the old link drains */
	uint64_t listen_retry_ms, accept_retry_ms;
	struct sockaddr_storage acc_sa;
	socklen_t acc_len;
	uint64_t next_connect_ms;
	unsigned backoff_ms;
	struct __kernel_timespec tick;

	/* The connection. */
	int fd;
	enum stage stage;
	bool dead; /* shut down; finished once nothing is in flight */
	bool up_called, shut_wr, recv_direct;
	uint64_t started_ms, last_rx_ms, last_tx_ms, last_ping_ms, closing_ms;
	uint64_t ping_seq;
	char down_why[ERR_MAX];
	char refusal[ERR_MAX];
	uint8_t my_nonce[AUTH_NONCE_SIZE];
	struct msg_hello theirs;
	uint16_t version;
	uint64_t my_size;
	uint32_t my_extent;
	uint64_t size_bytes, bitmap_bits; /* bounds for incoming messages */

	uint8_t *rbuf;
	uint32_t rpos, rend;
	uint8_t *dbuf; /* payload of cur, dlen bytes so far */
	bool direct;
	uint32_t dlen;
	struct msg_hdr cur;

	struct sendq *q;
	bool want_writable;

	char last_error[ERR_MAX];
	char logged[ERR_MAX]; /* the last reason logged, to log each once */
};

#define peer_log(lvl, p, fmt, ...)                                                                 \
	log_msg(lvl, "%s: peer %s: " fmt, (p)->resource, (p)->peer_node, ##__VA_ARGS__)

/* Keeps why for peer_last_error() and logs it, unless it is what was
 * logged last: a refused or failing connection is retried every few
 * seconds, and one line per distinct reason is enough. */
static void note_error(struct peer *p, enum log_level lvl, const char *why)
{
	snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	if (strcmp(p->logged, why) == 0)
		return;
	snprintf(p->logged, sizeof(p->logged), "%s", why);
	peer_log(lvl, p, "%s", why);
}

static struct io_uring_sqe *peer_sqe(struct peer *p, struct ioop *op, bool *busy)
{
	*busy = true;
	p->pending++;
	return loop_sqe(p->loop, op);
}

static void peer_cancel(struct peer *p, struct ioop *op)
{
	io_uring_prep_cancel(loop_sqe(p->loop, NULL), op, 0);
}

static void peer_kick(struct peer *p)
{
	if (p->kick_busy || p->in_handler)
		return;
	io_uring_prep_nop(peer_sqe(p, &p->kick_op, &p->kick_busy));
}

static bool link_alive(const struct peer *p)
{
	return p->fd >= 0 && !p->dead;
}

/* --- the send queue --- */

/* Takes the oldest message off the queue; a payload by reference goes
 * back to its owner. */
static void queue_pop(struct peer *p, bool notify)
{
	const void *ref = sendq_pop(p->q);

	if (ref && notify && p->ops->released)
		p->ops->released(p->arg, ref);
}

static void send_submit(struct peer *p)
{
	struct io_uring_sqe *sqe = peer_sqe(p, &p->send_op, &p->send_busy);

	io_uring_prep_sendmsg(sqe, p->fd, sendq_msghdr(p->q), MSG_NOSIGNAL);
}

/* One SENDMSG at a time, with everything queued so far: a short send must
 * never interleave with another. */
static void send_kick(struct peer *p)
{
	if (p->send_busy || !link_alive(p) || p->stage < L_HELLO || p->shut_wr ||
	    !sendq_len(p->q))
		return;
	(void)sendq_batch(p->q);
	send_submit(p);
}

static int send_ctl(struct peer *p, uint16_t type, uint64_t seq, const void *payload, uint32_t len)
{
	struct msg_hdr h = { .type = type, .length = len, .seq = seq };

	return sendq_push(p->q, &h, payload, 0, false);
}

/* --- dropping a connection --- */

static void link_drop(struct peer *p, const char *why)
{
	if (!link_alive(p))
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
		note_error(p, p->enabled ? LOG_WARN : LOG_INFO, why);
	}
	(void)shutdown(p->fd, SHUT_RDWR);
	if (p->connect_busy)
		peer_cancel(p, &p->connect_op);
	if (p->connector) {
		if (p->stage == L_UP)
			p->backoff_ms = BACKOFF_MIN_MS;
		p->next_connect_ms = clock_now_ms() + p->backoff_ms;
		p->backoff_ms =
			p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	}
}

/* Closes a dropped connection once nothing is in flight on it, gives back
 * every queued payload, then tells the caller. */
static void link_finish(struct peer *p)
{
	char why[ERR_MAX];
	bool was_up = p->up_called;

	if (p->fd < 0 || !p->dead || p->recv_busy || p->send_busy || p->connect_busy)
		return;
	close(p->fd);
	p->fd = -1;
	while (sendq_len(p->q))
		queue_pop(p, !p->freeing);
	sendq_reset(p->q);
	p->stage = L_NONE;
	p->dead = p->up_called = p->shut_wr = p->direct = false;
	p->paused = p->wait_room = false;
	p->rpos = p->rend = p->dlen = 0;
	p->version = 0;
	snprintf(why, sizeof(why), "%s", p->down_why);
	if (was_up && !p->freeing)
		p->ops->down(p->arg, why);
}

/* --- the handshake --- */

/* Sends REFUSE and closes once it is out; the peer logs the reason. */
static void refuse(struct peer *p, const char *reason)
{
	size_t len = strnlen(reason, MSG_MAX_REASON);

	note_error(p, LOG_ERR, reason);
	snprintf(p->refusal, sizeof(p->refusal), "%s", reason);
	if (len == 0 || send_ctl(p, MSG_REFUSE, 0, reason, (uint32_t)len) < 0) {
		link_drop(p, reason);
		return;
	}
	p->stage = L_CLOSING;
	p->closing_ms = clock_now_ms();
	p->rpos = p->rend = 0; /* whatever else the peer said is moot */
	p->direct = false;
}

/* Queues HELLO (with a fresh nonce) or STATE (nonce zero). */
static int send_hello(struct peer *p, uint16_t type)
{
	struct msg_hello m;
	uint8_t buf[MSG_HELLO_SIZE];

	memset(&m, 0, sizeof(m));
	p->ops->hello(p->arg, &m);
	m.version_min = p->version_min;
	m.version_max = p->version_max;
	memcpy(m.resource, p->resource, MSG_NAME_SIZE);
	memcpy(m.node, p->my_node, MSG_NAME_SIZE);
	if (!p->secret_len)
		m.flags |= MSG_HELLO_F_NO_SECRET;
	memset(m.nonce, 0, sizeof(m.nonce));
	if (type == MSG_HELLO) {
		if (auth_nonce(p->my_nonce) < 0) {
			link_drop(p, "cannot read random bytes for the handshake nonce");
			return -1;
		}
		memcpy(m.nonce, p->my_nonce, MSG_NONCE_SIZE);
	}
	p->my_size = m.size_bytes;
	p->my_extent = m.extent_bytes;
	msg_hello_encode(buf, &m);
	if (send_ctl(p, type, 0, buf, MSG_HELLO_SIZE) < 0) {
		link_drop(p, "send queue full during the handshake");
		return -1;
	}
	return 0;
}

/* A new connection, connected or accepted: both sides speak first. */
static void link_begin(struct peer *p)
{
	uint64_t now = clock_now_ms();
	int one = 1;

	(void)setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->stage = L_HELLO;
	p->started_ms = p->last_rx_ms = p->last_tx_ms = p->last_ping_ms = now;
	(void)send_hello(p, MSG_HELLO);
}

static void accept_and_confirm(struct peer *p)
{
	char why[MSG_MAX_REASON + 1] = "";

	if (p->ops->accept_peer && !p->ops->accept_peer(p->arg, &p->theirs, why, sizeof(why))) {
		why[sizeof(why) - 1] = '\0';
		refuse(p, why[0] ? why : "refused by this node");
		return;
	}
	if (!link_alive(p)) /* the callback disabled us */
		return;
	if (send_hello(p, MSG_STATE) == 0)
		p->stage = L_STATE;
}

static void on_hello(struct peer *p, const uint8_t *payload, uint32_t len)
{
	char why[ERR_MAX];
	const char *bad;
	struct msg_hello m;
	uint8_t mac[AUTH_MAC_SIZE];
	bool they_have = false;

	if (msg_hello_decode(payload, len, &m, &bad) < 0) {
		snprintf(why, sizeof(why), "invalid HELLO from the peer: %s", bad);
		return refuse(p, why);
	}
	if (msg_negotiate(p->version_min, p->version_max, m.version_min, m.version_max,
			  &p->version) < 0) {
		msg_refuse_version(why, sizeof(why), m.version_min, m.version_max, p->version_min,
				   p->version_max);
		return refuse(p, why);
	}
	if (strcmp(m.resource, p->resource) != 0) {
		snprintf(why, sizeof(why), "resource name mismatch: peer serves %s, this node %s",
			 m.resource, p->resource);
		return refuse(p, why);
	}
	if (strcmp(m.node, p->peer_node) != 0) {
		snprintf(why, sizeof(why), "unexpected peer node %s (expected %s)", m.node,
			 p->peer_node);
		return refuse(p, why);
	}
	they_have = !(m.flags & MSG_HELLO_F_NO_SECRET);
	if (p->secret_len && !they_have) {
		snprintf(why, sizeof(why),
			 "peer %s has no shared secret (allow-unauthenticated) but this node "
			 "has one: give both nodes the same secret-file",
			 m.node);
		return refuse(p, why);
	}
	if (!p->secret_len && they_have) {
		snprintf(why, sizeof(why),
			 "this node has no shared secret (allow-unauthenticated) but peer %s "
			 "has one: give both nodes the same secret-file",
			 m.node);
		return refuse(p, why);
	}
	p->theirs = m;
	if (!p->secret_len)
		return accept_and_confirm(p);
	if (auth_compute(p->secret, p->secret_len, m.nonce, p->my_nonce, p->resource, p->my_node,
			 mac) < 0)
		return refuse(p, "authentication failed: cannot compute the HMAC (libcrypto)");
	if (send_ctl(p, MSG_AUTH, 0, mac, sizeof(mac)) < 0)
		return link_drop(p, "send queue full during the handshake");
	p->stage = L_AUTH;
}

static void on_auth(struct peer *p, const uint8_t *mac)
{
	if (!auth_check(p->secret, p->secret_len, p->my_nonce, p->theirs.nonce, p->resource,
			p->theirs.node, mac))
		return refuse(p, "authentication failed: the peers' secrets differ");
	accept_and_confirm(p);
}

static void on_state(struct peer *p, const uint8_t *payload, uint32_t len)
{
	char why[ERR_MAX];
	const char *bad;
	struct msg_hello m;

	if (msg_hello_decode(payload, len, &m, &bad) < 0) {
		snprintf(why, sizeof(why), "invalid STATE from the peer: %s", bad);
		return refuse(p, why);
	}
	/* Bounds for everything the peer sends from now on: the data area
	 * both sides have. */
	p->size_bytes = m.size_bytes < p->my_size ? m.size_bytes : p->my_size;
	p->bitmap_bits = p->my_extent ? (p->size_bytes + p->my_extent - 1) / p->my_extent : 0;
	p->stage = L_UP;
	p->up_called = true;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->last_error[0] = p->logged[0] = '\0';
	peer_log(LOG_INFO, p, "connected (protocol version %u, peer %s, %s)", p->version,
		 m.role == MSG_ROLE_PRIMARY ? "primary" : "secondary", msg_disk_name(m.disk));
	p->ops->up(p->arg, &m);
}

static void on_refused(struct peer *p, const uint8_t *payload, uint32_t len)
{
	char reason[MSG_MAX_REASON + 1], why[ERR_MAX];

	(void)msg_reason_sanitize(payload, len, reason);
	snprintf(why, sizeof(why), "peer refused: %s", reason);
	note_error(p, LOG_ERR, why);
	link_drop(p, why);
}

/* --- input --- */

static void deliver(struct peer *p, const struct msg_hdr *h, const uint8_t *payload)
{
	char why[ERR_MAX];
	uint16_t want = 0;

	if (h->type == MSG_REFUSE)
		return on_refused(p, payload, h->length);
	switch (p->stage) {
	case L_UP:
		switch (h->type) {
		case MSG_PING:
			/* Best effort: if the queue is full, bytes are flowing. */
			(void)send_ctl(p, MSG_PONG, h->seq, NULL, 0);
			return;
		case MSG_PONG:
			return;
		case MSG_HELLO:
		case MSG_AUTH:
			snprintf(why, sizeof(why), "unexpected %s after the handshake",
				 msg_type_name(h->type));
			return link_drop(p, why);
		default:
			return p->ops->message(p->arg, h, payload);
		}
	case L_HELLO:
		if (h->type == MSG_HELLO)
			return on_hello(p, payload, h->length);
		want = MSG_HELLO;
		break;
	case L_AUTH:
		if (h->type == MSG_AUTH)
			return on_auth(p, payload);
		want = MSG_AUTH;
		break;
	case L_STATE:
		if (h->type == MSG_STATE)
			return on_state(p, payload, h->length);
		want = MSG_STATE;
		break;
	default:
		return;
	}
	snprintf(why, sizeof(why), "protocol error: %s from the peer while expecting %s",
		 msg_type_name(h->type), msg_type_name(want));
	refuse(p, why);
}

static bool input_stopped(const struct peer *p)
{
	return !link_alive(p) || p->stage == L_CLOSING ||
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
static void parse_input(struct peer *p)
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
		if (msg_hdr_decode(p->rbuf + p->rpos, &h, &bad) < 0 ||
		    (p->stage == L_UP &&
		     msg_hdr_check_bounds(&h, p->size_bytes, p->bitmap_bits, &bad) < 0)) {
			snprintf(why, sizeof(why), "bad message from the peer: %s", bad);
			return link_drop(p, why);
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

static void recv_arm(struct peer *p)
{
	struct io_uring_sqe *sqe;

	if (p->recv_busy || !link_alive(p) || p->stage < L_HELLO ||
	    ((p->paused || p->wait_room) && p->stage == L_UP))
		return;
	if (p->stage == L_CLOSING)
		p->rpos = p->rend = 0; /* discarding */
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

/* --- connecting and listening --- */

static void connect_start(struct peer *p)
{
	char why[ERR_MAX];
	struct io_uring_sqe *sqe;
	int one = 1;
	int fd = socket(p->peer_sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		note_error(p, LOG_ERR, why);
		p->next_connect_ms = clock_now_ms() + BACKOFF_MAX_MS;
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd = fd;
	p->stage = L_CONNECTING;
	p->started_ms = clock_now_ms();
	sqe = peer_sqe(p, &p->connect_op, &p->connect_busy);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&p->peer_sa, p->peer_sa_len);
}

static void listen_start(struct peer *p)
{
	char why[ERR_MAX];
	int one = 1;
	int fd = socket(p->my_sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&p->my_sa, p->my_sa_len) < 0 || listen(fd, 4) < 0) {
		snprintf(why, sizeof(why), "listen on %s: %s", p->my_addr, strerror(errno));
		note_error(p, LOG_ERR, why);
		if (fd >= 0)
			close(fd);
		p->listen_retry_ms = clock_now_ms() + LISTEN_RETRY_MS;
		return;
	}
	peer_log(LOG_INFO, p, "listening on %s", p->my_addr);
	p->listen_fd = fd;
}

static void accept_arm(struct peer *p)
{
	struct io_uring_sqe *sqe = peer_sqe(p, &p->accept_op, &p->accept_busy);

	p->acc_len = sizeof(p->acc_sa);
	io_uring_prep_accept(sqe, p->listen_fd, (struct sockaddr *)&p->acc_sa, &p->acc_len,
			     SOCK_CLOEXEC);
}

static void adopt(struct peer *p, int fd)
{
	p->fd = fd;
	p->dead = false;
	link_begin(p);
}

/* --- timers --- */

static void keepalive(struct peer *p, uint64_t now)
{
	bool rx_idle = !p->paused && now - p->last_rx_ms >= PING_IDLE_MS;
	bool tx_idle = !p->send_busy && now - p->last_tx_ms >= PING_IDLE_MS;

	if (!p->paused && now - p->last_rx_ms >= SILENT_MS)
		return link_drop(p, p->wait_room ? "peer read none of this node's answers for 5 s"
						 : "peer silent for 5 s");
	if ((rx_idle || tx_idle) && now - p->last_ping_ms >= PING_IDLE_MS) {
		p->last_ping_ms = now;
		(void)send_ctl(p, MSG_PING, ++p->ping_seq, NULL, 0);
	}
}

static void tick(struct peer *p)
{
	char why[ERR_MAX];
	uint64_t now = clock_now_ms();

	if (!link_alive(p))
		return;
	switch (p->stage) {
	case L_UP:
		return keepalive(p, now);
	case L_CLOSING:
		if (now - p->closing_ms >= LINGER_MS)
			link_drop(p, p->refusal);
		return;
	case L_CONNECTING:
		if (now - p->started_ms >= HANDSHAKE_MS) {
			snprintf(why, sizeof(why), "connect to %s timed out", p->peer_addr);
			link_drop(p, why);
		}
		return;
	default:
		if (now - p->started_ms >= HANDSHAKE_MS)
			link_drop(p, "handshake not finished within 5 s");
		return;
	}
}

/* --- the loop side --- */

static void peer_destroy(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->stash_fd >= 0)
		close(p->stash_fd);
	if (p->secret) {
		explicit_bzero(p->secret, p->secret_len);
		free(p->secret);
	}
	free(p->rbuf);
	free(p->dbuf);
	sendq_free(p->q);
	free(p);
}

/* Moves the peer on after any event: finishes a dropped connection, then
 * puts in flight whatever should be.  The last thing every handler does;
 * may free p. */
static void peer_after(struct peer *p)
{
	uint64_t now = clock_now_ms();

	if (p->freeing) {
		p->in_handler = false;
		if (p->pending == 0)
			peer_destroy(p);
		return;
	}
	link_finish(p);
	if (p->fd < 0 && p->stash_fd >= 0) {
		int fd = p->stash_fd;

		p->stash_fd = -1;
		if (p->enabled)
			adopt(p, fd);
		else
			close(fd);
	}
	if (p->enabled && p->connector && p->fd < 0 && now >= p->next_connect_ms)
		connect_start(p);
	if (p->enabled && !p->connector) {
		if (p->listen_fd < 0 && !p->accept_busy && now >= p->listen_retry_ms)
			listen_start(p);
		if (p->listen_fd >= 0 && !p->accept_busy && now >= p->accept_retry_ms)
			accept_arm(p);
	}
	if (link_alive(p)) {
		/* The REFUSE is out: FIN, then wait for the peer's EOF, so
		 * that our close does not reset the connection before the
		 * peer has read why. */
		if (p->stage == L_CLOSING && !p->shut_wr && !p->send_busy &&
		    !sendq_len(p->q)) {
			(void)shutdown(p->fd, SHUT_WR);
			p->shut_wr = true;
		}
		send_kick(p);
		recv_arm(p);
	}
	if ((p->enabled || p->fd >= 0) && !p->timer_busy) {
		p->tick.tv_sec = 0;
		p->tick.tv_nsec = TICK_MS * 1000000LL;
		p->timer_cancelled = false;
		io_uring_prep_timeout(peer_sqe(p, &p->timer_op, &p->timer_busy), &p->tick, 0, 0);
	} else if (!p->enabled && p->fd < 0 && p->timer_busy && !p->timer_cancelled) {
		p->timer_cancelled = true;
		peer_cancel(p, &p->timer_op);
	}
	p->in_handler = false;
}

static void handler_enter(struct peer *p, bool *busy)
{
	*busy = false;
	p->pending--;
	p->in_handler = true;
}

static void on_accept(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, accept_op);
	char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", why[ERR_MAX];

	handler_enter(p, &p->accept_busy);
	if (res >= 0 && !p->freeing && p->enabled) {
		(void)getnameinfo((struct sockaddr *)&p->acc_sa, p->acc_len, host, sizeof(host),
				  serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
		if (link_alive(p)) {
			peer_log(LOG_WARN, p,
				 "closing a second connection from %s:%s: one is already open",
				 host, serv);
			close(res);
		} else if (p->fd >= 0) {
			/* The old connection is still draining. */
			if (p->stash_fd >= 0)
				close(p->stash_fd);
			p->stash_fd = res;
		} else {
			peer_log(LOG_DEBUG, p, "connection from %s:%s", host, serv);
			adopt(p, res);
		}
	} else if (res >= 0) {
		close(res);
	} else if (res != -ECANCELED && res != -EINTR && p->enabled && !p->freeing) {
		snprintf(why, sizeof(why), "accept on %s: %s", p->my_addr, strerror(-res));
		note_error(p, LOG_WARN, why);
		p->accept_retry_ms = clock_now_ms() + ACCEPT_RETRY_MS;
	}
	peer_after(p);
}

static void on_connect(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, connect_op);
	char why[ERR_MAX];

	handler_enter(p, &p->connect_busy);
	if (link_alive(p)) {
		if (res < 0) {
			snprintf(why, sizeof(why), "connect to %s: %s", p->peer_addr,
				 strerror(-res));
			link_drop(p, why);
		} else {
			link_begin(p);
		}
	}
	peer_after(p);
}

static void on_recv(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, recv_op);
	char why[ERR_MAX];

	handler_enter(p, &p->recv_busy);
	if (!link_alive(p) || res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		/* dropped, or try again */
	} else if (res < 0) {
		snprintf(why, sizeof(why), "receive: %s", strerror(-res));
		link_drop(p, p->stage == L_CLOSING ? p->refusal : why);
	} else if (res == 0) {
		link_drop(p, p->stage == L_CLOSING ? p->refusal : "peer closed the connection");
	} else {
		p->last_rx_ms = clock_now_ms();
		if (p->stage == L_CLOSING)
			p->rpos = p->rend = 0;
		else if (p->recv_direct)
			p->dlen += (uint32_t)res;
		else
			p->rend += (uint32_t)res;
		parse_input(p);
	}
	peer_after(p);
}

static void on_send(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, send_op);
	size_t n = res > 0 ? (size_t)res : 0;
	char why[ERR_MAX];

	handler_enter(p, &p->send_busy);
	if (!link_alive(p))
		return peer_after(p); /* link_finish() releases the queue */
	if (res == -EAGAIN || res == -EINTR) {
		send_submit(p);
		return peer_after(p);
	}
	if (res < 0) {
		snprintf(why, sizeof(why), "send: %s", strerror(-res));
		link_drop(p, p->stage == L_CLOSING ? p->refusal : why);
		return peer_after(p);
	}
	p->last_tx_ms = clock_now_ms();
	if (!sendq_sent(p->q, n)) {
		send_submit(p); /* short send: the rest, before anything else */
		return peer_after(p);
	}
	while (sendq_in_batch(p->q))
		queue_pop(p, true);
	if (p->wait_room) { /* room for answers again, perhaps */
		p->wait_room = false;
		parse_input(p);
	}
	if (p->want_writable && peer_send_space(p) >= PEER_QUEUE / 4 &&
	    sendq_arena_room(p->q) >= ARENA_SIZE / 4) {
		p->want_writable = false;
		if (p->ops->writable)
			p->ops->writable(p->arg);
	}
	peer_after(p);
}

static void on_timer(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, timer_op);

	handler_enter(p, &p->timer_busy);
	if (res != -ECANCELED && !p->freeing)
		tick(p);
	peer_after(p);
}

static void on_kick(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, kick_op);

	(void)res;
	handler_enter(p, &p->kick_busy);
	if (!p->freeing)
		parse_input(p);
	peer_after(p);
}

/* --- public --- */

static int resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char host[ADDR_MAX];
	uint16_t port;
	int rc;

	if (config_address_split(addr, host, sizeof(host), &port) < 0) {
		log_err("peer link: %s: expected HOST:PORT or [IPV6]:PORT", addr);
		return -1;
	}
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc) {
		log_err("peer link: %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	return 0;
}

static int copy_name(char *dst, const char *src, const char *what)
{
	size_t n = src ? strlen(src) : 0;

	if (n == 0 || n >= MSG_NAME_SIZE) {
		log_err("peer link: %s name must be 1 to %d bytes", what, MSG_NAME_SIZE - 1);
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int peer_setup(struct peer *p, const struct peer_cfg *cfg)
{
	if (copy_name(p->resource, cfg->resource, "resource") < 0 ||
	    copy_name(p->my_node, cfg->my_node, "node") < 0 ||
	    copy_name(p->peer_node, cfg->peer_node, "peer node") < 0)
		return -1;
	if (strcmp(p->my_node, p->peer_node) == 0) {
		log_err("%s: peer link: both nodes are named %s", p->resource, p->my_node);
		return -1;
	}
	if (!cfg->my_addr || !cfg->peer_addr || strlen(cfg->my_addr) >= ADDR_MAX ||
	    strlen(cfg->peer_addr) >= ADDR_MAX) {
		log_err("%s: peer link: missing or overlong address", p->resource);
		return -1;
	}
	snprintf(p->my_addr, sizeof(p->my_addr), "%s", cfg->my_addr);
	snprintf(p->peer_addr, sizeof(p->peer_addr), "%s", cfg->peer_addr);
	if (!cfg->secret_len && !cfg->allow_unauthenticated) {
		log_err("%s: peer link: no shared secret and allow-unauthenticated is not set",
			p->resource);
		return -1;
	}
	p->version_min = cfg->version_min ? cfg->version_min : MSG_VERSION_MIN;
	p->version_max = cfg->version_max ? cfg->version_max : MSG_VERSION_MAX;
	if (p->version_min > p->version_max) {
		log_err("%s: peer link: bad version range %u..%u", p->resource, p->version_min,
			p->version_max);
		return -1;
	}
	p->connector = strcmp(p->my_node, p->peer_node) < 0;
	if (resolve(p->my_addr, &p->my_sa, &p->my_sa_len) < 0 ||
	    resolve(p->peer_addr, &p->peer_sa, &p->peer_sa_len) < 0)
		return -1;
	if (cfg->secret_len) {
		p->secret = malloc(cfg->secret_len);
		if (!p->secret)
			goto oom;
		memcpy(p->secret, cfg->secret, cfg->secret_len);
		p->secret_len = cfg->secret_len;
	}
	p->rbuf = malloc(RBUF_SIZE);
	p->dbuf = malloc(MSG_MAX_DATA);
	p->q = sendq_new(PEER_QUEUE, ARENA_SIZE);
	if (!p->rbuf || !p->dbuf || !p->q)
		goto oom;
	return 0;
oom:
	log_err("%s: peer link: out of memory", p->resource);
	return -1;
}

struct peer *peer_new(struct loop *loop, const struct peer_cfg *cfg, const struct peer_ops *ops,
		      void *arg)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p) {
		log_err("peer link: out of memory");
		return NULL;
	}
	p->fd = p->listen_fd = p->stash_fd = -1;
	if (peer_setup(p, cfg) < 0) {
		peer_destroy(p);
		return NULL;
	}
	p->loop = loop;
	p->ops = ops;
	p->arg = arg;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->accept_op.done = on_accept;
	p->connect_op.done = on_connect;
	p->recv_op.done = on_recv;
	p->send_op.done = on_send;
	p->timer_op.done = on_timer;
	p->kick_op.done = on_kick;
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	if (p->in_handler) {
		/* From a callback, which the header forbids: the loop is
		 * running, so let the handler's peer_after() free it once
		 * everything cancelled here has completed. */
		p->freeing = true;
		link_drop(p, "peer link freed");
		if (p->listen_fd >= 0) {
			close(p->listen_fd);
			p->listen_fd = -1;
		}
		if (p->accept_busy)
			peer_cancel(p, &p->accept_op);
		if (p->timer_busy)
			peer_cancel(p, &p->timer_op);
		return;
	}
	/* Not a word to the loop, which may be gone already.  Whatever is
	 * still in flight dies with the ring; until then the shut-down
	 * socket moves no more data. */
	if (p->fd >= 0)
		(void)shutdown(p->fd, SHUT_RDWR);
	peer_destroy(p);
}

bool peer_idle(const struct peer *p)
{
	return p->pending == 0;
}

void peer_enable(struct peer *p, bool on)
{
	if (p->freeing || on == p->enabled)
		return;
	p->enabled = on;
	if (on) {
		p->backoff_ms = BACKOFF_MIN_MS;
		p->next_connect_ms = p->listen_retry_ms = p->accept_retry_ms = 0;
		if (p->connector)
			peer_log(LOG_INFO, p, "connecting to %s", p->peer_addr);
	} else {
		peer_log(LOG_INFO, p, "disconnecting");
		link_drop(p, "disconnected by this node");
		if (p->listen_fd >= 0) {
			/* The in-flight ACCEPT keeps the socket until cancelled;
			 * a new listener waits for that (!accept_busy). */
			close(p->listen_fd);
			p->listen_fd = -1;
		}
		if (p->accept_busy)
			peer_cancel(p, &p->accept_op);
	}
	peer_kick(p);
}

void peer_drop(struct peer *p, const char *fmt, ...)
{
	char why[ERR_MAX];
	va_list ap;

	if (p->freeing || !peer_connected(p))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	link_drop(p, why);
	peer_kick(p);
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

static int peer_queue(struct peer *p, const struct msg_hdr *h, const void *payload, bool by_ref)
{
	int rc;

	if (p->freeing || !link_alive(p) || p->stage != L_UP)
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
		send_kick(p);
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

const char *peer_state(const struct peer *p)
{
	if (peer_connected(p))
		return "connected";
	return p->enabled ? "connecting" : "standalone";
}

bool peer_connected(const struct peer *p)
{
	return link_alive(p) && p->stage == L_UP;
}

int peer_send_state(struct peer *p)
{
	if (!peer_connected(p))
		return -ENOTCONN;
	if (send_hello(p, MSG_STATE) < 0)
		return -ENOBUFS;
	if (!p->in_handler)
		send_kick(p);
	return 0;
}

const char *peer_last_error(const struct peer *p)
{
	return p->last_error;
}

uint16_t peer_version(const struct peer *p)
{
	return peer_connected(p) ? p->version : 0;
}
