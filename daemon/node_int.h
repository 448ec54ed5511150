/* The node daemon's parts, shared by daemon/node*.c only: the struct
 * every part works on, and the functions one part calls in another.
 * Nothing outside daemon/node*.c includes this; node.h is the interface. */
#ifndef BLKREP_NODE_INT_H
#define BLKREP_NODE_INT_H

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <xxhash.h>
#include "daemon/node.h"
#include "daemon/dev/devices.h"
#include "daemon/repl/apply.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/meta/gen.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "daemon/meta/mdio.h"
#include "daemon/meta/meta.h"
#include "proto/peer.h"
#include "daemon/repl/resync.h"
#include "daemon/meta/savefile.h"
#include "nbd/server.h"
#include "daemon/repl/diskerr.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/verify.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "utils/bitmap.h"
#include "utils/log.h"

#define NODE_POOL      (64U << 20)
#define TICK_S	       1	   /* idle flushes, so that bits and the log drain */
#define RS_FLUSH_BYTES (32U << 20) /* resync data between peer flushes */

#define FLUSHES_MAX 8 /* the secondary's fdatasyncs in flight */

/* Resync and verify chunks locked at once, and the overlap set's size:
 * those, and the requests of the export and of one stopped by a demotion
 * whose writes are still in flight. */
#define NODE_LOCKS_MAX	  16
#define NODE_INFLIGHT_MAX (2 * SERVER_REQS_MAX + NODE_LOCKS_MAX)

/* A FLUSH from the peer, applied through the ring: later writes go on
 * meanwhile, and its FLUSH_ACK follows the fdatasync. */
struct flush_op {
	struct ioop op;
	struct node *n;
	uint64_t seq;
	uint64_t link; /* the connection it came on */
	bool busy;
};

/* What a part asks of the node's lifecycle.  node.c fills it in; the parts
 * below node.c call through it and never name node.c's functions, so that
 * calls go downward (docs/ARCHITECTURE.md, "Layout"). */
struct node_up {
	bool (*demote)(struct node *n); /* see node_demote() */
	void (*stop)(struct node *n);	/* see node_begin_stop() */
	/* A resync with a peer finished, either way: what this node had in
	 * flight at a crash as primary is settled (n->crashed goes). */
	void (*resynced)(struct node *n);
};

/* A resource has two nodes (the config refuses a third): one peer.  Code
 * that means every peer loops over peers[0..npeers); the replication
 * stream (stream, below) is still the node's, to node_stream_peer(). */
#define NODE_PEERS_MAX 1

struct node {
	const struct node_up *up;
	control_handler_fn *handle; /* the control socket's requests */
	struct loop *loop;
	struct config *cfg;
	const struct config_node *me;
	const struct config_node *other;
	uint8_t secret[CONFIG_SECRET_MAX];
	size_t secret_len;
	struct mdio *md;
	struct meta_sb sb;
	struct bitmap *bm;
	struct primary *pri;	/* the primary's side of replication */
	struct devices *dev;	/* /dev/nbdN, attach --loop, restore-saved */
	bool primary;
	bool crashed;		/* came up after a crash as primary, not yet resynced */
	bool demoting;		/* demoted, the crashed-primary flag not yet cleared */
	struct control_req *demote_req; /* `secondary`, answered once that is done */
	bool resumed;		/* primary because it went down as one, not by command */
	bool gen_moved;	       /* wrote alone since the link went: a new generation */
	bool peer_outdated;    /* `blkrep outdate-peer`: a frozen primary may go on */
	uint64_t export_bytes; /* what the NBD export offers while primary */
	struct server *srv;
	struct server *retiring; /* stopped, freed once done */
	/* The overlap set (node_repl.c): write ranges in flight, both
	 * servers' client writes and the resync's and verify's chunks. */
	struct repl_req *inflight[NODE_INFLIGHT_MAX];
	unsigned ninflight;
	unsigned nlocked; /* of them, node_chunk_lock()'s */
	struct sync *peers[NODE_PEERS_MAX]; /* daemon/repl/sync.h */
	unsigned npeers;
	struct control *ctl;
	struct ioop sig_op;
	int sigfd;
	struct signalfd_siginfo si;
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	bool stopping;
	int ready_fd;
	uint64_t resynced_bytes;
	/* The replication stream to the peer: sequence numbers, messages
	 * awaiting answers, flush covering (rule 2), wide requests (rule 9),
	 * held requests, the async lag (daemon/repl/stream.h). */
	struct stream *stream;
	int data_fd;	       /* the data area, for the peer's writes and resync */
	struct flush_op flushes[FLUSHES_MAX];
	struct diskerr *disk; /* disk errors, the reconnect after one */
	char ctl_path[256];
	char pid_path[256];
	char log_path[256];
};

/* --- the state every part reads or records (node_meta.c, and
 * node_run_path() of node.h) --- */
int node_save_sb(struct node *n);
int node_save_bm(struct node *n); /* the bitmap to the metadata: 0, or -1 logged */
void node_bm_empty(struct bitmap *bm);
void node_mark_out_of_sync(struct node *n, uint64_t off, uint64_t len);
uint64_t node_random(void);
uint64_t node_now_ns(void);
const char *node_disk_name(const struct node *n);
const char *node_mode_name(const struct node *n);
const char *node_role_name(bool primary);

/* --- lifecycle and roles (node.c; the parts below call them through
 * struct node_up, only the control commands by name) --- */
int node_promote(struct node *n, bool force, bool discard, char *why, size_t whylen);
bool node_demote(struct node *n); /* true: finished at once */
void node_begin_stop(struct node *n);

/* --- the replication stream: the primary's side (primary.c) and the
 * secondary's (secondary.c) --- */
/* Resync and verify chunks against the export's writes (rule 4): the
 * struct resync_ops lock, unlock and app_busy of every peer's walks. */
bool node_chunk_lock(struct node *n, struct repl_req *rr);
void node_chunk_unlock(struct node *n, struct repl_req *rr);
bool node_chunk_app_busy(struct node *n);
int node_send(struct node *n, struct msg_hdr *h, const void *payload, struct repl_req *rr,
	      enum stream_kind kind);
void node_flush_peer(struct node *n);
bool node_frozen(const struct node *n);
enum repl_verdict node_repl_submit(void *arg, struct repl_req *rr);
void node_repl_end(void *arg, struct repl_req *rr);
void node_repl_abandon(void *arg, struct repl_req *rr);
void node_repl_flush_done(void *arg, int err);
void node_repl_wake(void *arg);
double node_lag_seconds(const struct node *n);
void node_repl_complete(struct node *n, uint64_t seq, int err);
void node_repl_ack(void *arg, const struct msg_hdr *h);
void node_release_held(struct node *n);
void node_resend_held(struct node *n);
void node_repl_fail_all(struct node *n);
void node_released(void *arg, const void *payload);
void node_disk_tick(struct node *n);
void node_apply(struct node *n, struct sync *from, const struct msg_hdr *h,
		const uint8_t *payload);
bool node_primary_freezes(const struct node *n);
void node_may_lag(struct node *n, const char *why);
void node_disk_repaired(struct node *n);

/* --- the peers, each a struct sync (daemon/repl/sync.h: sync.c and
 * node_sync.c); these act on all of them --- */
int node_add_peer(struct node *n); /* 0, or -1 (out of memory) */
int node_start_peers(struct node *n);
void node_free_peers(struct node *n);
bool node_connected(const struct node *n);    /* a peer's link is up */
bool node_peer_primary(const struct node *n); /* a connected peer is primary */
void node_send_state(struct node *n);	      /* STATE to each (a role or mode changed) */
void node_links_enable(struct node *n, bool on);
void node_relock(struct node *n);	  /* see sync_relock() */
void node_reconsider(struct node *n);	  /* the generations changed */
void node_resync_if_due(struct node *n);
void node_pump(void *arg); /* a loop hook */
/* The pair replicates the smallest data area of the node and its
 * connected peers; without one, the size agreed at the last connect (kept
 * in the superblock), so that a primary that comes back alone does not
 * export more than its peer can hold. */
uint64_t node_export_size(const struct node *n);
void node_agree_size(struct node *n); /* at connect: recorded for later starts */
const char *node_peer_disk(const struct sync *s); /* for status and logs */

/* The peer the replication stream goes to: the stream is one per node
 * until it moves into struct sync. */
static inline struct sync *node_stream_peer(const struct node *n)
{
	assert(n->npeers == 1);
	return n->peers[0];
}

#endif
