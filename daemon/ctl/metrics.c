/* The Prometheus text of a node's figures.  See metrics.h. */
#include "daemon/ctl/metrics.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "utils/strbuf.h"

#define LABELS_MAX 512

static const char *const disk_states[] = { "inconsistent", "outdated", "consistent", "uptodate" };
static const char *const peer_disk_states[] = { "inconsistent", "outdated", "consistent",
						"uptodate", "unknown" };
static const char *const conn_states[] = { "standalone", "connecting", "connected", "splitbrain" };
static const char *const roles[] = { "primary", "secondary" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A label value: '\\', '"' and newlines escaped (the exposition format). */
static void label_value(struct strbuf *sb, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_printf(sb, "\\%c", *v);
		else if (*v == '\n')
			strbuf_printf(sb, "\\n");
		else
			strbuf_printf(sb, "%c", *v);
	}
}

/* resource="r0",node="alpha"[,peer="beta"] into buf. */
static void labels(char *buf, size_t len, const struct metrics_state *m, const char *peer)
{
	struct strbuf sb = STRBUF_INIT(buf, len);

	strbuf_printf(&sb, "resource=\"");
	label_value(&sb, m->resource);
	strbuf_printf(&sb, "\",node=\"");
	label_value(&sb, m->node);
	strbuf_printf(&sb, "\"");
	if (peer) {
		strbuf_printf(&sb, ",peer=\"");
		label_value(&sb, peer);
		strbuf_printf(&sb, "\"");
	}
}

/* The labels of the node's series (lb) and of each peer's (plb[i]). */
struct lbs {
	char lb[LABELS_MAX];
	char plb[METRICS_PEERS_MAX][LABELS_MAX];
	unsigned npeers;
};

static void head(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge_u64(struct strbuf *sb, const char *name, const char *lb, uint64_t v,
		      const char *help)
{
	head(sb, name, "gauge", help);
	strbuf_printf(sb, "%s{%s} %" PRIu64 "\n", name, lb, v);
}

static void counter(struct strbuf *sb, const char *name, const char *lb, uint64_t v,
		    const char *help)
{
	head(sb, name, "counter", help);
	strbuf_printf(sb, "%s{%s} %" PRIu64 "\n", name, lb, v);
}

/* A family of one series per peer: the uint64_t at offset off of each
 * struct metrics_peer. */
static void peers_u64(struct strbuf *sb, const char *name, const char *type,
		      const struct metrics_state *m, const struct lbs *l, size_t off,
		      const char *help)
{
	head(sb, name, type, help);
	for (unsigned i = 0; i < l->npeers; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&m->peers[i] + off, sizeof(v));
		strbuf_printf(sb, "%s{%s} %" PRIu64 "\n", name, l->plb[i], v);
	}
}

/* The state lines of one series: 1 for the current state, 0 for the others. */
static void state_lines(struct strbuf *sb, const char *name, const char *lb, const char *label,
			const char *const *names, size_t n, const char *now)
{
	for (size_t i = 0; i < n; i++)
		strbuf_printf(sb, "%s{%s,%s=\"%s\"} %d\n", name, lb, label, names[i],
			      now && strcmp(now, names[i]) == 0);
}

static void histogram(struct strbuf *sb, const char *name, const char *lb, const struct hist *h,
		      const char *help)
{
	static const struct hist empty;

	if (!h)
		h = &empty;
	head(sb, name, "histogram", help);
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		strbuf_printf(sb, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, lb,
			      (double)hist_bound_ns(i) / 1e9, hist_cumulative(h, i));
	strbuf_printf(sb, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, lb, h->count);
	strbuf_printf(sb, "%s_sum{%s} %.9f\n", name, lb, (double)h->sum_ns / 1e9);
	strbuf_printf(sb, "%s_count{%s} %" PRIu64 "\n", name, lb, h->count);
}

static void render_states(struct strbuf *sb, const struct metrics_state *m, const struct lbs *l)
{
	head(sb, "blkrep_role", "gauge", "This node's role (1: the current one).");
	state_lines(sb, "blkrep_role", l->lb, "role", roles, COUNT(roles),
		    m->primary ? "primary" : "secondary");
	head(sb, "blkrep_disk_state", "gauge", "This node's disk state (1: the current one).");
	state_lines(sb, "blkrep_disk_state", l->lb, "state", disk_states, COUNT(disk_states),
		    m->disk);
	head(sb, "blkrep_peer_disk_state", "gauge",
	     "The peer's disk state as last heard (1: the current one).");
	for (unsigned i = 0; i < l->npeers; i++)
		state_lines(sb, "blkrep_peer_disk_state", l->plb[i], "state", peer_disk_states,
			    COUNT(peer_disk_states), m->peers[i].peer_disk);
	head(sb, "blkrep_connection_state", "gauge",
	     "The link to the peer (1: the current state).");
	for (unsigned i = 0; i < l->npeers; i++)
		state_lines(sb, "blkrep_connection_state", l->plb[i], "state", conn_states,
			    COUNT(conn_states), m->peers[i].connection);
	head(sb, "blkrep_split_brain", "gauge",
	     "1 while a split brain with the peer is detected and unresolved.");
	for (unsigned i = 0; i < l->npeers; i++)
		strbuf_printf(sb, "blkrep_split_brain{%s} %d\n", l->plb[i],
			      m->peers[i].split_brain);
	gauge_u64(sb, "blkrep_disk_error", l->lb, m->disk_error,
		  "1 while this node's disk (or its activity log) has a failure shown in status.");
	gauge_u64(sb, "blkrep_suspended", l->lb, m->suspended,
		  "1 while a primary holds writes (on-peer-loss = freeze, peer lost; or quorum).");
	gauge_u64(sb, "blkrep_quorum", l->lb, m->quorum,
		  "1 while this node is connected to a majority of the voters (or quorum = off).");
}

#define PEER_FIELD(f) offsetof(struct metrics_peer, f)

static void render_peer_figures(struct strbuf *sb, const struct metrics_state *m,
				const struct lbs *l)
{
	peers_u64(sb, "blkrep_out_of_sync_bytes", "gauge", m, l, PEER_FIELD(out_of_sync_bytes),
		  "Bytes the peer may lack (the dirty bitmap).");
	peers_u64(sb, "blkrep_lag_bytes", "gauge", m, l, PEER_FIELD(lag_bytes),
		  "Async mode: acknowledged write bytes the peer has not acknowledged yet.");
	head(sb, "blkrep_lag_seconds", "gauge", "Async mode: age of the oldest of them.");
	for (unsigned i = 0; i < l->npeers; i++)
		strbuf_printf(sb, "blkrep_lag_seconds{%s} %.3f\n", l->plb[i],
			      m->peers[i].lag_seconds);
}

static void render_figures(struct strbuf *sb, const struct metrics_state *m, const struct lbs *l)
{
	/* The node's figure over every peer: with the peer's label if only one. */
	const char *all = l->npeers == 1 ? l->plb[0] : l->lb;

	render_peer_figures(sb, m, l);
	counter(sb, "blkrep_writes_total", l->lb, m->writes,
		"Client write requests (WRITE, TRIM, WRITE_ZEROES) admitted as primary.");
	counter(sb, "blkrep_replicated_bytes_total", all, m->replicated_bytes,
		"Client write payload bytes sent to the peer.");
	peers_u64(sb, "blkrep_resync_bytes_total", "counter", m, l, PEER_FIELD(resynced_bytes),
		  "Bytes sent to the peer by resyncs as their source.");
	peers_u64(sb, "blkrep_resync_bytes_per_second", "gauge", m, l,
		  PEER_FIELD(resync_bytes_per_second),
		  "The running resync's rate, 0 when none runs.");
	peers_u64(sb, "blkrep_resync_done_bytes", "gauge", m, l, PEER_FIELD(resync_done_bytes),
		  "The running resync's bytes copied so far, 0 when none runs.");
	peers_u64(sb, "blkrep_resync_total_bytes", "gauge", m, l, PEER_FIELD(resync_total_bytes),
		  "The running resync's bytes to copy, 0 when none runs.");
	counter(sb, "blkrep_activity_log_writes_total", l->lb, m->al_writes,
		"Activity-log snapshots written to the metadata (4 KiB, RWF_DSYNC each).");
	histogram(sb, "blkrep_local_write_duration_seconds", l->lb, m->local_latency,
		  "A client write from its admission to the local disk's completion.");
	histogram(sb, "blkrep_peer_ack_duration_seconds", all, m->ack_latency,
		  "A client write from its sending to the peer to the peer's ACK.");
}

size_t metrics_render(const struct metrics_state *m, char *buf, size_t len)
{
	struct lbs l;
	struct strbuf sb = STRBUF_INIT(buf, len);

	l.npeers = m->npeers < METRICS_PEERS_MAX ? m->npeers : METRICS_PEERS_MAX;
	labels(l.lb, sizeof(l.lb), m, NULL);
	for (unsigned i = 0; i < l.npeers; i++)
		labels(l.plb[i], sizeof(l.plb[i]), m, m->peers[i].name);
	render_states(&sb, m, &l);
	render_figures(&sb, m, &l);
	if (!sb.ok) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return sb.pos;
}
