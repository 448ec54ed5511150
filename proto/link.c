/* The replication link's life (see peer.h for the protocol): resolving
 * the addresses, connecting with a backoff or listening and accepting,
 * the handshake (HELLO, AUTH, STATE, REFUSE), keepalive and the
 * handshake's timeouts, finishing a dropped connection, and the public
 * calls that start, stop and describe the link.  The established link's
 * data path is proto/peer.c, which this file calls by name and which
 * reaches back only through the struct peer_life registered here.
 *
 * One connection at a time, its state in struct peer (p->fd, p->stage).
 * Every io_uring operation has its own ioop and busy flag, and at most one
 * of each kind is in flight: an ACCEPT or CONNECT, a TIMEOUT ticking
 * every TICK_MS, besides peer.c's RECV, SENDMSG and NOP ("kick").
 *
 * A dropped connection is shut down, not closed: it is closed, its queue
 * released and ops->down called only once every operation on it has
 * completed, because the kernel may still be writing into rbuf or reading
 * a queued payload until then. */
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
#include "proto/sendq.h"
#include "proto/tls.h"
#include "proto/tlsrec.h"
#include "utils/clock.h"
#include "utils/extent.h"
#include "utils/secmem.h"

/* --- finishing a dropped connection --- */

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
	tls_free(p->tls);
	tlsrec_free(p->tx);
	tlsrec_free(p->rx);
	p->tls = NULL;
	p->tx = p->rx = NULL;
	p->ktls = p->sealed = false;
	p->cout_pos = p->cout_len = p->cin_pos = p->cin_len = 0;
	while (sendq_len(p->q))
		peer_queue_pop(p, !p->freeing);
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

/* Sends REFUSE and closes once it is out; the peer logs the reason, as
 * an error unless routine (then both log it as information). */
static void refuse_as(struct peer *p, const char *reason, bool routine)
{
	size_t len = strnlen(reason, MSG_MAX_REASON);

	peer_note_error(p, routine ? LOG_INFO : LOG_ERR, reason);
	snprintf(p->refusal, sizeof(p->refusal), "%s", reason);
	if (len == 0 || peer_send_ctl(p, MSG_REFUSE, routine ? MSG_REFUSE_ROUTINE : 0, reason,
				      (uint32_t)len) < 0) {
		peer_link_drop(p, reason);
		return;
	}
	p->stage = L_CLOSING;
	p->closing_ms = clock_now_ms();
	p->rpos = p->rend = 0; /* whatever else the peer said is moot */
	p->direct = false;
}

static void refuse(struct peer *p, const char *reason)
{
	refuse_as(p, reason, false);
}

/* Queues HELLO (with a fresh nonce) or STATE (nonce zero). */
static int link_send_hello(struct peer *p, uint16_t type)
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
			peer_link_drop(p, "cannot read random bytes for the handshake nonce");
			return -1;
		}
		memcpy(m.nonce, p->my_nonce, MSG_NONCE_SIZE);
	}
	p->my_size = m.size_bytes;
	p->my_extent = m.extent_bytes;
	msg_hello_encode(buf, &m);
	if (peer_send_ctl(p, type, 0, buf, MSG_HELLO_SIZE) < 0) {
		peer_link_drop(p, "send queue full during the handshake");
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
	(void)link_send_hello(p, MSG_HELLO);
}

static void accept_and_confirm(struct peer *p)
{
	char why[MSG_MAX_REASON + 1] = "";
	enum peer_verdict v = PEER_ACCEPT;

	if (p->ops->accept_peer)
		v = p->ops->accept_peer(p->arg, &p->theirs, why, sizeof(why));
	if (v != PEER_ACCEPT) {
		why[sizeof(why) - 1] = '\0';
		refuse_as(p, why[0] ? why : "refused by this node", v == PEER_REFUSE_ROUTINE);
		return;
	}
	if (!peer_link_alive(p)) /* the callback disabled us */
		return;
	if (link_send_hello(p, MSG_STATE) == 0)
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
	if (peer_send_ctl(p, MSG_AUTH, 0, mac, sizeof(mac)) < 0)
		return peer_link_drop(p, "send queue full during the handshake");
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
	p->bitmap_bits = p->my_extent ? extent_cover(p->size_bytes, p->my_extent) : 0;
	p->stage = L_UP;
	p->up_called = true;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->last_error[0] = p->logged[0] = '\0';
	peer_log(LOG_INFO, p, "connected (protocol version %u, peer %s, %s)", p->version,
		 m.role == MSG_ROLE_PRIMARY ? "primary" : "secondary", msg_disk_name(m.disk));
	p->ops->up(p->arg, &m);
}

static void on_refused(struct peer *p, const struct msg_hdr *h, const uint8_t *payload)
{
	char reason[MSG_MAX_REASON + 1], why[ERR_MAX];

	(void)msg_reason_sanitize(payload, h->length, reason);
	snprintf(why, sizeof(why), "peer refused: %s", reason);
	peer_note_error(p, h->seq == MSG_REFUSE_ROUTINE ? LOG_INFO : LOG_ERR, why);
	peer_link_drop(p, why);
}

/* A message before the link is up, or a REFUSE (from peer.c). */
static void link_message(struct peer *p, const struct msg_hdr *h, const uint8_t *payload)
{
	char why[ERR_MAX];
	uint16_t want;

	if (h->type == MSG_REFUSE)
		return on_refused(p, h, payload);
	switch (p->stage) {
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
	    bind(fd, (struct sockaddr *)&p->my_sa, p->my_sa_len) < 0 || listen(fd, 64) < 0) {
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

int peer_listen_now(struct peer *p)
{
	if (p->connector || !p->enabled || p->listen_fd >= 0)
		return 0;
	if (p->hub)
		return hub_listen_now(p->hub);
	listen_start(p);
	return p->listen_fd >= 0 ? 0 : -1;
}

static void accept_arm(struct peer *p)
{
	struct io_uring_sqe *sqe = peer_sqe(p, &p->accept_op, &p->accept_busy);

	p->acc_len = sizeof(p->acc_sa);
	io_uring_prep_accept(sqe, p->listen_fd, (struct sockaddr *)&p->acc_sa, &p->acc_len,
			     SOCK_CLOEXEC);
}

/* Userspace TLS: the records are proto/tlsrec's from here on. */
static int user_records(struct peer *p, const struct tls *t)
{
	uint8_t tx[32], rx[32];
	int rc = -1;

	if (tls_drained(t) && tls_traffic_secret(t, true, tx) == 0 &&
	    tls_traffic_secret(t, false, rx) == 0) {
		p->tx = tlsrec_new(tx, sizeof(tx), true);
		p->rx = tlsrec_new(rx, sizeof(rx), false);
		rc = p->tx && p->rx ? 0 : -1;
	}
	explicit_bzero(tx, sizeof(tx));
	explicit_bzero(rx, sizeof(rx));
	return rc;
}

/* A connection, past its TLS handshake if any: the kernel takes the
 * records over where it can. */
void link_adopt(struct peer *p, int fd, struct tls *t, const uint8_t *pre, uint32_t n)
{
	int k = t && !p->no_ktls && !getenv("BLKREP_NO_KTLS") ? tls_ktls(t, fd) : 0;

	p->fd = fd;
	p->tls = t;
	p->ktls = k == 1;
	p->dead = false;
	if (t && !p->ktls_said) {
		p->ktls_said = true;
		if (k == 1)
			peer_log(LOG_INFO, p, "TLS records in the kernel (kTLS)");
		else if (k == 0)
			peer_log(LOG_INFO, p, "TLS in userspace: %s",
				 getenv("BLKREP_NO_KTLS") ? "BLKREP_NO_KTLS is set"
				 : p->no_ktls		  ? "kernel TLS failed before"
							  : tls_error(t));
	}
	if (k < 0 || (t && k == 0 && user_records(p, t) < 0)) {
		/* kTLS half set up (the next connection stays in userspace),
		 * or no keys: this connection is lost. */
		p->no_ktls = p->no_ktls || k < 0;
		p->stage = L_HELLO;
		return peer_link_drop(p, k < 0 ? tls_error(t) : "TLS: no record keys after the handshake");
	}
	link_begin(p);
	if (n && peer_link_alive(p)) { /* as if received: the peer's HELLO */
		memcpy(p->rbuf, pre, n);
		p->rpos = 0;
		p->rend = n;
		peer_input(p);
	}
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

	gate_tick(p, now);
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
	gate_destroy(p);
	tls_free(p->tls);
	tls_free(p->stash_tls);
	tls_ctx_free(p->tls_ctx);
	tlsrec_free(p->tx);
	tlsrec_free(p->rx);
	free(p->cin);
	free(p->cout);
	free(p->spill);
	if (p->fd >= 0)
		close(p->fd);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->stash_fd >= 0)
		close(p->stash_fd);
	secmem_free(p->secret, p->secret_len);
	free(p->rbuf);
	free(p->dbuf);
	sendq_free(p->q);
	free(p);
}

/* Everything peer_after() leaves to the connection's life: finishes a
 * dropped connection, then puts in flight whatever should be.  May free
 * p. */
static void link_after(struct peer *p)
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
		struct tls *t = p->stash_tls;

		p->stash_fd = -1;
		p->stash_tls = NULL;
		if (p->enabled) {
			link_adopt(p, fd, t, p->stash_pre, p->stash_pre_len);
			p->stash_pre_len = 0;
		} else {
			close(fd);
			tls_free(t);
		}
	}
	if (p->enabled && p->connector && p->fd < 0 && !p->hs && now >= p->next_connect_ms)
		connect_start(p);
	if (p->enabled && !p->connector && !p->hub) {
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
		peer_send_kick(p);
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

static void on_accept(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, accept_op);
	char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", why[ERR_MAX];

	peer_handler_enter(p, &p->accept_busy);
	if (res >= 0 && !p->freeing && p->enabled) {
		(void)getnameinfo((struct sockaddr *)&p->acc_sa, p->acc_len, host, sizeof(host),
				  serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
		if (p->peer_address_only && !gate_from_peer_host(p)) {
			gate_refused(p, host, "not the peer's address (peer-address-only)");
			close(res);
		} else if (p->tls_ctx) {
			gate_start(p, res, false, host);
		} else if (peer_link_alive(p)) {
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
			link_adopt(p, res, NULL, NULL, 0);
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

	peer_handler_enter(p, &p->connect_busy);
	if (peer_link_alive(p)) {
		if (res < 0) {
			snprintf(why, sizeof(why), "connect to %s: %s", p->peer_addr,
				 strerror(-res));
			peer_link_drop(p, why);
		} else if (p->tls_ctx) {
			/* The handshake owns the socket until it succeeds. */
			int fd = p->fd;

			p->fd = -1;
			p->stage = L_NONE;
			gate_start(p, fd, true, p->peer_addr);
		} else {
			link_begin(p);
		}
	}
	peer_after(p);
}

static void on_timer(struct ioop *op, int res)
{
	struct peer *p = container_of(op, struct peer, timer_op);

	peer_handler_enter(p, &p->timer_busy);
	if (res != -ECANCELED && !p->freeing)
		tick(p);
	peer_after(p);
}

static const struct peer_life link_life = {
	.after = link_after,
	.handshake = link_message,
	.won = gate_won,
};

/* --- public --- */

static int resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char err[256];

	if (config_address_resolve(addr, ss, len, err, sizeof(err)) == 0)
		return 0;
	log_err("peer link: %s: %s", addr, err);
	return -1;
}

int peer_set_address(struct peer *p, const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t len;

	if (strlen(addr) >= sizeof(p->peer_addr) || resolve(addr, &sa, &len) < 0)
		return -1;
	snprintf(p->peer_addr, sizeof(p->peer_addr), "%s", addr);
	p->peer_sa = sa;
	p->peer_sa_len = len;
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
	if (!cfg->secret_len && !cfg->allow_unauthenticated && !cfg->tls) {
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
		p->secret = secmem_alloc(cfg->secret_len);
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
	p->peer_address_only = cfg->peer_address_only;
	p->tls_ctx = cfg->tls;
	/* A mesh's links (given a hub, listening or not) key each pair apart. */
	if (p->tls_ctx && cfg->hub && tls_ctx_pair(p->tls_ctx, p->my_node, p->peer_node) < 0)
		goto oom;
	p->rekey_blocks = getenv("BLKREP_TEST_REKEY_BLOCKS")
				  ? strtoull(getenv("BLKREP_TEST_REKEY_BLOCKS"), NULL, 0)
				  : TLS_REKEY_BLOCKS;
	if (p->tls_ctx) {
		p->cin = malloc(CIN_SIZE);
		p->cout = malloc(COUT_SIZE);
		p->spill = malloc(TLS_RECORD_MAX);
		if (!p->cin || !p->cout || !p->spill)
			goto oom;
	}
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
		p->tls_ctx = cfg->tls; /* taken, even on failure */
		peer_destroy(p);
		return NULL;
	}
	p->loop = loop;
	p->ops = ops;
	p->arg = arg;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->accept_op.done = on_accept;
	p->connect_op.done = on_connect;
	p->timer_op.done = on_timer;
	p->life = &link_life;
	peer_io_setup(p);
	if (cfg->hub && !p->connector && hub_add(cfg->hub, p) < 0) {
		peer_destroy(p);
		return NULL;
	}
	p->hub = p->connector ? NULL : cfg->hub;
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	if (p->hub)
		hub_remove(p->hub, p);
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
		gate_abort(p);
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
		gate_abort(p);
	}
	if (p->hub)
		hub_kick(p->hub);
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
	if (link_send_hello(p, MSG_STATE) < 0)
		return -ENOBUFS;
	if (!p->in_handler)
		peer_send_kick(p);
	return 0;
}

const char *peer_encryption(const struct peer *p)
{
	if (!p->tls_ctx)
		return "none";
	return strcmp(tls_ctx_auth(p->tls_ctx), "psk") == 0 ? "tls-psk" : "tls-certificate";
}

const char *peer_tls_offload(const struct peer *p)
{
	if (!peer_connected(p) || !p->tls)
		return NULL;
	return p->ktls ? "kernel" : "userspace";
}

const char *peer_last_error(const struct peer *p)
{
	return p->last_error;
}

uint16_t peer_version(const struct peer *p)
{
	return peer_connected(p) ? p->version : 0;
}
