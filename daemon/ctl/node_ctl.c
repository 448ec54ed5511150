/* The node's control requests and status (see node_int.h); the command
 * table (daemon/cli/commands.c) names the requests and dispatches them. */
#include "daemon/node_int.h"

#include "daemon/cli/commands.h"

/* --- status --- */

/* The peer the config names, which status and the peer's commands speak
 * of (a resource has two nodes), or NULL before it is set up. */
static struct sync *node_the_peer(const struct node *n)
{
	return n->npeers ? n->peers[0] : NULL;
}

static const char *node_connection(const struct node *n)
{
	const struct sync *s = node_the_peer(n);
	struct peer *p = s ? sync_peer(s) : NULL;

	if (p && sync_split_brain(s) && !peer_connected(p))
		return "splitbrain";
	return p ? peer_state(p) : "standalone";
}

static const char *node_peer_error(const struct node *n)
{
	const struct sync *s = node_the_peer(n);

	return s && sync_peer(s) ? peer_last_error(sync_peer(s)) : "";
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

/* The resync running, from either side (sync_resync_progress()). */
static bool node_resync_progress(const struct node *n, uint64_t *done, uint64_t *total,
				 uint64_t *bps)
{
	const struct sync *s = node_the_peer(n);

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

/* For status: the activity log's error while it cannot be written (writes
 * wait meanwhile), else the disk's, else "". */
static const char *node_status_disk_error(const struct node *n)
{
	struct primary_stats st;

	primary_stats(n->pri, &st);
	return *st.al_error ? st.al_error : diskerr_text(n->disk);
}

static void node_status_json(struct node *n, struct control_req *req)
{
	char err[512], derr[512], rs[160], vf[160], dev[32] = "null";
	uint64_t done, total, differ;
	struct primary_stats st;
	bool running;
	int loop_index;

	primary_stats(n->pri, &st);
	if (devices_loop(n->dev, &loop_index))
		snprintf(dev, sizeof(dev), "\"/dev/loop%d\"", loop_index);
	else if (n->sb.nbd_index >= 0)
		snprintf(dev, sizeof(dev), "\"/dev/nbd%d\"", (int)n->sb.nbd_index);
	json_escape(err, sizeof(err), node_peer_error(n));
	json_escape(derr, sizeof(derr), node_status_disk_error(n));
	node_resync_json(n, rs, sizeof(rs));
	if (verify_result(sync_verify(node_the_peer(n)), &running, &done, &total, &differ))
		snprintf(vf, sizeof(vf),
			 "{\"running\": %s, \"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
			 ", \"differing_extents\": %" PRIu64 "}",
			 running ? "true" : "false", done, total, differ);
	else
		snprintf(vf, sizeof(vf), "null");
	control_reply(req, true,
		      "{\"resource\": \"%s\", \"node\": \"%s\", \"role\": \"%s\", "
		      "\"mode\": \"%s\", \"on_peer_loss\": \"%s\", \"disk\": \"%s\", "
		      "\"disk_error\": \"%s\", "
		      "\"peer\": {\"name\": \"%s\", \"connection\": \"%s\", \"disk\": \"%s\", "
		      "\"last_error\": \"%s\"}, "
		      "\"size_bytes\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64 ", "
		      "\"lag_bytes\": %" PRIu64 ", \"lag_seconds\": %.3f, "
		      "\"resync\": %s, \"verify\": %s, \"frozen\": %s, \"device\": %s, "
		      "\"stats\": {\"writes\": %" PRIu64 ", \"replicated_bytes\": %" PRIu64 ", "
		      "\"resynced_bytes\": %" PRIu64 "}, \"generation\": \"%016" PRIx64 "\"}\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary), node_mode_name(n),
		      config_peer_loss_name(config_on_peer_loss(n->cfg)), node_disk_name(n), derr,
		      n->other->name, node_connection(n), node_peer_disk(node_the_peer(n)), err,
		      n->sb.data_bytes, node_out_of_sync(n), stream_lag_bytes(n->stream), node_lag_seconds(n), rs, vf,
		      node_frozen(n) ? "true" : "false", dev, st.writes, st.replicated_bytes,
		      n->resynced_bytes, n->sb.gen.current);
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
		 sync_rs_role(node_the_peer(n)) == RS_SOURCE ? "to peer" : "from peer", bar, pct,
		 total, (double)bps / (1 << 20), bps ? (total - done) / bps : 0);
}

static void node_status_text(struct node *n, struct control_req *req)
{
	const char *err = node_peer_error(n);
	const char *derr = node_status_disk_error(n);
	struct primary_stats st;
	char rs[256];

	primary_stats(n->pri, &st);
	node_resync_text(n, rs, sizeof(rs));

	control_reply(req, true,
		      "%s/%s: %s, disk %s, %s mode, on peer loss: %s\n"
		      "%s%s%s"
		      "  peer %s: %s, disk %s%s%s\n"
		      "  data area %" PRIu64 " bytes, %" PRIu64 " bytes out of sync, lag %" PRIu64
		      " bytes (%.1f s)\n"
		      "%s  generation %016" PRIx64 ", %" PRIu64 " writes, %" PRIu64
		      " bytes resynced since start\n",
		      n->sb.resource, n->sb.node, node_role_name(n->primary), node_disk_name(n),
		      node_mode_name(n), config_peer_loss_name(config_on_peer_loss(n->cfg)),
		      *derr ? "  disk error: " : "", derr, *derr ? "\n" : "", n->other->name,
		      node_connection(n),
		      node_peer_disk(node_the_peer(n)),
		      *err ? "\n  last error: " : "", err, n->sb.data_bytes, node_out_of_sync(n),
		      stream_lag_bytes(n->stream), node_lag_seconds(n), rs, n->sb.gen.current,
		      st.writes, n->resynced_bytes);
}

/* --- control requests --- */

static bool has_flag(int argc, char *const *argv, const char *flag)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

void node_req_primary(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	bool force = has_flag(argc, argv, "--force"),
	     discard = has_flag(argc, argv, "--discard-unknown");
	char why[512];

	if (n->primary) {
		control_reply(req, true, "%s/%s is already primary\n", n->sb.resource, n->sb.node);
		return;
	}
	if (node_promote(n, force, discard, why, sizeof(why)) < 0) {
		control_reply(req, false, "%s%s%s", why,
			      *diskerr_text(n->disk) ? "; the disk failed a replicated " : "",
			      diskerr_text(n->disk));
		return;
	}
	control_reply(req, true, "%s/%s is now primary%s%s\n", n->sb.resource, n->sb.node,
		      n->me->nbd ? "; NBD export on " : "", n->me->nbd ? n->me->nbd : "");
}

void node_req_secondary(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
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
	control_reply(req, true, "%s/%s is secondary\n", n->sb.resource, n->sb.node);
}

/* The operator says the peer is down or fenced: a frozen primary goes on
 * alone (its writes are then recorded for the peer's resync). */
void node_req_outdate_peer(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	if (node_connected(n)) {
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
 * CLI then waits (progress mode) until no async write waits for the peer.
 * One word (the command table). */
void node_req_mode(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	enum meta_mode m;

	(void)argc;
	if (strcmp(argv[1], "sync") && strcmp(argv[1], "async")) {
		control_reply(req, false, "usage: blkrep mode sync|async");
		return;
	}
	m = argv[1][0] == 'a' ? META_MODE_ASYNC : META_MODE_SYNC;
	if (m != n->sb.mode) {
		n->sb.mode = m;
		(void)node_save_sb(n);
		log_info("%s mode from now on", node_mode_name(n));
		stream_drain_begin(n->stream);
		node_send_state(n); /* the secondary follows */
	}
	control_reply(req, true, "%s/%s: %s mode%s", n->sb.resource, n->sb.node, node_mode_name(n),
		      m == META_MODE_SYNC && stream_lag_bytes(n->stream)
			      ? "; waiting for the async lag to drain"
			      : "");
}

/* "progress mode|verify": "running DONE TOTAL" while the work of the
 * command goes on, then "done" and a result line. */
void node_req_progress(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	uint64_t done, total, differ;
	bool running;
	uint64_t lag = stream_lag_bytes(n->stream), drain = stream_drain_total(n->stream);

	if (argc == 2 && strcmp(argv[1], "mode") == 0) {
		if (n->sb.mode == META_MODE_SYNC && lag)
			control_reply(req, true, "running %" PRIu64 " %" PRIu64,
				      drain > lag ? drain - lag : 0, drain);
		else
			control_reply(req, true, "done%s",
				      n->sb.mode == META_MODE_SYNC
					      ? " every write is synchronous now"
					      : "");
	} else if (argc == 2 && strcmp(argv[1], "verify") == 0) {
		struct verify *v = sync_verify(node_the_peer(n));
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
		devices_restore_progress(n->dev, req);
	} else {
		control_reply(req, false, "usage: progress mode|verify|restore-saved");
	}
}

/* `resync`: copy the out-of-sync extents now (after verify found some). */
void node_req_resync(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct sync *s = node_the_peer(n);

	(void)argc;
	(void)argv;
	if (!sync_up(s)) {
		control_reply(req, false, "the peer is not connected");
		return;
	}
	if (sync_rs_role(s) != RS_NONE || sync_exchanging(s)) {
		control_reply(req, true, "a resync is already running");
		return;
	}
	sync_resync_now(s);
	control_reply(req, true, "resync of %" PRIu64 " bytes (and whatever %s marked) started",
		      node_out_of_sync(n), n->other->name);
}

/* `invalidate` on a secondary: its data is thrown away and copied again
 * from the peer, all of it. */
void node_req_invalidate(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct sync *s = node_the_peer(n);

	(void)argc;
	(void)argv;
	if (n->primary) {
		control_reply(req, false,
			      "a primary cannot discard its data: make it "
			      "secondary first");
		return;
	}
	if (sync_rs_role(s) != RS_NONE) {
		control_reply(req, false, "a resync is running: invalidate after it");
		return;
	}
	bitmap_set_range(n->bm, 0, bitmap_nbits(n->bm));
	n->sb.disk = META_DISK_INCONSISTENT;
	(void)node_save_sb(n);
	node_send_state(n);
	sync_resync_now(s);
	log_warn("invalidated: all data will be copied again from %s", n->other->name);
	control_reply(req, true, "%s/%s invalidated: %s", n->sb.resource, n->sb.node,
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
	if (n->primary || node_connected(n)) {
		control_reply(
			req, false, "%s",
			n->primary ? "make this node secondary first"
				   : "the pair is connected: there is no split brain to resolve");
		return;
	}
	if (argc == 4)
		snprintf(path, sizeof(path), "%s", argv[3]);
	if (savefile_write(path, sizeof(path), n->sb.resource, n->sb.node, n->data_fd, n->bm,
			   n->sb.extent_bytes, n->sb.data_bytes, &bytes, err, sizeof(err)) < 0) {
		control_reply(req, false, "nothing discarded: %s", err);
		return;
	}
	sync_discard_local(node_the_peer(n), n->sb.gen.current);
	log_warn("resolve: this node's changes (%" PRIu64 " bytes, saved to %s) are discarded at "
		 "the next connect",
		 bytes, path);
	control_reply(req, true,
		      "saved %" PRIu64 " bytes of this node's changes to %s; they are "
		      "replaced by %s's data when the pair connects",
		      bytes, path, n->other->name);
}

/* `restore-saved FILE` on a primary (daemon/dev/devices.h).  One word,
 * FILE (the command table). */
void node_req_restore(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	devices_restore(n->dev, req, argv[1]);
}

static void node_link(struct node *n, struct control_req *req, bool on)
{
	/* The operator's word, over a reconnect after a disk error. */
	diskerr_cancel_retry(n->disk);
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
 * waiting for the next `blkrep up`: a planned restart). */
void node_req_down(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	bool detach = has_flag(argc, argv, "--detach"),
	     keep = has_flag(argc, argv, "--keep-attached");
	char err[512];
	int loop_index;
	bool loop = devices_loop(n->dev, &loop_index);

	if (loop && keep) {
		control_reply(req, false,
			      "/dev/loop%d (attach --loop) cannot outlive the daemon: "
			      "unmount it and use down --detach",
			      loop_index);
		return;
	}
	if (devices_attached(n->dev) && !detach && !keep) {
		control_reply(req, false, "%s%d is attached: unmount it and use down --detach%s",
			      loop ? "/dev/loop" : "/dev/nbd",
			      loop ? loop_index : (int)n->sb.nbd_index,
			      loop ? "" : ", or down --keep-attached for a restart");
		return;
	}
	if (detach && loop)
		return devices_detach_loop(n->dev, req, true);
	if (detach && !devices_detach(n->dev, err, sizeof(err))) {
		control_reply(req, false, "%s", err);
		return;
	}
	control_reply(req, true, "stopping\n");
	node_begin_stop(n);
}

void node_req_status(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	if (has_flag(argc, argv, "--json"))
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
	sync_cmd_verify(node_the_peer(n), req);
}

void node_req_attach(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	devices_cmd_attach(n->dev, req, argc, argv);
}

void node_req_detach(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	(void)argc;
	(void)argv;
	devices_cmd_detach(n->dev, req);
}

bool node_req_stopping(const struct node *n)
{
	return n->stopping;
}
