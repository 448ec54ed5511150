/* A data node's link to a witness of its resource (issue 17): a node with
 * `witness = yes` keeps no data and votes.  Over an ordinary link
 * (proto/peer: TLS, the hub, keepalive) the data node says who it is
 * (HELLO, STATE) and, while primary, tells the witness each generation it
 * moves to (MSG_GEN, then a FLUSH): the witness's FLUSH_ACK means that it
 * recorded that generation durably, so that a node which missed writes
 * acknowledged since cannot be promoted with its vote.  The witness says
 * which generation it holds in its HELLO and STATE.  Nothing else goes
 * either way; anything else from a witness drops the link.  Daemon-level:
 * failures are logged here. */
#ifndef BLKREP_WITLINK_H
#define BLKREP_WITLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct config_node;
struct local;
struct loop;
struct msg_hello;
struct node_up;
struct peer;
struct peer_hub;
struct witlink;

struct witlink_env {
	struct loop *loop;
	const struct config *cfg;
	const struct config_node *me, *other; /* other: the witness */
	const uint8_t *secret;		      /* NULL/0: none */
	size_t secret_len;
	struct local *loc;		      /* what HELLO says of this node */
	struct peer_hub *hub;		      /* the node's shared listener, or NULL */
	const struct node_up *up;	      /* the node's role (up->primary) */
	void *node;
	/* The link came up, went down, or the witness confirmed a
	 * generation: the node counts its quorum again. */
	void (*changed)(void *node);
};

/* Its link not yet started; NULL when out of memory (logged). */
struct witlink *witlink_new(const struct witlink_env *env);
void witlink_free(struct witlink *w); /* NULL is ignored */
/* Starts the link: 0, or -1 (logged). */
int witlink_start(struct witlink *w);

bool witlink_up(const struct witlink *w);
const char *witlink_name(const struct witlink *w);
struct peer *witlink_peer(const struct witlink *w);
/* What the witness said of itself (valid once up): its generation in
 * gen_current and gen_history. */
const struct msg_hello *witlink_hello(const struct witlink *w);
/* The generation the witness holds durably as current (0: unknown). */
uint64_t witlink_confirmed(const struct witlink *w);
/* Tells the witness that the primary moved from generation old to new:
 * MSG_GEN, then a FLUSH whose answer confirms it. */
void witlink_tell(struct witlink *w, uint64_t old, uint64_t new);

#endif
