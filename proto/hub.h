/* A node's shared listener for the replication links (issue 16: up to 8
 * nodes in a full mesh).  For each pair of nodes the one whose name sorts
 * first connects; so a node listens, on its one address, for every peer
 * whose name sorts before its own.  The hub owns that socket: the links
 * that listen (struct peer_cfg's hub) register with it instead of opening
 * their own, and it accepts, runs the handshakes (at most 8 at once, 1 s
 * each, the oldest unidentified dropped to make room; refusals logged once
 * a second), finds out which registered peer connected, and hands the
 * connection to that peer's link, which takes it as its own listener's:
 *	TLS with a PSK: by the identity the client offers, one per pair of
 *	    nodes (tls_ctx_pair()), compared in constant time;
 *	TLS with certificates: by the node its certificate names;
 *	plain TCP (allow-unencrypted): by the node name in the HELLO the
 *	    connecting side sends first, which the link then reads as its own.
 * A connection that names no registered peer, or one whose link is
 * disabled, is refused, and the other handshakes carry on.  With
 * peer-address-only a connection must come from a registered peer's host,
 * and once identified from that peer's.  The hub listens while one of its
 * links is enabled.  Daemon-level module: failures are logged here. */
#ifndef BLKREP_PROTO_HUB_H
#define BLKREP_PROTO_HUB_H

#include <stdbool.h>

struct loop;
struct peer_hub;
struct tls_ctx;

/* Resolves addr (HOST:PORT: call before the loop runs).  tls: the node's
 * TLS context for the server side (taken, freed with the hub, even on
 * failure), or NULL for plain TCP; each link's TLS mode must be the hub's.
 * resource names the log lines.  NULL after logging why. */
struct peer_hub *peer_hub_new(struct loop *loop, const char *resource, const char *addr,
			      struct tls_ctx *tls);

/* Frees the hub at once.  Its links first (peer_free()); then either the
 * loop never runs again, or the hub is idle (every link disabled, the loop
 * run until peer_hub_idle()). */
void peer_hub_free(struct peer_hub *h);

/* True when no operation of the hub is in flight on the ring. */
bool peer_hub_idle(const struct peer_hub *h);

#endif
