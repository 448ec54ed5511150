/* A node of a replicated resource: the daemon behind `blkrep up`.  See
 * node.h.  This file holds its lifecycle and roles: start-up, readiness,
 * the NBD export while primary, promotion and demotion, stopping, and the
 * node's peers as a set.  Each part below it owns its own state: the
 * replica (daemon/meta/local), the primary's and the secondary's sides
 * (daemon/repl/primary, secondary), one struct sync per peer, the devices
 * and the control socket; they ask the node what they need through
 * struct node_up. */
#include "daemon/node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <liburing.h>

#include "daemon/config.h"
#include "daemon/config_secret.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/obs.h"
#include "daemon/dev/devices.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/nodeup.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/resync.h"
#include "daemon/repl/secondary.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/verify.h"
#include "nbd/server.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/ioop.h"
#include "utils/log.h"
#include "utils/loop.h"
#include "utils/privdir.h"
#include "utils/secmem.h"

#define NODE_POOL (64U << 20)
#define TICK_S	  1 /* idle flushes, so that bits and the log drain */

/* A resource has two nodes (the config refuses a third): one peer.  Code
 * that means every peer loops over peers[0..npeers). */
#define NODE_PEERS_MAX 1

struct node {
	control_handler_fn *handle; /* the control socket's requests */
	struct loop *loop;
	struct config *cfg;
	const struct config_node *me;
	const struct config_node *other;
	uint8_t *secret;	 /* secmem, CONFIG_SECRET_MAX bytes */
	size_t secret_len;
	struct local *loc;	 /* the replica: data area, metadata, bitmap */
	struct meta_sb *sb;	 /* loc's superblock */
	struct primary *pri;	 /* the primary's side of replication */
	struct secondary *sec;	 /* the secondary's */
	struct sync *peers[NODE_PEERS_MAX];
	unsigned npeers;
	struct devices *dev;	 /* /dev/nbdN, attach --loop, restore-saved */
	bool primary;
	bool crashed;		 /* came up after a crash as primary, not yet resynced */
	bool demoting;		 /* demoted, the crashed-primary flag not yet cleared */
	struct control_req *demote_req; /* `secondary`, answered once that is done */
	bool resumed;		 /* primary because it went down as one, not by command */
	struct server *srv;
	struct server *retiring; /* stopped, freed once done */
	struct control *ctl;
	struct obs *obs;	 /* events and metrics */
	struct ioop sig_op;
	int sigfd;
	struct signalfd_siginfo si;
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	bool stopping;
	int ready_fd;
	char ctl_path[256];
	char pid_path[256];
	char log_path[256];
};

/* --- the peers, as a set --- */

bool node_connected(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]))
			return true;
	return false;
}

/* A connected peer is primary. */
static bool node_peer_primary(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]) && sync_hello(n->peers[i])->role == MSG_ROLE_PRIMARY)
			return true;
	return false;
}

void node_send_state(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_peer(n->peers[i]))
			(void)peer_send_state(sync_peer(n->peers[i]));
}

void node_links_enable(struct node *n, bool on)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_peer(n->peers[i]))
			peer_enable(sync_peer(n->peers[i]), on);
}

/* A promotion: resync and verify chunks in flight lock against the new
 * export's writes (rule 4). */
static void node_relock(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		sync_relock(n->peers[i]);
}

static void node_reconsider(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++) {
		sync_reconsider(n->peers[i]);
		sync_resync_if_due(n->peers[i]);
	}
}

/* A loop hook: the resyncs retry chunks an application write held. */
static void node_pump(void *arg)
{
	struct node *n = arg;

	for (unsigned i = 0; i < n->npeers; i++) {
		resync_pump(sync_resync(n->peers[i]));
		verify_pump(sync_verify(n->peers[i]));
	}
}

static void node_free_peers(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		sync_free(n->peers[i]);
	n->npeers = 0;
}


/* --- paths, readiness --- */

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
	char err[512];
	int logfd;

	node_sd_notify("READY=1");
	if (n->ready_fd < 0)
		return;
	/* Opened before READY, so that a refusal still reaches `up`. */
	logfd = privdir_open_file(n->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600, err,
				  sizeof(err));
	if (logfd < 0)
		log_warn("log file %s; running without one", err);
	if (write(n->ready_fd, "READY\n", 6) != 6)
		log_warn("cannot tell blkrep up that the daemon is ready");
	if (logfd >= 0) {
		(void)dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	close(n->ready_fd);
	n->ready_fd = -1;
}

/* In the checked run directory, never through a planted symlink. */
static int node_write_pid(struct node *n)
{
	char err[512], pid[24];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (privdir_write_file(n->pid_path, pid, 0644, err, sizeof(err)) == 0)
		return 0;
	log_err("pid file %s", err);
	return -1;
}

/* --- the NBD export while primary --- */

static int node_start_export(struct node *n)
{
	static const struct repl_ops repl_ops = { .submit = primary_submit,
						  .end = primary_end,
						  .flush_done = primary_flush_done,
						  .abandon = primary_abandon };
	struct server_opts o = {
		.path = n->me->backing,
		.name = config_resource_name(n->cfg),
		.pool_bytes = NODE_POOL,
		.size_limit = primary_export_begin(n->pri),
		.repl = &repl_ops,
		.repl_arg = n->pri,
		.unix_uid = config_nbd_uid(n->cfg),
	};

	if (n->me->nbd)
		o.listen[o.nlisten++] = n->me->nbd;
	else
		o.no_listen = true; /* for /dev/nbdN only */
	n->srv = server_new(n->loop, &o);
	return n->srv ? 0 : -1;
}

/* Frozen, the clients' connections are dropped rather than answered: a
 * write the peer may lack is never acknowledged. */
static void node_stop_export(struct node *n)
{
	bool hard = stream_held(primary_stream(n->pri)) || primary_frozen(n->pri);

	if (!n->srv)
		return;
	server_stop(n->srv, hard);
	primary_release_held(n->pri);
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

/* The primary's side keeps the role too: a client write asks no one
 * above it. */
static void node_set_role(struct node *n, bool primary)
{
	n->primary = primary;
	primary_set_role(n->pri, primary);
}

/* Why this node may not become primary now, or NULL. */
static const char *node_promote_refusal(const struct node *n, bool force, bool discard)
{
	if (n->demote_req)
		return "a demotion is still finishing (the peer flushes what it holds): try again";
	if (node_peer_primary(n))
		return "the peer is primary: run blkrep secondary there first";
	switch (n->sb->disk) {
	case META_DISK_UPTODATE:
		return NULL;
	case META_DISK_CONSISTENT:
		return force ? NULL
			     : "this node's data is consistent but may lack writes its "
			       "peer accepted after the link was lost; use primary --force "
			       "to promote it anyway";
	default:
		if (force && n->sb->gen.current == GEN_CREATED)
			return NULL; /* how a fresh pair starts */
		if (force && discard)
			return NULL; /* the operator accepts what is missing */
		return n->sb->disk == META_DISK_OUTDATED
			       ? "this node's disk is outdated: it is known to lack writes; "
				 "promote it only with --force --discard-unknown"
			       : "this node's disk is inconsistent (a resync target that did not "
				 "finish): promote it only with --force --discard-unknown";
	}
}

int node_promote(struct node *n, bool force, bool discard, char *why, size_t whylen)
{
	const char *no = node_promote_refusal(n, force, discard);
	struct meta_sb before = *n->sb;

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
	node_relock(n); /* a resync source's chunks in flight (rule 4) */
	/* A new generation: writes from now on are newer than anything the
	 * peer holds, unless it is connected and receiving them. */
	if (!node_connected(n) || n->sb->gen.current == GEN_CREATED)
		local_new_gen(n->loc);
	primary_promoted(n->pri);
	n->sb->disk = META_DISK_UPTODATE;
	n->sb->flags |= META_F_WAS_PRIMARY | META_F_CRASHED_PRIMARY;
	if (local_save_sb(n->loc) < 0) {
		*n->sb = before;
		node_stop_export(n);
		snprintf(why, whylen, "cannot write the metadata (see the log)");
		return -1;
	}
	node_set_role(n, true);
	n->demoting = false; /* the crashed-primary flag is wanted again */
	node_send_state(n);
	log_info("%s/%s is now primary (generation %016" PRIx64 ")", n->sb->resource, n->sb->node,
		 n->sb->gen.current);
	node_reconsider(n);
	return 0;
}

/* Before the crashed-primary flag goes (which makes the next start resync
 * the activity log's extents), what only memory knows goes to disk (rule
 * 10): ranges the peer acknowledged but never flushed join the bitmap, the
 * data area is flushed (rule 8: the log is about to be forgotten) and the
 * bitmap written.  NULL, or what failed (logged). */
static const char *node_record_memory(struct node *n)
{
	stream_unflushed_to_bitmap(primary_stream(n->pri));
	if (fdatasync(local_data_fd(n->loc)) < 0) {
		log_err("flushing the data area: %s", strerror(errno));
		return "the data area cannot be flushed";
	}
	if (local_save_bm(n->loc) < 0)
		return "the bitmap cannot be written";
	return NULL;
}

/* Rule 10: a demoted node clears its crashed-primary flag (which makes the
 * next start resync its activity log) only once nothing depends on it: its
 * clients are answered, the peer flushed what it acknowledged (or the link
 * is gone, and the bitmap holds it), the local data is durable and the
 * bitmap is on disk.  Until then, and if any of that fails, the flag stays.
 * Returns true once finished (or given up, the flag kept). */
static bool node_finish_demote(struct node *n)
{
	struct stream *st = primary_stream(n->pri);
	const char *why;

	if (n->retiring)
		return false;
	if (node_connected(n) && (stream_unflushed(st) || stream_covering(st))) {
		if (!stream_covering(st))
			primary_flush_peer(n->pri);
		return false;
	}
	why = node_record_memory(n);
	if (!why) {
		n->sb->flags &= ~META_F_CRASHED_PRIMARY;
		if (local_save_sb(n->loc) < 0)
			why = "the superblock cannot be written";
	}
	if (why)
		log_err("demoted, but %s: the next start resyncs the activity log as after "
			"a crash", why);
	n->demoting = false;
	if (n->demote_req)
		control_reply(n->demote_req, !why, "%s/%s is secondary%s\n", n->sb->resource,
			      n->sb->node, why ? " (see the log: the metadata was not written)" : "");
	n->demote_req = NULL;
	return true;
}

/* A loop hook: a demotion finishes once its conditions hold. */
static void node_demote_hook(void *arg)
{
	struct node *n = arg;

	if (n->demoting)
		(void)node_finish_demote(n);
}

static bool node_demote(struct node *n)
{
	n->resumed = false;
	node_stop_export(n);
	node_set_role(n, false);
	n->demoting = true;
	n->sb->flags &= ~META_F_WAS_PRIMARY;
	(void)local_save_sb(n->loc);
	node_send_state(n);
	log_info("%s/%s is now secondary", n->sb->resource, n->sb->node);
	return node_finish_demote(n);
}

/* `secondary`: refused while a device is attached or a demotion is
 * finishing; otherwise answered once the demotion is done (rule 10). */
void node_cmd_secondary(struct node *n, struct control_req *req)
{
	if (devices_attached(n->dev)) {
		control_reply(req, false,
			      "a device is attached: unmount it and run blkrep "
			      "detach first");
		return;
	}
	if (n->demote_req) {
		control_reply(req, false, "a demotion is still finishing: try again");
		return;
	}
	if (n->primary && !node_demote(n)) {
		n->demote_req = req; /* answered once the metadata says so */
		return;
	}
	control_reply(req, true, "%s/%s is secondary\n", n->sb->resource, n->sb->node);
}

/* --- stopping --- */

void node_begin_stop(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = true;
	log_info("stopping");
	node_stop_export(n);
	node_links_enable(n, false);
	control_stop(n->ctl); /* answers already being sent still go out */
}

static bool node_keep_going(void *arg)
{
	struct node *n = arg;

	/* Offloaded work may wait for this loop (a flush through the server). */
	return !n->stopping || n->retiring || n->srv || !control_idle(n->ctl) ||
	       devices_busy(n->dev);
}

/* A clean shutdown: the bitmap and a superblock that says so. */
static int node_clean_shutdown(struct node *n)
{
	if (node_record_memory(n))
		return -1; /* the flags stay: the next start recovers */
	n->sb->flags |= META_F_CLEAN;
	n->sb->flags &= ~META_F_CRASHED_PRIMARY;
	if (n->primary)
		n->sb->flags |= META_F_WAS_PRIMARY;
	else
		n->sb->flags &= ~META_F_WAS_PRIMARY;
	return local_save_sb(n->loc);
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
	n->sigfd = loop_stop_signalfd();
	if (n->sigfd < 0)
		return -1;
	n->sig_op.done = node_on_signal;
	node_arm_signal(n);
	return 0;
}

/* --- start-up --- */

static int node_load(struct node *n)
{
	char err[512];

	if (config_secret_file(n->cfg) &&
	    (!(n->secret = secmem_alloc(CONFIG_SECRET_MAX)) ||
	     config_load_secret(config_secret_file(n->cfg), config_allow_weak_secret(n->cfg),
				n->secret, &n->secret_len, err, sizeof(err)) < 0)) {
		log_err("%s", n->secret ? err : "cannot allocate memory for the secret");
		return -1;
	}
	n->loc = local_open(n->cfg, n->me);
	if (!n->loc)
		return -1;
	n->sb = local_sb(n->loc);
	return 0;
}

/* --- what the parts ask of the node (struct node_up) --- */

static bool node_up_primary(void *arg)
{
	return ((struct node *)arg)->primary;
}

static bool node_up_crashed(void *arg)
{
	return ((struct node *)arg)->crashed;
}

static bool node_up_resumed_only(void *arg)
{
	struct node *n = arg;

	return n->primary && n->resumed && !devices_attached(n->dev);
}

static bool node_up_exporting(void *arg)
{
	struct node *n = arg;

	return n->srv || n->retiring;
}

static bool node_up_exports_parked(void *arg)
{
	struct node *n = arg;

	return (n->srv && server_parked(n->srv)) || (n->retiring && server_parked(n->retiring));
}

static void node_up_wake_exports(void *arg)
{
	struct node *n = arg;

	if (n->srv)
		server_repl_wake(n->srv);
	if (n->retiring)
		server_repl_wake(n->retiring);
}

static bool node_up_demote(void *arg)
{
	return node_demote(arg);
}

static void node_up_stop(void *arg)
{
	node_begin_stop(arg);
}

static void node_up_resynced(void *arg)
{
	((struct node *)arg)->crashed = false;
}

static const struct node_up node_up = {
	.primary = node_up_primary,
	.crashed = node_up_crashed,
	.resumed_only = node_up_resumed_only,
	.exporting = node_up_exporting,
	.exports_parked = node_up_exports_parked,
	.wake_exports = node_up_wake_exports,
	.demote = node_up_demote,
	.stop = node_up_stop,
	.resynced = node_up_resynced,
};

/* The parts, on the replica: the primary's and the secondary's sides and
 * a struct sync per peer.  0, or -1 (logged). */
static int node_add_parts(struct node *n)
{
	struct sync_env env = { .loop = n->loop,
				.cfg = n->cfg,
				.me = n->me,
				.other = n->other,
				.secret = n->secret_len ? n->secret : NULL,
				.secret_len = n->secret_len,
				.loc = n->loc,
				.up = &node_up,
				.node = n };

	n->pri = primary_new(n->loc, n->loop, n->cfg, n->other->name, &node_up, n);
	if (!n->pri)
		return -1;
	n->sec = secondary_new(n->loc, n->loop, n->cfg, n->other->name, primary_stream(n->pri));
	if (!n->sec)
		return -1;
	env.pri = n->pri;
	env.sec = n->sec;
	n->peers[0] = sync_new(&env);
	if (!n->peers[0]) {
		log_err("out of memory");
		return -1;
	}
	n->npeers = 1;
	primary_add_peer(n->pri, n->peers[0]);
	return 0;
}

static int node_start_peers(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_start(n->peers[i]) < 0)
			return -1;
	return 0;
}

/* The role the node comes back in: primary if it went down as primary. */
static int node_start_role(struct node *n)
{
	int marked;

	n->crashed = (n->sb->flags & META_F_CRASHED_PRIMARY) != 0;
	if (node_add_parts(n) < 0 || (marked = primary_recover(n->pri, n->crashed)) < 0)
		return -1;
	primary_standalone(n->pri, true);
	if (n->crashed)
		/* Writes in flight at the crash may be on one node only: the
		 * activity log says where they can be. */
		log_warn("%s/%s went down as primary without a clean shutdown: the %d "
			 "extents of its activity log are out of sync",
			 n->sb->resource, n->sb->node, marked);
	n->sb->flags &= ~META_F_CLEAN;
	if (!(n->sb->flags & META_F_WAS_PRIMARY)) {
		/* A fresh node at the created generation has missed nothing. */
		if (n->sb->gen.current != GEN_CREATED)
			if (!secondary_primary_freezes(n->sec))
				secondary_may_lag(n->sec, "it was down while its peer may have written");
		return local_save_sb(n->loc);
	}
	n->sb->flags |= META_F_CRASHED_PRIMARY;
	if (local_save_sb(n->loc) < 0 || node_start_export(n) < 0)
		return -1;
	node_set_role(n, true);
	n->resumed = true;
	log_info("%s/%s comes back as primary, as it went down", n->sb->resource, n->sb->node);
	devices_reattach(n->dev);
	return 0;
}

/* --- what the block devices ask of the node --- */

static struct server *node_dev_export(void *arg)
{
	struct node *n = arg;

	return n->primary ? n->srv : NULL;
}

static uint64_t node_dev_export_bytes(void *arg)
{
	return primary_export_bytes(((struct node *)arg)->pri);
}

static int node_dev_nbd_index(void *arg)
{
	return ((struct node *)arg)->sb->nbd_index;
}

static void node_dev_set_nbd_index(void *arg, int index)
{
	struct node *n = arg;

	n->sb->nbd_index = index;
	(void)local_save_sb(n->loc);
}

static bool node_dev_stopping(void *arg)
{
	return ((struct node *)arg)->stopping;
}

static void node_dev_stop(void *arg)
{
	node_begin_stop(arg);
}

static const struct devices_host node_devices_host = {
	.export = node_dev_export,
	.export_bytes = node_dev_export_bytes,
	.nbd_index = node_dev_nbd_index,
	.set_nbd_index = node_dev_set_nbd_index,
	.stopping = node_dev_stopping,
	.stop = node_dev_stop,
};

/* Once a second: the reconnect after a disk error, once due, and what
 * the primary's side does (primary_tick()). */
static void node_arm_tick(struct node *n)
{
	n->tick_ts.tv_sec = TICK_S;
	io_uring_prep_timeout(loop_sqe(n->loop, &n->tick_op), &n->tick_ts, 0, 0);
}

static void node_on_tick(struct ioop *op, int res)
{
	struct node *n = container_of(op, struct node, tick_op);

	(void)res;
	if (n->sec && secondary_tick(n->sec))
		node_links_enable(n, true);
	if (n->pri)
		primary_tick(n->pri);
	obs_tick(n->obs);
	if (!n->stopping)
		node_arm_tick(n);
}

static int node_setup(struct node *n)
{
	if (control_run_path(n->ctl_path, sizeof(n->ctl_path), config_resource_name(n->cfg),
			  n->me->name, "ctl") < 0 ||
	    control_run_path(n->pid_path, sizeof(n->pid_path), config_resource_name(n->cfg),
			  n->me->name, "pid") < 0 ||
	    control_run_path(n->log_path, sizeof(n->log_path), config_resource_name(n->cfg),
			  n->me->name, "log") < 0) {
		log_err("run directory path too long");
		return -1;
	}
	if (node_load(n) < 0 || !(n->loop = loop_new()))
		return -1;
	n->ctl = control_new(n->loop, n->ctl_path, n->handle, n);
	n->dev = devices_new(n->loop, n->cfg, n->sb->resource, n->sb->node, &node_devices_host, n);
	if (!n->ctl || !n->dev || node_write_pid(n) < 0 || node_signals(n) < 0)
		return -1;
	loop_add_hook(n->loop, node_reap, n);
	loop_add_hook(n->loop, node_demote_hook, n);
	loop_add_hook(n->loop, node_pump, n);
	n->tick_op.done = node_on_tick;
	node_arm_tick(n);
	if (!(n->obs = obs_new(n)) || node_start_role(n) < 0 || node_start_peers(n) < 0)
		return -1;
	return 0;
}

static void node_free(struct node *n)
{
	devices_free(n->dev);
	server_free(n->srv);
	server_free(n->retiring);
	control_free(n->ctl);
	loop_free(n->loop);
	obs_free(n->obs); /* its hook went with the loop */
	if (n->sigfd >= 0)
		close(n->sigfd);
	if (n->ctl && *n->pid_path)
		(void)unlink(n->pid_path);
	node_free_peers(n); /* resync buffers: after the ring */
	secondary_free(n->sec);
	primary_free(n->pri);
	local_close(n->loc);
	secmem_free(n->secret, CONFIG_SECRET_MAX);
	free(n);
}

struct node *node_start(struct config *cfg, const struct config_node *me, int ready_fd,
			control_handler_fn *handle)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n) {
		log_err("out of memory");
		return NULL;
	}
	n->cfg = cfg;
	n->me = me;
	n->other = config_peer_node(cfg, me);
	n->sigfd = -1;
	n->ready_fd = ready_fd;
	n->handle = handle;
	if (node_setup(n) < 0) {
		node_free(n);
		return NULL;
	}
	log_info("%s/%s up as %s, disk %s", n->sb->resource, n->sb->node, node_role_name(n->primary),
		 local_disk_name(n->loc));
	node_ready(n);
	return n;
}

/* --- for the control requests --- */

struct local *node_local(const struct node *n)
{
	return n->loc;
}

struct primary *node_primary(const struct node *n)
{
	return n->pri;
}

struct sync *node_peer(const struct node *n)
{
	return n->npeers ? n->peers[0] : NULL;
}

struct obs *node_obs(const struct node *n)
{
	return n->obs;
}

struct devices *node_devices(const struct node *n)
{
	return n->dev;
}

const struct config *node_config(const struct node *n)
{
	return n->cfg;
}

const struct config_node *node_me(const struct node *n)
{
	return n->me;
}

bool node_stopping(const struct node *n)
{
	return n->stopping;
}

const char *node_peer_name(const struct node *n)
{
	return n->other->name;
}

bool node_is_primary(const struct node *n)
{
	return n->primary;
}

const char *node_role_name(bool primary)
{
	return primary ? "primary" : "secondary";
}

struct loop *node_loop(const struct node *n)
{
	return n->loop;
}

bool node_running(struct node *n)
{
	return node_keep_going(n);
}

int node_finish(struct node *n, bool loop_ok)
{
	int rc = 1;

	if (loop_ok && node_clean_shutdown(n) == 0)
		rc = 0;
	log_info("%s/%s stopped%s", n->sb->resource, n->sb->node, rc ? " uncleanly" : "");
	node_free(n);
	return rc;
}

void node_abandon(struct node *n)
{
	node_free(n);
}

int node_run(struct config *cfg, const struct config_node *me, int ready_fd,
	     control_handler_fn *handle)
{
	struct node *n = node_start(cfg, me, ready_fd, handle);

	if (!n)
		return 1;
	return node_finish(n, loop_run(n->loop, node_keep_going, n) == 0);
}
