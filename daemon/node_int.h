/* The node daemon's parts, shared by daemon/node*.c only: the struct
 * every part works on, and the functions one part calls in another.
 * Nothing outside daemon/node*.c includes this; node.h is the interface. */
#ifndef BLKREP_NODE_INT_H
#define BLKREP_NODE_INT_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>
#include <xxhash.h>
#include "daemon/meta/alog.h"
#include "daemon/node.h"
#include "daemon/dev/attach.h"
#include "daemon/dev/devices.h"
#include "daemon/repl/apply.h"
#include "daemon/config.h"
#include "daemon/dev/fusefile.h"
#include "daemon/ctl/control.h"
#include "daemon/meta/gen.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "daemon/meta/mdio.h"
#include "utils/offload.h"
#include "daemon/meta/meta.h"
#include "proto/peer.h"
#include "daemon/repl/resync.h"
#include "daemon/meta/savefile.h"
#include "nbd/server.h"
#include "daemon/repl/stream.h"
#include "nbd/client.h"
#include "nbd/kernel.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "utils/bitmap.h"
#include "utils/log.h"

#define NODE_POOL      (64U << 20)
#define TICK_S	       1	   /* idle flushes, so that bits and the log drain */
#define RS_FLUSH_BYTES (32U << 20) /* resync data between peer flushes */
#define DISK_RETRY_MAX_S 8	   /* reconnects after disk errors, at most this far apart */

#define FLUSHES_MAX 8 /* the secondary's fdatasyncs in flight */

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
};

/* This node's part in the resync after a connect. */
enum rs_role { RS_NONE, RS_SOURCE, RS_TARGET };

struct node {
	const struct node_up *up;
	struct loop *loop;
	struct config *cfg;
	const struct config_node *me;
	const struct config_node *other;
	uint8_t secret[CONFIG_SECRET_MAX];
	size_t secret_len;
	struct mdio *md;
	struct meta_sb sb;
	struct bitmap *bm;
	struct alog *alog;
	struct resync *rs;
	struct resync *vf;	  /* `blkrep verify`: the same walk over every extent */
	struct devices *dev;	/* /dev/nbdN, attach --loop, restore-saved */
	struct bitmap *vf_todo;
	uint64_t vf_differ;  /* extents found different */
	bool vf_ran;	     /* a verify ran since start (its result is shown) */
	uint8_t *vf_buf;     /* the peer's verify requests are read here */
	bool exchanging;     /* bitmaps are being exchanged */
	bool primary;
	bool crashed;		/* came up after a crash as primary, not yet resynced */
	bool demoting;		/* demoted, the crashed-primary flag not yet cleared */
	struct control_req *demote_req; /* `secondary`, answered once that is done */
	bool resumed;		/* primary because it went down as one, not by command */
	bool split_brain;	/* the last connect found that both wrote as primary */
	bool discard_local;	/* `resolve --discard-local`: become the target */
	uint64_t saved_for;	/* the generation whose own changes were saved */
	bool gen_moved;	       /* wrote alone since the link went: a new generation */
	bool peer_outdated;    /* `blkrep outdate-peer`: a frozen primary may go on */
	uint64_t export_bytes; /* what the NBD export offers while primary */
	struct server *srv;
	struct server *retiring; /* stopped, freed once done */
	struct peer *peer;
	struct control *ctl;
	bool peer_up;
	struct msg_hello peer_hello;
	struct ioop sig_op;
	int sigfd;
	struct signalfd_siginfo si;
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	bool stopping;
	int ready_fd;
	uint64_t writes;
	uint64_t replicated_bytes;
	uint64_t resynced_bytes;
	/* The replication stream to the peer: sequence numbers, messages
	 * awaiting answers, flush covering (rule 2), wide requests (rule 9),
	 * held requests, the async lag (daemon/repl/stream.h). */
	struct stream *stream;
	int data_fd;	       /* the data area, for the peer's writes and resync */
	struct flush_op flushes[FLUSHES_MAX];
	/* After a connect: the verdict, the bitmap exchange, the resync. */
	enum gen_verdict verdict;
	enum rs_role rs_role;
	uint64_t bm_sent_page; /* next page of our bitmap to send */
	bool bm_sent;	       /* our last chunk is queued */
	bool peer_bm_done;     /* the peer's last chunk arrived */
	bool rs_final;	       /* the source's pass is over: flush, then check */
	uint64_t rs_recv_bytes; /* the target's progress */
	uint64_t rs_recv_total;
	uint64_t rs_recv_start_ns;
	/* The secondary's disk failed a replicated write (DRBD's
	 * on-io-error=detach, made short): the disk is outdated, the range in
	 * the bitmap, the link dropped; at disk_retry_ns it reconnects, so that
	 * the bitmap exchange and resync repair it.  The backoff doubles up to
	 * DISK_RETRY_MAX_S while the disk keeps failing. */
	char disk_error[256]; /* for status, until a resync repaired it */
	uint64_t disk_retry_ns;
	unsigned disk_backoff_s;
	bool disk_md_unsaved; /* the metadata could not record it yet */
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
uint64_t node_export_size(const struct node *n);
void node_agree_size(struct node *n);
const char *node_disk_name(const struct node *n);
const char *node_mode_name(const struct node *n);
const char *node_role_name(bool primary);
const char *node_peer_disk(const struct node *n);

/* --- lifecycle and roles (node.c; the parts below call them through
 * struct node_up, only the control commands by name) --- */
int node_promote(struct node *n, bool force, bool discard, char *why, size_t whylen);
bool node_demote(struct node *n); /* true: finished at once */
void node_begin_stop(struct node *n);

/* --- the replication stream (node_repl.c) --- */
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
void node_release_held(struct node *n);
void node_resend_held(struct node *n);
void node_repl_fail_all(struct node *n);
void node_released(void *arg, const void *payload);
void node_arm_tick(struct node *n);
void node_on_tick(struct ioop *op, int res);
void node_apply(struct node *n, const struct msg_hdr *h, const uint8_t *payload);
bool node_primary_freezes(const struct node *n);
void node_may_lag(struct node *n, const char *why);
void node_disk_repaired(struct node *n);

/* --- connect, resync, verify, the peer link (node_sync.c) --- */
bool node_become_target(struct node *n); /* false: not recorded, link dropped */
void node_send_bitmap(struct node *n);
bool node_rs_lock(void *arg, struct repl_req *rr);
void node_rs_unlock(void *arg, struct repl_req *rr);
int node_rs_send(void *arg, struct repl_req *rr);
void node_rs_idle(void *arg);
bool node_rs_app_busy(void *arg);
void node_resync_check(struct node *n);
void node_resync_now(struct node *n);
void node_resync_if_due(struct node *n);
int node_vf_send(void *arg, struct repl_req *rr);
void node_vf_idle(void *arg);
void node_cmd_verify(struct node *n, struct control_req *req);
void node_pump(void *arg);
void node_reconsider(struct node *n);
int node_start_peer(struct node *n);

/* --- status and control commands (node_ctl.c) --- */
void node_handle(void *arg, struct control_req *req);

#endif
