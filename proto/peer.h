/* The replication link between the two nodes of a resource: one TCP
 * connection, run on the event loop (CONNECT, ACCEPT, RECV, SENDMSG and
 * TIMEOUT through io_uring; nothing here blocks once peer_new() returns).
 *
 * Who connects.  Both nodes know both addresses.  So that the two nodes
 * never open two crossing connections, the node whose name sorts first
 * (strcmp(my_node, peer_node) < 0) connects to the peer's address and does
 * not listen; the other only listens on its own address and never
 * connects.  The listener holds one connection at a time: another one that
 * arrives while a connection is open is closed at once (and logged).  The
 * connecting side retries after a failure or a drop with a backoff of
 * 0.2 s doubling to 5 s; the listening side just keeps listening.  With
 * several peers (a full mesh), a node listens on its one address for all
 * those whose names sort before its own, through one shared listener
 * (proto/hub.h, cfg->hub), which hands each connection to its link; a
 * link then takes it as it would from its own listener.
 *
 * TLS.  With a tls context (the default; plain TCP only with
 * allow-unencrypted) every byte after the TCP connect is TLS 1.3: the
 * handshake (proto/tlshs.c) authenticates both sides first, the
 * listener running up to 8 of them at once for 1 s each, the first to
 * authenticate winning (a link still up from the same peer is replaced);
 * the kernel takes the records over where it has kTLS.  A record that
 * fails authentication ends the link.  Then, inside TLS:
 *
 * Handshake, on every new connection, symmetric:
 *	both send HELLO (versions, resource, node name, a fresh nonce, and the
 *	    state ops->hello fills in);
 *	each checks the peer's HELLO: the version ranges overlap, the resource
 *	    name is ours, the node name is cfg->peer_node, both have a secret
 *	    or neither has (allow-unauthenticated on both);
 *	with a secret both send AUTH (proto/auth.h) and check the other's;
 *	ops->accept_peer may refuse (size, generations, ...);
 *	both send STATE (ops->hello again, nonce zero): "I accept you".  The
 *	    link is up, and ops->up called, once our own checks passed and the
 *	    peer's STATE arrived, so a peer that refuses us never makes us go
 *	    up and down again.
 * Any check that fails sends REFUSE with the reason, and the link is
 * dropped.  A refusal, sent or received, is logged (log_err) once per
 * distinct reason, not on every retry, and kept for peer_last_error().
 *
 * Keepalive: after 1 s without receiving anything, or without sending
 * anything, a PING goes out (the other side answers PONG; neither reaches
 * ops->message).  5 s without a single byte received drops the link ("peer
 * silent for 5 s").  A handshake must finish within 5 s of the connection.
 *
 * Callbacks are made from the loop only (completion handlers), never from
 * inside a peer_*() call, so any peer_*() function except peer_free() may
 * be called from a callback.  Daemon-level module: failures are logged here;
 * peer_send() returns -errno because its caller must tell "wait" from
 * "gone". */
#ifndef BLKREP_PEER_H
#define BLKREP_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

struct loop;
struct peer;
struct peer_hub;
struct tls_ctx;

/* Outgoing messages queued at once, handshake and keepalive included. */
#define PEER_QUEUE 1024
/* Entries peer_send() has free before a request is delivered (see
 * ops->message): its answer, a STATE the callback may send before it, and
 * answers the receiver gives later, when what it started completes: at
 * most PEER_ANSWER_ROOM - 3 of those may be pending at once. */
#define PEER_ANSWER_ROOM 16

/* The largest payload peer_send() takes, and copies: every payload but
 * data (a verify reply's checksums, a bitmap chunk, HELLO, REFUSE).  Data
 * (WRITE, RESYNC_DATA) goes with peer_send_ref(), from the caller's
 * buffer, without a copy. */
#define PEER_COPY_MAX (64U << 10)

struct peer_cfg {
	const char *resource;
	const char *my_node, *peer_node; /* non-empty, different, < MSG_NAME_SIZE */
	const char *my_addr, *peer_addr; /* HOST:PORT or [IPV6]:PORT */
	const uint8_t *secret;		 /* NULL/0: no secret */
	size_t secret_len;
	bool allow_unauthenticated; /* required when there is no secret nor TLS */
	/* TLS on every byte after the TCP connect (proto/tls.h), taken by the
	 * peer (freed with it, even when peer_new() fails); NULL: plain TCP,
	 * as with allow-unencrypted. */
	struct tls_ctx *tls;
	/* The listener accepts connections from the peer's host only. */
	bool peer_address_only;
	/* The node's shared listener (proto/hub.h), when it listens for
	 * several peers on its one address: a link whose peer connects to it
	 * (the peer's name sorts first) registers with the hub instead of
	 * opening its own socket (my_addr is then the hub's).  NULL: the link
	 * listens itself.  Given on every link of a resource with more than
	 * two nodes, also on those that connect: in PSK mode they all use
	 * their pair's key and identity (tls_ctx_pair()), which a hub tells
	 * apart; without a hub the resource's, as with two nodes.  The hub
	 * must outlive the peer. */
	struct peer_hub *hub;
	/* Protocol versions offered; 0 means MSG_VERSION_MIN / MSG_VERSION_MAX.
	 * Only tests set them. */
	uint16_t version_min, version_max;
};

/* Every callback gets the arg given to peer_new(). */
enum peer_verdict { PEER_ACCEPT, PEER_REFUSE, PEER_REFUSE_ROUTINE };

struct peer_ops {
	/* Required.  Fills role, disk, generations, size_bytes, extent_bytes
	 * and flags (MSG_HELLO_F_CRASHED_PRIMARY, _ZERO; the peer adds
	 * _NO_SECRET itself) before each HELLO and handshake STATE.  The peer
	 * fills versions, names and nonce. */
	void (*hello)(void *arg, struct msg_hello *mine);
	/* Optional.  Called once the peer's HELLO checked out and, with a
	 * secret, its AUTH verified.  Returns PEER_ACCEPT, or refuses the peer
	 * with a reason for both logs in why (NUL-terminated, at most whylen
	 * bytes): PEER_REFUSE logs it as an error on both nodes,
	 * PEER_REFUSE_ROUTINE (an expected step, such as a node that came back
	 * as primary stepping back) as information. */
	enum peer_verdict (*accept_peer)(void *arg, const struct msg_hello *theirs, char *why,
					 size_t whylen);
	/* Required.  The link is up; theirs is the peer's handshake STATE.
	 * peer_send() works from here on. */
	void (*up)(void *arg, const struct msg_hello *theirs);
	/* Required.  The link that was up is gone: called once per up(), after
	 * the socket is closed and every queued payload has been released, so
	 * the caller holds all its buffers again.  why says what happened. */
	void (*down)(void *arg, const char *why);
	/* Required.  A message from the peer after up(): every type except
	 * HELLO, AUTH, REFUSE, PING and PONG, its header checked by
	 * msg_hdr_decode() and msg_hdr_check_bounds(): disk ranges against
	 * the smaller of the two size_bytes of the handshake, BITMAP chunks
	 * against that size in our extent_bytes.  STATE payloads are not
	 * decoded here (msg_hello_decode()).  payload (NULL when h->length is 0) is valid during
	 * the call only.  A request (WRITE, TRIM, ZERO, FLUSH, RESYNC_DATA,
	 * RESYNC_REQ, VERIFY_REQ) is delivered only while peer_send() has room
	 * for PEER_ANSWER_ROOM messages (and, for VERIFY_REQ, 64 KiB of
	 * checksums): until then it stays unread and TCP paces the sender, so
	 * a burst of requests never finds the queue of answers full. */
	void (*message)(void *arg, const struct msg_hdr *h, const uint8_t *payload);
	/* Required if peer_send_ref() is used.  The bytes of a by-reference
	 * payload are on the socket, or the link dropped and they never will
	 * be: the caller may reuse the buffer. */
	void (*released)(void *arg, const void *payload);
	/* Optional.  peer_send() returned -ENOBUFS earlier, and a quarter of
	 * the queue is free again. */
	void (*writable)(void *arg);
};

/* Resolves both addresses (getaddrinfo: call before the loop runs) and
 * allocates every buffer the link uses (32 MiB for incoming data payloads,
 * touched only as used).  Starts disabled ("standalone").  Returns NULL
 * after logging why.  cfg's strings and secret are copied; ops and arg must
 * outlive the peer. */
struct peer *peer_new(struct loop *loop, const struct peer_cfg *cfg, const struct peer_ops *ops,
		      void *arg);

/* Frees the peer at once, without any further callback.  It does not
 * wait for operations in flight, so either the loop must never run again
 * (peer_free() then loop_free(), or after loop_free(): the ring's teardown
 * cancels them), or the peer must be idle: peer_enable(p, false), run the
 * loop until peer_idle(p), then peer_free(p), which is how to remove a
 * link while the daemon keeps running.  Never from a peer callback. */
void peer_free(struct peer *p);

/* True when no operation of the peer is in flight on the ring. */
bool peer_idle(const struct peer *p);

/* on: connect or listen (blkrep connect).  off: stop connecting or
 * listening and drop the link (blkrep disconnect); down() follows from the
 * loop if the link was up. */
void peer_enable(struct peer *p, bool on);
/* The node that listens for the link (the other one connects) opens its
 * listening socket now: -1 (logged: "listen on ADDR: REASON") if it cannot,
 * so that a daemon starting fails rather than retrying unseen.  0 on the
 * connecting node, or once listening. */
int peer_listen_now(struct peer *p);

/* Drops the link that is up, at once, for a reason the caller gives
 * (printf-style): logged as "connection lost: WHY" and kept for
 * peer_last_error().  For a message this node will not answer, so that the
 * peer does not wait for the answer until some timeout.  down() follows
 * from the loop; the connecting side reconnects as after any loss.
 * Nothing happens if the link is not up. */
void peer_drop(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stops (paused) or resumes reading from the peer, for a caller that has no
 * room for more messages.  No message is delivered while paused, and the
 * silence timeout does not count (this side is the one not listening);
 * the PINGs this side sends keep the peer's timeout quiet.  Messages
 * already buffered are delivered from the loop after resuming.  Applies to
 * a connection that is up; a new connection starts unpaused. */
void peer_recv_pause(struct peer *p, bool paused);

/* Queues a message for the peer; h->length payload bytes at payload, which
 * are copied: the caller may reuse its buffer as soon as this returns.
 * Messages leave in the order queued.  Returns 0, -ENOTCONN when the link
 * is not up, -ENOBUFS when the queue or the room for copies is full (wait
 * for ops->writable), or -EINVAL for a payload missing or over
 * PEER_COPY_MAX (data goes with peer_send_ref()). */
int peer_send(struct peer *p, const struct msg_hdr *h, const void *payload);

/* peer_send() without the copy, for payloads up to MSG_MAX_DATA: the bytes
 * are sent from payload, which the caller keeps unchanged until
 * ops->released(arg, payload). */
int peer_send_ref(struct peer *p, const struct msg_hdr *h, const void *payload);

/* From now on ACK and FLUSH_ACK go to ack(arg, h) instead of to
 * ops->message (checked the same way; they carry no payload): the answers
 * to the writes of whoever sends them (the primary's side of the node,
 * which subscribes itself), on their shortest way back. */
void peer_on_ack(struct peer *p, void (*ack)(void *arg, const struct msg_hdr *h), void *arg);

/* Entries peer_send() can queue right now. */
unsigned peer_send_space(const struct peer *p);

/* "standalone" (disabled), "connecting" (enabled, not up: connecting,
 * listening, in the handshake, or refused and retrying) or "connected". */
const char *peer_state(const struct peer *p);

/* Sends a STATE (ops->hello filled again) after a change of role or disk,
 * so the peer's picture stays current.  -ENOTCONN when the link is not up. */
int peer_send_state(struct peer *p);
bool peer_connected(const struct peer *p);

/* `adjust`: the peer's new HOST:PORT, for the next connect (a link that is
 * up stays up) and peer-address-only.  0, or -1 (logged: it does not
 * resolve) with nothing changed. */
int peer_set_address(struct peer *p, const char *addr);

/* Why the link last failed or was refused ("peer refused: ...",
 * "authentication failed: ...", "peer silent for 5 s"); "" since the last
 * time it came up.  Valid until the next loop pass. */
const char *peer_last_error(const struct peer *p);

/* "tls-psk", "tls-certificate" or "none" (plain TCP), as configured. */
const char *peer_encryption(const struct peer *p);
/* Who encrypts the link that is up: "kernel" (kTLS) or "userspace"; NULL
 * when not connected or without TLS. */
const char *peer_tls_offload(const struct peer *p);

/* The protocol version agreed with the peer; 0 when not connected. */
uint16_t peer_version(const struct peer *p);

#endif
