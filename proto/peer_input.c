/* The peer link's input: receiving into rbuf (or dbuf, for a large
 * payload), framing messages, the handshake's messages (HELLO, AUTH,
 * STATE, REFUSE) and delivering the rest to the node.  See peer.c for the
 * connection's life and peer.h for the protocol. */
#include "proto/peer_int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include "proto/sendq.h"
#include "utils/clock.h"
#include "utils/extent.h"

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

int peer_send_ctl(struct peer *p, uint16_t type, uint64_t seq, const void *payload, uint32_t len)
{
	struct msg_hdr h = { .type = type, .length = len, .seq = seq };

	return sendq_push(p->q, &h, payload, 0, false);
}

/* --- dropping a connection --- */

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
	if (p->connector) {
		if (p->stage == L_UP)
			p->backoff_ms = BACKOFF_MIN_MS;
		p->next_connect_ms = clock_now_ms() + p->backoff_ms;
		p->backoff_ms =
			p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	}
}

unsigned peer_send_space(const struct peer *p)
{
	uint32_t used = sendq_len(p->q) + QUEUE_RESERVE;

	return used >= PEER_QUEUE ? 0 : PEER_QUEUE - used;
}

/* --- the handshake --- */

/* Sends REFUSE and closes once it is out; the peer logs the reason. */
static void refuse(struct peer *p, const char *reason)
{
	size_t len = strnlen(reason, MSG_MAX_REASON);

	peer_note_error(p, LOG_ERR, reason);
	snprintf(p->refusal, sizeof(p->refusal), "%s", reason);
	if (len == 0 || peer_send_ctl(p, MSG_REFUSE, 0, reason, (uint32_t)len) < 0) {
		peer_link_drop(p, reason);
		return;
	}
	p->stage = L_CLOSING;
	p->closing_ms = clock_now_ms();
	p->rpos = p->rend = 0; /* whatever else the peer said is moot */
	p->direct = false;
}

/* Queues HELLO (with a fresh nonce) or STATE (nonce zero). */
int peer_send_hello(struct peer *p, uint16_t type)
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
void peer_link_begin(struct peer *p)
{
	uint64_t now = clock_now_ms();
	int one = 1;

	(void)setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->stage = L_HELLO;
	p->started_ms = p->last_rx_ms = p->last_tx_ms = p->last_ping_ms = now;
	(void)peer_send_hello(p, MSG_HELLO);
}

static void accept_and_confirm(struct peer *p)
{
	char why[MSG_MAX_REASON + 1] = "";

	if (p->ops->accept_peer && !p->ops->accept_peer(p->arg, &p->theirs, why, sizeof(why))) {
		why[sizeof(why) - 1] = '\0';
		refuse(p, why[0] ? why : "refused by this node");
		return;
	}
	if (!peer_link_alive(p)) /* the callback disabled us */
		return;
	if (peer_send_hello(p, MSG_STATE) == 0)
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

static void on_refused(struct peer *p, const uint8_t *payload, uint32_t len)
{
	char reason[MSG_MAX_REASON + 1], why[ERR_MAX];

	(void)msg_reason_sanitize(payload, len, reason);
	snprintf(why, sizeof(why), "peer refused: %s", reason);
	peer_note_error(p, LOG_ERR, why);
	peer_link_drop(p, why);
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
			(void)peer_send_ctl(p, MSG_PONG, h->seq, NULL, 0);
			return;
		case MSG_PONG:
			return;
		case MSG_HELLO:
		case MSG_AUTH:
			snprintf(why, sizeof(why), "unexpected %s after the handshake",
				 msg_type_name(h->type));
			return peer_link_drop(p, why);
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
void peer_parse_input(struct peer *p)
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

