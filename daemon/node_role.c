/* A node's roles: promotion, demotion and the handover of `down` (see
 * node.h; the state is node_int.h's). */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/dev/devices.h"
#include "daemon/meta/gen.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/secondary.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/witlink.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/clock.h"
#include "utils/log.h"

/* --- roles --- */

/* The primary's side keeps the role too: a client write asks no one
 * above it. */
void node_set_role(struct node *n, bool primary)
{
	n->primary = primary;
	primary_set_role(n->pri, primary);
}

/* A witness connected to this node holds a generation this node never had
 * (another node was primary meanwhile), or NULL. */
static const struct witlink *node_witness_newer(const struct node *n)
{
	for (unsigned i = 0; i < n->nwits; i++) {
		const struct witlink *w = n->wits[i];
		enum gen_rel r;

		if (!witlink_up(w))
			continue;
		r = primary_relation(n->pri, witlink_hello(w));
		if (r == GEN_REL_NEWER || r == GEN_REL_UNRELATED)
			return w;
	}
	return NULL;
}

/* Quorum's word on a promotion (issue 17), or NULL. */
static const char *node_quorum_refusal(const struct node *n, bool no_quorum)
{
	static char why[512];
	const struct witlink *w;

	if (config_quorum(n->cfg) != CONFIG_QUORUM_MAJORITY || no_quorum)
		return NULL;
	if (!primary_quorum(n->pri)) {
		char q[256];

		primary_quorum_why(n->pri, q, sizeof(q));
		snprintf(why, sizeof(why), "no quorum: %s; promote a node that has quorum, or, "
			 "if the other nodes are gone for good, run primary --force --no-quorum "
			 "(writes they acknowledged after this node lost them would be lost)", q);
		return why;
	}
	if ((w = node_witness_newer(n))) {
		snprintf(why, sizeof(why), "the witness %s holds a newer generation, %016" PRIx64
			 ", which this node (at %016" PRIx64 ") never had: it lacks writes "
			 "acknowledged meanwhile; promote the node that holds them (or, if it is "
			 "gone for good, primary --force --no-quorum here)", witlink_name(w),
			 witlink_hello(w)->gen_current, n->sb->gen.current);
		return why;
	}
	return NULL;
}

/* Why this node may not become primary now, or NULL. */
static const char *node_promote_refusal(const struct node *n, bool force, bool discard,
					bool no_quorum)
{
	const char *q = node_quorum_refusal(n, no_quorum);

	if (no_quorum && !force)
		return "--no-quorum overrides quorum only with --force: primary --force --no-quorum";
	if (q)
		return q;
	if (n->demote_req)
		return "a demotion is still finishing (the peer flushes what it holds): try again";
	if (node_peer_primary(n))
		return "the peer is primary: run blkrep secondary there first";
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_peer_newer(n->peers[i]))
			return "a connected peer holds newer data than this node (its generation "
			       "descends from this node's; status shows which): promote that peer, "
			       "or stop it first to promote this node with --force";
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
		if (n->sb->gen.current == GEN_CREATED)
			return "a new pair: neither node's data is known to match the other's; "
			       "run primary --force on the node whose data the peer gets (a "
			       "full sync follows)";
		return n->sb->disk == META_DISK_OUTDATED
			       ? "this node's disk is outdated: it is known to lack writes; "
				 "promote it only with --force --discard-unknown"
			       : "this node's disk is inconsistent (a resync target that did not "
				 "finish): promote it only with --force --discard-unknown";
	}
}

int node_promote(struct node *n, bool force, bool discard, bool no_quorum, char *why,
		 size_t whylen)
{
	const char *no = node_promote_refusal(n, force, discard, no_quorum);
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
	/* A new generation: writes from now on are newer than anything a
	 * peer holds, unless it is connected and receiving them (a fresh
	 * node's first promotion: than anything any peer holds). */
	secondary_forget_receipts(n->sec); /* restarted uncleanly: it cannot say where */
	primary_promoted(n->pri);
	if (no_quorum && !primary_quorum(n->pri))
		log_warn("promoted without quorum (--no-quorum): writes the other nodes "
			 "acknowledged after this node lost them are not here");
	if (no_quorum)
		primary_quorum_override(n->pri);
	if (primary_step_gen(n->pri, n->sb->gen.current == GEN_CREATED) < 0) {
		node_stop_export(n);
		snprintf(why, whylen, "cannot write the metadata (see the log)");
		return -1;
	}
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
const char *node_record_memory(struct node *n)
{
	primary_unflushed_to_bitmap(n->pri);
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
bool node_finish_demote(struct node *n)
{
	const char *why;

	if (n->retiring || !primary_peers_flushed(n->pri))
		return false;
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
	if (n->demote_req && n->handover)
		control_reply(n->demote_req, true, "%s/%s handed over to %s and is secondary%s; "
			      "stopping\n", n->sb->resource, n->sb->node, node_handover_to(n),
			      why ? " (see the log: the metadata was not written)" : "");
	else if (n->demote_req)
		control_reply(n->demote_req, !why, "%s/%s is secondary%s\n", n->sb->resource,
			      n->sb->node, why ? " (see the log: the metadata was not written)" : "");
	n->demote_req = NULL;
	if (n->handover)
		node_begin_stop(n);
	return true;
}

/* The role the node is up in, and READY: `up` prints the line. */
void node_up_report(struct node *n)
{
	bool stepped_back = n->ready_by_ms && !n->primary;

	n->ready_by_ms = 0;
	if (stepped_back)
		log_info("%s/%s up as secondary (%s is primary), disk %s", n->sb->resource,
			 n->sb->node, sync_name(node_peer(n)), local_disk_name(n->loc));
	else
		log_info("%s/%s up as %s, disk %s", n->sb->resource, n->sb->node,
			 node_role_name(n->primary), local_disk_name(n->loc));
	node_ready(n);
}

/* A loop hook: a demotion finishes once its conditions hold; READY once
 * the link decided the role (connected, stepped back, refused) or the
 * wait is over. */
void node_demote_hook(void *arg)
{
	struct node *n = arg;
	const char *err;

	if (n->demoting)
		(void)node_finish_demote(n);
	if (!n->ready_by_ms)
		return;
	err = "";
	for (unsigned i = 0; i < n->npeers && !*err; i++)
		if (sync_peer(n->peers[i]))
			err = peer_last_error(sync_peer(n->peers[i]));
	if (node_connected(n) || !n->primary || *err || clock_now_ms() >= n->ready_by_ms)
		node_up_report(n);
}

/* Under freeze, a sync peer that lost this primary stays up to date (it
 * missed nothing this node acknowledged): once this node is demoted,
 * that peer may be promoted without --force and write, so a peer not
 * connected now makes this node only consistent.  (Under continue the
 * peer became consistent when the link went, and this node stays the
 * up-to-date one.) */
static void node_demoted_apart(struct node *n)
{
	if (!secondary_policy_holds(n->cfg))
		return;
	for (unsigned i = 0; i < n->npeers; i++)
		if (!sync_up(n->peers[i])) {
			secondary_may_lag(n->sec, "demoted while a peer is not connected: that peer "
					  "may be promoted and write meanwhile");
			return;
		}
}

/* A primary that another replaced while it waited for quorum, in sync
 * mode, acknowledged nothing its peers lack: what only it holds are
 * writes that failed, so its disk is outdated (the resync overwrites
 * them, nothing to save).  In async mode it may hold acknowledged writes
 * the new primary lacks: consistent, and the resync saves them first. */
/* Its generation unrelated to the other's and held by no connected
 * voter (a step lost across a crash): back to their common one
 * (gen_rewind()), so that the resync runs from the other without a split
 * brain.  True if it went back. */
/* Whether a connected voter holds generation gen (as its own or as an
 * ancestor): a majority may have recorded it. */
static bool node_voter_knows(const struct node *n, uint64_t gen)
{
	const struct msg_hello *h;

	for (unsigned i = 0; i < n->npeers + n->nwits; i++) {
		if (i < n->npeers ? !sync_up(n->peers[i]) : !witlink_up(n->wits[i - n->npeers]))
			continue;
		h = i < n->npeers ? sync_hello(n->peers[i]) : witlink_hello(n->wits[i - n->npeers]);
		if (h->gen_current == gen || h->gen_bitmap == gen)
			return true;
		for (unsigned j = 0; j < MSG_GEN_HISTORY; j++)
			if (h->gen_history[j] == gen)
				return true;
	}
	return false;
}

static bool node_rewind(struct node *n, const struct msg_hello *h)
{
	uint64_t was = n->sb->gen.current;

	uint64_t slots[META_PEERS_MAX];

	for (unsigned i = 0; i < META_PEERS_MAX; i++)
		slots[i] = n->sb->slot[i].bitmap_gen;
	if (primary_relation(n->pri, h) != GEN_REL_UNRELATED || node_voter_knows(n, was) ||
	    !gen_rewind(&n->sb->gen.current, n->sb->gen.history, slots, META_PEERS_MAX,
			h->gen_current, h->gen_bitmap, h->gen_history))
		return false;
	log_info("generation %016" PRIx64 " is not known to any connected voter: back to "
		 "%016" PRIx64 ", which %s also descends from (what this node wrote since is "
		 "saved before the resync)", was, n->sb->gen.current, h->node);
	return true;
}

static void node_stepped_down(struct node *n)
{
	if (!n->stepping_down)
		return;
	n->stepping_down = false;
	/* Rewound, it cannot tell whether a voter it does not see recorded
	 * its generation (a --no-quorum promotion elsewhere): consistent, so
	 * that the resync saves its own writes first. */
	if (!node_rewind(n, &n->stepdown_from) && n->sb->mode == META_MODE_SYNC)
		n->sb->disk = META_DISK_OUTDATED;
	else
		secondary_may_lag(n->sec, "another node was primary while this one had no quorum");
}

bool node_demote(struct node *n)
{
	if (config_quorum(n->cfg) == CONFIG_QUORUM_MAJORITY) {
		/* What waited for quorum was never acknowledged: it fails. */
		primary_fail_held(n->pri);
		primary_drop_pending(n->pri);
	}
	n->resumed = false;
	node_stop_export(n);
	node_set_role(n, false);
	node_demoted_apart(n);
	node_stepped_down(n);
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

/* `down` of a primary connected to an up-to-date peer is a handover: it
 * demotes first (its clients answered, the stream flushed by the peer,
 * STATE secondary sent, as `secondary`), then stops.  The peer, whose
 * primary became secondary before the link went, stays up to date and is
 * promoted without --force; this node comes back as secondary.  Answered
 * once the demotion is done. */
void node_cmd_handover(struct node *n, struct control_req *req)
{
	if (n->demote_req) {
		if (req)
			control_reply(req, false, "a demotion is still finishing: try again");
		return;
	}
	log_info("handing over to %s (up to date): demoting, then stopping", node_handover_to(n));
	n->handover = true;
	n->demote_req = req;
	(void)node_demote(n);
}

/* The connected up-to-date peer a handover leaves the data to, or NULL. */
static const struct sync *node_uptodate_peer(const struct node *n)
{
	for (unsigned i = 0; i < n->npeers; i++)
		if (sync_up(n->peers[i]) && sync_hello(n->peers[i])->disk == MSG_DISK_UPTODATE)
			return n->peers[i];
	return NULL;
}

const char *node_handover_to(const struct node *n)
{
	const struct sync *s = node_uptodate_peer(n);

	return s ? sync_name(s) : "the peers";
}

/* Whether `down` would hand over (node_cmd_handover()). */
bool node_hands_over(const struct node *n)
{
	return n->primary && node_uptodate_peer(n);
}


/* --- quorum (issue 17) --- */

/* A primary waiting for quorum that finds another node was primary
 * meanwhile (a witness holds a generation this node never had, or a data
 * peer connects as primary: node_quorum_yields()) steps down: its held
 * writes fail, a generation no majority recorded is forgotten, and the
 * resync brings it up to date. */
static void node_quorum_step_down(struct node *n, const char *who, const struct msg_hello *h)
{
	log_warn("%s: another node became primary while this one had no quorum; %s/%s "
		 "becomes secondary (its held writes fail, never acknowledged) and resyncs",
		 who, n->sb->resource, n->sb->node);
	n->stepping_down = true;
	n->stepdown_from = *h;
	(void)node_demote(n);
}

/* Whether this primary, without quorum, yields to a data peer that
 * connects as primary (node_up's resumed_only: the peer then refuses us
 * routinely and we step down, sync_yield_to_primary()). */
bool node_quorum_yields(const struct node *n)
{
	return n->primary && config_quorum(n->cfg) == CONFIG_QUORUM_MAJORITY &&
	       primary_quorum_blocks(n->pri) && !primary_quorum(n->pri);
}

/* A witness's link came up or down, or it confirmed a generation. */
void node_quorum_changed(void *arg)
{
	struct node *n = arg;
	const struct witlink *w;

	if (n->primary && primary_quorum_blocks(n->pri) && (w = node_witness_newer(n)))
		node_quorum_step_down(n, witlink_name(w), witlink_hello(w));
	primary_quorum_changed(n->pri);
	primary_wake(n->pri);
}

/* This node's place among the connected up-to-date data nodes that could
 * promote (priority, higher first, then name): 0 goes first. */
static unsigned node_failover_rank(const struct node *n)
{
	unsigned rank = 0;

	for (unsigned i = 0; i < n->npeers; i++) {
		const struct config_node *o = sync_node(n->peers[i]);

		if (!sync_up(n->peers[i]) || sync_hello(n->peers[i])->disk != MSG_DISK_UPTODATE)
			continue;
		if (o->priority > n->me->priority ||
		    (o->priority == n->me->priority && strcmp(o->name, n->me->name) < 0))
			rank++;
	}
	return rank;
}

/* Auto-failover: what is missing for this node to promote itself, or
 * NULL. */
static const char *node_failover_blocked(const struct node *n)
{
	if (n->primary || n->demote_req || n->stopping)
		return "";
	if (node_peer_primary(n))
		return "a connected node is primary";
	if (n->sb->disk != META_DISK_UPTODATE)
		return "this node's disk is not up to date";
	return node_promote_refusal(n, false, false, false);
}

/* Once a second: auto-failover.  A secondary with quorum, an up-to-date
 * disk and no primary in sight promotes itself after 1 s, plus 1 s for
 * each connected up-to-date node ranked before it. */
void node_quorum_tick(struct node *n)
{
	uint64_t now = clock_now_ms(), wait;
	char why[640];

	if (!config_auto_failover(n->cfg) || node_failover_blocked(n)) {
		n->af_since_ms = 0;
		return;
	}
	if (!n->af_since_ms)
		n->af_since_ms = now;
	wait = 1000 + 1000ULL * node_failover_rank(n);
	if (now - n->af_since_ms < wait)
		return;
	n->af_since_ms = 0;
	log_info("auto-failover: no primary is connected, this node has quorum and "
		 "up-to-date data: promoting itself");
	if (node_promote(n, false, false, false, why, sizeof(why)) < 0) {
		log_warn("auto-failover: promotion refused: %s", why);
		return;
	}
	node_failover_command(n);
}
