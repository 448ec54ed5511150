/* The peer link's two files share this: struct peer and the calls from
 * link.c (the connection's life: connecting, listening, the handshake,
 * keepalive, finishing a dropped link, the public lifecycle calls) down to
 * peer.c (the established link's data path: the send queue, SENDMSG, RECV,
 * framing, delivery).  peer.c calls link.c only through the struct
 * peer_life that link.c registers.  Nothing else includes it. */
#ifndef BLKREP_PEER_INT_H
#define BLKREP_PEER_INT_H

#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "utils/ioop.h"
#include "utils/loop.h"
#include "proto/peer.h"
#include "proto/auth.h"
#include "utils/log.h"

struct peer_hub;
struct sendq;
struct tls;
struct tls_ctx;
struct tlsrec;
struct tlshs;

#define TICK_MS		100
#define PING_IDLE_MS	1000 /* nothing received or sent: PING */
#define SILENT_MS	5000 /* nothing received: the peer is gone */
#define HANDSHAKE_MS	5000 /* from connect() or accept() to up */
#define LINGER_MS	1000 /* after sending REFUSE, for the peer to read it */
#define BACKOFF_MIN_MS	200
#define BACKOFF_MAX_MS	5000
#define LISTEN_RETRY_MS 1000
#define ACCEPT_RETRY_MS 100
#define TLS_HS_MS	1000 /* an accepted connection's TLS handshake */
#define PEND_MAX	8    /* TLS handshakes at once on the listener */
#define REFUSED_LOG_MS	1000 /* one line about refused connections a second */

#define RBUF_SIZE  (128U << 10) /* > header + any payload below DIRECT_MIN */
#define DIRECT_MIN (16U << 10)	/* payloads this big are received into dbuf */
#define ARENA_SIZE (256U << 10) /* copies of peer_send()'s payloads */
#define CIN_SIZE   (512U << 10) /* records received, userspace TLS */
#define SEAL_MAX   (1U << 20) /* plaintext sealed per send, userspace TLS */
#define COUT_SIZE  (SEAL_MAX + (SEAL_MAX / 16384 + 1) * 32)
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

struct peer;

/* link.c's part, called from peer.c (registered by peer_new()). */
struct peer_life {
	/* What peer_after() does not do itself: finishing a dropped link,
	 * connecting, accepting, the timer, freeing (then arms the send and
	 * receive as peer_after() does). */
	void (*after)(struct peer *p);
	/* A message before the link is up, or a REFUSE at any time. */
	void (*handshake)(struct peer *p, const struct msg_hdr *h, const uint8_t *payload);
	/* A connection the listener authenticated (t: its TLS, NULL in plain
	 * TCP) for this link, with n bytes already read from it (plain TCP:
	 * the peer's HELLO), which the link takes as if it had read them:
	 * from a completion handler, with p->in_handler set. */
	void (*won)(struct peer *p, int fd, struct tls *t, const uint8_t *pre, uint32_t n);
};

struct peer {
	const struct peer_life *life;
	struct ioop accept_op, connect_op, recv_op, send_op, timer_op, kick_op;
	struct loop *loop;
	const struct peer_ops *ops;
	void *arg;
	void (*ack)(void *arg, const struct msg_hdr *h); /* peer_on_ack() */
	void *ack_arg;

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
	struct tls *stash_tls;	 /* and its TLS state */
	uint8_t stash_pre[MSG_HDR_SIZE + MSG_MAX_HELLO]; /* and what was read */
	uint32_t stash_pre_len;
	struct peer_hub *hub; /* listening through a shared listener */
	uint64_t listen_retry_ms, accept_retry_ms;
	struct sockaddr_storage acc_sa;
	socklen_t acc_len;
	uint64_t next_connect_ms;
	unsigned backoff_ms;
	struct __kernel_timespec tick;

	/* TLS (NULL: plain TCP, allow-unencrypted), and the handshakes: the
	 * connecting side's, or the listener's, several at once. */
	struct tls_ctx *tls_ctx;
	bool peer_address_only, no_ktls, ktls_said;
	struct tlshs *hs;
	struct tlshs *pend[PEND_MAX];
	char pend_host[PEND_MAX][64];
	uint64_t refused_log_ms;
	unsigned refused_quiet; /* refusals not logged since */
	uint64_t rekey_blocks;

	/* The connection. */
	int fd;
	struct tls *tls; /* its TLS; with ktls the kernel does the records */
	bool ktls;
	struct tlsrec *tx, *rx; /* userspace TLS: the records, proto/tlsrec */
	uint8_t *cin;	    /* records received (userspace TLS), cin_pos opened */
	uint32_t cin_pos, cin_len;
	uint8_t *spill;	    /* a record ending a large payload */
	uint8_t *cout;	    /* ciphertext being sent */
	uint32_t cout_pos, cout_len;
	bool sealed; /* the batch being sent is all in cout or out */
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

static inline bool peer_link_alive(const struct peer *p)
{
	return p->fd >= 0 && !p->dead;
}

/* Cancels op (its completion still comes, with -ECANCELED). */
static inline void peer_cancel(struct peer *p, struct ioop *op)
{
	io_uring_prep_cancel(loop_sqe(p->loop, NULL), op, 0);
}

/* Whether two addresses are on the same host (any port). */
static inline bool peer_same_host(const struct sockaddr_storage *a,
				  const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* --- link.c, called by gate.c --- */

/* Takes over a connection, past its TLS handshake if any (t: its TLS
 * state, or NULL in plain TCP): the kernel takes the records over where it
 * can, then the link's own handshake begins, with the n bytes at pre
 * (already read from the connection, at most sizeof(p->stash_pre)) as the
 * first received. */
void link_adopt(struct peer *p, int fd, struct tls *t, const uint8_t *pre, uint32_t n);

/* --- gate.c (the TLS handshakes), called by link.c --- */

/* Starts the TLS handshake of a new connection: the connecting side's
 * (client), or one of the listener's (host: where it came from). */
void gate_start(struct peer *p, int fd, bool client, const char *host);
/* Gives up on handshakes past their time. */
void gate_tick(struct peer *p, uint64_t now);
/* Gives up on every handshake (disabling, freeing). */
void gate_abort(struct peer *p);
/* Frees every handshake at once (peer_free() without the loop). */
void gate_destroy(struct peer *p);
/* A connection the listener accepted (and authenticated, with TLS) for
 * p: it becomes the link, replacing one still up (TLS), or is stashed
 * while the old one drains; in plain TCP a second one is closed.  The
 * peer_life's won(). */
void gate_won(struct peer *p, int fd, struct tls *t, const uint8_t *pre, uint32_t n);
/* Logs a refused connection, at most one line a second. */
void gate_refused(struct peer *p, const char *host, const char *why);
/* Whether the connection just accepted comes from the peer's host. */
bool gate_from_peer_host(const struct peer *p);

/* --- hub.c (the shared listener), called by link.c --- */

/* A listening link joins its hub (peer_new()), or leaves it (peer_free():
 * without a word to the loop).  hub_add: 0, or -1 logged. */
int hub_add(struct peer_hub *h, struct peer *p);
void hub_remove(struct peer_hub *h, struct peer *p);
/* A member was enabled or disabled: the hub listens while one is. */
void hub_kick(struct peer_hub *h);
/* peer_listen_now() for a member: -1 (logged) if the port is taken. */
int hub_listen_now(struct peer_hub *h);

/* --- peer.c, called by link.c --- */

/* The ring entry for op, which is then in flight (*busy, p->pending). */
struct io_uring_sqe *peer_sqe(struct peer *p, struct ioop *op, bool *busy);
/* A handler's first step: op (its *busy) completed. */
void peer_handler_enter(struct peer *p, bool *busy);
/* Gets back onto the loop (a NOP) unless already in a handler. */
void peer_kick(struct peer *p);
/* The last step of every handler: arms what should be in flight, through
 * p->life->after() unless the link is steady.  May free p. */
void peer_after(struct peer *p);
/* Sets the completion handlers of the RECV, SENDMSG and NOP. */
void peer_io_setup(struct peer *p);

/* Keeps why for peer_last_error() and logs it, unless it is what was
 * logged last. */
void peer_note_error(struct peer *p, enum log_level lvl, const char *why);
/* Shuts the connection down for why; link.c finishes it. */
void peer_link_drop(struct peer *p, const char *why);

/* Queues a control message (copied): 0 or -ENOBUFS. */
int peer_send_ctl(struct peer *p, uint16_t type, uint64_t seq, const void *payload, uint32_t len);
/* Pops the oldest queued message; with notify, a payload by reference
 * goes back to its owner (ops->released). */
void peer_queue_pop(struct peer *p, bool notify);
/* Starts a SENDMSG of everything queued, unless one is in flight. */
void peer_send_kick(struct peer *p);
/* Starts the RECV, unless one is in flight or input is stopped. */
void peer_recv_arm(struct peer *p);
/* Delivers every complete message received (decrypting it first with
 * userspace TLS), until the link stops. */
void peer_input(struct peer *p);
/* The connecting side's next attempt: after the backoff, which doubles
 * (after a link that was up, it starts again from the shortest). */
void peer_backoff(struct peer *p, bool was_up);

#endif
