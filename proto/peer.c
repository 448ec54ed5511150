/* The replication link on the event loop.  See peer.h for the protocol
 * (who connects, the handshake, keepalive); this file is its I/O and the
 * connection's life, peer_input.c what is received, daemon/sendq what
 * waits to be sent.
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
#include "proto/peer_int.h"

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
#include "utils/ioop.h"
#include "utils/loop.h"
#include "proto/sendq.h"
#include "utils/bufio.h"
#include "utils/clock.h"
#include "utils/log.h"


static struct io_uring_sqe *peer_sqe(struct peer *p, struct ioop *op, bool *busy)
{
	*busy = true;
	p->pending++;
	return loop_sqe(p->loop, op);
}

static void peer_kick(struct peer *p)
{
	if (p->kick_busy || p->in_handler)
		return;
	io_uring_prep_nop(peer_sqe(p, &p->kick_op, &p->kick_busy));
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
	if (p->send_busy || !peer_link_alive(p) || p->stage < L_HELLO || p->shut_wr ||
	    !sendq_len(p->q))
		return;
	(void)sendq_batch(p->q);
	send_submit(p);
}

/* --- dropping a connection --- */

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

static void peer_recv_arm(struct peer *p)
{
	struct io_uring_sqe *sqe;

	if (p->recv_busy || !peer_link_alive(p) || p->stage < L_HELLO ||
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
		peer_note_error(p, LOG_ERR, why);
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
		peer_note_error(p, LOG_ERR, why);
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
	peer_link_begin(p);
}

/* --- timers --- */

static void keepalive(struct peer *p, uint64_t now)
{
	bool rx_idle = !p->paused && now - p->last_rx_ms >= PING_IDLE_MS;
	bool tx_idle = !p->send_busy && now - p->last_tx_ms >= PING_IDLE_MS;

	if (!p->paused && now - p->last_rx_ms >= SILENT_MS)
		return peer_link_drop(p, p->wait_room ? "peer read none of this node's answers for 5 s"
						 : "peer silent for 5 s");
	if ((rx_idle || tx_idle) && now - p->last_ping_ms >= PING_IDLE_MS) {
		p->last_ping_ms = now;
		(void)peer_send_ctl(p, MSG_PING, ++p->ping_seq, NULL, 0);
	}
}

static void tick(struct peer *p)
{
	char why[ERR_MAX];
	uint64_t now = clock_now_ms();

	if (!peer_link_alive(p))
		return;
	switch (p->stage) {
	case L_UP:
		return keepalive(p, now);
	case L_CLOSING:
		if (now - p->closing_ms >= LINGER_MS)
			peer_link_drop(p, p->refusal);
		return;
	case L_CONNECTING:
		if (now - p->started_ms >= HANDSHAKE_MS) {
			snprintf(why, sizeof(why), "connect to %s timed out", p->peer_addr);
			peer_link_drop(p, why);
		}
		return;
	default:
		if (now - p->started_ms >= HANDSHAKE_MS)
			peer_link_drop(p, "handshake not finished within 5 s");
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
	if (peer_link_alive(p)) {
		/* The REFUSE is out: FIN, then wait for the peer's EOF, so
		 * that our close does not reset the connection before the
		 * peer has read why. */
		if (p->stage == L_CLOSING && !p->shut_wr && !p->send_busy &&
		    !sendq_len(p->q)) {
			(void)shutdown(p->fd, SHUT_WR);
			p->shut_wr = true;
		}
		send_kick(p);
		peer_recv_arm(p);
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
		if (peer_link_alive(p)) {
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
		peer_note_error(p, LOG_WARN, why);
		p->accept_retry_ms = clock_now_ms() + ACCEPT_RETRY_MS;
	}
	peer_after(p);
}

static void on_connect(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, connect_op);
	char why[ERR_MAX];

	handler_enter(p, &p->connect_busy);
	if (peer_link_alive(p)) {
		if (res < 0) {
			snprintf(why, sizeof(why), "connect to %s: %s", p->peer_addr,
				 strerror(-res));
			peer_link_drop(p, why);
		} else {
			peer_link_begin(p);
		}
	}
	peer_after(p);
}

static void on_recv(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, recv_op);
	char why[ERR_MAX];

	handler_enter(p, &p->recv_busy);
	if (!peer_link_alive(p) || res == -EAGAIN || res == -EINTR || res == -ENOBUFS) {
		/* dropped, or try again */
	} else if (res < 0) {
		snprintf(why, sizeof(why), "receive: %s", strerror(-res));
		peer_link_drop(p, p->stage == L_CLOSING ? p->refusal : why);
	} else if (res == 0) {
		peer_link_drop(p, p->stage == L_CLOSING ? p->refusal : "peer closed the connection");
	} else {
		p->last_rx_ms = clock_now_ms();
		if (p->stage == L_CLOSING)
			p->rpos = p->rend = 0;
		else if (p->recv_direct)
			p->dlen += (uint32_t)res;
		else
			p->rend += (uint32_t)res;
		peer_parse_input(p);
	}
	peer_after(p);
}

static void on_send(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, send_op);
	size_t n = res > 0 ? (size_t)res : 0;
	char why[ERR_MAX];

	handler_enter(p, &p->send_busy);
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
	if (!sendq_sent(p->q, n)) {
		send_submit(p); /* short send: the rest, before anything else */
		return peer_after(p);
	}
	while (sendq_in_batch(p->q))
		queue_pop(p, true);
	if (p->wait_room) { /* room for answers again, perhaps */
		p->wait_room = false;
		peer_parse_input(p);
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
		peer_parse_input(p);
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
		peer_link_drop(p, "peer link freed");
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
		peer_link_drop(p, "disconnected by this node");
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
	peer_link_drop(p, why);
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

const char *peer_state(const struct peer *p)
{
	if (peer_connected(p))
		return "connected";
	return p->enabled ? "connecting" : "standalone";
}

bool peer_connected(const struct peer *p)
{
	return peer_link_alive(p) && p->stage == L_UP;
}

int peer_send_state(struct peer *p)
{
	if (!peer_connected(p))
		return -ENOTCONN;
	if (peer_send_hello(p, MSG_STATE) < 0)
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
