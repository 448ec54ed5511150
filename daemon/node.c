/* A node of a replicated resource.  See node.h.
 *
 * State lives in the superblock (role at shutdown, crash flag, disk state,
 * generations) and the dirty bitmap; this file decides when they change and
 * writes them back.  Until a write is known to be on the peer it is marked
 * out of sync before it is submitted, so a later resync copies it. */
#include "node.h"

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

#include "daemon/alog.h"
#include "daemon/attach.h"
#include "daemon/apply.h"
#include "daemon/config.h"
#include "daemon/fusefile.h"
#include "daemon/control.h"
#include "daemon/gen.h"
#include "daemon/ioop.h"
#include "daemon/loop.h"
#include "daemon/mdio.h"
#include "daemon/offload.h"
#include "daemon/meta.h"
#include "daemon/peer.h"
#include "daemon/resync.h"
#include "daemon/savefile.h"
#include "daemon/server.h"
#include "nbd/client.h"
#include "nbd/kernel.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "utils/bitmap.h"
#include "utils/fifo.h"
#include "utils/log.h"

#define NODE_POOL	(64U << 20)
#define REPL_MAX	4096	/* messages awaiting the peer's answer */
#define TICK_S		1	/* idle flushes, so that bits and the log drain */
#define RS_FLUSH_BYTES	(32U << 20)	/* resync data between peer flushes */

/* What a message awaiting its answer was. */
enum out_kind {
	OUT_NONE,
	OUT_APP,	/* a client's request whose reply waits for the answer (sync) */
	OUT_ASYNC,	/* a client's write already answered (async): its copy */
	OUT_FLUSH,	/* the node's own FLUSH, or an async barrier */
	OUT_RESYNC,	/* a resync chunk */
	OUT_VERIFY,	/* a verify chunk: the answer is the peer's checksums */
};

struct outstanding {
	struct repl_req *rr;	/* OUT_APP: a client's; OUT_RESYNC: the resync's */
	void *copy;		/* OUT_ASYNC: the payload's copy in the lag FIFO */
	uint64_t seq;
	uint64_t epoch;		/* a FLUSH: the epoch it closes */
	uint64_t offset;	/* the range it writes (none for a FLUSH) */
	uint32_t length;
	uint32_t copied;	/* bytes of copy, counted in lag_bytes */
	uint64_t sent_ns;
	enum out_kind kind;
};

#define FLUSHES_MAX	8	/* the secondary's fdatasyncs in flight */

/* A FLUSH from the peer, applied through the ring: later writes go on
 * meanwhile, and its FLUSH_ACK follows the fdatasync. */
struct flush_op {
	struct ioop op;
	struct node *n;
	uint64_t seq;
	uint64_t link;		/* the connection it came on */
	bool busy;
};

/* This node's part in the resync after a connect. */
enum rs_role { RS_NONE, RS_SOURCE, RS_TARGET };

struct node {
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
	struct resync *vf;	/* `blkrep verify`: the same walk over every extent */
	struct fusefile *ff;	/* `attach --loop` */
	int loop_index;		/* its /dev/loopN */
	struct offload *off;	/* binds and unbinds it off the loop */
	struct nbdk_monitor *mon;	/* LINK_DEAD events for /dev/nbdN */
	struct ioop mon_op;
	struct control_req *ff_req;	/* the request waiting for that */
	bool ff_down;		/* ... which is `down --detach` */
	char ff_err[512];
	struct bitmap *vf_todo;
	uint64_t vf_differ;	/* extents found different */
	bool vf_ran;		/* a verify ran since start (its result is shown) */
	uint8_t *vf_buf;	/* the peer's verify requests are read here */
	bool exchanging;	/* bitmaps are being exchanged */
	uint64_t mode_drain;	/* lag to drain when `mode sync` was asked */
	bool primary;
	bool crashed;		/* came up after a crash as primary, not yet resynced */
	bool resumed;		/* primary because it went down as one, not by command */
	bool split_brain;	/* the last connect found that both wrote as primary */
	bool discard_local;	/* `resolve --discard-local`: become the target */
	uint64_t saved_for;	/* the generation whose own changes were saved */
	char restore_path[512];	/* `restore-saved`, running off the loop */
	struct control_req *restore_req;
	uint64_t restore_bytes;
	uint64_t restore_cookie;
	int restore_fd;
	bool gen_moved;		/* wrote alone since the link went: a new generation */
	bool peer_outdated;	/* `blkrep outdate-peer`: a frozen primary may go on */
	uint64_t export_bytes;	/* what the NBD export offers while primary */
	struct server *srv;
	struct server *retiring;	/* stopped, freed once done */
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
	/* Rule 2: a write the peer acknowledged is in its page cache, not on
	 * its disk, until a FLUSH sent after it is acknowledged.  Ranges sent
	 * since the last such FLUSH are in unflushed; covering holds those the
	 * FLUSH covering_seq covers.  If the link drops first, both go into
	 * the persistent bitmap.  clear_pending and clear_covering are the
	 * same for resync chunks: their bits leave the bitmap once covered. */
	struct bitmap *unflushed;
	struct bitmap *covering;
	struct bitmap *clear_pending;
	struct bitmap *clear_covering;
	uint64_t covering_seq;	/* the FLUSH that covers them; 0 for none */
	uint64_t epoch;		/* writes sent now are in this epoch */
	int data_fd;		/* the data area, for the peer's writes and resync */
	struct flush_op flushes[FLUSHES_MAX];
	uint64_t link;		/* counts connections, for answers that outlive one */
	struct outstanding out[REPL_MAX];	/* by seq % REPL_MAX */
	unsigned noutstanding;
	/* Under freeze, client requests the peer never answered: their replies
	 * wait for the peer's return or `blkrep outdate-peer`. */
	struct repl_req *held[REPL_MAX];
	unsigned nheld;
	uint64_t next_seq;
	/* Async mode: payload copies of answered writes wait in lag until the
	 * peer acknowledges them, lag_bytes of them, at most max_lag. */
	struct fifo *lag;
	uint64_t lag_bytes;
	uint64_t max_lag;
	/* After a connect: the verdict, the bitmap exchange, the resync. */
	enum gen_verdict verdict;
	enum rs_role rs_role;
	uint64_t bm_sent_page;	/* next page of our bitmap to send */
	bool bm_sent;		/* our last chunk is queued */
	bool peer_bm_done;	/* the peer's last chunk arrived */
	bool rs_final;		/* the source's pass is over: flush, then check */
	uint64_t rs_since_flush;
	uint64_t rs_recv_bytes;	/* the target's progress */
	uint64_t rs_recv_total;
	uint64_t rs_recv_start_ns;
	char ctl_path[256];
	char pid_path[256];
	char log_path[256];
};

/* --- paths, readiness --- */

int node_run_path(char *buf, size_t len, const char *resource, const char *node,
		  const char *suffix)
{
	char *dot;

	/* The control socket's path, with this suffix instead of "ctl". */
	if (control_path(buf, len, NULL, resource, node) < 0)
		return -1;
	dot = strrchr(buf, '.');
	if (!dot || (size_t)(dot + 1 - buf) + strlen(suffix) + 1 > len)
		return -1;
	strcpy(dot + 1, suffix);
	return 0;
}

/* systemd's readiness protocol, without linking libsystemd. */
static void node_sd_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* The parent `blkrep up` returns once it reads READY; later log lines go
 * to the node's log file. */
static void node_ready(struct node *n)
{
	int logfd;

	node_sd_notify("READY=1");
	if (n->ready_fd < 0)
		return;
	if (write(n->ready_fd, "READY\n", 6) != 6)
		log_warn("cannot tell blkrep up that the daemon is ready");
	logfd = open(n->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd >= 0) {
		(void)dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	close(n->ready_fd);
	n->ready_fd = -1;
}

static int node_write_pid(struct node *n)
{
	FILE *f = fopen(n->pid_path, "we");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
		log_err("%s: %s", n->pid_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* --- metadata --- */

static int node_save_sb(struct node *n)
{
	char err[512];

	if (mdio_write_sb(n->md, &n->sb, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

static void mark_range(struct bitmap *bm, uint64_t ext, uint64_t off, uint64_t len)
{
	if (len)
		bitmap_set_range(bm, off / ext, (off + len + ext - 1) / ext - off / ext);
}

/* Every bit of from goes into to (or out of it, when set is false). */
static void bitmap_apply(struct bitmap *to, const struct bitmap *from, bool set)
{
	for (uint64_t b = bitmap_next_set(from, 0); b < bitmap_nbits(from);
	     b = bitmap_next_set(from, b + 1)) {
		if (set)
			bitmap_set(to, b);
		else
			bitmap_clear(to, b);
	}
}

static void bitmap_empty(struct bitmap *bm)
{
	bitmap_clear_range(bm, 0, bitmap_nbits(bm));
}

/* The peer may not hold this range: record it in the persistent bitmap,
 * where no pending flush may clear it. */
static void node_mark_out_of_sync(struct node *n, uint64_t off, uint64_t len)
{
	uint64_t ext = n->sb.extent_bytes;

	if (!len)
		return;
	mark_range(n->bm, ext, off, len);
	bitmap_clear_range(n->clear_pending, off / ext, (off + len + ext - 1) / ext - off / ext);
	bitmap_clear_range(n->clear_covering, off / ext, (off + len + ext - 1) / ext - off / ext);
}

/* Adds every bit of from to the persistent bitmap and empties from. */
static void node_merge_unflushed(struct node *n, struct bitmap *from)
{
	bitmap_apply(n->bm, from, true);
	bitmap_empty(from);
}

static uint64_t node_random(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	return r;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000U + (uint64_t)t.tv_nsec;
}

/* --- the stream to the peer --- */

/* Queues h (and payload) for the peer with the next sequence number and
 * remembers what it was until the answer.  0, -ENOBUFS (no room: wait for
 * node_repl_wake()) or another -errno (the link is going). */
static int node_send(struct node *n, struct msg_hdr *h, const void *payload,
		     struct repl_req *rr, enum out_kind kind)
{
	uint32_t copied = kind == OUT_ASYNC ? h->length : 0;
	bool writes = h->type != MSG_FLUSH && kind != OUT_VERIFY;
	struct outstanding *o = &n->out[n->next_seq % REPL_MAX];
	int rc;

	if (o->kind != OUT_NONE)
		return -ENOBUFS;	/* every place is taken */
	h->seq = n->next_seq;
	rc = peer_send_ref(n->peer, h, payload);	/* kept until the answer */
	if (rc < 0)
		return rc;
	*o = (struct outstanding){ .rr = rr, .seq = n->next_seq, .epoch = n->epoch,
				   .kind = kind, .offset = h->offset, .length = writes ? h->count : 0,
				   .copy = copied ? (void *)(uintptr_t)payload : NULL,
				   .copied = copied, .sent_ns = copied ? now_ns() : 0 };
	n->lag_bytes += copied;
	n->next_seq++;
	n->noutstanding++;
	if (h->type == MSG_FLUSH) {
		n->epoch++;	/* later writes are not covered by it */
		if (!n->covering_seq) {
			struct bitmap *t = n->covering, *c = n->clear_covering;

			n->covering = n->unflushed;
			n->unflushed = t;
			n->clear_covering = n->clear_pending;
			n->clear_pending = c;
			n->covering_seq = o->seq;
		}
		n->rs_since_flush = 0;
	} else if (kind == OUT_RESYNC) {
		mark_range(n->clear_pending, n->sb.extent_bytes, h->offset, h->count);
		n->rs_since_flush += h->count;
	} else if (writes) {
		mark_range(n->unflushed, n->sb.extent_bytes, h->offset, h->count);
	}
	return 0;
}

/* A FLUSH of the node's own: so that bits and activity-log extents that
 * wait for one can go, and to close a resync pass. */
static void node_flush_peer(struct node *n)
{
	struct msg_hdr h = { .type = MSG_FLUSH, .flags = MSG_F_NOBARRIER };

	if (n->peer_up && node_send(n, &h, NULL, NULL, OUT_FLUSH) == -ENOBUFS)
		log_debug("no room for a FLUSH to the peer now; later");
}

static uint16_t repl_msg_type(uint16_t nbd_type)
{
	switch (nbd_type) {
	case NBD_CMD_WRITE:
		return MSG_WRITE;
	case NBD_CMD_TRIM:
		return MSG_TRIM;
	case NBD_CMD_WRITE_ZEROES:
		return MSG_ZERO;
	default:
		return MSG_FLUSH;
	}
}

/* --- replication: the primary's side --- */

/* Under on-peer-loss = freeze, a primary without its peer holds writes
 * until the peer is back or an operator outdates it. */
static bool node_frozen(const struct node *n)
{
	return n->primary && !n->peer_up && !n->peer_outdated &&
	       config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE;
}

/* The first write without the peer starts a new generation, so that the
 * next connect knows this side moved on (DESIGN.md, generations). */
static int node_write_alone(struct node *n, const struct repl_req *rr)
{
	if (!n->gen_moved) {
		struct gen_ids before = n->sb.gen;

		gen_new_current(&n->sb.gen, node_random());
		if (node_save_sb(n) < 0) {
			n->sb.gen = before;
			return -1;
		}
		n->gen_moved = true;
		log_info("writing without %s: new generation %016" PRIx64, n->other->name,
			 n->sb.gen.current);
	}
	node_mark_out_of_sync(n, rr->offset, rr->length);
	return 0;
}

/* A range too wide for the activity log is covered by the bitmap, on disk
 * before the write is submitted; bits that were clear leave it again once
 * a peer FLUSH covers the write. */
static int node_cover_wide(struct node *n, const struct repl_req *rr)
{
	uint64_t ext = n->sb.extent_bytes, first = rr->offset / ext;
	uint64_t end = (rr->offset + rr->length + ext - 1) / ext;
	char err[512];

	for (uint64_t b = first; b < end; b++) {
		if (!bitmap_test(n->bm, b) && n->peer_up)
			bitmap_set(n->clear_pending, b);
		bitmap_set(n->bm, b);
	}
	if (mdio_write_bitmap(n->md, n->bm, err, sizeof(err)) == 0)
		return 0;
	log_err("%s", err);
	return -1;
}

/* Before a client's write is submitted: the activity log (rule 1), the
 * freeze policy, and the bitmap when there is no peer.  REPL_BUSY to wait,
 * -1 for a metadata failure, 0 to go on. */
static int node_admit(struct node *n, struct repl_req *rr)
{
	if (node_frozen(n))
		return REPL_BUSY;
	switch (alog_begin(n->alog, rr->offset, rr->length, n->epoch)) {
	case ALOG_WAIT:
		if (alog_want_flush(n->alog))
			node_flush_peer(n);
		return REPL_BUSY;
	case ALOG_WIDE:
		if (node_cover_wide(n, rr) < 0)
			return REPL_BUSY;
		break;
	case ALOG_GO:
		break;
	}
	if (!n->peer_up && node_write_alone(n, rr) < 0) {
		alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY;
	}
	return 0;
}

/* Async mode: the request goes to the peer, but its reply waits only for
 * the local disk.  A WRITE's payload is copied into the lag FIFO (the
 * client's buffer is reused once it is answered); at max_lag bytes not yet
 * acknowledged by the peer, new writes wait.  A FLUSH is a barrier in the
 * stream, applied by the peer with an fdatasync. */
static int node_repl_async(struct node *n, struct repl_req *rr, struct msg_hdr *h)
{
	bool write = rr->type != NBD_CMD_FLUSH;
	void *copy = NULL;
	int rc;

	if (h->length && ((n->lag_bytes && n->lag_bytes + h->length > n->max_lag) ||
			  !(copy = fifo_alloc(n->lag, h->length)))) {
		alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY;	/* woken as the peer acknowledges */
	}
	if (copy)
		memcpy(copy, rr->payload, h->length);
	rc = node_send(n, h, copy, NULL, write ? OUT_ASYNC : OUT_FLUSH);
	if (rc == -ENOBUFS) {
		if (copy)
			(void)fifo_unalloc(n->lag, copy, h->length);
		if (write)
			alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY;
	}
	n->writes += write;
	if (rc < 0 && write)
		node_mark_out_of_sync(n, rr->offset, rr->length);
	if (rc == 0)
		n->replicated_bytes += h->length;
	return REPL_LOCAL;
}

/* Sends a write-type request or FLUSH to the peer.  Its reply then waits
 * for the peer's ACK or FLUSH_ACK: sync mode. */
static int node_repl_submit(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	bool write = rr->type != NBD_CMD_FLUSH;
	struct msg_hdr h = { .type = repl_msg_type(rr->type) };
	int rc;

	if (write && (rc = node_admit(n, rr)) != 0)
		return rc;
	if (!n->peer_up) {
		n->writes += write;
		return REPL_LOCAL;
	}
	if (write) {
		h.offset = rr->offset;
		h.count = rr->length;
		h.flags = (rr->flags & NBD_CMD_FLAG_FUA ? MSG_F_FUA : 0) |
			  (h.type == MSG_ZERO && (rr->flags & NBD_CMD_FLAG_NO_HOLE) ?
				   MSG_F_NO_HOLE : 0);
	}
	if (h.type == MSG_WRITE)
		h.length = rr->length;
	if (n->sb.mode == META_MODE_ASYNC)
		return node_repl_async(n, rr, &h);
	rc = node_send(n, &h, h.length ? rr->payload : NULL, rr, OUT_APP);
	if (rc == -ENOBUFS) {
		if (write)
			alog_end(n->alog, rr->offset, rr->length);
		return REPL_BUSY;	/* retried from node_repl_wake() */
	}
	n->writes += write;
	if (rc < 0) {	/* the link is going */
		if (write)
			node_mark_out_of_sync(n, rr->offset, rr->length);
		return REPL_LOCAL;
	}
	n->replicated_bytes += h.length;
	return REPL_SENT;
}

/* A client's write accepted by node_repl_submit() is answered. */
static void node_repl_end(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	alog_end(n->alog, rr->offset, rr->length);
}

/* The peer's send queue has room again, an answer freed a place, or the
 * activity log moved on: parked requests and the resync try again. */
static void node_repl_wake(void *arg)
{
	struct node *n = arg;

	if (n->srv)
		server_repl_wake(n->srv);
}

static void node_resync_check(struct node *n);
static void node_send_bitmap(struct node *n);
static void node_reconsider(struct node *n);

/* The FLUSH closing epoch was acknowledged (err 0) or failed. */
static void node_flush_acked(struct node *n, uint64_t seq, uint64_t epoch, int err)
{
	if (!err)
		alog_flushed(n->alog, epoch);
	if (seq != n->covering_seq)
		return;
	if (err) {
		node_merge_unflushed(n, n->covering);
	} else {
		bitmap_empty(n->covering);
		bitmap_apply(n->bm, n->clear_covering, false);
	}
	bitmap_empty(n->clear_covering);
	n->covering_seq = 0;
	if (bitmap_count(n->clear_pending))
		node_flush_peer(n);	/* resync chunks sent meanwhile */
	node_resync_check(n);
}

/* The peer has an async write: its copy goes. */
static void node_lag_release(struct node *n, const struct outstanding *o)
{
	if (fifo_release(n->lag, o->copy, o->copied) < 0)
		log_err("lag FIFO out of order at request %" PRIu64, o->seq);
	n->lag_bytes -= o->copied;
}

/* Seconds since the oldest write the peer has not acknowledged was sent
 * (for status only: it looks at every place). */
static double node_lag_seconds(const struct node *n)
{
	uint64_t oldest = 0;

	for (unsigned i = 0; i < REPL_MAX && n->lag_bytes; i++) {
		const struct outstanding *o = &n->out[i];

		if (o->kind == OUT_ASYNC && o->copied && (!oldest || o->sent_ns < oldest))
			oldest = o->sent_ns;
	}
	return oldest ? (double)(now_ns() - oldest) / 1e9 : 0;
}

static void node_repl_complete(struct node *n, uint64_t seq, int err)
{
	struct outstanding o = n->out[seq % REPL_MAX];

	if (o.kind == OUT_NONE || o.seq != seq) {
		log_warn("%s acknowledged request %" PRIu64 ", which is not outstanding",
			 n->other->name, seq);
		return;
	}
	n->out[seq % REPL_MAX].kind = OUT_NONE;
	n->noutstanding--;
	node_repl_wake(n);
	if (err)
		log_warn("%s failed a replicated request at %" PRIu64 ": %s", n->other->name,
			 o.rr ? o.rr->offset : 0, strerror(err));
	if (o.length && err)
		node_mark_out_of_sync(n, o.offset, o.length);
	if (o.copied)
		node_lag_release(n, &o);
	if ((o.rr && o.rr->type == NBD_CMD_FLUSH) || o.kind == OUT_FLUSH)
		node_flush_acked(n, seq, o.epoch, err);
	if (o.kind == OUT_APP)
		server_repl_done(o.rr, err);
	else if (o.kind == OUT_RESYNC)
		resync_acked(n->rs, o.rr, err);
}

/* Held replies go out with their local results. */
static void node_release_held(struct node *n)
{
	while (n->nheld)
		server_repl_done(n->held[--n->nheld], ENOTCONN);
}

/* The link is gone: what the peer did not acknowledge stays out of sync,
 * and the clients get the local results, at once or, frozen, later. */
static void node_repl_fail_all(struct node *n)
{
	bool hold = node_frozen(n);

	for (unsigned i = 0; i < REPL_MAX && n->noutstanding; i++) {
		struct outstanding o = n->out[i];

		if (o.kind == OUT_NONE)
			continue;
		n->out[i].kind = OUT_NONE;
		n->noutstanding--;
		if (o.length)
			node_mark_out_of_sync(n, o.offset, o.length);
		if (o.kind == OUT_APP && hold)
			n->held[n->nheld++] = o.rr;
		else if (o.kind == OUT_APP)
			server_repl_done(o.rr, ENOTCONN);
		else if (o.kind == OUT_RESYNC)
			resync_acked(n->rs, o.rr, ENOTCONN);
		else if (o.kind == OUT_VERIFY)
			resync_acked(n->vf, o.rr, ENOTCONN);
	}
	/* Acknowledged but never flushed on the peer: not safe there. */
	node_merge_unflushed(n, n->unflushed);
	node_merge_unflushed(n, n->covering);
	bitmap_empty(n->clear_pending);
	bitmap_empty(n->clear_covering);
	n->covering_seq = 0;
	fifo_reset(n->lag);	/* the peer link released every payload */
	n->lag_bytes = 0;
}

static void node_released(void *arg, const void *payload)
{
	/* The payload belongs to a request whose end waits for the peer's
	 * answer, which comes after the bytes left: nothing to do. */
	(void)arg;
	(void)payload;
}

/* Once a second: a FLUSH to the peer if writes wait for one, so that the
 * out-of-sync record and the activity log drain on an idle volume. */
static void node_arm_tick(struct node *n)
{
	n->tick_ts.tv_sec = TICK_S;
	io_uring_prep_timeout(loop_sqe(n->loop, &n->tick_op), &n->tick_ts, 0, 0);
}

static void node_on_tick(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, tick_op);

	(void)res;
	if (n->peer_up && !n->covering_seq &&
	    (bitmap_count(n->unflushed) || alog_want_flush(n->alog)))
		node_flush_peer(n);
	if (!n->stopping)
		node_arm_tick(n);
}

/* --- replication: the secondary's side --- */

static void node_become_target(struct node *n);

static void node_flush_done(struct ioop *op, int res)
{
	struct flush_op *f = container_of(op, struct flush_op, op);
	struct node *n = f->n;
	struct msg_hdr ack = { .type = MSG_FLUSH_ACK, .seq = f->seq, .count = (uint32_t)-res };

	f->busy = false;
	if (res < 0)
		log_err("applying a replicated FLUSH: %s", strerror(-res));
	if (f->link == n->link && n->peer_up && peer_send(n->peer, &ack, NULL) < 0)
		log_warn("cannot acknowledge a replicated FLUSH: send queue full");
}

/* Starts the fdatasync of a FLUSH: -1 if FLUSHES_MAX are in flight (the
 * caller flushes inline). */
static int node_flush_async(struct node *n, uint64_t seq)
{
	for (int i = 0; i < FLUSHES_MAX; i++) {
		struct flush_op *f = &n->flushes[i];

		if (f->busy)
			continue;
		*f = (struct flush_op){ .op.done = node_flush_done, .n = n, .seq = seq,
					.link = n->link, .busy = true };
		io_uring_prep_fsync(loop_sqe(n->loop, &f->op), n->data_fd, IORING_FSYNC_DATASYNC);
		return 0;
	}
	return -1;
}

/* Applies one replicated request, in stream order, and acknowledges it.
 * Done inline: the stream is applied in order and the peer waits anyway;
 * FLUSH and FUA block the loop for the disk's flush. */
static void node_apply(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };
	int err;

	switch (h->type) {
	case MSG_RESYNC_DATA:
		node_become_target(n);
		n->rs_recv_bytes += h->length;
		/* fall through */
	case MSG_WRITE:
		err = apply_write(n->data_fd, payload, h->length, h->offset, h->flags & MSG_F_FUA);
		break;
	case MSG_TRIM:
	case MSG_ZERO:
		err = apply_zero(n->data_fd, h->offset, h->count, h->flags & MSG_F_NO_HOLE,
				 h->flags & MSG_F_FUA);
		break;
	default:	/* MSG_FLUSH */
		/* A client's FLUSH is a barrier: nothing after it is applied
		 * before it is durable.  The node's own need not wait. */
		if ((h->flags & MSG_F_NOBARRIER) && node_flush_async(n, h->seq) == 0)
			return;
		ack.type = MSG_FLUSH_ACK;
		err = apply_flush(n->data_fd);
		break;
	}
	ack.count = (uint32_t)err;
	if (err)
		log_err("applying a replicated %s at %" PRIu64 ": %s", msg_type_name(h->type),
			h->offset, strerror(err));
	if (peer_send(n->peer, &ack, NULL) < 0)
		log_warn("cannot acknowledge a replicated request: send queue full");
}

/* Under freeze a primary never writes without its peer unless an operator
 * outdates the peer, so a secondary that lost its primary stays up to
 * date (and is promoted without --force: RPO 0). */
static bool node_primary_freezes(const struct node *n)
{
	return config_on_peer_loss(n->cfg) == CONFIG_PEER_LOSS_FREEZE;
}

/* An up-to-date secondary that is not receiving its primary's writes is
 * only consistent: a valid image, perhaps not the newest.  Promoting it
 * then takes --force.  A resync brings it back to up to date. */
static void node_may_lag(struct node *n, const char *why)
{
	if (n->sb.disk != META_DISK_UPTODATE)
		return;
	n->sb.disk = META_DISK_CONSISTENT;
	(void)node_save_sb(n);
	log_warn("disk is now consistent, not up to date: %s", why);
}

/* --- resync --- */

static uint64_t node_export_size(const struct node *n);

/* The first resync data: from now until RESYNC_DONE this node's data is a
 * mix of old and new. */
static void node_become_target(struct node *n)
{
	n->rs_role = RS_TARGET;
	if (n->sb.disk == META_DISK_INCONSISTENT)
		return;
	n->sb.disk = META_DISK_INCONSISTENT;
	(void)node_save_sb(n);
	(void)peer_send_state(n->peer);
	log_info("resync from %s started: disk inconsistent until it is done",
		 n->other->name);
}

/* Sends our bitmap, page by page, for the union at connect: the part
 * that covers the replicated (smaller) area.  Continues from
 * node_writable() when the queue is full. */
static void node_send_bitmap(struct node *n)
{
	uint64_t bits = (node_export_size(n) + n->sb.extent_bytes - 1) / n->sb.extent_bytes;
	uint64_t bytes = (bits + 7) / 8;
	uint64_t pages = (bytes + BITMAP_PAGE_BYTES - 1) / BITMAP_PAGE_BYTES;
	uint8_t page[BITMAP_PAGE_BYTES];
	struct msg_hdr h = { .type = MSG_BITMAP };

	for (; n->peer_up && n->bm_sent_page < pages; n->bm_sent_page++) {
		uint64_t p = n->bm_sent_page, first = p * BITMAP_PAGE_BITS;

		if (bitmap_next_set(n->bm, first) >= first + BITMAP_PAGE_BITS)
			continue;
		(void)bitmap_encode_page(n->bm, p, page);
		h.offset = first;
		h.length = (uint32_t)(bytes - p * BITMAP_PAGE_BYTES < BITMAP_PAGE_BYTES ?
					      bytes - p * BITMAP_PAGE_BYTES : BITMAP_PAGE_BYTES);
		if (peer_send(n->peer, &h, page) == -ENOBUFS)
			return;
	}
	if (!n->peer_up || n->bm_sent || bytes == 0)
		return;
	/* The last chunk repeats the first byte: a chunk is never empty. */
	(void)bitmap_encode_page(n->bm, 0, page);
	h = (struct msg_hdr){ .type = MSG_BITMAP, .flags = MSG_F_LAST, .length = 1 };
	if (peer_send(n->peer, &h, page) == 0)
		n->bm_sent = true;
}

static bool rs_lock(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	return !n->srv || server_repl_lock(n->srv, rr);
}

static void rs_unlock(void *arg, struct repl_req *rr)
{
	struct node *n = arg;

	if (n->srv)
		server_repl_end(n->srv, rr);
	if (n->retiring)
		server_repl_end(n->retiring, rr);
}

static int rs_send(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	struct msg_hdr h = { .type = MSG_RESYNC_DATA, .offset = rr->offset, .count = rr->length,
			     .length = rr->length };
	int rc = node_send(n, &h, rr->payload, rr, OUT_RESYNC);

	if (rc == 0) {
		n->resynced_bytes += rr->length;
		if (n->rs_since_flush >= RS_FLUSH_BYTES && !n->covering_seq)
			node_flush_peer(n);
	}
	return rc;
}

static void rs_idle(void *arg)
{
	struct node *n = arg;

	n->rs_final = true;
	if (bitmap_count(n->clear_pending) && !n->covering_seq)
		node_flush_peer(n);
	node_resync_check(n);
}

static bool rs_app_busy(void *arg)
{
	struct node *n = arg;

	return n->srv && server_repl_busy(n->srv);
}

/* The source is done: every bit is clear and flushed on the peer. */
static void node_resync_done(struct node *n)
{
	struct msg_hdr h = { .type = MSG_RESYNC_DONE };
	uint64_t done, total, bps;
	char err[512];

	resync_finish(n->rs);
	n->rs_role = RS_NONE;
	n->rs_final = false;
	n->crashed = false;
	gen_resync_finished_source(&n->sb.gen);
	(void)node_save_sb(n);
	if (mdio_write_bitmap(n->md, n->bm, err, sizeof(err)) < 0)
		log_err("%s", err);
	(void)peer_send_state(n->peer);
	if (peer_send(n->peer, &h, NULL) < 0)
		log_warn("cannot tell %s that the resync is done; it learns at the next connect",
			 n->other->name);
	resync_progress(n->rs, &done, &total, &bps);
	log_info("resync to %s done: %" PRIu64 " bytes at %" PRIu64 " bytes/s",
		 n->other->name, done, bps);
}

/* After a pass or a flush: finished once nothing is left to send or to
 * clear. */
static void node_resync_check(struct node *n)
{
	uint64_t limit = (node_export_size(n) + n->sb.extent_bytes - 1) / n->sb.extent_bytes;

	if (n->rs_role != RS_SOURCE || !n->rs_final || n->covering_seq ||
	    bitmap_count(n->clear_pending))
		return;
	if (bitmap_next_set(n->bm, 0) >= limit)
		return node_resync_done(n);
	n->rs_final = false;
	resync_next_pass(n->rs);	/* bits set again meanwhile */
}

/* The target: everything is here and flushed. */
static void node_resync_target_done(struct node *n)
{
	char err[512];
	struct gen_ids src = { .current = n->peer_hello.gen_current,
			       .bitmap = n->peer_hello.gen_bitmap };

	memcpy(src.history, n->peer_hello.gen_history, sizeof(src.history));
	gen_resync_finished_target(&n->sb.gen, &src);
	n->crashed = false;	/* what it had in flight was overwritten */
	n->sb.disk = n->peer_hello.disk == MSG_DISK_UPTODATE ? META_DISK_UPTODATE :
							       META_DISK_CONSISTENT;
	bitmap_empty(n->bm);
	if (mdio_write_bitmap(n->md, n->bm, err, sizeof(err)) < 0)
		log_err("%s", err);
	(void)node_save_sb(n);
	n->rs_role = RS_NONE;
	(void)peer_send_state(n->peer);
	log_info("resync from %s done (%" PRIu64 " bytes received): disk %s", n->other->name,
		 n->rs_recv_bytes, meta_disk_name(n->sb.disk));
}

/* Both bitmaps are known: the source starts copying the union. */
static void node_resync_begin(struct node *n)
{
	uint64_t limit = node_export_size(n);
	uint64_t bits = (limit + n->sb.extent_bytes - 1) / n->sb.extent_bytes;
	uint64_t dirty = 0;

	for (uint64_t b = bitmap_next_set(n->bm, 0); b < bits; b = bitmap_next_set(n->bm, b + 1))
		dirty++;
	n->rs_recv_total = dirty * n->sb.extent_bytes;
	n->rs_recv_bytes = 0;
	n->rs_recv_start_ns = now_ns();
	if (n->rs_role != RS_SOURCE)
		return;
	log_info("resync to %s: %" PRIu64 " bytes to copy (%s)", n->other->name,
		 dirty * n->sb.extent_bytes, gen_verdict_name(n->verdict));
	resync_start(n->rs, limit, config_resync_rate(n->cfg));
}

static void node_exchange_bitmaps(struct node *n);

/* A resync while connected (`blkrep resync`, `invalidate`, or the peer
 * asking): the generations are the same, so the primary, or else the
 * up-to-date side, is the source of the union of both bitmaps. */
static void node_resync_now(struct node *n)
{
	if (!n->peer_up || n->exchanging || n->rs_role != RS_NONE)
		return;
	n->verdict = GEN_SAME;
	node_exchange_bitmaps(n);
}

/* A chunk of the peer's bitmap: the union of both sides' changes. */
static void node_peer_bitmap(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	if (!n->exchanging)
		node_resync_now(n);	/* the peer started one: answer with ours */
	(void)bitmap_merge_bytes(n->bm, h->offset, payload, h->length);
	if (!(h->flags & MSG_F_LAST))
		return;
	n->exchanging = false;
	n->peer_bm_done = true;
	node_resync_begin(n);
}

/* --- verify --- */

/* One XXH64 per extent of a chunk, big-endian, into out (room for
 * len / extent_bytes + 1). */
static unsigned chunk_digests(const struct node *n, const uint8_t *p, uint64_t len,
			      uint8_t *out)
{
	unsigned k = 0;

	for (uint64_t at = 0; at < len; at += n->sb.extent_bytes, k++) {
		uint64_t d = XXH64(p + at, len - at < n->sb.extent_bytes ? len - at :
									   n->sb.extent_bytes, 0);

		for (int i = 0; i < 8; i++)
			out[8 * k + (unsigned)i] = (uint8_t)(d >> (56 - 8 * i));
	}
	return k;
}

/* The peer asks for the checksums of a range: read it and answer, in
 * stream order (every write before the request is applied). */
static void node_verify_answer(struct node *n, const struct msg_hdr *h)
{
	static uint8_t digests[MSG_MAX_DIGESTS];
	struct msg_hdr r = { .type = MSG_VERIFY_REPLY, .seq = h->seq };
	ssize_t got;

	if (!n->vf_buf)	/* once, for the largest request the protocol allows */
		n->vf_buf = malloc(MSG_MAX_DATA);
	got = n->vf_buf ? pread(n->data_fd, n->vf_buf, h->count, (off_t)h->offset) : -1;
	if (got == (ssize_t)h->count)
		r.length = 8 * chunk_digests(n, n->vf_buf, h->count, digests);
	else
		r.count = (uint32_t)(got < 0 && n->vf_buf ? errno : EIO);
	if (!r.length)
		r.length = 8;	/* an error still carries one (ignored) checksum */
	if (peer_send(n->peer, &r, digests) < 0)
		log_warn("cannot answer a verify request: send queue full");
}

/* The peer's checksums for a verify chunk: extents that differ become out
 * of sync (`blkrep resync` copies them). */
static void node_verify_compare(struct node *n, struct repl_req *rr, const struct msg_hdr *h,
				const uint8_t *theirs)
{
	static uint8_t mine[MSG_MAX_DIGESTS];
	unsigned k = chunk_digests(n, rr->payload, rr->length, mine);

	if (h->count || h->length != 8 * k) {
		log_warn("verify at %" PRIu64 ": %s could not read it (%s)", rr->offset,
			 n->other->name, strerror(h->count ? (int)h->count : EPROTO));
		node_mark_out_of_sync(n, rr->offset, rr->length);
		n->vf_differ += k;
		return;
	}
	for (unsigned i = 0; i < k; i++) {
		uint64_t off = rr->offset + (uint64_t)i * n->sb.extent_bytes;

		if (memcmp(mine + 8 * i, theirs + 8 * i, 8) == 0)
			continue;
		n->vf_differ++;
		node_mark_out_of_sync(n, off, n->sb.extent_bytes);
		log_warn("verify: the extent at %" PRIu64 " differs on %s", off, n->other->name);
	}
}

static void node_verify_reply(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	struct outstanding o = n->out[h->seq % REPL_MAX];

	if (o.kind != OUT_VERIFY || o.seq != h->seq) {
		log_warn("%s answered verify request %" PRIu64 ", which is not outstanding",
			 n->other->name, h->seq);
		return;
	}
	n->out[h->seq % REPL_MAX].kind = OUT_NONE;
	n->noutstanding--;
	node_verify_compare(n, o.rr, h, payload);
	resync_acked(n->vf, o.rr, 0);
}

static int vf_send(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	struct msg_hdr h = { .type = MSG_VERIFY_REQ, .offset = rr->offset, .count = rr->length };

	return node_send(n, &h, NULL, rr, OUT_VERIFY);
}

static void vf_idle(void *arg)
{
	struct node *n = arg;
	char err[512];

	resync_finish(n->vf);
	if (mdio_write_bitmap(n->md, n->bm, err, sizeof(err)) < 0)
		log_err("%s", err);
	log_info("verify against %s done: %" PRIu64 " extents differ", n->other->name,
		 n->vf_differ);
}

static const char *node_verify_refusal(const struct node *n)
{
	if (!n->peer_up)
		return "verify needs the peer: it is not connected";
	if (!n->primary && n->peer_hello.role == MSG_ROLE_PRIMARY)
		return "run verify on the primary";
	if (resync_running(n->vf))
		return "a verify is already running";
	if (n->rs_role != RS_NONE)
		return "a resync is running: verify after it";
	return NULL;
}

static void node_cmd_verify(struct node *n, struct control_req *req)
{
	const char *no = node_verify_refusal(n);

	if (no) {
		control_reply(req, false, "%s", no);
		return;
	}
	bitmap_set_range(n->vf_todo, 0, bitmap_nbits(n->vf_todo));
	n->vf_differ = 0;
	n->vf_ran = true;
	resync_start(n->vf, node_export_size(n), config_resync_rate(n->cfg));
	control_reply(req, true, "verifying %" PRIu64 " bytes against %s", node_export_size(n),
		      n->other->name);
}

/* Which side copies to which, from the verdict at connect. */
static enum rs_role node_rs_role(const struct node *n)
{
	switch (n->verdict) {
	case GEN_SAME_AL_LOCAL_SOURCE:
	case GEN_BITMAP_LOCAL_SOURCE:
	case GEN_FULL_LOCAL_SOURCE:
		return RS_SOURCE;
	case GEN_SAME_AL_PEER_SOURCE:
	case GEN_BITMAP_PEER_SOURCE:
	case GEN_FULL_PEER_SOURCE:
		return RS_TARGET;
	case GEN_SAME:
		/* Same data: the primary copies whatever either side marked;
		 * without one, the up-to-date side does. */
		if (n->primary)
			return RS_SOURCE;
		if (n->peer_hello.role == MSG_ROLE_PRIMARY)
			return RS_TARGET;
		if ((n->sb.disk == META_DISK_UPTODATE) != (n->peer_hello.disk == MSG_DISK_UPTODATE))
			return n->sb.disk == META_DISK_UPTODATE ? RS_SOURCE : RS_TARGET;
		return RS_NONE;
	default:
		return RS_NONE;
	}
}

/* The link has room again: the bitmap, the resync and parked requests go
 * on. */
static void node_writable(void *arg)
{
	struct node *n = arg;

	node_send_bitmap(n);
	resync_pump(n->rs);
	resync_pump(n->vf);
	node_repl_wake(n);
}

/* A loop hook: the resync retries chunks an application write held. */
static void node_pump(void *arg)
{
	struct node *n = arg;

	resync_pump(n->rs);
	resync_pump(n->vf);
}

/* --- the NBD export while primary --- */

/* The pair replicates the smaller of the two data areas. */
static uint64_t node_export_size(const struct node *n)
{
	if (n->peer_up && n->peer_hello.size_bytes < n->sb.data_bytes)
		return n->peer_hello.size_bytes;
	return n->sb.data_bytes;
}

static int node_start_export(struct node *n)
{
	static const struct repl_ops repl_ops = { .submit = node_repl_submit,
						   .end = node_repl_end };
	struct server_opts o = {
		.path = n->me->backing,
		.name = config_resource_name(n->cfg),
		.pool_bytes = NODE_POOL,
		.size_limit = node_export_size(n),
		.repl = &repl_ops,
		.repl_arg = n,
	};

	n->export_bytes = o.size_limit;
	if (n->me->nbd)
		o.listen[o.nlisten++] = n->me->nbd;
	else
		o.no_listen = true;	/* for /dev/nbdN only */
	n->srv = server_new(n->loop, &o);
	return n->srv ? 0 : -1;
}

/* --- /dev/nbdN --- */

static void node_nbdk_params(const struct node *n, struct nbdk_params *p, char *backend,
			     size_t len)
{
	snprintf(backend, len, "blkrep:%s/%s", n->sb.resource, n->sb.node);
	*p = (struct nbdk_params){
		.size = n->export_bytes,
		.tflags = attach_tflags(),
		.timeout_s = config_timeout_s(n->cfg),
		.dead_conn_timeout_s = config_dead_conn_timeout_s(n->cfg),
		.backend = backend,
	};
}

static void node_reattach(struct node *n);

static void node_arm_monitor(struct node *n)
{
	io_uring_prep_poll_add(loop_sqe(n->loop, &n->mon_op), nbdk_monitor_fd(n->mon), POLLIN);
}

static void node_link_dead(void *arg, int index)
{
	struct node *n = arg;

	if (index != n->sb.nbd_index)
		return;
	log_warn("the kernel gave up on /dev/nbd%d's socket (a request took longer than "
		 "timeout = %u s): reconnecting it", index, config_timeout_s(n->cfg));
	node_reattach(n);
}

static void node_on_monitor(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, mon_op);

	(void)res;
	nbdk_monitor_read(n->mon, node_link_dead, n);
	if (!n->stopping)
		node_arm_monitor(n);
}

/* Listens for LINK_DEAD once a device is attached (netlink only). */
static void node_watch_device(struct node *n)
{
	char err[256];

	if (n->mon || n->sb.nbd_index < 0)
		return;
	n->mon = nbdk_monitor_open(err, sizeof(err));
	if (!n->mon) {
		log_warn("%s", err);
		return;
	}
	n->mon_op.done = node_on_monitor;
	node_arm_monitor(n);
}

/* `attach --loop`: for kernels without nbd.ko.  Not kept in metadata: the
 * FUSE file dies with the daemon, so a restart cannot keep it.  Binding
 * the loop device flushes the file, which this loop serves: a thread does
 * it, and the request is answered when it is done. */
static int ff_bind_work(void *arg)
{
	struct node *n = arg;

	return fusefile_bind(n->ff, n->ff_err, sizeof(n->ff_err));
}

static void ff_bind_done(void *arg, int rc)
{
	struct node *n = arg;
	struct control_req *req = n->ff_req;

	n->ff_req = NULL;
	if (rc < 0) {
		fusefile_stop(n->ff);
		n->ff = NULL;
		control_reply(req, false, "%s", n->ff_err);
		return;
	}
	n->loop_index = rc;
	log_info("attached as /dev/loop%d (FUSE file under the run directory)", rc);
	control_reply(req, true, "/dev/loop%d", rc);
}

static void node_attach_loop(struct node *n, struct control_req *req)
{
	char mnt[256], err[512];

	if (node_run_path(mnt, sizeof(mnt), n->sb.resource, n->sb.node, "fuse") < 0) {
		control_reply(req, false, "run directory path too long");
		return;
	}
	n->ff = attach_loop(n->srv, mnt, n->export_bytes, err, sizeof(err));
	if (!n->ff) {
		control_reply(req, false, "%s", err);
		return;
	}
	n->ff_req = req;
	if (offload_run(n->off, ff_bind_work, ff_bind_done, n) < 0) {
		snprintf(n->ff_err, sizeof(n->ff_err), "cannot start a thread");
		ff_bind_done(n, -1);
	}
}

static int ff_unbind_work(void *arg)
{
	struct node *n = arg;

	return fusefile_unbind(n->ff, n->ff_err, sizeof(n->ff_err));
}

static void node_begin_stop(struct node *n);

static void ff_unbind_done(void *arg, int rc)
{
	struct node *n = arg;
	struct control_req *req = n->ff_req;

	n->ff_req = NULL;
	if (rc < 0) {
		control_reply(req, false, "%s", n->ff_err);
		return;
	}
	fusefile_stop(n->ff);
	n->ff = NULL;
	log_info("detached /dev/loop%d", n->loop_index);
	if (!n->ff_down) {
		control_reply(req, true, "/dev/loop%d detached", n->loop_index);
		return;
	}
	control_reply(req, true, "/dev/loop%d detached; stopping", n->loop_index);
	node_begin_stop(n);
}

/* Detaches the loop device of `attach --loop`; req is answered later. */
static void node_detach_loop(struct node *n, struct control_req *req, bool down)
{
	n->ff_req = req;
	n->ff_down = down;
	if (offload_run(n->off, ff_unbind_work, ff_unbind_done, n) < 0)
		control_reply(req, false, "a device operation is already running");
}

static void node_cmd_attach(struct node *n, struct control_req *req, int argc,
			    char *const *argv)
{
	struct nbdk_params p;
	char backend[160], err[512];
	int index = -1;
	bool loop = argc == 2 && strcmp(argv[1], "--loop") == 0;

	if (argc > 2 || (argc == 2 && !loop && (index = nbdk_parse_device(argv[1])) < 0)) {
		control_reply(req, false, "usage: blkrep attach [/dev/nbdN | --loop]");
		return;
	}
	if (!n->primary || !n->srv) {
		control_reply(req, false, "only a primary attaches the volume: run blkrep primary first");
		return;
	}
	if (n->sb.nbd_index >= 0 || n->ff) {
		control_reply(req, false, "already attached as %s%d", n->ff ? "/dev/loop" : "/dev/nbd",
			      n->ff ? n->loop_index : (int)n->sb.nbd_index);
		return;
	}
	if (offload_busy(n->off)) {
		control_reply(req, false, "a device operation is running");
		return;
	}
	if (loop)
		return node_attach_loop(n, req);
	node_nbdk_params(n, &p, backend, sizeof(backend));
	if (attach_device(n->srv, &index, &p, err, sizeof(err)) < 0) {
		control_reply(req, false, "%s", err);
		return;
	}
	n->sb.nbd_index = index;
	(void)node_save_sb(n);
	log_info("attached as /dev/nbd%d", index);
	node_watch_device(n);
	control_reply(req, true, "/dev/nbd%d", index);
}

/* Detaches the device; false (with the reason in err) if that failed. */
static bool node_detach(struct node *n, char *err, size_t len)
{
	if (n->sb.nbd_index < 0)
		return true;
	if (nbdk_disconnect(n->sb.nbd_index, err, len) < 0)
		return false;
	log_info("detached /dev/nbd%d", (int)n->sb.nbd_index);
	n->sb.nbd_index = -1;
	(void)node_save_sb(n);
	return true;
}

static void node_cmd_detach(struct node *n, struct control_req *req)
{
	char err[512];
	int was = n->sb.nbd_index;

	if (n->ff)
		node_detach_loop(n, req, false);
	else if (was < 0)
		control_reply(req, false, "no device is attached");
	else if (!node_detach(n, err, sizeof(err)))
		control_reply(req, false, "%s", err);
	else
		control_reply(req, true, "/dev/nbd%d detached", was);
}

/* A primary restarted with its device attached: the kernel has kept the
 * device and its I/O waiting (DEAD_CONN_TIMEOUT); give it a new socket. */
static void node_reattach(struct node *n)
{
	struct nbdk_params p;
	char backend[160], err[512];

	if (n->sb.nbd_index < 0 || !n->srv)
		return;
	node_nbdk_params(n, &p, backend, sizeof(backend));
	if (attach_reconnect(n->srv, n->sb.nbd_index, &p, err, sizeof(err)) == 0) {
		log_info("reattached /dev/nbd%d", (int)n->sb.nbd_index);
		node_watch_device(n);
		return;
	}
	log_err("cannot reattach /dev/nbd%d: %s", (int)n->sb.nbd_index, err);
}

/* Frozen, the clients' connections are dropped rather than answered: a
 * write the peer may lack is never acknowledged. */
static void node_stop_export(struct node *n)
{
	bool hard = n->nheld || node_frozen(n);

	if (!n->srv)
		return;
	server_stop(n->srv, hard);
	node_release_held(n);
	n->retiring = n->srv;
	n->srv = NULL;
}

/* A loop hook: frees a stopped export once its last client is gone. */
static void node_reap(void *arg)
{
	struct node *n = arg;

	if (n->retiring && server_done(n->retiring)) {
		server_free(n->retiring);
		n->retiring = NULL;
	}
}

/* --- roles --- */

static const char *node_disk_name(const struct node *n)
{
	return meta_disk_name(n->sb.disk);
}

/* Why this node may not become primary now, or NULL. */
static const char *node_promote_refusal(const struct node *n, bool force, bool discard)
{
	if (n->peer_up && n->peer_hello.role == MSG_ROLE_PRIMARY)
		return "the peer is primary: run blkrep secondary there first";
	switch (n->sb.disk) {
	case META_DISK_UPTODATE:
		return NULL;
	case META_DISK_CONSISTENT:
		return force ? NULL :
			       "this node's data is consistent but may lack writes its "
			       "peer accepted after the link was lost; use primary --force "
			       "to promote it anyway";
	default:
		if (force && n->sb.gen.current == GEN_CREATED)
			return NULL;	/* how a fresh pair starts */
		if (force && discard)
			return NULL;	/* the operator accepts what is missing */
		return n->sb.disk == META_DISK_OUTDATED ?
			       "this node's disk is outdated: it is known to lack writes; "
			       "promote it only with --force --discard-unknown" :
			       "this node's disk is inconsistent (a resync target that did not "
			       "finish): promote it only with --force --discard-unknown";
	}
}

static int node_promote(struct node *n, bool force, bool discard, char *why, size_t whylen)
{
	const char *no = node_promote_refusal(n, force, discard);
	struct meta_sb before = n->sb;

	if (no) {
		snprintf(why, whylen, "%s", no);
		return -1;
	}
	/* The export first: if it cannot start, nothing is recorded. */
	if (node_start_export(n) < 0) {
		snprintf(why, whylen, "cannot start the NBD export on %s (see the log)",
			 n->me->nbd);
		return -1;
	}
	/* A new generation: writes from now on are newer than anything the
	 * peer holds, unless it is connected and receiving them. */
	if (!n->peer_up || n->sb.gen.current == GEN_CREATED)
		gen_new_current(&n->sb.gen, node_random());
	n->gen_moved = !n->peer_up;
	n->sb.disk = META_DISK_UPTODATE;
	n->sb.flags |= META_F_WAS_PRIMARY | META_F_CRASHED_PRIMARY;
	if (node_save_sb(n) < 0) {
		n->sb = before;
		node_stop_export(n);
		snprintf(why, whylen, "cannot write the metadata (see the log)");
		return -1;
	}
	n->primary = true;
	(void)peer_send_state(n->peer);
	log_info("%s/%s is now primary (generation %016" PRIx64 ")", n->sb.resource,
		 n->sb.node, n->sb.gen.current);
	node_reconsider(n);
	return 0;
}

static void node_demote(struct node *n)
{
	n->resumed = false;
	node_stop_export(n);
	n->primary = false;
	n->sb.flags &= ~(META_F_WAS_PRIMARY | META_F_CRASHED_PRIMARY);
	(void)node_save_sb(n);
	(void)peer_send_state(n->peer);
	log_info("%s/%s is now secondary", n->sb.resource, n->sb.node);
}

/* --- stopping --- */

static void node_begin_stop(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = true;
	log_info("stopping");
	node_stop_export(n);
	if (n->peer)
		peer_enable(n->peer, false);
	control_stop(n->ctl);	/* answers already being sent still go out */
}

static bool node_keep_going(void *arg)
{
	struct node *n = arg;

	return !n->stopping || n->retiring || n->srv || !control_idle(n->ctl);
}

/* A clean shutdown: the bitmap and a superblock that says so. */
static int node_clean_shutdown(struct node *n)
{
	char err[512];

	/* Whatever the peer acknowledged but never flushed stays suspect. */
	node_merge_unflushed(n, n->unflushed);
	node_merge_unflushed(n, n->covering);
	if (mdio_write_bitmap(n->md, n->bm, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return -1;
	}
	n->sb.flags |= META_F_CLEAN;
	n->sb.flags &= ~META_F_CRASHED_PRIMARY;
	if (n->primary)
		n->sb.flags |= META_F_WAS_PRIMARY;
	else
		n->sb.flags &= ~META_F_WAS_PRIMARY;
	return node_save_sb(n);
}

static void node_arm_signal(struct node *n)
{
	io_uring_prep_read(loop_sqe(n->loop, &n->sig_op), n->sigfd, &n->si, sizeof(n->si), 0);
}

static void node_on_signal(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, sig_op);

	if (res > 0)
		node_begin_stop(n);
	if (!n->stopping)
		node_arm_signal(n);
}

static int node_signals(struct node *n)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (n->sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		log_err("signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	n->sig_op.done = node_on_signal;
	node_arm_signal(n);
	return 0;
}

/* --- status --- */

static const char *node_mode_name(const struct node *n)
{
	return n->sb.mode == META_MODE_ASYNC ? "async" : "sync";
}

static const char *node_role_name(bool primary)
{
	return primary ? "primary" : "secondary";
}

static const char *node_peer_disk(const struct node *n)
{
	static const char *const names[] = { "inconsistent", "outdated", "consistent",
					     "uptodate" };

	if (!n->peer_up)
		return "unknown";
	return n->peer_hello.disk < 4 ? names[n->peer_hello.disk] : "unknown";
}

static const char *node_connection(const struct node *n)
{
	if (n->split_brain && n->peer && !peer_connected(n->peer))
		return "splitbrain";
	return n->peer ? peer_state(n->peer) : "standalone";
}

static uint64_t node_out_of_sync(const struct node *n)
{
	uint64_t bytes = bitmap_count(n->bm) * n->sb.extent_bytes;

	return bytes < n->sb.data_bytes ? bytes : n->sb.data_bytes;
}

/* JSON strings here are names and fixed words; the peer's last error is
 * free text and is escaped. */
static void json_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; s && *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\%c", ch);
		else if (ch < 0x20)
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

/* The resync running, from either side: bytes done, in all, per second.
 * False when none runs. */
static bool node_resync_progress(const struct node *n, uint64_t *done, uint64_t *total,
				 uint64_t *bps)
{
	uint64_t ns;

	if (n->rs_role == RS_SOURCE && resync_running(n->rs)) {
		resync_progress(n->rs, done, total, bps);
		return true;
	}
	if (n->rs_role != RS_TARGET || !n->peer_bm_done)
		return false;
	ns = now_ns() - n->rs_recv_start_ns;
	*done = n->rs_recv_bytes;
	*total = n->rs_recv_total > *done ? n->rs_recv_total : *done;
	*bps = ns ? (uint64_t)((double)*done * 1e9 / (double)ns) : 0;
	return true;
}

static void node_resync_json(const struct node *n, char *buf, size_t len)
{
	uint64_t done, total, bps;

	if (!node_resync_progress(n, &done, &total, &bps))
		snprintf(buf, len, "null");
	else
		snprintf(buf, len,
			 "{\"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
			 ", \"bytes_per_second\": %" PRIu64 "}", done, total, bps);
}

static void node_status_json(struct node *n, struct control_req *req)
{
	char err[512], rs[160], vf[160], dev[32] = "null";
	uint64_t done, total, bps;

	if (n->ff)
		snprintf(dev, sizeof(dev), "\"/dev/loop%d\"", n->loop_index);
	else if (n->sb.nbd_index >= 0)
		snprintf(dev, sizeof(dev), "\"/dev/nbd%d\"", (int)n->sb.nbd_index);
	json_escape(err, sizeof(err), n->peer ? peer_last_error(n->peer) : "");
	node_resync_json(n, rs, sizeof(rs));
	resync_progress(n->vf, &done, &total, &bps);
	if (n->vf_ran)
		snprintf(vf, sizeof(vf), "{\"running\": %s, \"done_bytes\": %" PRIu64
			 ", \"total_bytes\": %" PRIu64 ", \"differing_extents\": %" PRIu64 "}",
			 resync_running(n->vf) ? "true" : "false", done, total, n->vf_differ);
	else
		snprintf(vf, sizeof(vf), "null");
	control_reply(req, true,
		      "{\"resource\": \"%s\", \"node\": \"%s\", \"role\": \"%s\", "
		      "\"mode\": \"%s\", \"on_peer_loss\": \"%s\", \"disk\": \"%s\", "
		      "\"peer\": {\"name\": \"%s\", \"connection\": \"%s\", \"disk\": \"%s\", "
		      "\"last_error\": \"%s\"}, "
		      "\"size_bytes\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64 ", "
		      "\"lag_bytes\": %" PRIu64 ", \"lag_seconds\": %.3f, "
		      "\"resync\": %s, \"verify\": %s, \"frozen\": %s, \"device\": %s, "
		      "\"stats\": {\"writes\": %" PRIu64 ", \"replicated_bytes\": %" PRIu64 ", "
		      "\"resynced_bytes\": %" PRIu64 "}, \"generation\": \"%016" PRIx64 "\"}\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary), node_mode_name(n),
		      config_peer_loss_name(config_on_peer_loss(n->cfg)), node_disk_name(n),
		      n->other->name, node_connection(n), node_peer_disk(n), err,
		      n->sb.data_bytes, node_out_of_sync(n), n->lag_bytes, node_lag_seconds(n), rs,
		      vf, node_frozen(n) ? "true" : "false", dev,
		      n->writes, n->replicated_bytes, n->resynced_bytes, n->sb.gen.current);
}

/* "  resync [#####.....] 52% 12.0 MiB/s, 3 s left\n", or "" when none
 * runs; a frozen primary says so. */
static void node_resync_text(const struct node *n, char *buf, size_t len)
{
	uint64_t done, total, bps;
	char bar[21];
	unsigned pct;
	int o = 0;

	buf[0] = '\0';
	if (node_frozen(n))
		o = snprintf(buf, len, "  writes frozen: waiting for %s or `blkrep outdate-peer`\n",
			     n->other->name);
	if (!node_resync_progress(n, &done, &total, &bps))
		return;
	pct = total ? (unsigned)(done * 100 / total) : 100;
	for (unsigned i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	snprintf(buf + o, len - (size_t)o,
		 "  resync %s [%s] %u%% of %" PRIu64 " bytes, %.1f MiB/s, ETA %" PRIu64 " s\n",
		 n->rs_role == RS_SOURCE ? "to peer" : "from peer", bar, pct, total,
		 (double)bps / (1 << 20), bps ? (total - done) / bps : 0);
}

static void node_status_text(struct node *n, struct control_req *req)
{
	const char *err = n->peer ? peer_last_error(n->peer) : "";
	char rs[256];

	node_resync_text(n, rs, sizeof(rs));

	control_reply(req, true,
		      "%s/%s: %s, disk %s, %s mode, on peer loss: %s\n"
		      "  peer %s: %s, disk %s%s%s\n"
		      "  data area %" PRIu64 " bytes, %" PRIu64 " bytes out of sync, lag %" PRIu64
		      " bytes (%.1f s)\n"
		      "%s  generation %016" PRIx64 ", %" PRIu64 " writes, %" PRIu64
		      " bytes resynced since start\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary), node_disk_name(n),
		      node_mode_name(n),
		      config_peer_loss_name(config_on_peer_loss(n->cfg)), n->other->name,
		      node_connection(n), node_peer_disk(n), *err ? "\n  last error: " : "",
		      err, n->sb.data_bytes, node_out_of_sync(n), n->lag_bytes, node_lag_seconds(n), rs,
		      n->sb.gen.current, n->writes,
		      n->resynced_bytes);
}

/* --- control commands --- */

static bool has_flag(int argc, char *const *argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static void node_cmd_primary(struct node *n, struct control_req *req, bool force, bool discard)
{
	char why[512];

	if (n->primary) {
		control_reply(req, true, "%s/%s is already primary\n", n->sb.resource, n->sb.node);
		return;
	}
	if (node_promote(n, force, discard, why, sizeof(why)) < 0) {
		control_reply(req, false, "%s", why);
		return;
	}
	control_reply(req, true, "%s/%s is now primary%s%s\n", n->sb.resource, n->sb.node,
		      n->me->nbd ? "; NBD export on " : "", n->me->nbd ? n->me->nbd : "");
}

static void node_cmd_secondary(struct node *n, struct control_req *req)
{
	if (n->sb.nbd_index >= 0 || n->ff) {
		control_reply(req, false, "a device is attached: unmount it and run blkrep "
			      "detach first");
		return;
	}
	if (n->primary)
		node_demote(n);
	control_reply(req, true, "%s/%s is secondary\n", n->sb.resource, n->sb.node);
}

/* The operator says the peer is down or fenced: a frozen primary goes on
 * alone (its writes are then recorded for the peer's resync). */
static void node_cmd_outdate_peer(struct node *n, struct control_req *req)
{
	if (n->peer_up) {
		control_reply(req, false, "%s is connected: it is not outdated", n->other->name);
		return;
	}
	n->peer_outdated = true;
	n->sb.peer_disk = META_DISK_OUTDATED;
	(void)node_save_sb(n);
	node_release_held(n);
	node_repl_wake(n);
	log_warn("operator: %s is outdated; writing without it", n->other->name);
	control_reply(req, true, "%s marked outdated%s\n", n->other->name,
		      n->primary ? "; writes go on without it" : "");
}

/* `mode sync|async`: from the next write on; kept in the superblock.  The
 * CLI then waits (progress mode) until no async write waits for the peer. */
static void node_cmd_mode(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	enum meta_mode m;

	if (argc != 2 || (strcmp(argv[1], "sync") && strcmp(argv[1], "async"))) {
		control_reply(req, false, "usage: blkrep mode sync|async");
		return;
	}
	m = argv[1][0] == 'a' ? META_MODE_ASYNC : META_MODE_SYNC;
	if (m != n->sb.mode) {
		n->sb.mode = m;
		(void)node_save_sb(n);
		log_info("%s mode from now on", node_mode_name(n));
		n->mode_drain = n->lag_bytes;
		(void)peer_send_state(n->peer);	/* the secondary follows */
	}
	control_reply(req, true, "%s/%s: %s mode%s", n->sb.resource, n->sb.node,
		      node_mode_name(n),
		      m == META_MODE_SYNC && n->lag_bytes ? "; waiting for the async lag to drain" : "");
}

/* "progress mode|verify": "running DONE TOTAL" while the work of the
 * command goes on, then "done" and a result line. */
static void node_cmd_progress(struct node *n, struct control_req *req, int argc,
			      char *const *argv)
{
	uint64_t done, total, bps;

	if (argc == 2 && strcmp(argv[1], "mode") == 0) {
		if (n->sb.mode == META_MODE_SYNC && n->lag_bytes)
			control_reply(req, true, "running %" PRIu64 " %" PRIu64,
				      n->mode_drain > n->lag_bytes ? n->mode_drain - n->lag_bytes : 0,
				      n->mode_drain);
		else
			control_reply(req, true, "done%s", n->sb.mode == META_MODE_SYNC ?
				      " every write is synchronous now" : "");
	} else if (argc == 2 && strcmp(argv[1], "verify") == 0) {
		resync_progress(n->vf, &done, &total, &bps);
		if (resync_running(n->vf))
			control_reply(req, true, "running %" PRIu64 " %" PRIu64, done, total);
		else if (n->vf_ran)
			control_reply(req, true, "done %" PRIu64 " bytes compared, %" PRIu64
				      " extents differ (%" PRIu64 " bytes now out of sync)%s",
				      done, n->vf_differ, node_out_of_sync(n),
				      n->vf_differ ? ": run blkrep resync to copy them" : "");
		else
			control_reply(req, false, "no verify has run");
	} else {
		control_reply(req, false, "usage: progress mode|verify");
	}
}

/* `resync`: copy the out-of-sync extents now (after verify found some). */
static void node_cmd_resync(struct node *n, struct control_req *req)
{
	if (!n->peer_up) {
		control_reply(req, false, "the peer is not connected");
		return;
	}
	if (n->rs_role != RS_NONE || n->exchanging) {
		control_reply(req, true, "a resync is already running");
		return;
	}
	node_resync_now(n);
	control_reply(req, true, "resync of %" PRIu64 " bytes (and whatever %s marked) started",
		      node_out_of_sync(n), n->other->name);
}

/* `invalidate` on a secondary: its data is thrown away and copied again
 * from the peer, all of it. */
static void node_cmd_invalidate(struct node *n, struct control_req *req)
{
	if (n->primary) {
		control_reply(req, false, "a primary cannot discard its data: make it "
			      "secondary first");
		return;
	}
	if (n->rs_role != RS_NONE) {
		control_reply(req, false, "a resync is running: invalidate after it");
		return;
	}
	bitmap_set_range(n->bm, 0, bitmap_nbits(n->bm));
	n->sb.disk = META_DISK_INCONSISTENT;
	(void)node_save_sb(n);
	(void)peer_send_state(n->peer);
	node_resync_now(n);
	log_warn("invalidated: all data will be copied again from %s", n->other->name);
	control_reply(req, true, "%s/%s invalidated: %s", n->sb.resource, n->sb.node,
		      n->peer_up ? "a full resync from the peer started" :
				   "a full resync follows when the peer connects");
}

/* `resolve --discard-local [--save-to FILE]`: after a split brain, this
 * node's changes go.  They are saved first; at the next connect this node
 * is the resync target. */
static void node_cmd_resolve(struct node *n, struct control_req *req, int argc,
			     char *const *argv)
{
	char path[512] = "", err[512];
	uint64_t bytes;

	if (argc < 2 || strcmp(argv[1], "--discard-local") != 0 ||
	    (argc != 2 && (argc != 4 || strcmp(argv[2], "--save-to") != 0))) {
		control_reply(req, false, "usage: blkrep resolve --discard-local [--save-to FILE]");
		return;
	}
	if (n->primary || n->peer_up) {
		control_reply(req, false, "%s", n->primary ? "make this node secondary first" :
				  "the pair is connected: there is no split brain to resolve");
		return;
	}
	if (argc == 4)
		snprintf(path, sizeof(path), "%s", argv[3]);
	if (savefile_write(path, sizeof(path), n->sb.resource, n->sb.node, n->data_fd, n->bm,
			   n->sb.extent_bytes, n->sb.data_bytes, &bytes, err, sizeof(err)) < 0) {
		control_reply(req, false, "nothing discarded: %s", err);
		return;
	}
	n->saved_for = n->sb.gen.current;
	n->discard_local = true;
	peer_enable(n->peer, true);
	log_warn("resolve: this node's changes (%" PRIu64 " bytes, saved to %s) are discarded at "
		 "the next connect", bytes, path);
	control_reply(req, true, "saved %" PRIu64 " bytes of this node's changes to %s; they are "
		      "replaced by %s's data when the pair connects", bytes, path, n->other->name);
}

/* `restore-saved FILE` on a primary: the saved writes go through the NBD
 * server like a client's (so they are replicated), from a thread, as they
 * are served by this loop. */
static int restore_write(void *arg, uint64_t off, uint32_t len, const uint8_t *data, char *err,
			 size_t errlen)
{
	struct node *n = arg;
	int rc = nbd_client_call(n->restore_fd, &n->restore_cookie, NBD_CMD_WRITE, 0, off, len, data,
				 NULL);

	if (rc < 0)
		snprintf(err, errlen, "writing %u bytes at %" PRIu64 ": %s", len, off, strerror(-rc));
	return rc < 0 ? -1 : 0;
}

static int restore_work(void *arg)
{
	struct node *n = arg;
	int rc = savefile_read(n->restore_path, n->export_bytes, restore_write, n,
			       &n->restore_bytes, n->ff_err, sizeof(n->ff_err));

	if (rc == 0 && nbd_client_call(n->restore_fd, &n->restore_cookie, NBD_CMD_FLUSH, 0, 0, 0,
				       NULL, NULL) < 0) {
		snprintf(n->ff_err, sizeof(n->ff_err), "the final flush failed");
		rc = -1;
	}
	close(n->restore_fd);
	return rc;
}

static void restore_done(void *arg, int rc)
{
	struct node *n = arg;
	struct control_req *req = n->restore_req;

	n->restore_req = NULL;
	if (rc < 0) {
		control_reply(req, false, "%s (%" PRIu64 " bytes were written back before that)",
			      n->ff_err, n->restore_bytes);
		return;
	}
	log_info("restored %" PRIu64 " bytes from %s", n->restore_bytes, n->restore_path);
	control_reply(req, true, "restored %" PRIu64 " bytes from %s", n->restore_bytes,
		      n->restore_path);
}

static void node_cmd_restore(struct node *n, struct control_req *req, int argc,
			     char *const *argv)
{
	int sv[2];

	if (argc != 2) {
		control_reply(req, false, "usage: blkrep restore-saved FILE");
		return;
	}
	if (!n->primary || !n->srv || offload_busy(n->off)) {
		control_reply(req, false, "%s", !n->primary ? "only a primary writes saved data back" :
				  "another device operation is running");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    server_adopt(n->srv, sv[0], attach_tflags()) < 0) {
		control_reply(req, false, "cannot reach the NBD server: %s", strerror(errno));
		return;
	}
	snprintf(n->restore_path, sizeof(n->restore_path), "%s", argv[1]);
	n->restore_fd = sv[1];
	n->restore_bytes = 0;
	n->restore_req = req;
	if (offload_run(n->off, restore_work, restore_done, n) < 0) {
		close(sv[1]);
		n->restore_req = NULL;
		control_reply(req, false, "cannot start a thread");
	}
}

static void node_cmd_link(struct node *n, struct control_req *req, bool on)
{
	peer_enable(n->peer, on);
	control_reply(req, true, "%s\n", on ? "connecting" : "disconnected");
}

/* `down`: refused while a device is attached, unless --detach (detach
 * first) or --keep-attached (the kernel keeps the device and its I/O
 * waiting for the next `blkrep up`: a planned restart). */
static void node_cmd_down(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	bool detach = has_flag(argc, argv, "--detach"), keep = has_flag(argc, argv, "--keep-attached");
	char err[512];

	if (n->ff && keep) {
		control_reply(req, false, "/dev/loop%d (attach --loop) cannot outlive the daemon: "
			      "unmount it and use down --detach", n->loop_index);
		return;
	}
	if ((n->sb.nbd_index >= 0 || n->ff) && !detach && !keep) {
		control_reply(req, false, "%s%d is attached: unmount it and use down --detach%s",
			      n->ff ? "/dev/loop" : "/dev/nbd",
			      n->ff ? n->loop_index : (int)n->sb.nbd_index,
			      n->ff ? "" : ", or down --keep-attached for a restart");
		return;
	}
	if (detach && n->ff)
		return node_detach_loop(n, req, true);
	if (detach && !node_detach(n, err, sizeof(err))) {
		control_reply(req, false, "%s", err);
		return;
	}
	control_reply(req, true, "stopping\n");
	node_begin_stop(n);
}

static void node_handle(void *arg, struct control_req *req)
{
	struct node *n = arg;
	int argc;
	char *const *argv = control_req_words(req, &argc);
	const char *cmd = argc ? argv[0] : "";

	if (strcmp(cmd, "status") == 0 && has_flag(argc, argv, "--json"))
		node_status_json(n, req);
	else if (strcmp(cmd, "status") == 0)
		node_status_text(n, req);
	else if (strcmp(cmd, "ping") == 0)
		control_reply(req, true, "pong\n");
	else if (n->stopping)
		control_reply(req, false, "the daemon is stopping");
	else if (strcmp(cmd, "primary") == 0)
		node_cmd_primary(n, req, has_flag(argc, argv, "--force"),
				 has_flag(argc, argv, "--discard-unknown"));
	else if (strcmp(cmd, "secondary") == 0)
		node_cmd_secondary(n, req);
	else if (strcmp(cmd, "progress") == 0)
		node_cmd_progress(n, req, argc, argv);
	else if (strcmp(cmd, "outdate-peer") == 0)
		node_cmd_outdate_peer(n, req);
	else if (strcmp(cmd, "mode") == 0)
		node_cmd_mode(n, req, argc, argv);
	else if (strcmp(cmd, "verify") == 0)
		node_cmd_verify(n, req);
	else if (strcmp(cmd, "resync") == 0)
		node_cmd_resync(n, req);
	else if (strcmp(cmd, "invalidate") == 0)
		node_cmd_invalidate(n, req);
	else if (strcmp(cmd, "resolve") == 0)
		node_cmd_resolve(n, req, argc, argv);
	else if (strcmp(cmd, "restore-saved") == 0)
		node_cmd_restore(n, req, argc, argv);
	else if (strcmp(cmd, "connect") == 0 || strcmp(cmd, "disconnect") == 0)
		node_cmd_link(n, req, cmd[0] == 'c');
	else if (strcmp(cmd, "down") == 0)
		node_cmd_down(n, req, argc, argv);
	else if (strcmp(cmd, "attach") == 0)
		node_cmd_attach(n, req, argc, argv);
	else if (strcmp(cmd, "detach") == 0)
		node_cmd_detach(n, req);
	else
		control_reply(req, false, "unknown request '%s'", cmd);
}

/* --- the peer link --- */

static void node_hello(void *arg, struct msg_hello *h)
{
	struct node *n = arg;

	h->role = n->primary ? MSG_ROLE_PRIMARY : MSG_ROLE_SECONDARY;
	h->disk = (uint8_t)n->sb.disk;
	h->size_bytes = n->sb.data_bytes;
	h->extent_bytes = n->sb.extent_bytes;
	h->flags = (n->crashed ? MSG_HELLO_F_CRASHED_PRIMARY : 0) |
		   (n->sb.flags & META_F_ZEROED ? MSG_HELLO_F_ZEROED : 0) |
		   (n->sb.mode == META_MODE_ASYNC ? MSG_HELLO_F_ASYNC : 0) |
		   (bitmap_count(n->bm) ? 0 : MSG_HELLO_F_NO_CHANGES) |
		   (n->discard_local ? MSG_HELLO_F_DISCARD : 0);
	h->gen_current = n->sb.gen.current;
	h->gen_bitmap = n->sb.gen.bitmap;
	memcpy(h->gen_history, n->sb.gen.history, sizeof(h->gen_history));
}

/* Both sides as gen_compare() sees them. */
static void node_gen_sides(const struct node *n, const struct msg_hello *h,
			   struct gen_side *me, struct gen_side *peer)
{
	*me = (struct gen_side){
		.ids = n->sb.gen,
		.crashed_primary = n->crashed,
		.primary = n->primary,
		.zeroed = (n->sb.flags & META_F_ZEROED) != 0,
		.tiebreak = strcmp(n->me->name, n->other->name) < 0,
	};
	*peer = (struct gen_side){
		.ids = { .current = h->gen_current, .bitmap = h->gen_bitmap },
		.crashed_primary = (h->flags & MSG_HELLO_F_CRASHED_PRIMARY) != 0,
		.primary = h->role == MSG_ROLE_PRIMARY,
		.zeroed = (h->flags & MSG_HELLO_F_ZEROED) != 0,
		.tiebreak = !me->tiebreak,
	};
	memcpy(peer->ids.history, h->gen_history, sizeof(peer->ids.history));
}

/* Split brain resolved by the operator (resolve --discard-local on one
 * side) or by after-split-brain = discard-zero-changes: the verdict that
 * makes the discarded side the target, or GEN_SPLIT_BRAIN. */
static enum gen_verdict node_resolve_split(const struct node *n, const struct msg_hello *h)
{
	bool peer_discards = h->flags & MSG_HELLO_F_DISCARD;
	bool mine_none = bitmap_count(n->bm) == 0, peer_none = h->flags & MSG_HELLO_F_NO_CHANGES;

	if (n->discard_local != peer_discards)
		return n->discard_local ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (n->discard_local || config_after_split_brain(n->cfg) != CONFIG_SB_DISCARD_ZERO_CHANGES)
		return GEN_SPLIT_BRAIN;
	if (mine_none != peer_none)
		return mine_none ? GEN_BITMAP_PEER_SOURCE : GEN_BITMAP_LOCAL_SOURCE;
	if (!mine_none)
		return GEN_SPLIT_BRAIN;
	/* Neither changed anything: the primary, else the tiebreak side, wins. */
	if (n->primary || h->role == MSG_ROLE_PRIMARY)
		return n->primary ? GEN_BITMAP_LOCAL_SOURCE : GEN_BITMAP_PEER_SOURCE;
	return strcmp(n->me->name, n->other->name) < 0 ? GEN_BITMAP_LOCAL_SOURCE :
							 GEN_BITMAP_PEER_SOURCE;
}

/* A target that has writes of its own the source may lack (a former
 * primary's, in async mode or alone under continue) saves them before the
 * resync overwrites them.  Once per generation. */
static bool node_save_own(struct node *n, char *why, size_t len)
{
	char path[512] = "", err[512];
	uint64_t bytes;

	if (!bitmap_count(n->bm) || n->sb.disk == META_DISK_INCONSISTENT ||
	    n->saved_for == n->sb.gen.current)
		return true;
	if (savefile_write(path, sizeof(path), n->sb.resource, n->sb.node, n->data_fd, n->bm,
			   n->sb.extent_bytes, n->sb.data_bytes, &bytes, err, sizeof(err)) < 0) {
		snprintf(why, len, "cannot save this node's own changes before the resync "
			 "overwrites them: %s", err);
		log_err("%s", why);
		return false;
	}
	n->saved_for = n->sb.gen.current;
	log_warn("saved %" PRIu64 " bytes of this node's own writes, which %s may lack, to %s "
		 "(blkrep restore-saved FILE on a primary writes them back)", bytes,
		 n->other->name, path);
	return true;
}

/* Why the data of the two sides rules out this connection, or NULL; sets
 * n->verdict. */
static bool node_accept_data(struct node *n, const struct msg_hello *h, char *why, size_t len)
{
	struct gen_side me, peer;

	node_gen_sides(n, h, &me, &peer);
	n->verdict = gen_compare(&me, &peer);
	if (n->verdict == GEN_SPLIT_BRAIN)
		n->verdict = node_resolve_split(n, h);
	switch (n->verdict) {
	case GEN_SPLIT_BRAIN:
		n->split_brain = true;
		gen_verdict_explain(n->verdict, &me, &peer, why, len);
		snprintf(why + strlen(why), len - strlen(why), "; nothing was overwritten: run "
			 "blkrep resolve --discard-local on the node whose changes go");
		return false;
	case GEN_UNRELATED:
		gen_verdict_explain(n->verdict, &me, &peer, why, len);
		return false;
	case GEN_SAME_AL_PEER_SOURCE:
	case GEN_BITMAP_PEER_SOURCE:
	case GEN_FULL_PEER_SOURCE:
		if (!n->primary)
			return node_save_own(n, why, len);
		snprintf(why, len, "this primary's data is older than the peer's (%s): make "
			 "it secondary so that it can receive the resync",
			 gen_verdict_name(n->verdict));
		return false;
	default:
		return true;
	}
}

/* After the verdict: both sides send their bitmaps; the source starts
 * once it has the peer's. */
static void node_exchange_bitmaps(struct node *n)
{
	n->exchanging = true;
	n->rs_role = node_rs_role(n);
	n->rs_final = false;
	n->bm_sent_page = 0;
	n->bm_sent = n->peer_bm_done = false;
	if (n->verdict == GEN_FULL_LOCAL_SOURCE || n->verdict == GEN_FULL_PEER_SOURCE)
		bitmap_set_range(n->bm, 0, bitmap_nbits(n->bm));
	node_send_bitmap(n);
}

/* The generations changed while connected (a fresh pair's first
 * `primary --force`): both sides decide again, and a resync starts if one
 * is due.  Split brain cannot arise here: the link refused two primaries. */
static void node_reconsider(struct node *n)
{
	struct gen_side me, peer;
	enum gen_verdict v;

	if (!n->peer_up || n->rs_role != RS_NONE)
		return;
	node_gen_sides(n, &n->peer_hello, &me, &peer);
	v = gen_compare(&me, &peer);
	/* Only a promotion moves generations while connected; crash flags
	 * were settled at connect. */
	if (v != GEN_BITMAP_LOCAL_SOURCE && v != GEN_BITMAP_PEER_SOURCE &&
	    v != GEN_FULL_LOCAL_SOURCE && v != GEN_FULL_PEER_SOURCE)
		return;
	n->verdict = v;
	log_info("generations changed while connected: %s", gen_verdict_name(v));
	node_exchange_bitmaps(n);
}

/* A secondary takes its primary's mode, so that after a failover the new
 * primary replicates as the old one did. */
static void node_follow_mode(struct node *n)
{
	enum meta_mode m = n->peer_hello.flags & MSG_HELLO_F_ASYNC ? META_MODE_ASYNC :
								    META_MODE_SYNC;

	if (n->primary || n->peer_hello.role != MSG_ROLE_PRIMARY || m == n->sb.mode)
		return;
	n->sb.mode = m;
	(void)node_save_sb(n);
	log_info("%s mode, as the primary %s", node_mode_name(n), n->other->name);
}

/* A node that came back as primary only because it went down as one,
 * and finds that its peer became primary meanwhile, steps back. */
static void node_yield_to_primary(struct node *n, const struct msg_hello *h)
{
	if (h->role != MSG_ROLE_PRIMARY || !n->primary || !n->resumed || n->sb.nbd_index >= 0 ||
	    n->ff)
		return;
	log_warn("%s became primary while this node was down: %s/%s stays secondary "
		 "(its own changes are kept for the resync or the split-brain repair)",
		 n->other->name, n->sb.resource, n->sb.node);
	node_demote(n);
}

static bool node_accept_peer(void *arg, const struct msg_hello *h, char *why, size_t len)
{
	struct node *n = arg;

	node_yield_to_primary(n, h);
	if (h->role == MSG_ROLE_PRIMARY && n->primary) {
		snprintf(why, len, "both nodes are primary: split brain; make one secondary");
		return false;
	}
	if (n->primary && h->size_bytes < n->export_bytes) {
		snprintf(why, len, "the peer's data area (%" PRIu64 " bytes) is smaller than "
			 "this primary's export (%" PRIu64 " bytes): grow the peer's backing "
			 "store", h->size_bytes, n->export_bytes);
		return false;
	}
	if (h->extent_bytes != n->sb.extent_bytes) {
		snprintf(why, len, "bitmap granularity differs: peer %u, this node %u",
			 h->extent_bytes, n->sb.extent_bytes);
		return false;
	}
	return node_accept_data(n, h, why, len);
}

static void node_peer_up(void *arg, const struct msg_hello *h)
{
	struct node *n = arg;

	n->peer_up = true;
	n->split_brain = false;
	n->discard_local = false;
	n->link++;
	n->peer_hello = *h;
	n->gen_moved = false;
	n->peer_outdated = false;
	alog_standalone(n->alog, false);
	node_release_held(n);	/* recorded for the resync, which follows */
	if (h->size_bytes != n->sb.data_bytes)
		log_warn("data areas differ: peer %" PRIu64 " bytes, this node %" PRIu64
			 "; the pair replicates the smaller one (a primary exports that size)",
			 h->size_bytes, n->sb.data_bytes);
	log_info("connected to %s (%s, disk %s): %s", n->other->name,
		 h->role == MSG_ROLE_PRIMARY ? "primary" : "secondary", node_peer_disk(n),
		 gen_verdict_name(n->verdict));
	node_follow_mode(n);
	node_exchange_bitmaps(n);
	node_repl_wake(n);	/* frozen writes go on */
}

static void node_peer_down(void *arg, const char *why)
{
	struct node *n = arg;

	n->peer_up = false;
	node_repl_fail_all(n);
	resync_stop(n->rs);
	resync_stop(n->vf);
	n->rs_role = RS_NONE;
	n->exchanging = false;
	alog_standalone(n->alog, true);
	node_repl_wake(n);	/* parked requests go on locally, or freeze */
	/* The link already said why it went; say only what follows. */
	(void)why;
	if (node_frozen(n))
		log_warn("writes wait (on-peer-loss = freeze) until %s is back or "
			 "`blkrep outdate-peer`", n->other->name);
	if (!n->primary && n->peer_hello.role == MSG_ROLE_PRIMARY && !node_primary_freezes(n))
		node_may_lag(n, "its primary may go on writing without it");
}

static void node_peer_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct node *n = arg;
	const char *why;

	switch (h->type) {
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, &n->peer_hello, &why) < 0) {
			log_warn("bad STATE from %s: %s", n->other->name, why);
			return;
		}
		node_follow_mode(n);
		node_reconsider(n);
		return;
	case MSG_ACK:
	case MSG_FLUSH_ACK:
		return node_repl_complete(n, h->seq, (int)h->count);
	case MSG_BITMAP:
		return node_peer_bitmap(n, h, payload);
	case MSG_VERIFY_REQ:
		return node_verify_answer(n, h);
	case MSG_VERIFY_REPLY:
		return node_verify_reply(n, h, payload);
	case MSG_RESYNC_DONE:
		if (n->rs_role == RS_TARGET)
			return node_resync_target_done(n);
		break;
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_FLUSH:
	case MSG_RESYNC_DATA:
		if (!n->primary)
			return node_apply(n, h, payload);
		log_warn("%s sent %s to a primary: ignored", n->other->name,
			 msg_type_name(h->type));
		return;
	default:
		break;
	}
	log_debug("from %s: %s (not expected now)", n->other->name, msg_type_name(h->type));
}

static int node_start_peer(struct node *n)
{
	static const struct peer_ops ops = {
		.hello = node_hello,
		.accept_peer = node_accept_peer,
		.up = node_peer_up,
		.down = node_peer_down,
		.message = node_peer_message,
		.released = node_released,
		.writable = node_writable,
	};
	struct peer_cfg pc = {
		.resource = n->sb.resource,
		.my_node = n->me->name,
		.peer_node = n->other->name,
		.my_addr = n->me->address,
		.peer_addr = n->other->address,
		.secret = n->secret,
		.secret_len = n->secret_len,
		.allow_unauthenticated = config_allow_unauthenticated(n->cfg),
	};

	n->peer = peer_new(n->loop, &pc, &ops, n);
	if (!n->peer)
		return -1;
	peer_enable(n->peer, true);
	return 0;
}

/* --- start-up --- */

static int node_load(struct node *n)
{
	char err[512];

	if (config_secret_file(n->cfg) &&
	    config_load_secret(config_secret_file(n->cfg), n->secret, &n->secret_len, err,
			       sizeof(err)) < 0)
		goto fail;
	n->md = mdio_open(n->cfg, n->me, false, err, sizeof(err));
	if (!n->md || mdio_read_sb(n->md, &n->sb, err, sizeof(err)) < 0)
		goto fail;
	if (strcmp(n->sb.resource, config_resource_name(n->cfg)) ||
	    strcmp(n->sb.node, n->me->name)) {
		snprintf(err, sizeof(err), "%s holds metadata of %s/%s, not %s/%s",
			 mdio_where(n->md), n->sb.resource, n->sb.node,
			 config_resource_name(n->cfg), n->me->name);
		goto fail;
	}
	n->data_fd = open(n->me->backing, O_RDWR | O_CLOEXEC);
	if (n->data_fd < 0) {
		snprintf(err, sizeof(err), "%s: %s", n->me->backing, strerror(errno));
		goto fail;
	}
	n->bm = bitmap_new(mdio_layout(n->md)->nbits);
	n->unflushed = bitmap_new(mdio_layout(n->md)->nbits);
	n->covering = bitmap_new(mdio_layout(n->md)->nbits);
	n->clear_pending = bitmap_new(mdio_layout(n->md)->nbits);
	n->clear_covering = bitmap_new(mdio_layout(n->md)->nbits);
	if (!n->bm || !n->unflushed || !n->covering || !n->clear_pending || !n->clear_covering ||
	    mdio_read_bitmap(n->md, n->bm, err, sizeof(err)) < 0)
		goto fail;
	return 0;
fail:
	log_err("%s", err);
	return -1;
}

static const struct resync_ops rs_ops = {
	.lock = rs_lock,
	.unlock = rs_unlock,
	.send = rs_send,
	.idle = rs_idle,
	.app_busy = rs_app_busy,
};

static const struct resync_ops vf_ops = {
	.lock = rs_lock,
	.unlock = rs_unlock,
	.send = vf_send,
	.idle = vf_idle,
	.app_busy = rs_app_busy,
};

/* The role the node comes back in: primary if it went down as primary. */
static int node_start_role(struct node *n)
{
	int marked;

	n->crashed = (n->sb.flags & META_F_CRASHED_PRIMARY) != 0;
	n->alog = alog_new(n->loop, n->md, n->bm, n->sb.al_extent_bytes, n->sb.al_slots,
			   n->sb.extent_bytes, node_repl_wake, n);
	n->rs = resync_new(n->loop, n->data_fd, n->bm, n->sb.extent_bytes, &rs_ops, n);
	n->vf_todo = bitmap_new(bitmap_nbits(n->bm));
	n->vf = resync_new(n->loop, n->data_fd, n->vf_todo, n->sb.extent_bytes, &vf_ops, n);
	n->max_lag = config_max_lag(n->cfg);
	n->lag = fifo_new(n->max_lag > MSG_MAX_DATA ? n->max_lag : MSG_MAX_DATA);
	if (!n->alog || !n->rs || !n->vf_todo || !n->vf || !n->lag || (marked = alog_recover(n->alog, n->crashed)) < 0)
		return -1;
	alog_standalone(n->alog, true);
	if (n->crashed)
		/* Writes in flight at the crash may be on one node only: the
		 * activity log says where they can be. */
		log_warn("%s/%s went down as primary without a clean shutdown: the %d "
			 "extents of its activity log are out of sync", n->sb.resource,
			 n->sb.node, marked);
	n->sb.flags &= ~META_F_CLEAN;
	if (!(n->sb.flags & META_F_WAS_PRIMARY)) {
		/* A fresh node at the created generation has missed nothing. */
		if (n->sb.gen.current != GEN_CREATED)
			if (!node_primary_freezes(n))
				node_may_lag(n, "it was down while its peer may have written");
		return node_save_sb(n);
	}
	n->sb.flags |= META_F_CRASHED_PRIMARY;
	if (node_save_sb(n) < 0 || node_start_export(n) < 0)
		return -1;
	n->primary = true;
	n->resumed = true;
	log_info("%s/%s comes back as primary, as it went down", n->sb.resource, n->sb.node);
	node_reattach(n);
	return 0;
}

static int node_setup(struct node *n)
{
	if (node_run_path(n->ctl_path, sizeof(n->ctl_path), config_resource_name(n->cfg),
			  n->me->name, "ctl") < 0 ||
	    node_run_path(n->pid_path, sizeof(n->pid_path), config_resource_name(n->cfg),
			  n->me->name, "pid") < 0 ||
	    node_run_path(n->log_path, sizeof(n->log_path), config_resource_name(n->cfg),
			  n->me->name, "log") < 0) {
		log_err("run directory path too long");
		return -1;
	}
	if (node_load(n) < 0 || !(n->loop = loop_new()))
		return -1;
	n->ctl = control_new(n->loop, n->ctl_path, node_handle, n);
	n->off = offload_new(n->loop);
	if (!n->ctl || !n->off || node_write_pid(n) < 0 || node_signals(n) < 0)
		return -1;
	loop_add_hook(n->loop, node_reap, n);
	loop_add_hook(n->loop, node_pump, n);
	n->tick_op.done = node_on_tick;
	node_arm_tick(n);
	if (node_start_role(n) < 0 || node_start_peer(n) < 0)
		return -1;
	return 0;
}

static void node_free(struct node *n)
{
	char err[512];

	/* A loop device still bound keeps the FUSE file busy: unmount lazily. */
	if (n->ff && fusefile_unbind(n->ff, err, sizeof(err)) < 0)
		log_warn("%s", err);
	if (n->ff)
		fusefile_stop(n->ff);
	offload_free(n->off);
	nbdk_monitor_close(n->mon);
	server_free(n->srv);
	server_free(n->retiring);
	peer_free(n->peer);
	control_free(n->ctl);
	loop_free(n->loop);
	if (n->sigfd >= 0)
		close(n->sigfd);
	if (n->ctl && *n->pid_path)
		(void)unlink(n->pid_path);
	bitmap_free(n->bm);
	bitmap_free(n->unflushed);
	bitmap_free(n->covering);
	bitmap_free(n->clear_pending);
	bitmap_free(n->clear_covering);
	alog_free(n->alog);
	resync_free(n->rs);
	resync_free(n->vf);
	free(n->vf_buf);
	bitmap_free(n->vf_todo);
	fifo_free(n->lag);
	mdio_close(n->md);
	if (n->data_fd >= 0)
		close(n->data_fd);
	explicit_bzero(n->secret, sizeof(n->secret));
	free(n);
}

int node_run(struct config *cfg, const struct config_node *me, int ready_fd)
{
	struct node *n = calloc(1, sizeof(*n));
	int rc = 1;

	if (!n) {
		log_err("out of memory");
		return 1;
	}
	n->cfg = cfg;
	n->me = me;
	n->other = config_peer_node(cfg, me);
	n->sigfd = -1;
	n->data_fd = -1;
	n->ready_fd = ready_fd;
	if (node_setup(n) < 0)
		goto out;
	log_info("%s/%s up as %s, disk %s", n->sb.resource, n->sb.node,
		 node_role_name(n->primary), node_disk_name(n));
	node_ready(n);
	if (loop_run(n->loop, node_keep_going, n) == 0 && node_clean_shutdown(n) == 0)
		rc = 0;
	log_info("%s/%s stopped%s", n->sb.resource, n->sb.node, rc ? " uncleanly" : "");
out:
	node_free(n);
	return rc;
}
