/* The node's events and metrics: snapshots after every loop batch, the
 * `events-poll` and `metrics` requests, the HTTP endpoint.  See obs.h.
 *
 * `events-poll` (sent by `blkrep events`, one request per connection, so
 * the CLI long-polls): "events-poll" answers "seq N" at once, N the number
 * of the next line; "events-poll --now" answers "seq N" and the current
 * state as "exists" lines; "events-poll SEQ" answers "seq N" and the lines
 * from SEQ on as soon as there are any, or after OBS_POLL_MS without.  A
 * stopping daemon answers "end N", its last lines and a "destroy" line. */
#include "daemon/ctl/obs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli/commands.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/events.h"
#include "daemon/ctl/httpd.h"
#include "daemon/ctl/metrics.h"
#include "daemon/dev/devices.h"
#include "daemon/meta/local.h"
#include "daemon/meta/meta.h"
#include "daemon/node.h"
#include "daemon/repl/diskerr.h"
#include "daemon/repl/primary.h"
#include "daemon/repl/stream.h"
#include "daemon/repl/sync.h"
#include "proto/msg.h"
#include "proto/peer.h"
#include "utils/clock.h"
#include "utils/log.h"
#include "utils/loop.h"

#define OBS_POLL_MS 5000 /* a poll with nothing new is answered then */
/* Polls held at once: half the control socket stays for other requests. */
#define OBS_WAITERS  (CONTROL_CONNS_MAX / 2)
#define OBS_BODY_MAX (CONTROL_BODY_MAX - 1024) /* an answer's lines, with room */

struct obs_wait {
	struct control_req *req;
	uint64_t seq;	   /* the first line it wants */
	uint64_t since_ms; /* monotonic */
};

struct obs {
	struct node *n;
	struct events *ev;
	struct events_state st; /* the snapshot being taken */
	struct metrics_state m; /* the figures being rendered */
	struct obs_wait wait[OBS_WAITERS];
	unsigned nwait;
	struct httpd *http; /* NULL without `metrics` */
	char *body;	    /* OBS_BODY_MAX: an answer being built */
	char *text;	    /* METRICS_TEXT_MAX: the metrics being rendered */
};

/* --- the node's state --- */

const char *obs_connection(const struct node *n)
{
	return obs_sync_connection(node_peer(n));
}

const char *obs_sync_connection(const struct sync *s)
{
	struct peer *p = s ? sync_peer(s) : NULL;

	if (p && sync_split_brain(s) && !peer_connected(p))
		return "splitbrain";
	return p ? peer_state(p) : "standalone";
}

const char *obs_disk_error(const struct node *n)
{
	const char *al = primary_al_error(node_primary(n));

	return *al ? al : diskerr_text(local_disk(node_local(n)));
}

static const char *obs_replication(const struct sync *s)
{
	switch (sync_rs_role(s)) {
	case RS_SOURCE:
		return "sync-source";
	case RS_TARGET:
		return "sync-target";
	default:
		return sync_up(s) ? "established" : "off";
	}
}

static const char *obs_peer_role(const struct sync *s)
{
	if (!sync_up(s))
		return "unknown";
	return sync_hello(s)->role == MSG_ROLE_PRIMARY ? "primary" : "secondary";
}

const char *obs_device(const struct node *n, char *buf, size_t len)
{
	int loop_index;

	if (devices_loop(node_devices(n), &loop_index))
		snprintf(buf, len, "/dev/loop%d", loop_index);
	else if (local_sb(node_local(n))->nbd_index >= 0)
		snprintf(buf, len, "/dev/nbd%d", (int)local_sb(node_local(n))->nbd_index);
	else
		return NULL;
	return buf;
}

/* Peer s into p: fixed words and its name, its last error copied. */
static void obs_peer_snapshot(const struct node *n, const struct sync *s, struct events_peer *p)
{
	p->name = sync_name(s);
	p->connection = obs_sync_connection(s);
	p->peer_role = obs_peer_role(s);
	p->split_brain = sync_split_brain(s);
	events_copy_text(p->last_error, sizeof(p->last_error),
			 sync_peer(s) ? peer_last_error(sync_peer(s)) : "");
	p->replication = obs_replication(s);
	p->peer_disk = sync_peer_disk(s);
	p->resync = sync_resync_progress(s, &p->done_bytes, &p->total_bytes, &p->bytes_per_second);
	if (!p->resync)
		p->done_bytes = p->total_bytes = p->bytes_per_second = 0;
	p->out_of_sync_bytes = local_slot_out_of_sync(node_local(n), sync_slot(s), node_size(n));
}

/* Into st: fixed words and names, short texts copied. */
static void obs_snapshot(const struct node *n, struct events_state *st)
{
	struct local *loc = node_local(n);

	st->resource = config_resource_name(node_config(n));
	st->node = node_me(n)->name;
	st->role = node_role_name(node_is_primary(n));
	st->suspended = primary_frozen(node_primary(n));
	st->quorum = primary_quorum(node_primary(n));
	st->mode = local_mode_name(loc);
	st->disk = local_disk_name(loc);
	events_copy_text(st->disk_error, sizeof(st->disk_error), obs_disk_error(n));
	st->attached = devices_attached(node_devices(n));
	if (!obs_device(n, st->path, sizeof(st->path)))
		st->path[0] = '\0';
	st->npeers = node_npeers(n) < EVENTS_PEERS_MAX ? node_npeers(n) : EVENTS_PEERS_MAX;
	for (unsigned i = 0; i < st->npeers; i++)
		obs_peer_snapshot(n, node_peer_at(n, i), &st->peers[i]);
}

/* --- events-poll --- */

/* "seq N" or, stopping, "end N", then the lines from w->seq on (and the
 * last, "destroy", line). */
static void obs_answer(struct obs *o, struct control_req *req, uint64_t seq, bool end)
{
	uint64_t now = clock_realtime_ms();
	size_t pos = events_read(o->ev, &seq, o->body, OBS_BODY_MAX, now);

	if (end && seq == events_next_seq(o->ev))
		pos += events_line(o->ev, "destroy", EV_RESOURCE, o->body + pos, OBS_BODY_MAX - pos,
				   now);
	control_reply(req, true, "%s %" PRIu64 "\n%s", end ? "end" : "seq", seq, o->body);
}

static void obs_unwait(struct obs *o, unsigned i)
{
	o->wait[i] = o->wait[--o->nwait];
}

/* Waiting polls that have lines now, or waited long enough, or all when
 * the daemon stops. */
static void obs_answer_waiting(struct obs *o, bool timeouts)
{
	uint64_t now = clock_now_ms();
	bool stopping = node_stopping(o->n);

	for (unsigned i = 0; i < o->nwait;) {
		struct obs_wait *w = &o->wait[i];

		if (stopping || w->seq < events_next_seq(o->ev) ||
		    (timeouts && now - w->since_ms >= OBS_POLL_MS)) {
			obs_answer(o, w->req, w->seq, stopping);
			obs_unwait(o, i);
		} else {
			i++;
		}
	}
}

/* The loop hook: after every batch of completions (a control request, a
 * link event, a disk completion), so that quick transitions each make a
 * line. */
static void obs_hook(void *arg)
{
	struct obs *o = arg;

	obs_snapshot(o->n, &o->st);
	if (events_update(o->ev, &o->st, clock_realtime_ms(), clock_now_ms()) || o->nwait)
		obs_answer_waiting(o, false);
}

void node_req_events_poll(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct obs *o = node_obs(n);
	uint64_t seq;
	char *end;

	/* What changed in this batch so far gets its lines first: the
	 * answer's state and numbers are as of now. */
	obs_hook(o);
	seq = events_next_seq(o->ev);

	if (argc == 2 && strcmp(argv[1], "--now") == 0) {
		events_exists(o->ev, o->body, OBS_BODY_MAX, clock_realtime_ms());
		control_reply(req, true, "seq %" PRIu64 "\n%s", seq, o->body);
		return;
	}
	if (argc == 2) {
		errno = 0;
		seq = strtoull(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || seq == 0) {
			control_reply(req, false, "usage: blkrep events-poll [--now|SEQ]");
			return;
		}
	}
	if (node_stopping(n) || (argc == 2 && seq < events_next_seq(o->ev)))
		obs_answer(o, req, seq, node_stopping(n));
	else if (argc == 2 && o->nwait == OBS_WAITERS)
		control_reply(req, false, "too many blkrep events clients (%d) on this node",
			      OBS_WAITERS);
	else if (argc == 2)
		o->wait[o->nwait++] = (struct obs_wait){ req, seq, clock_now_ms() };
	else
		control_reply(req, true, "seq %" PRIu64 "\n", seq);
}

/* --- metrics --- */

/* Peer s's figures into p. */
static void obs_peer_metrics(const struct node *n, const struct sync *s, struct metrics_peer *p)
{
	const struct stream *st = sync_stream(s);
	uint64_t oldest = stream_lag_oldest_ns(st);

	*p = (struct metrics_peer){
		.name = sync_name(s),
		.peer_disk = sync_peer_disk(s),
		.connection = obs_sync_connection(s),
		.split_brain = sync_split_brain(s),
		.out_of_sync_bytes =
			local_slot_out_of_sync(node_local(n), sync_slot(s), node_size(n)),
		.lag_bytes = stream_lag_bytes(st),
		.lag_seconds = oldest ? (double)(clock_now_ns() - oldest) / 1e9 : 0,
		.resynced_bytes = sync_resynced_bytes(s),
	};
	if (!sync_resync_progress(s, &p->resync_done_bytes, &p->resync_total_bytes,
				  &p->resync_bytes_per_second))
		p->resync_done_bytes = p->resync_total_bytes = p->resync_bytes_per_second = 0;
}

static size_t obs_render_metrics(struct obs *o)
{
	const struct node *n = o->n;
	struct primary_stats ps;
	struct metrics_state *m = &o->m;

	primary_stats(node_primary(n), &ps);
	*m = (struct metrics_state){
		.resource = config_resource_name(node_config(n)),
		.node = node_me(n)->name,
		.primary = node_is_primary(n),
		.disk = local_disk_name(node_local(n)),
		.disk_error = *obs_disk_error(n) != '\0',
		.suspended = primary_frozen(node_primary(n)),
		.quorum = primary_quorum(node_primary(n)),
		.writes = ps.writes,
		.replicated_bytes = ps.replicated_bytes,
		.al_writes = ps.al_writes,
		.local_latency = ps.local_latency,
		.ack_latency = ps.ack_latency,
		.npeers = node_npeers(n) < METRICS_PEERS_MAX ? node_npeers(n) : METRICS_PEERS_MAX,
	};
	for (unsigned i = 0; i < m->npeers; i++)
		obs_peer_metrics(n, node_peer_at(n, i), &m->peers[i]);
	return metrics_render(m, o->text, METRICS_TEXT_MAX);
}

void node_req_metrics(struct node *n, struct control_req *req, int argc, char *const *argv)
{
	struct obs *o = node_obs(n);

	(void)argc;
	(void)argv;
	if (!obs_render_metrics(o)) {
		control_reply(req, false, "the metrics do not fit in %u bytes", METRICS_TEXT_MAX);
		return;
	}
	control_reply(req, true, "%s", o->text);
}

void obs_tick(struct obs *o)
{
	size_t len;

	if (!o)
		return;
	obs_answer_waiting(o, true);
	if (o->http && (len = obs_render_metrics(o)))
		httpd_publish(o->http, o->text, len);
}

/* --- life --- */

struct obs *obs_new(struct node *n)
{
	struct obs *o = calloc(1, sizeof(*o));
	const char *addr = node_me(n)->metrics;

	if (!o || !(o->ev = events_new()) || !(o->body = malloc(OBS_BODY_MAX)) ||
	    !(o->text = malloc(METRICS_TEXT_MAX))) {
		log_err("events and metrics: out of memory");
		obs_free(o);
		return NULL;
	}
	o->n = n;
	if (addr && !(o->http = httpd_new(addr))) {
		obs_free(o);
		return NULL;
	}
	loop_add_hook(node_loop(n), obs_hook, o); /* its first run is the baseline */
	if (addr)
		log_info("metrics on http://%s/metrics", addr);
	return o;
}

void obs_free(struct obs *o)
{
	if (!o)
		return;
	httpd_free(o->http);
	events_free(o->ev);
	free(o->body);
	free(o->text);
	free(o);
}
