/* struct primary and its lanes (see primary.h), shared by the two files of
 * the primary's side only: primary.c (admission: the overlap set, the
 * activity log, the freeze policy; the role, the export's size) and
 * lanes.c (one lane per peer: its stream, its link, its answers, the
 * generations and activity log the secondaries are told of).  Calls go
 * primary.c -> lanes.c by name; lanes.c reaches primary.c's admission only
 * through primary_wake() and the few calls declared here.  Nothing else
 * includes it. */
#ifndef BLKREP_PRIMARY_INT_H
#define BLKREP_PRIMARY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/meta/meta.h"
#include "daemon/repl/primary.h"
#include "nbd/server.h"
#include "utils/hist.h"

struct actlog;
struct alog;
struct diskerr;
struct witlink;

/* The overlap set's room: both servers' client writes (a demoted node's
 * stopped export may still have its own in flight) and the chunk locks. */
#define PRIMARY_LOCKS_MAX    16
#define PRIMARY_INFLIGHT_MAX (2 * SERVER_REQS_MAX + PRIMARY_LOCKS_MAX)
#define PRIMARY_LANES_MAX    8 /* peers: a resource has at most 8 nodes */

/* The replication to one peer. */
struct lane {
	struct primary *p;
	struct sync *sync;	/* the peer's: resync and verify answers go there */
	const char *name;	/* the peer's, for messages */
	int slot;		/* the peer's bitmap slot in the metadata */
	struct peer *link;	/* while up */
	/* The replication stream to the peer: sequence numbers, messages
	 * awaiting answers, flush covering (rule 2), wide requests (rule 9),
	 * held requests, the async lag (stream.h). */
	struct stream *stream;
	bool async;		/* its mode when has_mode, else the node's */
	bool has_mode;
	bool gen_moved;		/* its absence is in the generations already */
	bool outdated;		/* `blkrep outdate-peer`: a frozen primary goes on */
	bool synced;		/* connected and its resync done: not behind */
	uint64_t flushed;	/* the activity log's epoch this peer has flushed */
};

struct primary {
	struct local *loc;
	struct meta_sb *sb;	   /* loc's */
	struct diskerr *disk;	   /* loc's */
	struct loop *loop;
	const struct config *cfg;
	const struct node_up *up;  /* the node's role and exports */
	void *node;		   /* up's arg */
	/* What the node and the links told it (primary_set_role(),
	 * primary_link_up() and _down()), kept here so that a write asks no
	 * one above: */
	bool role;		   /* the node is primary */
	bool refused;		   /* a request got REPL_BUSY since the last wake */
	struct lane lanes[PRIMARY_LANES_MAX];
	unsigned nlanes;
	bool multi;		   /* three nodes or more: MSG_GEN, MSG_MARK */
	bool mark_sent;		   /* a MSG_MARK went out at epoch mark_epoch */
	uint64_t mark_epoch;
	uint64_t mark_ns;	   /* when */
	bool step_all;		   /* primary_step_gen(): every peer's slot steps */
	bool gen_due;		   /* an MSG_GEN waits for room (from gen_old) */
	uint64_t gen_old;
	/* Quorum (pquorum.c): the witnesses' links, and generation steps
	 * waiting for a majority to record them (pend: the generations
	 * before the first, to go back to if the node steps down). */
	struct witlink *wits[PRIMARY_LANES_MAX];
	unsigned nwits;
	bool pend_active;
	bool pend_shared;	   /* a data peer may hold a pending generation (told
				    * by MSG_GEN, or its resync ended there): the next
				    * step stacks on it instead of replacing it */
	struct gen_ids pend;
	uint64_t pend_slots[META_PEERS_MAX];
	uint64_t gen_epoch;	   /* the epoch of the last MSG_GEN (data peers' FLUSH after it) */
	bool no_quorum;		   /* promoted with --no-quorum: until quorum is back */
	bool quorum_lost_logged;
	struct actlog *al;	   /* the hot extents (rule 1), admitting writes */
	struct alog *alog;	   /* ... and their snapshots on disk */
	uint32_t al_ext_bytes;
	unsigned al_slots;
	uint64_t epoch;		   /* writes sent to the peers now are in this one */
	bool want_flush;	   /* a write waits for extents a peer FLUSH frees */
	uint64_t export_bytes;	   /* what the NBD export offers while primary */
	uint64_t writes;	   /* for status */
	uint64_t replicated_bytes;
	struct hist ack_hist;	   /* a client write sent to a peer until its ACK */
	struct hist local_hist;	   /* a client write accepted until the local disk did it */
	/* The overlap set (primary.c). */
	struct repl_req *inflight[PRIMARY_INFLIGHT_MAX];
	unsigned ninflight;
	unsigned nlocked; /* of them, primary_chunk_lock()'s */
};

#define LANES_FOR(p, l) \
	for (__typeof__(&(p)->lanes[0]) l = (p)->lanes; l < (p)->lanes + (p)->nlanes; l++)

/* lanes.c */
bool lane_up(const struct lane *l);
bool lane_async(const struct lane *l);
unsigned lanes_up(const struct primary *p);
bool lanes_held(const struct primary *p);
const char *lanes_sync_peer(const struct primary *p);
void lanes_mark_out_of_sync(struct primary *p, uint64_t off, uint64_t len, bool absent_only);
enum repl_verdict lanes_offer(struct primary *p, struct repl_req *rr, const struct msg_hdr *h);
int lanes_write_alone(struct primary *p);
void lanes_wide_begin(struct primary *p, const struct repl_req *rr);
void lanes_wide_done(struct primary *p, const struct repl_req *rr);
void lanes_wide_forget(struct primary *p, const struct repl_req *rr);
void lanes_tick(struct primary *p);
bool lanes_gen_sent(struct primary *p);
void lanes_send_gen(struct primary *p, uint64_t before);
bool lanes_quorum_fails(const struct primary *p);
void lanes_free(struct primary *p);
uint64_t lanes_size(const struct primary *p, uint64_t bytes);

/* pquorum.c */
enum pq_verdict {
	PQ_GO,	 /* writes may be acknowledged (or quorum is off) */
	PQ_HOLD, /* held: a majority has not recorded the generation yet, or
		  * quorum is lost under suspend-io */
	PQ_FAIL, /* quorum lost under io-error: writes fail */
};
enum pq_verdict pq_verdict(const struct primary *p);
bool pq_enabled(const struct primary *p);
bool pq_step_due(const struct primary *p);
void pq_stepped(struct primary *p, const struct meta_sb *before);
void pq_restore(struct primary *p);
bool pq_apply(struct primary *p);
void pq_tell_witnesses(struct primary *p);
void pq_log(struct primary *p, enum pq_verdict v);
void pq_override_ends(struct primary *p);

/* primary.c */
void al_release(struct primary *p, uint64_t off, uint64_t len);
bool al_want_flush(struct primary *p);
uint16_t repl_msg_type(uint16_t nbd_type);
struct msg_hdr repl_hdr(const struct repl_req *rr);

#endif
