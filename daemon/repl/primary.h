/* The primary's side of replication: the object that admits a client's
 * write (the overlap set, rules 3 and 4; the activity log, rules 1 and 7;
 * the freeze policy), sends it through one replication stream per peer (a
 * lane: its stream, link and mode) and answers it when every sync peer's
 * stream says so (rule 2).  It owns the streams.
 * Every node has one, ready for a promotion; its role comes from the node
 * (struct node_up).  Daemon-level: failures are logged here. */
#ifndef BLKREP_PRIMARY_H
#define BLKREP_PRIMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/meta/gen.h"
#include "daemon/repl/nodeup.h"
#include "daemon/repl/stream.h"
#include "nbd/repl.h"
#include "utils/hist.h"

struct bitmap;
struct config;
struct lane;
struct local;
struct loop;
struct msg_hdr;
struct peer;
struct primary;
struct sync;

/* After the node's replica is open.  up and node: what it asks of the
 * node.  NULL after logging why. */
struct primary *primary_new(struct local *loc, struct loop *loop, const struct config *cfg,
			    const struct node_up *up, void *node);
void primary_free(struct primary *p); /* NULL is ignored */
/* A peer's lane: s answers its resync and verify chunks, name is for
 * messages, slot is its bitmap slot, bm that slot's bitmap (borrowed),
 * max_lag its async bound.  NULL (logged) when out of memory or past
 * PRIMARY_LANES_MAX. */
struct lane *primary_add_peer(struct primary *p, struct sync *s, const char *name, int slot,
			      struct bitmap *bm, uint64_t max_lag);
/* The lane's replication stream, for those that consult it (stream.h). */
struct stream *lane_stream(const struct lane *l);
const char *lane_name(const struct lane *l);
bool lane_up(const struct lane *l);
/* Its mode: its own (`mode --peer`, the node's section in the config), or
 * the node's. */
bool lane_async(const struct lane *l);
void lane_set_mode(struct lane *l, bool async);
void lane_clear_mode(struct lane *l);
/* A resync to the lane's peer finished (or was not needed): it is no
 * longer behind, which the other secondaries are told. */
void primary_lane_synced(struct lane *l);
/* Steps the generation for peers that left since the last step (a
 * promotion without them), or for every peer (a fresh node's first
 * promotion): -1 if the superblock cannot be written. */
int primary_step_gen(struct primary *p, bool every_peer);
/* What the peers acknowledged but never flushed goes into their bitmaps. */
void primary_unflushed_to_bitmap(struct primary *p);
/* Every connected peer flushed what it acknowledged; false while one has
 * not (a FLUSH goes to it). */
bool primary_peers_flushed(struct primary *p);
/* The other secondaries are told again who is behind. */
void primary_tell_gen(struct primary *p);
/* Any lane holds requests (freeze). */
bool primary_held(const struct primary *p);

/* --- quorum (issue 17, pquorum.c) ---
 * The node's witnesses' links (borrowed; set once at start). */
struct witlink;
void primary_set_witnesses(struct primary *p, struct witlink *const *w, unsigned n);
/* The resource's voters, and those this node is connected to (itself
 * included). */
unsigned primary_voters(const struct primary *p);
unsigned primary_voters_connected(const struct primary *p);
/* Connected to a majority of the voters (true when quorum = off). */
bool primary_quorum(const struct primary *p);
/* Why not ("connected to 1 of 3 voters (alpha); a majority is 2"), or "". */
void primary_quorum_why(const struct primary *p, char *buf, size_t len);
/* A primary whose writes wait for quorum (suspend-io, or a generation
 * step that a majority has not recorded yet). */
bool primary_io_suspended(const struct primary *p);
/* Writes are not acknowledged for quorum: held, or failing (io-error). */
bool primary_quorum_blocks(const struct primary *p);
/* A link or a witness changed, or a witness confirmed a generation:
 * pending steps and held requests go on, or fail (then primary_wake()
 * for the parked writes). */
void primary_quorum_changed(struct primary *p);
/* Held requests fail with EIO (never acknowledged). */
void primary_fail_held(struct primary *p);
/* A generation step no majority recorded is forgotten (stepping down). */
void primary_drop_pending(struct primary *p);
/* `primary --force --no-quorum`: writes go on without a majority until
 * this node is connected to one again. */
void primary_quorum_override(struct primary *p);
/* Where another node's generation (its HELLO or STATE) stands against
 * this node's. */
enum gen_rel primary_relation(const struct primary *p, const struct msg_hello *h);

/* Reads the activity log on disk; after a crash as primary, marks its
 * extents out of sync (see alog_recover()).  The count, or -1 (logged). */
int primary_recover(struct primary *p, bool crashed);
/* Once a second, from the node's tick. */
void primary_tick(struct primary *p);

/* --- the NBD export's replicator (nbd/repl.h's repl_ops, arg p) --- */
enum repl_verdict primary_submit(void *arg, struct repl_req *rr);
void primary_end(void *arg, struct repl_req *rr);
void primary_abandon(void *arg, struct repl_req *rr);
void primary_flush_done(void *arg, int err);
/* Parked requests and the resync try again (also alog's wake). */
void primary_wake(void *arg);

/* --- the links to the peers --- */
/* Queues h (and payload, kept until the answer) to l's peer with its next
 * sequence number: 0, -ENOBUFS (no room: wait for primary_wake()) or
 * another -errno (the link is going).  rr: what the answer completes. */
int primary_send(struct lane *l, struct msg_hdr *h, const void *payload, struct repl_req *rr,
		 enum stream_kind kind);
/* A FLUSH of the node's own, so that bits and extents waiting for one go:
 * to one peer, or to every connected one. */
void primary_flush_peer(struct lane *l);
void primary_flush_peers(struct primary *p);
/* An ACK or FLUSH_ACK from the peer (peer_on_ack(), arg the lane). */
void primary_ack(void *arg, const struct msg_hdr *h);
/* A by-reference payload left (peer ops->released): nothing to do. */
void primary_released(void *arg, const void *payload);
/* The link to the peer came up: held requests go again once the resync
 * state is set (primary_resend_held()); a new generation only after the
 * next loss. */
void primary_link_up(struct lane *l, struct peer *link);
/* The link went: what the peer did not acknowledge stays out of sync, the
 * clients get their local results, at once or, frozen, later. */
void primary_link_down(struct lane *l);
/* Held requests are sent again (at connect, and when the link has room). */
void primary_resend_held(struct lane *l);
/* Held requests are answered with their local results (the export stops,
 * or the peer is outdated). */
void primary_release_held(struct primary *p);

/* --- the role --- */
/* The node's role now (the node tells it at every change). */
void primary_set_role(struct primary *p, bool primary);
/* Under on-peer-loss = freeze, a primary without one of its peers holds
 * writes. */
bool primary_frozen(const struct primary *p);
/* Under on-peer-loss = freeze, the peers whose absence holds writes
 * (names: space-separated, if not NULL); false if none does. */
bool primary_fence_wanted(const struct primary *p, char *names, size_t len);
/* A promotion (connected: the peer receives the writes from now on). */
void primary_promoted(struct primary *p);
/* `blkrep outdate-peer`: a frozen primary goes on without the peers that
 * are gone. */
void primary_outdate_peer(struct primary *p);
/* The size an export offers: the smaller data area of the node and its
 * connected peer; without one, the size agreed at the last connect, so
 * that a primary that comes back alone never exports more than its peer
 * can hold. */
uint64_t primary_export_size(const struct primary *p);
/* The export starts: its size is primary_export_size() now, kept for the
 * peer's checks at connect. */
uint64_t primary_export_begin(struct primary *p);
uint64_t primary_export_bytes(const struct primary *p);
/* At connect: the size both sides agree on now, kept for later starts. */
void primary_agree_size(struct primary *p);

/* --- resync and verify chunks against client writes (rule 4) --- */
bool primary_chunk_lock(struct primary *p, struct repl_req *rr);
void primary_chunk_unlock(struct primary *p, struct repl_req *rr);
bool primary_chunk_app_busy(struct primary *p);

/* Without a peer, extents leave the activity log once idle. */
void primary_standalone(struct primary *p, bool on);

struct primary_stats {
	uint64_t writes;	   /* client writes admitted */
	uint64_t replicated_bytes; /* payload sent to the peer */
	unsigned al_extents;	   /* in the activity log */
	const char *al_error;	   /* why the last snapshot failed, or "" */
	uint64_t lag_bytes;	   /* async: not yet acknowledged, all peers */
	double lag_seconds;	   /* since the oldest of them was sent */
	uint64_t al_writes;	   /* activity-log snapshots written */
	/* Borrowed from p, valid while it lives (the loop's thread only): */
	const struct hist *ack_latency;	  /* a write sent to the peer until its ACK */
	const struct hist *local_latency; /* a write accepted until the local disk did it */
};
void primary_stats(const struct primary *p, struct primary_stats *st);
/* primary_stats()'s al_error alone, cheaply (for a snapshot per batch). */
const char *primary_al_error(const struct primary *p);

#endif
