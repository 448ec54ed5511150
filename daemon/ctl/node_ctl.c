/* The node's control requests and status; the command table
 * (daemon/cli/commands.c) names the requests and dispatches them.  Above
 * the node: it asks the node (daemon/node.h) and its parts. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/cli/cmdspec.h"
#include "daemon/cli/commands.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/events.h"
#include "daemon/ctl/obs.h"
#include "daemon/dev/devices.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/meta/savefile.h"
#include "daemon/node.h"
#include "daemon/repl/diskerr.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/resync.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "daemon/repl/witlink.h"
#include "daemon/repl/verify.h"
#include "proto/peer.h"
#include "utils/bitmap.h"
#include "utils/human.h"
#include "utils/log.h"
#include "utils/strbuf.h"

/* --- status --- */

static struct meta_sb *node_sb(const struct node *n)
{
	return local_sb(node_local(n));
}

/* The bitmap slot of the peer that matters most (node_peer()). */
static struct bitmap *node_bm(const struct node *n)
{
	return local_slot_bm(node_local(n), sync_slot(node_peer(n)));
}

static const char *node_peer_error(const struct node *n)
{
	const struct sync *s = node_peer(n);

	return s && sync_peer(s) ? peer_last_error(sync_peer(s)) : "";
}

/* "tls-psk", "tls-certificate" or "none"; and who encrypts the link that
 * is up ("kernel", "userspace"), NULL otherwise. */
static const char *node_encryption(const struct node *n, const char **offload)
{
	const struct sync *s = node_peer(n);
	const struct peer *p = s ? sync_peer(s) : NULL;

	*offload = p ? peer_tls_offload(p) : NULL;
	return p ? peer_encryption(p) : "none";
}

/* The peer's data area as its last HELLO or STATE said, or 0 if unknown. */
static uint64_t node_peer_area(const struct node *n)
{
	const struct sync *s = node_peer(n);

	return s && sync_hello(s)->size_bytes ? sync_hello(s)->size_bytes : 0;
}

/* The resync running, from either side (sync_resync_progress()). */
static bool node_resync_progress(const struct node *n, uint64_t *done, uint64_t *total,
				 uint64_t *bps)
{
	const struct sync *s = node_peer(n);

	return s && sync_resync_progress(s, done, total, bps);
}

static void node_resync_json(const struct node *n, char *buf, size_t len)
{
	uint64_t done, total, bps;

	if (!node_resync_progress(n, &done, &total, &bps))
		snprintf(buf, len, "null");
	else
		snprintf(buf, len,
			 "{\"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
			 ", \"bytes_per_second\": %" PRIu64 "}",
			 done, total, bps);
}

#define NODE_PEERS_JSON_MAX 4096 /* 7 peers of about 400 bytes */

/* What this node sent or received by resync, with every peer. */
static uint64_t node_resynced_bytes(const struct node *n)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < node_npeers(n); i++)
		b += sync_resynced_bytes(node_peer_at(n, i));
	return b;
}

/* One peer in status --json's "peers" list. */
static void node_peer_json(const struct node *n, const struct sync *s, struct strbuf *o)
{
	struct local *loc = node_local(n);
	uint64_t done, total, bps;
	char rs[160] = "null";

	if (sync_resync_progress(s, &done, &total, &bps))
		snprintf(rs, sizeof(rs),
			 "{\"role\": \"%s\", \"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
			 ", \"bytes_per_second\": %" PRIu64 "}",
			 sync_rs_role(s) == RS_SOURCE ? "source" : "target", done, total, bps);
	strbuf_printf(o,
			"{\"name\": \"%s\", \"connection\": \"%s\", \"role\": \"%s\", "
			"\"disk\": \"%s\", \"mode\": \"%s\", \"out_of_sync_bytes\": %" PRIu64
			", \"lag_bytes\": %" PRIu64 ", \"resync\": %s, \"resynced_bytes\": %" PRIu64
			"}",
			sync_name(s), obs_sync_connection(s),
			!sync_up(s) ? "unknown"
			: sync_hello(s)->role == MSG_ROLE_PRIMARY ? "primary" : "secondary",
			sync_peer_disk(s), lane_async(sync_lane(s)) ? "async" : "sync",
			local_slot_out_of_sync(loc, sync_slot(s), node_size(n)),
			stream_lag_bytes(sync_stream(s)), rs, sync_resynced_bytes(s));
}

/* A witness in status --json's "peers" list (issue 17). */
static void node_witness_json(const struct witlink *w, struct strbuf *o)
{
	strbuf_printf(o,
		      "{\"name\": \"%s\", \"connection\": \"%s\", \"role\": \"witness\", "
		      "\"disk\": \"diskless\", \"mode\": null, \"out_of_sync_bytes\": 0, "
		      "\"lag_bytes\": 0, \"resync\": null, \"resynced_bytes\": 0, "
		      "\"generation\": \"%016" PRIx64 "\"}",
		      witlink_name(w), witlink_up(w) ? "connected" : "connecting",
		      witlink_up(w) ? witlink_hello(w)->gen_current : 0);
}

/* "peers": [...], every peer of the node, the witnesses last. */
static void node_peers_json(const struct node *n, char *buf, size_t len)
{
	struct strbuf o = STRBUF_INIT(buf, len);

	strbuf_printf(&o, "[");
	for (unsigned i = 0; i < node_npeers(n); i++) {
		strbuf_printf(&o, "%s", i ? ", " : "");
		node_peer_json(n, node_peer_at(n, i), &o);
	}
	for (unsigned i = 0; i < node_nwits(n); i++) {
		strbuf_printf(&o, "%s", i || node_npeers(n) ? ", " : "");
		node_witness_json(node_wit_at(n, i), &o);
	}
	strbuf_printf(&o, "]");
}

/* Quorum's fields of status --json (issue 17). */
static void node_quorum_json(const struct node *n, char *buf, size_t len)
{
	const struct primary *p = node_primary(n);
	char why[256], esc[512];

	primary_quorum_why(p, why, sizeof(why));
	events_json_escape(esc, sizeof(esc), why);
	snprintf(buf, len,
		 "\"quorum\": %s, \"quorum_policy\": \"%s\", \"quorum_why\": \"%s\", "
		 "\"voters\": %u, \"voters_connected\": %u, \"io_suspended\": %s, ",
		 primary_quorum(p) ? "true" : "false",
		 config_quorum(node_config(n)) == CONFIG_QUORUM_MAJORITY ? "majority" : "off", esc,
		 primary_voters(p), primary_voters_connected(p),
		 node_is_primary(n) && primary_io_suspended(p) ? "true" : "false");
}

static void node_status_json(struct node *n, struct control_req *req)
{
	char peers[NODE_PEERS_JSON_MAX], one[1024] = "", q[768];
	char err[512], derr[512], rs[160], vf[160], dev[32] = "null", off[16] = "null", name[24];
	const char *offload, *enc = node_encryption(n, &offload);
	uint64_t done, total, differ;
	struct primary_stats st;
	bool running;

	primary_stats(node_primary(n), &st);
	if (obs_device(n, name, sizeof(name)))
		snprintf(dev, sizeof(dev), "\"%s\"", name);
	if (offload)
		snprintf(off, sizeof(off), "\"%s\"", offload);
	events_json_escape(err, sizeof(err), node_peer_error(n));
	events_json_escape(derr, sizeof(derr), obs_disk_error(n));
	node_resync_json(n, rs, sizeof(rs));
	if (verify_result(sync_verify(node_peer(n)), &running, &done, &total, &differ))
		snprintf(vf, sizeof(vf),
			 "{\"running\": %s, \"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
			 ", \"differing_extents\": %" PRIu64 "}",
			 running ? "true" : "false", done, total, differ);
	else
		snprintf(vf, sizeof(vf), "null");
	node_peers_json(n, peers, sizeof(peers));
	node_quorum_json(n, q, sizeof(q));
	/* "peer": the only peer of a pair (absent with more). */
	if (node_npeers(n) == 1)
		snprintf(one, sizeof(one),
			 "\"peer\": {\"name\": \"%s\", \"connection\": \"%s\", \"disk\": \"%s\", "
			 "\"last_error\": \"%s\", \"encryption\": \"%s\", \"tls_offload\": %s}, ",
			 node_peer_name(n), obs_connection(n), sync_peer_disk(node_peer(n)), err, enc,
			 off);
	control_reply(req, true,
		      "{\"resource\": \"%s\", \"node\": \"%s\", \"role\": \"%s\", "
		      "\"mode\": \"%s\", \"on_peer_loss\": \"%s\", \"disk\": \"%s\", "
		      "\"disk_error\": \"%s\", %s%s\"peers\": %s, "
		      "\"size_bytes\": %" PRIu64 ", \"data_area_bytes\": %" PRIu64 ", "
		      "\"peer_data_area_bytes\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64 ", "
		      "\"lag_bytes\": %" PRIu64 ", \"lag_seconds\": %.3f, "
		      "\"resync\": %s, \"verify\": %s, \"frozen\": %s, \"fence_peer\": \"%s\", "
		      "\"device\": %s, "
		      "\"stats\": {\"writes\": %" PRIu64 ", \"replicated_bytes\": %" PRIu64 ", "
		      "\"resynced_bytes\": %" PRIu64 "}, \"generation\": \"%016" PRIx64 "\"}\n",
		      node_sb(n)->resource, node_sb(n)->node, node_role_name(node_is_primary(n)), local_mode_name(node_local(n)),
		      config_peer_loss_name(config_on_peer_loss(node_config(n))), local_disk_name(node_local(n)), derr,
		      q, one, peers, node_size(n), node_sb(n)->data_bytes, node_peer_area(n), node_out_of_sync(n),
		      st.lag_bytes, st.lag_seconds, rs, vf,
		      primary_frozen(node_primary(n)) ? "true" : "false", node_fence_state(n), dev, st.writes, st.replicated_bytes,
		      node_resynced_bytes(n), node_sb(n)->gen.current);
}

/* "  resync [#####.....] 52% 12.0 MiB/s, 3 s left\n" with the one peer
 * of a pair, or "" when none runs; a frozen primary says so. */
static void node_resync_text(const struct node *n, char *buf, size_t len)
{
	uint64_t done, total, bps, left, oos = node_out_of_sync(n);
	char bar[21], copied[HUMAN_BYTES_LEN], rest[HUMAN_BYTES_LEN];
	unsigned pct;
	int o = 0;

	buf[0] = '\0';
	if (primary_frozen(node_primary(n)))
		o = snprintf(buf, len, "  writes frozen: waiting for %s or `blkrep outdate-peer`%s%s\n",
			     node_peer_name(n), *node_fence_state(n) ? "; fence-peer: " : "",
			     node_fence_state(n));
	/* Three nodes or more: each peer's line says its resync. */
	if (node_npeers(n) > 1 || !node_resync_progress(n, &done, &total, &bps))
		return;
	/* A source's bits clear as the peer flushes what it copied (and bits
	 * set again during the pass count too); a target's at the end.  Never
	 * 100% while anything is out of sync. */
	left = sync_rs_role(node_peer(n)) == RS_SOURCE ? oos : total > done ? total - done : 0;
	pct = human_percent(done, left, oos);
	for (unsigned i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	snprintf(buf + o, len - (size_t)o,
		 "  resync %s [%s] %u%%: %s copied, %s left, %.1f MiB/s, ETA %" PRIu64 " s\n",
		 sync_rs_role(node_peer(n)) == RS_SOURCE ? "to peer" : "from peer", bar, pct,
		 human_bytes(done, copied, sizeof(copied)), human_bytes(left, rest, sizeof(rest)),
		 (double)bps / (1 << 20), bps ? left / bps : 0);
}

/* "  size 1.0 GiB, 0 B out of sync, lag 0 B (0.0 s), device /dev/nbd0\n";
 * data areas of different sizes are named after the size. */
static void node_sizes_text(struct node *n, const struct primary_stats *st, char *buf,
			    size_t len)
{
	char size[HUMAN_BYTES_LEN], mine[HUMAN_BYTES_LEN], theirs[HUMAN_BYTES_LEN],
		areas[96] = "", oos[HUMAN_BYTES_LEN], lag[HUMAN_BYTES_LEN], dev[24];
	const char *name = obs_device(n, dev, sizeof(dev));
	uint64_t peer = node_peer_area(n);

	if (node_sb(n)->data_bytes != node_size(n) || (peer && peer != node_size(n)))
		snprintf(areas, sizeof(areas), " (data areas: %s here, %s on %s)",
			 human_bytes(node_sb(n)->data_bytes, mine, sizeof(mine)),
			 peer ? human_bytes(peer, theirs, sizeof(theirs)) : "unknown",
			 node_peer_name(n));
	snprintf(buf, len, "  size %s%s, %s out of sync, lag %s (%.1f s), device %s\n",
		 human_bytes(node_size(n), size, sizeof(size)), areas,
		 human_bytes(node_out_of_sync(n), oos, sizeof(oos)),
		 human_bytes(st->lag_bytes, lag, sizeof(lag)), st->lag_seconds,
		 name ? name : "none");
}

/* "  peer beta: connected, disk uptodate, link tls-psk\n" and its last
 * error: the one peer of a pair. */
static void node_pair_peer_text(const struct node *n, char *buf, size_t len)
{
	const char *err = node_peer_error(n);
	const char *offload, *enc = node_encryption(n, &offload);

	snprintf(buf, len, "  peer %s: %s, disk %s, link %s%s%s%s%s%s\n", node_peer_name(n),
		 obs_connection(n), sync_peer_disk(node_peer(n)),
		 strcmp(enc, "none") ? enc : "unencrypted (allow-unencrypted)", offload ? ", " : "",
		 offload ? offload : "", offload ? " crypto" : "", *err ? "\n  last error: " : "",
		 err);
}

/* ", resync to peer 52% (3.0 MiB left)" while one runs with s, else "". */
static void node_peer_resync_text(const struct node *n, const struct sync *s, char *buf,
				  size_t len)
{
	uint64_t done, total, bps, left,
		oos = local_slot_out_of_sync(node_local(n), sync_slot(s), node_size(n));
	char rest[HUMAN_BYTES_LEN];
	bool source = sync_rs_role(s) == RS_SOURCE;

	buf[0] = '\0';
	if (!sync_resync_progress(s, &done, &total, &bps))
		return;
	left = source ? oos : total > done ? total - done : 0;
	snprintf(buf, len, ", resync %s %u%% (%s left)", source ? "to peer" : "from peer",
		 human_percent(done, left, oos), human_bytes(left, rest, sizeof(rest)));
}

/* "  peer gamma: connected, secondary, disk uptodate, async mode, 1.0 MiB
 * out of sync, lag 256 KiB, resync to peer 25% (3.0 MiB left)\n" and its
 * last error, for peer s of three nodes or more. */
static size_t node_peer_text(const struct node *n, const struct sync *s, char *buf, size_t len)
{
	const struct peer *p = sync_peer(s);
	const char *err = p ? peer_last_error(p) : "";
	char oos[HUMAN_BYTES_LEN], lag[HUMAN_BYTES_LEN], rs[96];
	int o;

	node_peer_resync_text(n, s, rs, sizeof(rs));
	o = snprintf(buf, len,
		     "  peer %s: %s, %s, disk %s, %s mode, %s out of sync, lag %s%s\n%s%s%s",
		     sync_name(s), obs_sync_connection(s),
		     !sync_up(s) ? "role unknown"
		     : sync_hello(s)->role == MSG_ROLE_PRIMARY ? "primary"
							      : "secondary",
		     sync_peer_disk(s), lane_async(sync_lane(s)) ? "async" : "sync",
		     human_bytes(local_slot_out_of_sync(node_local(n), sync_slot(s), node_size(n)),
				 oos, sizeof(oos)),
		     human_bytes(stream_lag_bytes(sync_stream(s)), lag, sizeof(lag)), rs,
		     *err ? "    last error: " : "", err, *err ? "\n" : "");
	return o < 0 ? 0 : (size_t)o < len ? (size_t)o : len;
}

#define NODE_PEERS_TEXT_MAX 4096 /* 7 peers' lines, with their last errors */

/* The peer lines: the pair's one, or one per peer. */
static void node_peers_text(const struct node *n, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	if (node_npeers(n) == 1) {
		node_pair_peer_text(n, buf, len);
		return;
	}
	for (unsigned i = 0; i < node_npeers(n) && at < len; i++)
		at += node_peer_text(n, node_peer_at(n, i), buf + at, len - at);
}

/* The witnesses' lines and the quorum line (issue 17), or "". */
static void node_quorum_text(const struct node *n, char *buf, size_t len)
{
	const struct primary *p = node_primary(n);
	struct strbuf o = STRBUF_INIT(buf, len);
	char why[256];

	*buf = '\0';
	for (unsigned i = 0; i < node_nwits(n); i++) {
		const struct witlink *w = node_wit_at(n, i);

		strbuf_printf(&o, "  witness %s: %s", witlink_name(w),
			      witlink_up(w) ? "connected" : "connecting");
		if (witlink_up(w))
			strbuf_printf(&o, ", generation %016" PRIx64, witlink_hello(w)->gen_current);
		strbuf_printf(&o, "\n");
	}
	if (config_quorum(node_config(n)) != CONFIG_QUORUM_MAJORITY)
		return;
	primary_quorum_why(p, why, sizeof(why));
	if (!*why)
		strbuf_printf(&o, "  quorum: yes (%u of %u voters)%s\n", primary_voters_connected(p),
			      primary_voters(p),
			      node_is_primary(n) && primary_io_suspended(p)
				      ? "; writes wait until a majority records the generation" : "");
	else
		strbuf_printf(&o, "  quorum: LOST: %s%s%s\n", why,
			      !node_is_primary(n) ? ""
			      : config_on_no_quorum(node_config(n)) == CONFIG_NOQ_IO_ERROR
				      ? "; writes fail (on-no-quorum = io-error)"
				      : "; writes suspended (on-no-quorum = suspend-io)",
			      node_is_primary(n) ? "" : "; this node cannot be promoted");
}

static void node_status_text(struct node *n, struct control_req *req)
{
	const char *derr = obs_disk_error(n);
	struct primary_stats st;
	char rs[256], sizes[224], resynced[HUMAN_BYTES_LEN], peers[NODE_PEERS_TEXT_MAX], q[1024];

	primary_stats(node_primary(n), &st);
	node_quorum_text(n, q, sizeof(q));
	node_resync_text(n, rs, sizeof(rs));
	node_sizes_text(n, &st, sizes, sizeof(sizes));
	node_peers_text(n, peers, sizeof(peers));

	control_reply(req, true,
		      "%s/%s: %s, disk %s, %s mode, on peer loss: %s\n"
		      "%s%s%s%s%s"
		      "%s%s  generation %016" PRIx64 ", %" PRIu64 " writes, %s resynced since start\n",
		      node_sb(n)->resource, node_sb(n)->node, node_role_name(node_is_primary(n)),
		      local_disk_name(node_local(n)), local_mode_name(node_local(n)),
		      config_peer_loss_name(config_on_peer_loss(node_config(n))),
		      *derr ? "  disk error: " : "", derr, *derr ? "\n" : "", peers, q, sizes, rs,
		      node_sb(n)->gen.current, st.writes,
		      human_bytes(node_resynced_bytes(n), resynced, sizeof(resynced)));
}

/* --- control requests --- */

void node_req_primary(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	bool force = cmdspec_has_flag(argc, argv, "--force"),
	     discard = cmdspec_has_flag(argc, argv, "--discard-unknown"),
	     no_quorum = cmdspec_has_flag(argc, argv, "--no-quorum");
	char why[640];

	if (node_is_primary(n)) {
		control_reply(req, true, "%s/%s is already primary\n", node_sb(n)->resource, node_sb(n)->node);
		return;
	}
	if (node_promote(n, force, discard, no_quorum, why, sizeof(why)) < 0) {
		control_reply(req, false, "%s%s%s", why,
			      *diskerr_text(local_disk(node_local(n))) ? "; the disk failed a replicated " : "",
			      diskerr_text(local_disk(node_local(n))));
		return;
	}
	control_reply(req, true, "%s/%s is now primary%s%s\n", node_sb(n)->resource, node_sb(n)->node,
		      node_me(n)->nbd ? "; NBD export on " : "", node_me(n)->nbd ? node_me(n)->nbd : "");
}

void node_req_secondary(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	node_cmd_secondary(n, req);
}

/* The operator says the peer is down or fenced: a frozen primary goes on
 * alone (its writes are then recorded for the peer's resync). */
void node_req_outdate_peer(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	char names[256];

	(void)argc;
	(void)argv;
	node_outdate_down_peers(n, names, sizeof(names));
	if (!*names) {
		control_reply(req, false, "%s connected: not outdated",
			      node_npeers(n) == 1 ? "the peer is" : "every peer is");
		return;
	}
	log_warn("operator: %s outdated; writing without them", names);
	control_reply(req, true, "%s marked outdated%s\n", names,
		      node_is_primary(n) ? "; writes go on without them" : "");
}

/* The async lag still to drain before every write to a sync peer is
 * synchronous again: the lag of the peers now in sync mode. */
static uint64_t node_sync_lag(const struct node *n, uint64_t *drain)
{
	uint64_t lag = 0;

	*drain = 0;
	for (unsigned i = 0; i < node_npeers(n); i++) {
		struct sync *s = node_peer_at(n, i);

		if (lane_async(sync_lane(s)))
			continue;
		lag += stream_lag_bytes(sync_stream(s));
		*drain += stream_drain_total(sync_stream(s));
	}
	return lag;
}

/* One peer's mode (--peer NAME), or the node's for every peer (whose own
 * modes give way).  A peer switched to sync drains its lag first. */
static void node_set_mode(struct node *n, struct sync *only, bool async)
{
	struct local *loc = node_local(n);
	struct meta_sb *sb = local_sb(loc);

	for (unsigned i = 0; i < node_npeers(n); i++) {
		struct sync *s = node_peer_at(n, i);
		bool was = lane_async(sync_lane(s));

		if (only && s != only)
			continue;
		if (only)
			lane_set_mode(sync_lane(s), async);
		else
			lane_clear_mode(sync_lane(s));
		if (was && !async)
			stream_drain_begin(sync_stream(s));
	}
	if (only) {
		log_info("%s mode to %s from now on", async ? "async" : "sync", sync_name(only));
		if (sync_peer(only))
			(void)peer_send_state(sync_peer(only)); /* it knows whether we freeze for it */
		return;
	}
	if (sb->mode != (async ? META_MODE_ASYNC : META_MODE_SYNC)) {
		sb->mode = async ? META_MODE_ASYNC : META_MODE_SYNC;
		(void)local_save_sb(loc);
	}
	log_info("%s mode from now on", local_mode_name(loc));
	node_send_state(n); /* the secondary of a pair follows */
}

/* `mode sync|async [--peer NAME]`: from the next write on.  The node's
 * mode is kept in the superblock; a peer's own lasts until the daemon
 * stops (its [node] section's mode is its default).  The CLI then waits
 * (progress mode) until no async write waits for a sync peer. */
void node_req_mode(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	const char *word = NULL, *peer = NULL;
	struct sync *only = NULL;
	uint64_t drain;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--peer") && i + 1 < argc)
			peer = argv[++i];
		else if (!strncmp(argv[i], "--peer=", 7))
			peer = argv[i] + 7;
		else
			word = argv[i];
	if (!word || (strcmp(word, "sync") && strcmp(word, "async"))) {
		control_reply(req, false, "usage: blkrep mode sync|async [--peer NAME]");
		return;
	}
	if (peer && !(only = node_peer_named(n, peer))) {
		control_reply(req, false, "%s is not a peer of %s in the config", peer,
			      node_me(n)->name);
		return;
	}
	node_set_mode(n, only, word[0] == 'a');
	control_reply(req, true, "%s/%s: %s mode%s%s%s", node_sb(n)->resource, node_sb(n)->node,
		      word, only ? " to " : "", only ? peer : "",
		      node_sync_lag(n, &drain) ? "; waiting for the async lag to drain" : "");
}

/* "progress mode|verify": "running DONE TOTAL" while the work of the
 * command goes on, then "done" and a result line. */
void node_req_progress(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	uint64_t done, total, differ;
	bool running;
	uint64_t drain, lag = node_sync_lag(n, &drain);

	if (argc == 2 && strcmp(argv[1], "mode") == 0) {
		if (lag)
			control_reply(req, true, "running %" PRIu64 " %" PRIu64,
				      drain > lag ? drain - lag : 0, drain);
		else
			control_reply(req, true, "done%s",
				      node_sb(n)->mode == META_MODE_SYNC
					      ? " every write is synchronous now"
					      : "");
	} else if (argc == 2 && strcmp(argv[1], "verify") == 0) {
		struct verify *v = sync_verify(node_peer(n));
		bool ran = verify_result(v, &running, &done, &total, &differ);

		if (running)
			control_reply(req, true, "running %" PRIu64 " %" PRIu64, done, total);
		else if (ran)
			control_reply(req, true,
				      "done %" PRIu64 " bytes compared, %" PRIu64
				      " extents differ (%" PRIu64 " bytes now out of sync)%s",
				      done, differ, node_out_of_sync(n),
				      differ ? ": run blkrep resync to copy them" : "");
		else
			control_reply(req, false, "no verify has run");
	} else if (argc == 2 && strcmp(argv[1], "restore-saved") == 0) {
		devices_restore_progress(node_devices(n), req);
	} else {
		control_reply(req, false, "usage: progress mode|verify|restore-saved");
	}
}

/* `resync`: copy the out-of-sync extents now (after verify found some). */
void node_req_resync(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	unsigned started = 0, up = 0;

	(void)argc;
	(void)argv;
	/* Every connected peer: each has its own out-of-sync extents. */
	for (unsigned i = 0; i < node_npeers(n); i++) {
		struct sync *s = node_peer_at(n, i);

		if (!sync_up(s))
			continue;
		up++;
		if (sync_rs_role(s) != RS_NONE || sync_exchanging(s))
			continue;
		sync_resync_now(s);
		started++;
	}
	if (!up) {
		control_reply(req, false, "%s not connected",
			      node_npeers(n) == 1 ? "the peer is" : "no peer is");
		return;
	}
	if (!started) {
		control_reply(req, true, "a resync is already running");
		return;
	}
	control_reply(req, true, "resync of %" PRIu64 " bytes (and whatever %s marked) started",
		      node_out_of_sync(n), node_peer_name(n));
}

/* `invalidate` on a secondary: its data is thrown away and copied again
 * from the peer, all of it. */
void node_req_invalidate(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct sync *s = node_peer(n);

	(void)argc;
	(void)argv;
	if (node_is_primary(n)) {
		control_reply(req, false,
			      "a primary cannot discard its data: make it "
			      "secondary first");
		return;
	}
	if (sync_rs_role(s) != RS_NONE) {
		control_reply(req, false, "a resync is running: invalidate after it");
		return;
	}
	bitmap_set_range(node_bm(n), 0, bitmap_nbits(node_bm(n)));
	node_sb(n)->disk = META_DISK_INCONSISTENT;
	(void)local_save_sb(node_local(n));
	node_send_state(n);
	sync_resync_now(s);
	log_warn("invalidated: all data will be copied again from %s", node_peer_name(n));
	control_reply(req, true, "%s/%s invalidated: %s", node_sb(n)->resource, node_sb(n)->node,
		      sync_up(s) ? "a full resync from the peer started"
				 : "a full resync follows when the peer connects");
}

/* `resolve --discard-local [--save-to FILE]`: after a split brain, this
 * node's changes go.  They are saved first; at the next connect this node
 * is the resync target. */
void node_req_resolve(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	char path[512] = "", err[512];
	uint64_t bytes;

	if (argc < 2 || strcmp(argv[1], "--discard-local") != 0 ||
	    (argc != 2 && (argc != 4 || strcmp(argv[2], "--save-to") != 0))) {
		control_reply(req, false, "usage: blkrep resolve --discard-local [--save-to FILE]");
		return;
	}
	if (node_is_primary(n) || node_connected(n)) {
		control_reply(
			req, false, "%s",
			node_is_primary(n) ? "make this node secondary first"
				   : "the pair is connected: there is no split brain to resolve");
		return;
	}
	if (argc == 4)
		snprintf(path, sizeof(path), "%s", argv[3]);
	if (savefile_write(path, sizeof(path), node_sb(n)->resource, node_sb(n)->node, local_data_fd(node_local(n)), node_bm(n),
			   node_sb(n)->extent_bytes, node_sb(n)->data_bytes, &bytes, err, sizeof(err)) < 0) {
		control_reply(req, false, "nothing discarded: %s", err);
		return;
	}
	sync_discard_local(node_peer(n), node_sb(n)->gen.current);
	log_warn("resolve: this node's changes (%" PRIu64 " bytes, saved to %s) are discarded at "
		 "the next connect",
		 bytes, path);
	control_reply(req, true,
		      "saved %" PRIu64 " bytes of this node's changes to %s; they are "
		      "replaced by %s's data when the pair connects",
		      bytes, path, node_peer_name(n));
}

/* `restore-saved [--force] FILE` on a primary (daemon/dev/devices.h). */
void node_req_restore(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	devices_restore(node_devices(n), req, argc, argv);
}

static void node_link(struct node *n, struct control_req *req, bool on)
{
	/* The operator's word, over a reconnect after a disk error. */
	diskerr_cancel_retry(local_disk(node_local(n)));
	node_links_enable(n, on);
	control_reply(req, true, "%s\n", on ? "connecting" : "disconnected");
}

void node_req_connect(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	node_link(n, req, true);
}

void node_req_disconnect(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	node_link(n, req, false);
}

/* `down`: refused while a device is attached, unless --detach (detach
 * first) or --keep-attached (the kernel keeps the device and its I/O
 * waiting for the next `blkrep up`: a planned restart).  A primary
 * connected to an up-to-date peer hands over (node_cmd_handover()) unless
 * --keep-role, or --keep-attached with a device attached: a restart that
 * comes back as primary.  (systemd's stop is --keep-attached: it hands
 * over when nothing is attached.) */
void node_req_down(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	bool detach = cmdspec_has_flag(argc, argv, "--detach"),
	     keep = cmdspec_has_flag(argc, argv, "--keep-attached"),
	     keep_role = cmdspec_has_flag(argc, argv, "--keep-role") ||
			 (keep && devices_attached(node_devices(n)));
	char err[512];
	int loop_index;
	bool loop = devices_loop(node_devices(n), &loop_index);

	if (loop && keep) {
		control_reply(req, false,
			      "/dev/loop%d (attach --loop) cannot outlive the daemon: "
			      "unmount it and use down --detach",
			      loop_index);
		return;
	}
	if (devices_attached(node_devices(n)) && !detach && !keep) {
		control_reply(req, false, "%s%d is attached: unmount it and use down --detach%s",
			      loop ? "/dev/loop" : "/dev/nbd",
			      loop ? loop_index : (int)node_sb(n)->nbd_index,
			      loop ? "" : ", or down --keep-attached for a restart");
		return;
	}
	if (detach && loop)
		return devices_detach_loop(node_devices(n), req, true);
	if (detach && !devices_detach(node_devices(n), err, sizeof(err))) {
		control_reply(req, false, "%s", err);
		return;
	}
	if (!keep_role && node_hands_over(n))
		return node_cmd_handover(n, req);
	control_reply(req, true, "stopping%s%s\n",
		      node_is_primary(n) ? " as primary: it comes back as primary" : "",
		      node_is_primary(n) && !keep_role ? " (no up-to-date peer connected)" : "");
	node_begin_stop(n);
}

void node_req_status(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	if (cmdspec_has_flag(argc, argv, "--json"))
		node_status_json(n, req);
	else
		node_status_text(n, req);
}

void node_req_ping(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)n;
	(void)argc;
	(void)argv;
	control_reply(req, true, "pong\n");
}

/* The other parts' requests, in the table's shape. */
void node_req_verify(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	sync_cmd_verify(node_peer(n), req);
}

void node_req_attach(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	devices_cmd_attach(node_devices(n), req, argc, argv);
}

void node_req_detach(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	devices_cmd_detach(node_devices(n), req);
}

