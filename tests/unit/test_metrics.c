/* Unit tests for daemon/ctl/metrics: the exposition format's shape (HELP
 * and TYPE before each family, every series labelled with resource and
 * node, peer series with peer), state gauges with 1 for the current
 * state only, counters ending in _total, histograms with cumulative
 * buckets, +Inf equal to _count, _sum in seconds; label escaping; a
 * buffer too small gives 0 and "". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/ctl/metrics.h"

static char text[METRICS_TEXT_MAX];

static struct metrics_state sample(struct hist *h)
{
	struct metrics_state m = {
		.resource = "r0",
		.node = "alpha",
		.primary = true,
		.disk = "uptodate",
		.writes = 42,
		.replicated_bytes = 1048576,
		.al_writes = 3,
		.local_latency = h,
		.npeers = 1,
		.peers = { {
			.name = "beta",
			.peer_disk = "uptodate",
			.connection = "connected",
			.out_of_sync_bytes = 65536,
			.lag_bytes = 4096,
			.lag_seconds = 0.25,
			.resynced_bytes = 7,
		} },
	};
	return m;
}

static void has(const char *line)
{
	cr_assert(strstr(text, line), "missing: %s\n--- text:\n%s", line, text);
}

Test(metrics, states_counters_and_labels)
{
	struct metrics_state m = sample(NULL);

	cr_assert_gt(metrics_render(&m, text, sizeof(text)), 0);
	has("# HELP blkrep_role ");
	has("# TYPE blkrep_role gauge\n");
	has("blkrep_role{resource=\"r0\",node=\"alpha\",role=\"primary\"} 1\n");
	has("blkrep_role{resource=\"r0\",node=\"alpha\",role=\"secondary\"} 0\n");
	has("blkrep_disk_state{resource=\"r0\",node=\"alpha\",state=\"uptodate\"} 1\n");
	has("blkrep_disk_state{resource=\"r0\",node=\"alpha\",state=\"outdated\"} 0\n");
	has("blkrep_connection_state{resource=\"r0\",node=\"alpha\",peer=\"beta\","
	    "state=\"connected\"} 1\n");
	has("blkrep_peer_disk_state{resource=\"r0\",node=\"alpha\",peer=\"beta\","
	    "state=\"unknown\"} 0\n");
	has("# TYPE blkrep_writes_total counter\n");
	has("blkrep_writes_total{resource=\"r0\",node=\"alpha\"} 42\n");
	has("blkrep_replicated_bytes_total{resource=\"r0\",node=\"alpha\",peer=\"beta\"} "
	    "1048576\n");
	has("blkrep_resync_bytes_total{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 7\n");
	has("blkrep_activity_log_writes_total{resource=\"r0\",node=\"alpha\"} 3\n");
	has("blkrep_out_of_sync_bytes{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 65536\n");
	has("blkrep_lag_seconds{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 0.250\n");
	has("blkrep_split_brain{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 0\n");
	has("blkrep_disk_error{resource=\"r0\",node=\"alpha\"} 0\n");
	/* every sample line is labelled */
	for (char *l = text; *l; l = strchr(l, '\n') + 1)
		if (*l != '#')
			cr_assert_eq(strncmp(strchr(l, '{'), "{resource=\"r0\",node=\"alpha\"", 27),
				     0, "%.80s", l);
}

Test(metrics, histograms)
{
	struct hist h = { 0 };
	struct metrics_state m = sample(&h);
	char line[256];

	hist_record(&h, 30000);	  /* 30 us */
	hist_record(&h, 2000000); /* 2 ms */
	hist_record(&h, 9000000000ULL);
	cr_assert_gt(metrics_render(&m, text, sizeof(text)), 0);
	has("# TYPE blkrep_local_write_duration_seconds histogram\n");
	has("blkrep_local_write_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",le=\"5e-"
	    "05\"} 1\n");
	has("blkrep_local_write_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",le=\"0."
	    "001\"} 1\n");
	has("blkrep_local_write_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",le=\"0."
	    "0025\"} 2\n");
	has("blkrep_local_write_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",le=\"5\"} "
	    "2\n");
	has("blkrep_local_write_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",le=\"+Inf\"}"
	    " 3\n");
	has("blkrep_local_write_duration_seconds_count{resource=\"r0\",node=\"alpha\"} 3\n");
	snprintf(line, sizeof(line),
		 "blkrep_local_write_duration_seconds_sum{resource=\"r0\",node=\"alpha\"} %.9f\n",
		 (30000 + 2000000 + 9000000000.0) / 1e9);
	has(line);
	/* no ACK recorded (NULL): an empty histogram, still well-formed */
	has("blkrep_peer_ack_duration_seconds_count{resource=\"r0\",node=\"alpha\",peer=\"beta\"} "
	    "0\n");
	has("blkrep_peer_ack_duration_seconds_bucket{resource=\"r0\",node=\"alpha\",peer=\"beta\","
	    "le=\"+Inf\"} 0\n");
}

Test(metrics, label_values_escaped)
{
	struct metrics_state m = sample(NULL);

	m.node = "a\"b\\c\nd";
	cr_assert_gt(metrics_render(&m, text, sizeof(text)), 0);
	has("blkrep_writes_total{resource=\"r0\",node=\"a\\\"b\\\\c\\nd\"} 42\n");
}

Test(metrics, too_small)
{
	struct metrics_state m = sample(NULL);
	char small[100];

	cr_assert_eq(metrics_render(&m, small, sizeof(small)), 0);
	cr_assert_str_eq(small, "");
}

/* Three peers (issue 16): beta connected in sync mode, gamma async and
 * lagging with a resync running, delta disconnected.  One series per peer
 * in each per-peer family, the node's series once, and what spans every
 * peer (replicated bytes, ACK latency) without a peer label. */
Test(metrics, one_series_per_peer)
{
	struct metrics_state m = sample(NULL);
	char line[256];
	int n = 0;

	m.npeers = 3;
	m.peers[0].out_of_sync_bytes = 0;
	m.peers[0].lag_bytes = 0;
	m.peers[1] = (struct metrics_peer){ .name = "gamma",
					    .peer_disk = "uptodate",
					    .connection = "connected",
					    .out_of_sync_bytes = 8192,
					    .lag_bytes = 6 << 20,
					    .lag_seconds = 1.5,
					    .resynced_bytes = 123,
					    .resync_done_bytes = 1 << 20,
					    .resync_total_bytes = 4 << 20,
					    .resync_bytes_per_second = 999 };
	m.peers[2] = (struct metrics_peer){ .name = "delta",
					    .peer_disk = "unknown",
					    .connection = "connecting",
					    .out_of_sync_bytes = 1 << 30 };
	cr_assert_gt(metrics_render(&m, text, sizeof(text)), 0);
	has("blkrep_connection_state{resource=\"r0\",node=\"alpha\",peer=\"beta\","
	    "state=\"connected\"} 1\n");
	has("blkrep_connection_state{resource=\"r0\",node=\"alpha\",peer=\"gamma\","
	    "state=\"connected\"} 1\n");
	has("blkrep_connection_state{resource=\"r0\",node=\"alpha\",peer=\"delta\","
	    "state=\"connecting\"} 1\n");
	has("blkrep_connection_state{resource=\"r0\",node=\"alpha\",peer=\"delta\","
	    "state=\"connected\"} 0\n");
	has("blkrep_peer_disk_state{resource=\"r0\",node=\"alpha\",peer=\"delta\","
	    "state=\"unknown\"} 1\n");
	has("blkrep_out_of_sync_bytes{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 0\n");
	has("blkrep_out_of_sync_bytes{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 8192\n");
	has("blkrep_out_of_sync_bytes{resource=\"r0\",node=\"alpha\",peer=\"delta\"} 1073741824\n");
	has("blkrep_lag_bytes{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 6291456\n");
	has("blkrep_lag_seconds{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 1.500\n");
	has("blkrep_lag_bytes{resource=\"r0\",node=\"alpha\",peer=\"beta\"} 0\n");
	has("blkrep_resync_bytes_total{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 123\n");
	has("blkrep_resync_bytes_per_second{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 999\n");
	has("blkrep_resync_done_bytes{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 1048576\n");
	has("blkrep_resync_total_bytes{resource=\"r0\",node=\"alpha\",peer=\"gamma\"} 4194304\n");
	has("blkrep_resync_total_bytes{resource=\"r0\",node=\"alpha\",peer=\"delta\"} 0\n");
	has("blkrep_replicated_bytes_total{resource=\"r0\",node=\"alpha\"} 1048576\n");
	has("blkrep_peer_ack_duration_seconds_count{resource=\"r0\",node=\"alpha\"} 0\n");
	has("blkrep_writes_total{resource=\"r0\",node=\"alpha\"} 42\n");
	/* each family's HELP once; one out-of-sync series per peer */
	cr_assert_eq(
		strstr(strstr(text, "# HELP blkrep_lag_bytes ") + 1, "# HELP blkrep_lag_bytes "),
		NULL);
	for (char *l = text; (l = strstr(l, "\nblkrep_out_of_sync_bytes{")); l++)
		n++;
	cr_assert_eq(n, 3);
	snprintf(line, sizeof(line),
		 "blkrep_split_brain{resource=\"r0\",node=\"alpha\",peer=\"%s\"} 0\n", "delta");
	has(line);
}
