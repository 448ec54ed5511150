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
#include <linux/falloc.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>

#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/gen.h"
#include "daemon/ioop.h"
#include "daemon/loop.h"
#include "daemon/mdio.h"
#include "daemon/meta.h"
#include "daemon/peer.h"
#include "daemon/server.h"
#include "nbd/wire.h"
#include "proto/msg.h"
#include "utils/bitmap.h"
#include "utils/log.h"

#define NODE_POOL	(64U << 20)
#define REPL_MAX	4096	/* replicated requests awaiting the peer */

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
	bool primary;
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
	bool stopping;
	int ready_fd;
	uint64_t writes;
	uint64_t replicated_bytes;
	/* Rule 2: a write the peer acknowledged is in its page cache, not on
	 * its disk, until a FLUSH sent after it is acknowledged.  Ranges sent
	 * since the last such FLUSH are in unflushed; covering holds those a
	 * FLUSH in flight will cover.  If the link drops first, both go into
	 * the persistent bitmap. */
	struct bitmap *unflushed;
	struct bitmap *covering;
	uint64_t covering_seq;	/* the FLUSH that covers them; 0 for none */
	int data_fd;		/* the data area, for applying the peer's writes */
	struct repl_req *outstanding[REPL_MAX];	/* by seq % REPL_MAX */
	unsigned noutstanding;
	uint64_t next_seq;
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

/* The peer may not hold this range: record it in the persistent bitmap. */
static void node_mark_out_of_sync(struct node *n, uint64_t off, uint64_t len)
{
	mark_range(n->bm, n->sb.extent_bytes, off, len);
}

/* Adds every bit of from to the persistent bitmap and empties from. */
static void node_merge_unflushed(struct node *n, struct bitmap *from)
{
	for (uint64_t b = bitmap_next_set(from, 0); b < bitmap_nbits(from);
	     b = bitmap_next_set(from, b + 1))
		bitmap_set(n->bm, b);
	bitmap_clear_range(from, 0, bitmap_nbits(from));
}

static uint64_t node_random(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	return r;
}

/* --- replication: the primary's side --- */

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

/* Sends a write-type request or FLUSH to the peer.  Its reply then waits
 * for the peer's ACK or FLUSH_ACK: sync mode. */
static int node_repl_submit(void *arg, struct repl_req *rr)
{
	struct node *n = arg;
	uint64_t seq = n->next_seq;
	struct msg_hdr h = {
		.type = repl_msg_type(rr->type),
		.seq = seq,
	};

	if (rr->type != NBD_CMD_FLUSH)
		n->writes++;
	if (!n->peer_up) {
		node_mark_out_of_sync(n, rr->offset, rr->type == NBD_CMD_FLUSH ? 0 : rr->length);
		return REPL_LOCAL;
	}
	if (n->noutstanding == REPL_MAX || n->outstanding[seq % REPL_MAX]) {
		n->writes -= rr->type != NBD_CMD_FLUSH;	/* counted when retried */
		return REPL_BUSY;	/* retried when an answer frees a place */
	}
	if (h.type != MSG_FLUSH) {
		h.offset = rr->offset;
		h.count = rr->length;
		h.flags = (rr->flags & NBD_CMD_FLAG_FUA ? MSG_F_FUA : 0) |
			  (h.type == MSG_ZERO && (rr->flags & NBD_CMD_FLAG_NO_HOLE) ?
				   MSG_F_NO_HOLE : 0);
	}
	if (h.type == MSG_WRITE)
		h.length = rr->length;
	switch (peer_send(n->peer, &h, h.length ? rr->payload : NULL)) {
	case 0:
		break;
	case -ENOBUFS:
		n->writes -= rr->type != NBD_CMD_FLUSH;
		return REPL_BUSY;	/* retried from ops->writable */
	default:	/* the link is going */
		node_mark_out_of_sync(n, rr->offset, rr->type == NBD_CMD_FLUSH ? 0 : rr->length);
		return REPL_LOCAL;
	}
	if (h.type == MSG_FLUSH && !n->covering_seq) {
		struct bitmap *t = n->covering;

		/* This FLUSH covers everything sent so far. */
		n->covering = n->unflushed;
		n->unflushed = t;
		n->covering_seq = seq;
	} else if (h.type != MSG_FLUSH) {
		mark_range(n->unflushed, n->sb.extent_bytes, rr->offset, rr->length);
	}
	n->next_seq++;
	rr->seq = seq;
	n->outstanding[seq % REPL_MAX] = rr;
	n->noutstanding++;
	n->replicated_bytes += h.length;
	return REPL_SENT;
}

/* The peer's send queue has room again, or an answer freed a place. */
static void node_repl_wake(void *arg)
{
	struct node *n = arg;

	if (n->srv)
		server_repl_wake(n->srv);
}

static void node_repl_complete(struct node *n, uint64_t seq, int err)
{
	struct repl_req *rr = n->outstanding[seq % REPL_MAX];

	if (!rr || rr->seq != seq) {
		log_warn("%s acknowledged request %" PRIu64 ", which is not outstanding",
			 n->other->name, seq);
		return;
	}
	n->outstanding[seq % REPL_MAX] = NULL;
	n->noutstanding--;
	node_repl_wake(n);
	if (seq == n->covering_seq) {
		if (err)
			node_merge_unflushed(n, n->covering);
		else
			bitmap_clear_range(n->covering, 0, bitmap_nbits(n->covering));
		n->covering_seq = 0;
	}
	if (err && rr->type != NBD_CMD_FLUSH)
		node_mark_out_of_sync(n, rr->offset, rr->length);
	if (err)
		log_warn("%s failed a replicated write at %" PRIu64 ": %s", n->other->name,
			 rr->offset, strerror(err));
	server_repl_done(rr, err);
}

/* The link is gone: what the peer did not acknowledge stays out of sync
 * (marked when it began), and the clients get the local results. */
static void node_repl_fail_all(struct node *n)
{
	for (unsigned i = 0; i < REPL_MAX && n->noutstanding; i++) {
		struct repl_req *rr = n->outstanding[i];

		if (rr) {
			n->outstanding[i] = NULL;
			n->noutstanding--;
			if (rr->type != NBD_CMD_FLUSH)
				node_mark_out_of_sync(n, rr->offset, rr->length);
			server_repl_done(rr, ENOTCONN);
		}
	}
	/* Acknowledged but never flushed on the peer: not safe there. */
	node_merge_unflushed(n, n->unflushed);
	node_merge_unflushed(n, n->covering);
	n->covering_seq = 0;
}

static void node_released(void *arg, const void *payload)
{
	/* The payload belongs to an NBD request whose reply waits for the
	 * peer's answer, which comes after the bytes left: nothing to do. */
	(void)arg;
	(void)payload;
}

/* --- replication: the secondary's side --- */

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off, int flags)
{
	while (len) {
		struct iovec iov = { (void *)(uintptr_t)p, len };
		ssize_t w = pwritev2(fd, &iov, 1, (off_t)off, flags);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

/* Zeroes a range as the primary did: punch a hole (unless NO_HOLE), else
 * zero range, else write zeros. */
static int zero_range(int fd, uint64_t off, uint64_t len, bool no_hole)
{
	static const uint8_t zeros[1 << 16];

	if (!no_hole && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				  (off_t)len) == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	for (uint64_t done = 0; done < len;) {
		size_t k = len - done < sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
		int err = write_all(fd, zeros, k, off + done, 0);

		if (err)
			return err;
		done += k;
	}
	return 0;
}

/* Applies one replicated request, in stream order, and acknowledges it.
 * Done inline: the stream is applied in order and the peer waits anyway;
 * FLUSH and FUA block the loop for the disk's flush. */
static void node_apply(struct node *n, const struct msg_hdr *h, const uint8_t *payload)
{
	struct msg_hdr ack = { .type = MSG_ACK, .seq = h->seq };
	int err;

	switch (h->type) {
	case MSG_WRITE:
		err = write_all(n->data_fd, payload, h->length, h->offset,
				h->flags & MSG_F_FUA ? RWF_DSYNC : 0);
		break;
	case MSG_TRIM:
	case MSG_ZERO:
		err = zero_range(n->data_fd, h->offset, h->count, h->flags & MSG_F_NO_HOLE);
		if (!err && (h->flags & MSG_F_FUA) && fdatasync(n->data_fd) < 0)
			err = errno;
		break;
	default:	/* MSG_FLUSH */
		ack.type = MSG_FLUSH_ACK;
		err = fdatasync(n->data_fd) < 0 ? errno : 0;
		break;
	}
	ack.count = (uint32_t)err;
	if (err)
		log_err("applying a replicated %s at %" PRIu64 ": %s", msg_type_name(h->type),
			h->offset, strerror(err));
	if (peer_send(n->peer, &ack, NULL) < 0)
		log_warn("cannot acknowledge a replicated request: send queue full");
}

/* An up-to-date secondary that is not receiving its primary's writes is
 * only consistent: a valid image, perhaps not the newest.  Promoting it
 * then takes --force.  (Resync brings it back to up to date.) */
static void node_may_lag(struct node *n, const char *why)
{
	if (n->sb.disk != META_DISK_UPTODATE)
		return;
	n->sb.disk = META_DISK_CONSISTENT;
	(void)node_save_sb(n);
	log_warn("disk is now consistent, not up to date: %s", why);
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
	static const struct repl_ops repl_ops = { .submit = node_repl_submit };
	struct server_opts o = {
		.path = n->me->backing,
		.name = config_resource_name(n->cfg),
		.pool_bytes = NODE_POOL,
		.size_limit = node_export_size(n),
		.repl = &repl_ops,
		.repl_arg = n,
	};

	n->export_bytes = o.size_limit;
	if (!n->me->nbd)
		return 0;
	o.listen[o.nlisten++] = n->me->nbd;
	n->srv = server_new(n->loop, &o);
	return n->srv ? 0 : -1;
}

static void node_stop_export(struct node *n)
{
	if (!n->srv)
		return;
	server_stop(n->srv, false);
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
static const char *node_promote_refusal(const struct node *n, bool force)
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
		return "this node's disk is not up to date: promoting it would serve "
		       "incomplete data (--force only starts a fresh pair, before its "
		       "first sync)";
	}
}

static int node_promote(struct node *n, bool force, char *why, size_t whylen)
{
	const char *no = node_promote_refusal(n, force);
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
	return 0;
}

static void node_demote(struct node *n)
{
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

static void node_status_json(struct node *n, struct control_req *req)
{
	char err[512];

	json_escape(err, sizeof(err), n->peer ? peer_last_error(n->peer) : "");
	control_reply(req, true,
		      "{\"resource\": \"%s\", \"node\": \"%s\", \"role\": \"%s\", "
		      "\"mode\": \"%s\", \"on_peer_loss\": \"%s\", \"disk\": \"%s\", "
		      "\"peer\": {\"name\": \"%s\", \"connection\": \"%s\", \"disk\": \"%s\", "
		      "\"last_error\": \"%s\"}, "
		      "\"size_bytes\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64 ", "
		      "\"lag_bytes\": 0, \"resync\": null, "
		      "\"stats\": {\"writes\": %" PRIu64 ", \"replicated_bytes\": %" PRIu64 ", "
		      "\"resynced_bytes\": 0}, \"generation\": \"%016" PRIx64 "\"}\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary),
		      config_mode_name(config_mode(n->cfg)),
		      config_peer_loss_name(config_on_peer_loss(n->cfg)), node_disk_name(n),
		      n->other->name, node_connection(n), node_peer_disk(n), err,
		      n->sb.data_bytes, node_out_of_sync(n), n->writes, n->replicated_bytes,
		      n->sb.gen.current);
}

static void node_status_text(struct node *n, struct control_req *req)
{
	const char *err = n->peer ? peer_last_error(n->peer) : "";

	control_reply(req, true,
		      "%s/%s: %s, disk %s, %s mode, on peer loss: %s\n"
		      "  peer %s: %s, disk %s%s%s\n"
		      "  data area %" PRIu64 " bytes, %" PRIu64 " bytes out of sync\n"
		      "  generation %016" PRIx64 ", %" PRIu64 " writes since start\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary), node_disk_name(n),
		      config_mode_name(config_mode(n->cfg)),
		      config_peer_loss_name(config_on_peer_loss(n->cfg)), n->other->name,
		      node_connection(n), node_peer_disk(n), *err ? "\n  last error: " : "",
		      err, n->sb.data_bytes, node_out_of_sync(n), n->sb.gen.current, n->writes);
}

/* --- control commands --- */

static bool has_flag(int argc, char *const *argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static void node_cmd_primary(struct node *n, struct control_req *req, bool force)
{
	char why[512];

	if (n->primary) {
		control_reply(req, true, "%s/%s is already primary\n", n->sb.resource, n->sb.node);
		return;
	}
	if (node_promote(n, force, why, sizeof(why)) < 0) {
		control_reply(req, false, "%s", why);
		return;
	}
	control_reply(req, true, "%s/%s is now primary%s%s\n", n->sb.resource, n->sb.node,
		      n->me->nbd ? "; NBD export on " : "", n->me->nbd ? n->me->nbd : "");
}

static void node_cmd_secondary(struct node *n, struct control_req *req)
{
	if (n->primary)
		node_demote(n);
	control_reply(req, true, "%s/%s is secondary\n", n->sb.resource, n->sb.node);
}

static void node_cmd_link(struct node *n, struct control_req *req, bool on)
{
	peer_enable(n->peer, on);
	control_reply(req, true, "%s\n", on ? "connecting" : "disconnected");
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
		node_cmd_primary(n, req, has_flag(argc, argv, "--force"));
	else if (strcmp(cmd, "secondary") == 0)
		node_cmd_secondary(n, req);
	else if (strcmp(cmd, "connect") == 0 || strcmp(cmd, "disconnect") == 0)
		node_cmd_link(n, req, cmd[0] == 'c');
	else if (strcmp(cmd, "down") == 0) {
		control_reply(req, true, "stopping\n");
		node_begin_stop(n);
	} else
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
	h->flags = (n->sb.flags & META_F_CRASHED_PRIMARY ? MSG_HELLO_F_CRASHED_PRIMARY : 0) |
		   (n->sb.flags & META_F_ZEROED ? MSG_HELLO_F_ZEROED : 0);
	h->gen_current = n->sb.gen.current;
	h->gen_bitmap = n->sb.gen.bitmap;
	memcpy(h->gen_history, n->sb.gen.history, sizeof(h->gen_history));
}

static bool node_accept_peer(void *arg, const struct msg_hello *h, char *why, size_t len)
{
	struct node *n = arg;

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
	return true;
}

static void node_peer_up(void *arg, const struct msg_hello *h)
{
	struct node *n = arg;

	n->peer_up = true;
	n->peer_hello = *h;
	if (h->size_bytes != n->sb.data_bytes)
		log_warn("data areas differ: peer %" PRIu64 " bytes, this node %" PRIu64
			 "; the pair replicates the smaller one (a primary exports that size)",
			 h->size_bytes, n->sb.data_bytes);
	log_info("connected to %s (%s, disk %s)", n->other->name,
		 h->role == MSG_ROLE_PRIMARY ? "primary" : "secondary", node_peer_disk(n));
}

static void node_peer_down(void *arg, const char *why)
{
	struct node *n = arg;

	n->peer_up = false;
	node_repl_fail_all(n);
	node_repl_wake(n);	/* parked requests go on locally */
	log_warn("lost the link to %s: %s", n->other->name, why);
	if (!n->primary && n->peer_hello.role == MSG_ROLE_PRIMARY)
		node_may_lag(n, "its primary may go on writing without it");
}

static void node_peer_message(void *arg, const struct msg_hdr *h, const uint8_t *payload)
{
	struct node *n = arg;

	const char *why;

	switch (h->type) {
	case MSG_STATE:
		if (msg_hello_decode(payload, h->length, &n->peer_hello, &why) < 0)
			log_warn("bad STATE from %s: %s", n->other->name, why);
		return;
	case MSG_ACK:
	case MSG_FLUSH_ACK:
		return node_repl_complete(n, h->seq, (int)h->count);
	case MSG_WRITE:
	case MSG_TRIM:
	case MSG_ZERO:
	case MSG_FLUSH:
		if (!n->primary)
			return node_apply(n, h, payload);
		log_warn("%s sent %s to a primary: ignored", n->other->name,
			 msg_type_name(h->type));
		return;
	default:
		break;
	}
	log_debug("from %s: %s (not handled by this version)", n->other->name,
		  msg_type_name(h->type));
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
		.writable = node_repl_wake,
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
	if (!n->bm || !n->unflushed || !n->covering ||
	    mdio_read_bitmap(n->md, n->bm, err, sizeof(err)) < 0)
		goto fail;
	return 0;
fail:
	log_err("%s", err);
	return -1;
}

/* The role the node comes back in: primary if it went down as primary. */
static int node_start_role(struct node *n)
{
	bool crashed = (n->sb.flags & META_F_CRASHED_PRIMARY) != 0;

	if (crashed) {
		/* Its in-memory record of unreplicated writes is lost, and no
		 * activity log bounds where they were: all of it is suspect. */
		log_warn("%s/%s went down as primary without a clean shutdown: marking "
			 "the whole data area out of sync", n->sb.resource, n->sb.node);
		bitmap_set_range(n->bm, 0, bitmap_nbits(n->bm));
	}
	n->sb.flags &= ~META_F_CLEAN;
	if (!(n->sb.flags & META_F_WAS_PRIMARY)) {
		/* A fresh node at the created generation has missed nothing. */
		if (n->sb.gen.current != GEN_CREATED)
			node_may_lag(n, "it was down while its peer may have written");
		return node_save_sb(n);
	}
	n->sb.flags |= META_F_CRASHED_PRIMARY;
	if (node_save_sb(n) < 0 || node_start_export(n) < 0)
		return -1;
	n->primary = true;
	log_info("%s/%s comes back as primary, as it went down", n->sb.resource, n->sb.node);
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
	if (!n->ctl || node_write_pid(n) < 0 || node_signals(n) < 0)
		return -1;
	loop_add_hook(n->loop, node_reap, n);
	if (node_start_role(n) < 0 || node_start_peer(n) < 0)
		return -1;
	return 0;
}

static void node_free(struct node *n)
{
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
