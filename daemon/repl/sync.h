/* One peer of a node, seen from the node: its link (proto/peer), what it
 * said of itself (HELLO, STATE), the verdict at connect, the bitmap
 * exchange, the resync to or from it and `blkrep verify` against it.  The
 * node holds one per peer, so that more peers are more of these rather
 * than a rewrite.  The object is in sync.c, its link's behaviour in
 * node_sync.c, sharing sync_int.h.  Daemon-level. */
#ifndef BLKREP_SYNC_H
#define BLKREP_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "daemon/repl/nodeup.h"

struct config;
struct config_node;
struct control_req;
struct local;
struct lane;
struct loop;
struct stream;
struct msg_hello;
struct peer;
struct primary;
struct resync;
struct secondary;
struct verify;

/* This node's part in the resync after a connect. */
enum rs_role { RS_NONE, RS_SOURCE, RS_TARGET };

struct sync;

/* What a peer's sync works with: the node's setup and parts, and what
 * it asks of the node (up, with node as its arg).  Kept by sync_new(). */
struct sync_env {
	struct loop *loop;
	const struct config *cfg;
	const struct config_node *me, *other;
	const uint8_t *secret; /* NULL/0: none */
	size_t secret_len;
	struct local *loc;
	struct primary *pri;
	struct secondary *sec;
	const struct node_up *up;
	void *node;
	struct peer_hub *hub;	/* three nodes or more: sync_hub_new()'s */
};

struct peer_hub;
struct peer_hub *sync_hub_new(const struct sync_env *env);
/* A link's TLS context for node me (a PSK from the secret, or me's
 * certificate); NULL after logging why. */
struct tls_ctx;
struct peer_ops;
/* The link from me to other, as every link of a node is made (TLS unless
 * allow-unencrypted, the hub when given): NULL after logging why. */
struct peer *sync_link_new(struct loop *loop, const struct config *cfg,
			   const struct config_node *me, const struct config_node *other,
			   const uint8_t *secret, size_t secret_len, struct peer_hub *hub,
			   const struct peer_ops *ops, void *arg);
struct tls_ctx *sync_tls_for(const struct config *cfg, const struct config_node *me,
			     const uint8_t *secret, size_t secret_len);

/* The peer env->other, its link not yet started; NULL when out of
 * memory. */
struct sync *sync_new(const struct sync_env *env);
/* Frees the link too; after the loop is freed (resync buffers may be in
 * flight until then).  NULL is ignored. */
void sync_free(struct sync *s);
/* Starts the link (connecting or listening): 0, or -1. */
int sync_start(struct sync *s);

/* The link is up: the handshake was accepted. */
bool sync_up(const struct sync *s);
/* What the peer said of itself at connect or since (valid once up). */
const struct msg_hello *sync_hello(const struct sync *s);
/* The link; NULL before sync_start(). */
struct peer *sync_peer(const struct sync *s);
enum rs_role sync_rs_role(const struct sync *s);
bool sync_exchanging(const struct sync *s); /* bitmaps being exchanged */
/* The last connect found that both wrote as primary. */
bool sync_split_brain(const struct sync *s);

/* The resync running with this peer, from either side: bytes done, in
 * all, per second.  False when none runs. */
bool sync_resync_progress(const struct sync *s, uint64_t *done, uint64_t *total, uint64_t *bps);
/* `verify` against this peer: answers req (started, or why not). */
void sync_cmd_verify(struct sync *s, struct control_req *req);
/* The resync's walk with this peer (daemon/repl/resync.h). */
struct resync *sync_resync(const struct sync *s);
/* `blkrep verify` against this peer (daemon/repl/verify.h). */
struct verify *sync_verify(const struct sync *s);
/* The peer's section in the config. */
const struct config_node *sync_node(const struct sync *s);
/* The peer's name in the config, for messages. */
const char *sync_name(const struct sync *s);
/* The primary's stream and lane to this peer, its bitmap slot. */
struct stream *sync_stream(const struct sync *s);
struct lane *sync_lane(const struct sync *s);
int sync_slot(const struct sync *s);
/* A resync with this peer waits until one of the two is primary. */
bool sync_deferred(const struct sync *s);
/* This node, primary, told the peer to move from generation old to new. */
void sync_peer_follows(struct sync *s, uint64_t old, uint64_t new);
/* Three nodes or more: the connected peer's data is newer than this
 * node's (a promotion here would overwrite it). */
bool sync_peer_newer(const struct sync *s);
/* Its disk as it last said ("unknown" while not connected). */
const char *sync_peer_disk(const struct sync *s);
/* Bytes sent to it as a resync source since start. */
uint64_t sync_resynced_bytes(const struct sync *s);
/* Whether the connect and STATE machinery should look again: the
 * generations changed (a promotion), or a resync may be due. */
void sync_reconsider(struct sync *s);
void sync_resync_if_due(struct sync *s);

/* `resolve --discard-local`: this node's changes of generation gen are
 * saved; at the next connect it is the resync target. */
void sync_discard_local(struct sync *s, uint64_t gen);
/* A resync now, when connected and none runs (`resync`, `invalidate`). */
void sync_resync_now(struct sync *s);

/* From the replication stream: the peer answered a resync chunk, or it
 * failed (err: -errno or 0). */
void sync_resync_acked(struct sync *s, void *req, int err);
/* A flush covered what was sent: a resync source may be done. */
void sync_flush_covered(struct sync *s);

/* A promotion: resync and verify chunks in flight are locked against
 * the new export's writes (rule 4). */
void sync_relock(struct sync *s);

#endif
