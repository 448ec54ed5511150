/* A node's roles: promotion, demotion and the handover of `down` (see
 * node.h; the state is node_int.h's). */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
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

/* Why this node may not become primary now, or NULL. */
static const char *node_promote_refusal(const struct node *n, bool force, bool discard)
{
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
	/* A new generation: writes from now on are newer than anything a
	 * peer holds, unless it is connected and receiving them (a fresh
	 * node's first promotion: than anything any peer holds). */
	secondary_forget_receipts(n->sec); /* restarted uncleanly: it cannot say where */
	primary_promoted(n->pri);
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
	if (config_on_peer_loss(n->cfg) != CONFIG_PEER_LOSS_FREEZE)
		return;
	for (unsigned i = 0; i < n->npeers; i++)
		if (!sync_up(n->peers[i])) {
			secondary_may_lag(n->sec, "demoted while a peer is not connected: that peer "
					  "may be promoted and write meanwhile");
			return;
		}
}

bool node_demote(struct node *n)
{
	n->resumed = false;
	node_stop_export(n);
	node_set_role(n, false);
	node_demoted_apart(n);
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

