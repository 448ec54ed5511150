/* The Prometheus text of a node's figures.  See metrics.h. */
#include "daemon/ctl/metrics.h"

#include <inttypes.h>
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
static void labels(char *buf, size_t len, const struct metrics_state *m, bool peer)
{
	struct strbuf sb = STRBUF_INIT(buf, len);

	strbuf_printf(&sb, "resource=\"");
	label_value(&sb, m->resource);
	strbuf_printf(&sb, "\",node=\"");
	label_value(&sb, m->node);
	strbuf_printf(&sb, "\"");
	if (peer) {
		strbuf_printf(&sb, ",peer=\"");
		label_value(&sb, m->peer);
		strbuf_printf(&sb, "\"");
	}
}

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

/* A labelled state gauge: 1 for the current state, 0 for the others. */
static void states(struct strbuf *sb, const char *name, const char *lb, const char *label,
		   const char *const *names, size_t n, const char *now, const char *help)
{
	head(sb, name, "gauge", help);
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

static void render_states(struct strbuf *sb, const struct metrics_state *m, const char *lb,
			  const char *plb)
{
	states(sb, "blkrep_role", lb, "role", roles, COUNT(roles),
	       m->primary ? "primary" : "secondary", "This node's role (1: the current one).");
	states(sb, "blkrep_disk_state", lb, "state", disk_states, COUNT(disk_states), m->disk,
	       "This node's disk state (1: the current one).");
	states(sb, "blkrep_peer_disk_state", plb, "state", peer_disk_states,
	       COUNT(peer_disk_states), m->peer_disk,
	       "The peer's disk state as last heard (1: the current one).");
	states(sb, "blkrep_connection_state", plb, "state", conn_states, COUNT(conn_states),
	       m->connection, "The link to the peer (1: the current state).");
	gauge_u64(sb, "blkrep_split_brain", plb, m->split_brain,
		  "1 while a split brain with the peer is detected and unresolved.");
	gauge_u64(sb, "blkrep_disk_error", lb, m->disk_error,
		  "1 while this node's disk (or its activity log) has a failure shown in status.");
	gauge_u64(sb, "blkrep_suspended", lb, m->suspended,
		  "1 while a primary holds writes (on-peer-loss = freeze, peer lost).");
}

static void render_figures(struct strbuf *sb, const struct metrics_state *m, const char *lb,
			   const char *plb)
{
	gauge_u64(sb, "blkrep_out_of_sync_bytes", plb, m->out_of_sync_bytes,
		  "Bytes the peer may lack (the dirty bitmap).");
	gauge_u64(sb, "blkrep_lag_bytes", plb, m->lag_bytes,
		  "Async mode: acknowledged write bytes the peer has not acknowledged yet.");
	head(sb, "blkrep_lag_seconds", "gauge", "Async mode: age of the oldest of them.");
	strbuf_printf(sb, "blkrep_lag_seconds{%s} %.3f\n", plb, m->lag_seconds);
	counter(sb, "blkrep_writes_total", lb, m->writes,
		"Client write requests (WRITE, TRIM, WRITE_ZEROES) admitted as primary.");
	counter(sb, "blkrep_replicated_bytes_total", plb, m->replicated_bytes,
		"Client write payload bytes sent to the peer.");
	counter(sb, "blkrep_resync_bytes_total", plb, m->resynced_bytes,
		"Bytes sent to the peer by resyncs as their source.");
	gauge_u64(sb, "blkrep_resync_bytes_per_second", plb, m->resync_bytes_per_second,
		  "The running resync's rate, 0 when none runs.");
	counter(sb, "blkrep_activity_log_writes_total", lb, m->al_writes,
		"Activity-log snapshots written to the metadata (4 KiB, RWF_DSYNC each).");
	histogram(sb, "blkrep_local_write_duration_seconds", lb, m->local_latency,
		  "A client write from its admission to the local disk's completion.");
	histogram(sb, "blkrep_peer_ack_duration_seconds", plb, m->ack_latency,
		  "A client write from its sending to the peer to the peer's ACK.");
}

size_t metrics_render(const struct metrics_state *m, char *buf, size_t len)
{
	char lb[LABELS_MAX], plb[LABELS_MAX];
	struct strbuf sb = STRBUF_INIT(buf, len);

	labels(lb, sizeof(lb), m, false);
	labels(plb, sizeof(plb), m, true);
	render_states(&sb, m, lb, plb);
	render_figures(&sb, m, lb, plb);
	if (!sb.ok) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return sb.pos;
}
