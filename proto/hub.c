/* A node's shared listener for its replication links.  See hub.h.
 *
 * One ACCEPT, one TIMEOUT ticking every TICK_MS and one NOP ("kick") at
 * most in flight, and a RECV per plain-TCP connection reading its HELLO;
 * TLS handshakes run in proto/tlshs, which owns their operations.  The
 * registered links are read through proto/peer_int.h, and a connection
 * goes to its link through the peer_life's won(): this file calls link.c
 * by no name. */
#include "proto/hub.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "proto/peer_int.h"
#include "proto/tls.h"
#include "proto/tlshs.h"
#include "utils/clock.h"

#define HUB_MEMBERS 7 /* up to 8 nodes: at most 7 peers */

/* A connection accepted, not yet handed over. */
struct hub_pend {
	struct peer_hub *hub;
	struct tlshs *hs; /* TLS: its handshake */
	int fd;		  /* plain TCP: reading the HELLO */
	struct ioop recv_op;
	bool recv_busy, aborted;
	int who; /* the member it identified itself as, or -1 */
	uint64_t started_ms;
	struct sockaddr_storage sa;
	char host[64];
	uint32_t have, need;
	uint8_t buf[MSG_HDR_SIZE + MSG_MAX_HELLO];
};

struct peer_hub {
	struct loop *loop;
	struct tls_ctx *tls;
	char resource[MSG_NAME_SIZE], addr[ADDR_MAX];
	struct sockaddr_storage sa, acc_sa;
	socklen_t sa_len, acc_len;
	struct peer *members[HUB_MEMBERS];
	struct hub_pend pend[PEND_MAX];
	int listen_fd;
	struct ioop accept_op, timer_op, kick_op;
	bool accept_busy, timer_busy, timer_cancelled, kick_busy;
	unsigned pending; /* operations in flight */
	uint64_t listen_retry_ms, accept_retry_ms, refused_log_ms;
	unsigned refused_quiet;
	struct __kernel_timespec tick;
	char logged[ERR_MAX]; /* the last trouble logged, to log each once */
};

static void hub_after(struct peer_hub *h);

/* Trouble with the socket, logged once until it changes or clears. */
static void hub_trouble(struct peer_hub *h, enum log_level lvl, const char *what, int err)
{
	char why[ERR_MAX];

	snprintf(why, sizeof(why), "%s on %s: %s", what, h->addr, strerror(err));
	if (strcmp(why, h->logged) == 0)
		return;
	snprintf(h->logged, sizeof(h->logged), "%s", why);
	log_msg(lvl, "%s: %s", h->resource, why);
}

static struct io_uring_sqe *hub_sqe(struct peer_hub *h, struct ioop *op, bool *busy)
{
	*busy = true;
	h->pending++;
	return loop_sqe(h->loop, op);
}

static void hub_enter(struct peer_hub *h, bool *busy)
{
	*busy = false;
	h->pending--;
}

static bool member_on(const struct peer *p)
{
	return p && p->enabled && !p->freeing;
}

/* The hub listens while a member is enabled. */
static bool wanted(const struct peer_hub *h)
{
	for (unsigned i = 0; i < HUB_MEMBERS; i++)
		if (member_on(h->members[i]))
			return true;
	return false;
}

/* One line a second about refused connections (hub.h); while a link is
 * not up it also keeps why for its peer_last_error(): the one the
 * connection identified itself as, or, when it did not, every one. */
static void refused(struct peer_hub *h, const struct hub_pend *c, const char *why)
{
	uint64_t now = clock_now_ms();

	for (unsigned i = 0; i < HUB_MEMBERS; i++) {
		struct peer *p = h->members[i];

		if (p && !(peer_link_alive(p) && p->stage == L_UP) &&
		    (c->who < 0 || c->who == (int)i))
			snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	}
	if (now - h->refused_log_ms < REFUSED_LOG_MS) {
		h->refused_quiet++;
		return;
	}
	if (h->refused_quiet)
		log_warn("%s: peer port %s: refused a connection from %s: %s (and %u more since)",
			 h->resource, h->addr, c->host, why, h->refused_quiet);
	else
		log_warn("%s: peer port %s: refused a connection from %s: %s", h->resource, h->addr,
			 c->host, why);
	h->refused_log_ms = now;
	h->refused_quiet = 0;
}

/* --- handing a connection over --- */

/* The connection identified itself as member c->who (and, with TLS,
 * authenticated): its link takes it, unless it may not. */
static void hand_over(struct peer_hub *h, struct hub_pend *c, int fd, struct tls *t,
		      const uint8_t *pre, uint32_t n)
{
	struct peer *p = c->who >= 0 ? h->members[c->who] : NULL;
	char why[ERR_MAX];

	if (!p)
		snprintf(why, sizeof(why), "%s", "not one of this node's peers");
	else if (!member_on(p))
		snprintf(why, sizeof(why), "the link to %s is disabled", p->peer_node);
	else if (p->peer_address_only && !peer_same_host(&c->sa, &p->peer_sa))
		snprintf(why, sizeof(why), "not %s's address (peer-address-only)", p->peer_node);
	else
		why[0] = '\0';
	if (why[0]) {
		refused(h, c, why);
		tls_free(t);
		close(fd);
		return;
	}
	peer_log(LOG_DEBUG, p, "%s a connection from %s", t ? "authenticated" : "identified",
		 c->host);
	p->in_handler = true;
	p->life->won(p, fd, t, pre, n);
	peer_after(p);
}

/* --- TLS: who it is comes out of the handshake --- */

static const struct tls_ctx *choose_psk(void *arg, const uint8_t *id, size_t len)
{
	struct hub_pend *c = arg;
	struct peer *const *m = c->hub->members;
	int who = -1;

	/* Every member compared, in constant time each. */
	for (int i = 0; i < HUB_MEMBERS; i++)
		if (m[i] && tls_psk_identity_ok(m[i]->tls_ctx, id, len))
			who = i;
	c->who = who;
	return who >= 0 ? m[who]->tls_ctx : NULL;
}

/* Exactly one member's node: a certificate naming two is no one's. */
static bool choose_cert(void *arg, const struct x509_st *cert)
{
	struct hub_pend *c = arg;
	struct peer *const *m = c->hub->members;
	int who = -1, found = 0;

	for (int i = 0; i < HUB_MEMBERS; i++) {
		if (m[i] && tls_cert_names(cert, m[i]->peer_node)) {
			who = i;
			found++;
		}
	}
	c->who = found == 1 ? who : -1;
	return found == 1;
}

static const struct tls_chooser chooser = { .psk = choose_psk, .cert = choose_cert };

static void hs_done(void *arg, struct tlshs *hs)
{
	struct hub_pend *c = arg;
	struct peer_hub *h = c->hub;
	struct tls *t;
	int fd;

	c->hs = NULL;
	if (!tlshs_ok(hs)) {
		refused(h, c, tlshs_error(hs));
		tlshs_free(hs);
	} else {
		tlshs_take(hs, &fd, &t);
		hand_over(h, c, fd, t, NULL, 0);
	}
	hub_after(h);
}

/* --- plain TCP: who it is says its HELLO --- */

static void plain_arm(struct peer_hub *h, struct hub_pend *c)
{
	struct io_uring_sqe *sqe = hub_sqe(h, &c->recv_op, &c->recv_busy);

	io_uring_prep_recv(sqe, c->fd, c->buf + c->have, c->need - c->have, 0);
}

/* The bytes read so far: NULL while more are needed (and armed), "" when
 * the HELLO is complete and names a member (c->who), else why not. */
static const char *plain_judge(struct peer_hub *h, struct hub_pend *c)
{
	struct msg_hdr hdr;
	struct msg_hello m;
	const char *bad;

	if (c->have < c->need) {
		plain_arm(h, c);
		return NULL;
	}
	if (c->need == MSG_HDR_SIZE) {
		if (c->buf[0] == 22 && c->buf[1] == 3) /* a TLS handshake record */
			return "the peer speaks TLS: set allow-unencrypted on both nodes or on "
			       "neither";
		if (msg_hdr_decode(c->buf, &hdr, &bad) < 0)
			return bad;
		if (hdr.type != MSG_HELLO || hdr.length > MSG_MAX_HELLO || !hdr.length)
			return "the connection did not begin with a HELLO";
		c->need += hdr.length;
		plain_arm(h, c);
		return NULL;
	}
	if (msg_hello_decode(c->buf + MSG_HDR_SIZE, c->have - MSG_HDR_SIZE, &m, &bad) < 0)
		return bad;
	for (int i = 0; i < HUB_MEMBERS; i++)
		if (h->members[i] && strcmp(h->members[i]->peer_node, m.node) == 0)
			c->who = i;
	return c->who >= 0 ? "" : "its HELLO names none of this node's peers";
}

static void on_plain(struct ioop *op, int res)
{
	struct hub_pend *c = container_of(op, struct hub_pend, recv_op);
	struct peer_hub *h = c->hub;
	const char *why;
	int fd = c->fd;

	hub_enter(h, &c->recv_busy);
	if (c->aborted) {
		why = "dropped";
	} else if (res == -EINTR || res == -EAGAIN) {
		plain_arm(h, c);
		why = NULL;
	} else if (res <= 0) {
		why = res == 0 ? "closed before its HELLO" : "receive failed before its HELLO";
	} else {
		c->have += (uint32_t)res;
		why = plain_judge(h, c);
	}
	if (why) {
		c->fd = -1;
		if (why[0] == '\0') {
			hand_over(h, c, fd, NULL, c->buf, c->have);
		} else {
			if (!c->aborted)
				refused(h, c, why);
			close(fd);
		}
		c->aborted = false;
	}
	hub_after(h);
}

/* --- the handshakes in progress --- */

static bool pend_used(const struct hub_pend *c)
{
	return c->hs || c->fd >= 0;
}

/* Gives up on a connection: a TLS slot is free at once, a plain one when
 * its RECV completes. */
static void pend_abort(struct hub_pend *c)
{
	if (c->hs) {
		tlshs_abort(c->hs);
		c->hs = NULL;
	} else if (c->fd >= 0 && !c->aborted) {
		c->aborted = true;
		(void)shutdown(c->fd, SHUT_RDWR);
	}
}

/* A free slot, else the oldest connection not identified yet (else the
 * oldest) gives way: a flood without the key cannot push a peer that
 * identified itself out before the ones that did not.  NULL when the
 * slot that gave way is still busy (plain TCP). */
static struct hub_pend *pend_slot(struct peer_hub *h)
{
	struct hub_pend *old = NULL;

	for (unsigned i = 0; i < PEND_MAX; i++) {
		struct hub_pend *c = &h->pend[i];

		if (!pend_used(c))
			return c;
		if (c->aborted)
			continue;
		if (!old || (c->who < 0 && old->who >= 0) ||
		    ((c->who < 0) == (old->who < 0) && c->started_ms < old->started_ms))
			old = c;
	}
	if (old) {
		refused(h, old, "too many connections authenticating at once");
		pend_abort(old);
		if (!pend_used(old))
			return old;
	}
	return NULL;
}

static void pend_start(struct peer_hub *h, int fd, const char *host)
{
	struct hub_pend *c = pend_slot(h);
	struct tls *t;

	if (!c) { /* every slot is a plain connection being dropped */
		close(fd);
		return;
	}
	c->who = -1;
	c->aborted = false;
	c->sa = h->acc_sa;
	c->started_ms = clock_now_ms();
	snprintf(c->host, sizeof(c->host), "%s", host);
	if (!h->tls) {
		c->fd = fd;
		c->have = 0;
		c->need = MSG_HDR_SIZE;
		plain_arm(h, c);
		return;
	}
	t = tls_new(h->tls, false, "");
	if (t)
		tls_set_chooser(t, &chooser, c);
	c->hs = t ? tlshs_start(h->loop, fd, t, hs_done, c) : NULL;
	if (!c->hs) {
		tls_free(t);
		close(fd);
		log_err("%s: peer port %s: TLS: out of memory", h->resource, h->addr);
	}
}

/* With peer-address-only on every member, from one of their hosts. */
static bool address_ok(const struct peer_hub *h)
{
	for (unsigned i = 0; i < HUB_MEMBERS; i++) {
		const struct peer *p = h->members[i];

		if (p && (!p->peer_address_only || peer_same_host(&h->acc_sa, &p->peer_sa)))
			return true;
	}
	return false;
}

/* --- the loop side --- */

static int hub_listen(struct peer_hub *h)
{
	int one = 1;
	int fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&h->sa, h->sa_len) < 0 || listen(fd, 64) < 0) {
		hub_trouble(h, LOG_ERR, "listen", errno);
		if (fd >= 0)
			close(fd);
		h->listen_retry_ms = clock_now_ms() + LISTEN_RETRY_MS;
		return -1;
	}
	log_info("%s: listening on %s for the peers that connect to this node", h->resource,
		 h->addr);
	h->listen_fd = fd;
	h->logged[0] = '\0';
	return 0;
}

int hub_listen_now(struct peer_hub *h)
{
	return h->listen_fd >= 0 ? 0 : hub_listen(h);
}

static void on_accept(struct ioop *op, int res)
{
	struct peer_hub *h = container_of(op, struct peer_hub, accept_op);
	struct hub_pend probe = { .who = -1 };

	hub_enter(h, &h->accept_busy);
	if (res >= 0 && wanted(h)) {
		(void)getnameinfo((struct sockaddr *)&h->acc_sa, h->acc_len, probe.host,
				  sizeof(probe.host), NULL, 0, NI_NUMERICHOST);
		if (address_ok(h)) {
			pend_start(h, res, probe.host);
		} else {
			refused(h, &probe, "not a peer's address (peer-address-only)");
			close(res);
		}
	} else if (res >= 0) {
		close(res);
	} else if (res != -ECANCELED && res != -EINTR && wanted(h)) {
		hub_trouble(h, LOG_WARN, "accept", -res);
		h->accept_retry_ms = clock_now_ms() + ACCEPT_RETRY_MS;
	}
	hub_after(h);
}

static void on_timer(struct ioop *op, int res)
{
	struct peer_hub *h = container_of(op, struct peer_hub, timer_op);
	uint64_t now = clock_now_ms();

	hub_enter(h, &h->timer_busy);
	for (unsigned i = 0; res != -ECANCELED && i < PEND_MAX; i++) {
		struct hub_pend *c = &h->pend[i];

		if (pend_used(c) && !c->aborted && now - c->started_ms >= TLS_HS_MS) {
			refused(h, c, "not authenticated within 1 s");
			pend_abort(c);
		}
	}
	hub_after(h);
}

static void on_kick(struct ioop *op, int res)
{
	struct peer_hub *h = container_of(op, struct peer_hub, kick_op);

	(void)res;
	hub_enter(h, &h->kick_busy);
	hub_after(h);
}

static bool any_pend(const struct peer_hub *h)
{
	for (unsigned i = 0; i < PEND_MAX; i++)
		if (pend_used(&h->pend[i]))
			return true;
	return false;
}

/* Stops listening: no member is enabled. */
static void hub_stop(struct peer_hub *h)
{
	if (h->listen_fd >= 0) {
		/* The ACCEPT in flight keeps the socket until cancelled. */
		close(h->listen_fd);
		h->listen_fd = -1;
	}
	if (h->accept_busy)
		io_uring_prep_cancel(loop_sqe(h->loop, NULL), &h->accept_op, 0);
	for (unsigned i = 0; i < PEND_MAX; i++)
		pend_abort(&h->pend[i]);
}

/* The last step of every handler: puts in flight what should be. */
static void hub_after(struct peer_hub *h)
{
	uint64_t now = clock_now_ms();
	bool on = wanted(h);

	if (!on) {
		hub_stop(h);
	} else {
		if (h->listen_fd < 0 && !h->accept_busy && now >= h->listen_retry_ms)
			(void)hub_listen(h);
		if (h->listen_fd >= 0 && !h->accept_busy && now >= h->accept_retry_ms) {
			h->acc_len = sizeof(h->acc_sa);
			io_uring_prep_accept(hub_sqe(h, &h->accept_op, &h->accept_busy),
					     h->listen_fd, (struct sockaddr *)&h->acc_sa,
					     &h->acc_len, SOCK_CLOEXEC);
		}
	}
	if ((on || any_pend(h)) && !h->timer_busy) {
		h->tick.tv_sec = 0;
		h->tick.tv_nsec = TICK_MS * 1000000LL;
		h->timer_cancelled = false;
		io_uring_prep_timeout(hub_sqe(h, &h->timer_op, &h->timer_busy), &h->tick, 0, 0);
	} else if (!on && !any_pend(h) && h->timer_busy && !h->timer_cancelled) {
		h->timer_cancelled = true;
		io_uring_prep_cancel(loop_sqe(h->loop, NULL), &h->timer_op, 0);
	}
}

void hub_kick(struct peer_hub *h)
{
	if (!h->kick_busy)
		io_uring_prep_nop(hub_sqe(h, &h->kick_op, &h->kick_busy));
}

/* --- members --- */

int hub_add(struct peer_hub *h, struct peer *p)
{
	unsigned i, free_slot = HUB_MEMBERS;

	if (!h->tls != !p->tls_ctx ||
	    (h->tls && strcmp(tls_ctx_auth(h->tls), tls_ctx_auth(p->tls_ctx)) != 0)) {
		peer_log(LOG_ERR, p, "the listener on %s uses %s, this link %s", h->addr,
			 h->tls ? tls_ctx_auth(h->tls) : "no TLS",
			 p->tls_ctx ? tls_ctx_auth(p->tls_ctx) : "no TLS");
		return -1;
	}
	for (i = 0; i < HUB_MEMBERS; i++) {
		if (h->members[i] && strcmp(h->members[i]->peer_node, p->peer_node) == 0) {
			peer_log(LOG_ERR, p, "the listener on %s has a link to it already",
				 h->addr);
			return -1;
		}
		if (!h->members[i] && free_slot == HUB_MEMBERS)
			free_slot = i;
	}
	if (free_slot == HUB_MEMBERS) {
		peer_log(LOG_ERR, p, "the listener on %s serves %d peers already", h->addr,
			 HUB_MEMBERS);
		return -1;
	}
	h->members[free_slot] = p;
	return 0;
}

void hub_remove(struct peer_hub *h, struct peer *p)
{
	for (int i = 0; i < HUB_MEMBERS; i++) {
		if (h->members[i] != p)
			continue;
		h->members[i] = NULL;
		for (unsigned k = 0; k < PEND_MAX; k++)
			if (h->pend[k].who == i)
				h->pend[k].who = -1;
	}
}

/* --- public --- */

struct peer_hub *peer_hub_new(struct loop *loop, const char *resource, const char *addr,
			      struct tls_ctx *tls)
{
	struct peer_hub *h = calloc(1, sizeof(*h));
	char err[256];

	if (!h) {
		log_err("%s: peer port: out of memory", resource);
		tls_ctx_free(tls);
		return NULL;
	}
	h->loop = loop;
	h->tls = tls;
	h->listen_fd = -1;
	snprintf(h->resource, sizeof(h->resource), "%s", resource);
	snprintf(h->addr, sizeof(h->addr), "%s", addr);
	if (strlen(addr) >= sizeof(h->addr) ||
	    config_address_resolve(addr, &h->sa, &h->sa_len, err, sizeof(err)) < 0) {
		log_err("%s: peer port %s: %s", resource, addr,
			strlen(addr) >= sizeof(h->addr) ? "too long" : err);
		peer_hub_free(h);
		return NULL;
	}
	for (unsigned i = 0; i < PEND_MAX; i++) {
		h->pend[i].hub = h;
		h->pend[i].fd = -1;
		h->pend[i].who = -1;
		h->pend[i].recv_op.done = on_plain;
	}
	h->accept_op.done = on_accept;
	h->timer_op.done = on_timer;
	h->kick_op.done = on_kick;
	return h;
}

void peer_hub_free(struct peer_hub *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < PEND_MAX; i++) {
		if (h->pend[i].hs)
			tlshs_free(h->pend[i].hs);
		if (h->pend[i].fd >= 0)
			close(h->pend[i].fd);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	tls_ctx_free(h->tls);
	free(h);
}

bool peer_hub_idle(const struct peer_hub *h)
{
	return h->pending == 0;
}
