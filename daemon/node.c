/* A node of a replicated resource: the daemon behind `blkrep up`.  See
 * node.h.  This file holds its lifecycle: start-up, readiness, the NBD
 * export while primary, stopping, and the node's peers as a set;
 * node_role.c its promotion, demotion and handover (struct node is
 * node_int.h's).  Each part below it owns its own state: the
 * replica (daemon/meta/local), the primary's and the secondary's sides
 * (daemon/repl/primary, secondary), one struct sync per peer, the devices
 * and the control socket; they ask the node what they need through
 * struct node_up. */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <liburing.h>

#include "daemon/config.h"
#include "daemon/config_secret.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/hook.h"
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
#include "daemon/repl/witlink.h"
#include "daemon/repl/verify.h"
#include "nbd/server.h"
#include "proto/msg.h"
#include "proto/hub.h"
#include "proto/peer.h"
#include "utils/clock.h"
#include "utils/ioop.h"
#include "utils/log.h"
#include "utils/loop.h"
#include "utils/secmem.h"

/* --- the peers, as a set --- */

bool node_connected(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]))
			return true;
	return false;
}

/* A connected peer is primary. */
bool node_peer_primary(const struct node *n)
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
	for (unsigned i = 0; i < n->nwits; i++)
		if (witlink_peer(n->wits[i]))
			(void)peer_send_state(witlink_peer(n->wits[i]));
}

void node_links_enable(struct node *n, bool on)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_peer(n->peers[i]))
			peer_enable(sync_peer(n->peers[i]), on);
	for (unsigned i = 0; i < n->nwits; i++)
		if (witlink_peer(n->wits[i]))
			peer_enable(witlink_peer(n->wits[i]), on);
}

/* A promotion: resync and verify chunks in flight lock against the new
 * export's writes (rule 4). */
void node_relock(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		sync_relock(n->peers[i]);
}

void node_reconsider(struct node *n)
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
	for (unsigned i = 0; i < n->nwits; i++)
		witlink_free(n->wits[i]);
	n->nwits = 0;
}


/* --- paths, readiness --- */

/* The parent `blkrep up` returns once it reads READY; later log lines go
 * to the node's log file, stamped. */
void node_ready(struct node *n)
{
	rundir_ready(&n->run, &n->ready_fd);
}

/* --- the NBD export while primary --- */

int node_start_export(struct node *n)
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
void node_stop_export(struct node *n)
{
	bool hard = primary_held(n->pri) || primary_frozen(n->pri);

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

/* --- stopping --- */

void node_begin_stop(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = true;
	rundir_notify("STOPPING=1");
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

/* SIGINT, SIGTERM: stop. */
static void node_on_signal(void *arg)
{
	node_begin_stop(arg);
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

	return n->primary && ((n->resumed && !devices_attached(n->dev)) || node_quorum_yields(n));
}

/* A resumed-only primary yields to any primary; one waiting for quorum
 * to a primary that is not itself resumed-only, or to a node whose
 * generation this one never had (another primary wrote meanwhile). */
static bool node_up_yields_to(void *arg, const struct msg_hello *h)
{
	struct node *n = arg;
	enum gen_rel r;

	if (!n->primary)
		return false;
	if (h->role == MSG_ROLE_PRIMARY && n->resumed && !devices_attached(n->dev)) {
		/* Under quorum the other was promoted with a majority, which
		 * holds every write this one acknowledged in sync mode (or by
		 * --no-quorum, the operator's word): nothing of ours to save. */
		n->stepping_down = config_quorum(n->cfg) == CONFIG_QUORUM_MAJORITY;
		n->stepdown_from = *h;
		return true;
	}
	r = primary_relation(n->pri, h);
	n->stepping_down = node_quorum_yields(n) && !(h->flags & MSG_HELLO_F_RESUMED) &&
			   (h->role == MSG_ROLE_PRIMARY || r == GEN_REL_NEWER || r == GEN_REL_UNRELATED);
	n->stepdown_from = *h;
	return n->stepping_down;
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

static void node_up_resynced_from(void *arg, const char *source)
{
	node_unfence(arg, source);
}

static void node_up_state_changed(void *arg)
{
	node_send_state(arg);
}

static bool node_up_quorum_blocked(void *arg)
{
	return node_quorum_yields(arg);
}

static const struct node_up node_up = {
	.primary = node_up_primary,
	.crashed = node_up_crashed,
	.resumed_only = node_up_resumed_only,
	.yields_to = node_up_yields_to,
	.quorum_blocked = node_up_quorum_blocked,
	.exporting = node_up_exporting,
	.exports_parked = node_up_exports_parked,
	.wake_exports = node_up_wake_exports,
	.demote = node_up_demote,
	.stop = node_up_stop,
	.resynced = node_up_resynced,
	.resynced_from = node_up_resynced_from,
	.state_changed = node_up_state_changed,
};

/* A link to each witness of the resource (issue 17). */
static int node_add_witnesses(struct node *n, struct peer_hub *hub)
{
	struct witlink_env env = { .loop = n->loop,
				   .cfg = n->cfg,
				   .me = n->me,
				   .secret = n->secret_len ? n->secret : NULL,
				   .secret_len = n->secret_len,
				   .loc = n->loc,
				   .hub = hub,
				   .up = &node_up,
				   .node = n,
				   .changed = node_quorum_changed };

	for (unsigned i = 0; (env.other = config_node_by_index(n->cfg, i)); i++) {
		if (!env.other->witness || env.other == n->me)
			continue;
		if (n->nwits == NODE_PEERS_MAX || !(n->wits[n->nwits] = witlink_new(&env)))
			return -1;
		n->nwits++;
	}
	primary_set_witnesses(n->pri, n->wits, n->nwits);
	return 0;
}

/* The parts, on the replica: the primary's and the secondary's sides and
 * a struct sync per peer.  0, or -1 (logged). */
static int node_add_parts(struct node *n)
{
	struct sync_env env = { .loop = n->loop,
				.cfg = n->cfg,
				.me = n->me,
				.secret = n->secret_len ? n->secret : NULL,
				.secret_len = n->secret_len,
				.loc = n->loc,
				.up = &node_up,
				.node = n };

	n->pri = primary_new(n->loc, n->loop, n->cfg, &node_up, n);
	if (!n->pri)
		return -1;
	n->sec = secondary_new(n->loc, n->loop, n->cfg);
	if (!n->sec)
		return -1;
	env.pri = n->pri;
	env.sec = n->sec;
	if (config_node_count(n->cfg) > 2 && !(env.hub = n->hub = sync_hub_new(&env)))
		return -1;
	for (unsigned i = 0; i < config_node_count(n->cfg); i++) {
		env.other = config_node_by_index(n->cfg, i);
		if (env.other == n->me || env.other->witness)
			continue;
		if (n->npeers == NODE_PEERS_MAX || !(n->peers[n->npeers] = sync_new(&env))) {
			log_err("cannot set up the link to %s", env.other->name);
			return -1;
		}
		n->npeers++;
	}
	return node_add_witnesses(n, env.hub);
}

static int node_start_peers(struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_start(n->peers[i]) < 0)
			return -1;
	for (unsigned i = 0; i < n->nwits; i++)
		if (witlink_start(n->wits[i]) < 0)
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

/* `down --detach` of a loop device, once it is detached: stop, handing
 * over first as `down` does (the request is answered already). */
static void node_dev_stop(void *arg)
{
	if (node_hands_over(arg))
		node_cmd_handover(arg, NULL);
	else
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
	if (n->pri && n->sec)
		node_quorum_tick(n);
	n->above->tick(n->obs);
	if (!n->stopping)
		node_arm_tick(n);
}

static int node_setup(struct node *n)
{
	if (rundir_paths(&n->run, config_resource_name(n->cfg), n->me->name) < 0)
		return -1;
	if (node_load(n) < 0 || !(n->loop = loop_new()))
		return -1;
	n->ctl = control_new(n->loop, n->run.ctl, n->above->handle, n);
	n->dev = devices_new(n->loop, n->cfg, n->sb->resource, n->sb->node, &node_devices_host, n);
	if (!n->ctl || !n->dev || rundir_write_pid(&n->run) < 0 ||
	    rundir_signals_start(&n->sig, n->loop, node_on_signal, n, &n->stopping) < 0)
		return -1;
	loop_add_hook(n->loop, node_reap, n);
	loop_add_hook(n->loop, node_demote_hook, n);
	loop_add_hook(n->loop, node_pump, n);
	loop_add_hook(n->loop, node_fence_check, n);
	n->tick_op.done = node_on_tick;
	node_arm_tick(n);
	if (!(n->obs = n->above->observe(n)) || node_start_role(n) < 0 || node_start_peers(n) < 0)
		return -1;
	return 0;
}

static void node_free(struct node *n)
{
	hook_free(n->fence);
	devices_free(n->dev);
	server_free(n->srv);
	server_free(n->retiring);
	control_free(n->ctl);
	loop_free(n->loop);
	if (n->obs)
		n->above->unobserve(n->obs); /* its hook went with the loop */
	rundir_signals_close(&n->sig);
	if (n->ctl && *n->run.pid)
		(void)unlink(n->run.pid);
	node_free_peers(n); /* resync buffers: after the ring */
	peer_hub_free(n->hub); /* after its links */
	secondary_free(n->sec);
	primary_free(n->pri);
	local_close(n->loc);
	secmem_free(n->secret, CONFIG_SECRET_MAX);
	free(n);
}

struct node *node_start(struct config *cfg, const struct config_node *me, int ready_fd,
			const struct node_above *above)
{
	struct node *n;

	n = calloc(1, sizeof(*n));
	if (!n) {
		log_err("out of memory");
		return NULL;
	}
	n->cfg = cfg;
	n->me = me;
	n->sig.fd = -1;
	n->ready_fd = ready_fd;
	n->above = above;
	if (node_setup(n) < 0) {
		node_free(n);
		return NULL;
	}
	/* A node back as primary only because it went down as one may step
	 * back once it meets its peer: READY (and `up`) waits for that. */
	if (n->resumed && n->npeers)
		n->ready_by_ms = clock_now_ms() + NODE_READY_WAIT_MS;
	else
		node_up_report(n);
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

/* The peer that matters most: the primary if one is connected, else the
 * first connected one, else the first (the only one of a pair). */
struct sync *node_peer(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]) && sync_hello(n->peers[i])->role == MSG_ROLE_PRIMARY)
			return n->peers[i];
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]))
			return n->peers[i];
	return n->npeers ? n->peers[0] : NULL;
}

unsigned node_nwits(const struct node *n)
{
	return n->nwits;
}

struct witlink *node_wit_at(const struct node *n, unsigned i)
{
	return i < n->nwits ? n->wits[i] : NULL;
}

unsigned node_npeers(const struct node *n)
{
	return n->npeers;
}

struct sync *node_peer_at(const struct node *n, unsigned i)
{
	return i < n->npeers ? n->peers[i] : NULL;
}

/* The peer by name, or NULL. */
struct sync *node_peer_named(const struct node *n, const char *name)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (!strcmp(sync_name(n->peers[i]), name))
			return n->peers[i];
	return NULL;
}

uint64_t node_size(const struct node *n)
{
	return primary_export_size(n->pri);
}

uint64_t node_out_of_sync(const struct node *n)
{
	uint64_t max = 0;

	for (unsigned i = 0; i < n->npeers; i++) {
		uint64_t b = local_slot_out_of_sync(n->loc, sync_slot(n->peers[i]), node_size(n));

		if (b > max)
			max = b;
	}
	return max;
}

struct obs *node_obs(const struct node *n)
{
	return n->obs;
}

struct devices *node_devices(const struct node *n)
{
	return n->dev;
}

struct config *node_config(const struct node *n)
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
	return n->npeers == 1 ? sync_name(n->peers[0]) : n->npeers ? "the peers" : "";
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
	     const struct node_above *above)
{
	struct node *n = node_start(cfg, me, ready_fd, above);

	if (!n)
		return 1;
	return node_finish(n, loop_run(n->loop, node_keep_going, n) == 0);
}
