/* Unit tests for daemon/ctl/events: the first snapshot makes no line, a
 * change makes one line per object that changed (in object order), with
 * the events2 vocabulary and an RFC 3339 time; resync progress alone at
 * most once a second; --now's exists lines and marker; reading from a
 * sequence number, a "lost" line once the ring overwrote what a reader
 * wanted, whole lines only when the buffer is short; JSON escaping. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "daemon/ctl/events.h"

#define T0 1796645595123ULL /* 2026-12-07T12:13:15.123Z */

static struct events_state base(void)
{
	struct events_state s = {
		.resource = "r0",
		.node = "beta",
		.role = "secondary",
		.mode = "sync",
		.disk = "uptodate",
		.npeers = 1,
		.peers = { {
			.name = "alpha",
			.connection = "connected",
			.peer_role = "primary",
			.replication = "established",
			.peer_disk = "uptodate",
		} },
	};
	return s;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(events, first_snapshot_then_one_line_per_changed_object)
{
	struct events *e = events_new();
	struct events_state s = base();
	char buf[8192];
	uint64_t seq = 1;

	cr_assert_eq(events_update(e, &s, T0, 0), 0);
	cr_assert_eq(events_update(e, &s, T0, 10), 0, "no change, no line");
	s.peers[0].connection = "connecting";
	s.peers[0].peer_role = "unknown";
	s.peers[0].replication = "off";
	s.disk = "consistent";
	cr_assert_eq(events_update(e, &s, T0, 20), 3);
	cr_assert_eq(events_next_seq(e), 4);
	cr_assert_gt(events_read(e, &seq, buf, sizeof(buf), T0), 0);
	cr_assert_eq(seq, 4);
	cr_assert_eq(count(buf, "\n"), 3);
	cr_assert(strstr(buf, "{\"time\": \"2026-12-07T12:13:15.123Z\", \"kind\": \"change\", "
			      "\"object\": \"connection\", \"name\": \"r0\", \"node\": \"beta\", "
			      "\"conn_name\": \"alpha\", \"connection\": \"connecting\""),
		  "%s", buf);
	cr_assert(strstr(buf, "\"object\": \"device\"") <
		  strstr(buf, "\"object\": \"peer-device\""));
	cr_assert(strstr(buf, "\"disk\": \"consistent\""));
	cr_assert(strstr(buf, "\"replication\": \"off\""));
	cr_assert_null(strstr(buf, "\"object\": \"resource\""));
	cr_assert_eq(events_read(e, &seq, buf, sizeof(buf), T0), 0, "nothing new");
	events_free(e);
}

Test(events, progress_at_most_once_a_second)
{
	struct events *e = events_new();
	struct events_state s = base();

	(void)events_update(e, &s, T0, 0);
	s.peers[0].replication = "sync-source";
	s.peers[0].resync = true;
	s.peers[0].total_bytes = 1000;
	cr_assert_eq(events_update(e, &s, T0, 100), 1, "resync start");
	s.peers[0].done_bytes = 100;
	cr_assert_eq(events_update(e, &s, T0, 200), 0, "progress too soon");
	s.peers[0].done_bytes = 200;
	cr_assert_eq(events_update(e, &s, T0, 900), 0, "still too soon");
	cr_assert_eq(events_update(e, &s, T0, 1100), 1, "a second after the last line");
	cr_assert_eq(events_update(e, &s, T0, 5000), 0, "no progress, no line");
	s.peers[0].replication = "established";
	s.peers[0].resync = false;
	s.peers[0].done_bytes = s.peers[0].total_bytes = 0;
	cr_assert_eq(events_update(e, &s, T0, 5001), 1, "resync end at once");
	events_free(e);
}

Test(events, now_lists_every_object_and_the_marker)
{
	struct events *e = events_new();
	struct events_state s = base();
	char buf[8192];

	(void)events_update(e, &s, T0, 0);
	cr_assert_gt(events_exists(e, buf, sizeof(buf), T0), 0);
	cr_assert_eq(count(buf, "\"kind\": \"exists\""), 5);
	cr_assert(strstr(buf,
			 "\"object\": \"resource\", \"name\": \"r0\", \"node\": \"beta\", "
			 "\"role\": \"secondary\", \"suspended\": false, \"quorum\": false, "
			   "\"mode\": \"sync\"}\n"));
	cr_assert(strstr(buf, "\"kind\": \"exists\", \"object\": \"-\", \"name\": \"r0\", "
			      "\"node\": \"beta\"}\n"));
	cr_assert(strstr(buf, "\"volume\": 0, \"disk\": \"uptodate\", \"disk_error\": \"\", "
			      "\"attached\": false, \"path\": null"));
	cr_assert(strstr(buf, "\"done\": null"));
	cr_assert_eq(events_next_seq(e), 1, "exists lines are not in the ring");
	events_free(e);
}

Test(events, lost_lines_are_said)
{
	struct events *e = events_new();
	struct events_state s = base();
	static char buf[1 << 20];
	uint64_t seq = 1;

	(void)events_update(e, &s, T0, 0);
	for (int i = 0; i < EVENTS_RING + 10; i++) {
		s.role = i % 2 ? "secondary" : "primary";
		cr_assert_eq(events_update(e, &s, T0, (uint64_t)i), 1);
	}
	cr_assert_gt(events_read(e, &seq, buf, sizeof(buf), T0), 0);
	/* the first line says what was lost */
	cr_assert(strstr(buf, "\"kind\": \"lost\"") < strchr(buf, '\n'), "%.300s", buf);
	cr_assert(strstr(buf, "\"kind\": \"lost\", \"object\": \"-\", \"name\": \"r0\", "
			      "\"node\": \"beta\", \"lines\": 11}\n"),
		  "%.300s", buf);
	cr_assert_eq(count(buf, "\n"), 1 + EVENTS_RING - 1);
	cr_assert_eq(seq, events_next_seq(e));
	events_free(e);
}

Test(events, whole_lines_only)
{
	struct events *e = events_new();
	struct events_state s = base();
	char buf[8192], small[260];
	uint64_t seq = 1, seq2 = 1;
	size_t n;

	(void)events_update(e, &s, T0, 0);
	s.role = "primary";
	s.disk = "outdated";
	cr_assert_eq(events_update(e, &s, T0, 1), 2);
	n = events_read(e, &seq, buf, sizeof(buf), T0);
	cr_assert_eq(seq, 3);
	(void)events_read(e, &seq2, small, sizeof(small), T0);
	cr_assert_eq(seq2, 2, "one line fits in %zu bytes of %zu", sizeof(small), n);
	cr_assert_eq(count(small, "\n"), 1);
	cr_assert_eq(strncmp(small, buf, strlen(small)), 0);
	events_free(e);
}

Test(events, texts_are_escaped)
{
	struct events *e = events_new();
	struct events_state s = base();
	char buf[8192];
	uint64_t seq = 1;

	(void)events_update(e, &s, T0, 0);
	events_copy_text(s.peers[0].last_error, sizeof(s.peers[0].last_error),
			 "peer said \"no\"\\\n");
	cr_assert_eq(events_update(e, &s, T0, 1), 1);
	(void)events_read(e, &seq, buf, sizeof(buf), T0);
	cr_assert(strstr(buf, "\"last_error\": \"peer said \\\"no\\\"\\\\\\u000a\""), "%s", buf);
	events_free(e);
}

/* Like the status line: never 100 while anything is out of sync, never
 * more than 100 (issue 15: "100% with 48 MiB still out of sync"). */
Test(events, done_is_never_100_while_out_of_sync)
{
	struct events *e = events_new();
	struct events_state s = base();
	char buf[8192];

	(void)events_update(e, &s, T0, 0);
	s.peers[0].replication = "sync-source";
	s.peers[0].resync = true;
	s.peers[0].done_bytes = s.peers[0].total_bytes = 100ULL << 20;
	s.peers[0].out_of_sync_bytes = 48ULL << 20;
	(void)events_update(e, &s, T0, 100);
	cr_assert_gt(events_exists(e, buf, sizeof(buf), T0), 0);
	cr_assert(strstr(buf, "\"done\": 99.99"), "%s", buf);
	s.peers[0].done_bytes = 200ULL << 20;
	s.peers[0].out_of_sync_bytes = 0;
	(void)events_update(e, &s, T0, 2000);
	cr_assert_gt(events_exists(e, buf, sizeof(buf), T0), 0);
	cr_assert(strstr(buf, "\"done\": 100.00"), "%s", buf);
	events_free(e);
}

/* Three peers (issue 16): alpha primary and connected, gamma connected
 * and resyncing (an async peer that lagged), delta disconnected. */
static struct events_state three(void)
{
	struct events_state s = base();

	s.npeers = 3;
	s.peers[1] = s.peers[0];
	s.peers[1].name = "gamma";
	s.peers[1].peer_role = "secondary";
	s.peers[1].replication = "sync-source";
	s.peers[1].resync = true;
	s.peers[1].done_bytes = 1 << 20;
	s.peers[1].total_bytes = 4 << 20;
	s.peers[1].out_of_sync_bytes = 3 << 20;
	s.peers[2] = (struct events_peer){ .name = "delta",
					   .connection = "connecting",
					   .peer_role = "unknown",
					   .replication = "off",
					   .peer_disk = "unknown" };
	return s;
}

/* The object and conn_name of each line of buf, "connection:gamma ..." */
static void objects(const char *buf, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (const char *l = buf; *l && o < len; l = strchr(l, '\n') + 1) {
		const char *obj = strstr(l, "\"object\": \""), *cn = strstr(l, "\"conn_name\": \"");
		const char *eol = strchr(l, '\n');

		obj += 11;
		o += (size_t)snprintf(out + o, len - o, "%s%.*s", o ? " " : "",
				      (int)(strchr(obj, '"') - obj), obj);
		if (cn && cn < eol) {
			cn += 14;
			o += (size_t)snprintf(out + o, len - o, ":%.*s",
					      (int)(strchr(cn, '"') - cn), cn);
		}
	}
}

Test(events, three_peers_a_connection_and_peer_device_line_each)
{
	struct events *e = events_new();
	struct events_state s = three();
	char buf[16384], objs[512];

	(void)events_update(e, &s, T0, 0);
	cr_assert_gt(events_exists(e, buf, sizeof(buf), T0), 0);
	objects(buf, objs, sizeof(objs));
	cr_assert_str_eq(objs, "resource connection:alpha connection:gamma connection:delta device "
			       "peer-device:alpha peer-device:gamma peer-device:delta -");
	cr_assert(strstr(buf, "\"conn_name\": \"gamma\", \"volume\": 0, \"replication\": "
			      "\"sync-source\", \"peer_disk\": \"uptodate\", \"done\": 25.00, "
			      "\"done_bytes\": 1048576, \"total_bytes\": 4194304"),
		  "%s", buf);
	cr_assert(strstr(buf, "\"conn_name\": \"delta\", \"connection\": \"connecting\", "
			      "\"role\": \"unknown\""),
		  "%s", buf);
	cr_assert(strstr(buf, "\"conn_name\": \"delta\", \"volume\": 0, \"replication\": \"off\", "
			      "\"peer_disk\": \"unknown\", \"done\": null"),
		  "%s", buf);
	events_free(e);
}

Test(events, three_peers_one_link_cut_and_back)
{
	struct events *e = events_new();
	struct events_state s = three();
	char buf[16384], objs[512];
	uint64_t seq = 1;

	(void)events_update(e, &s, T0, 0);
	/* alpha's link goes: its two lines only, nothing about gamma or delta */
	s.peers[0].connection = "connecting";
	s.peers[0].peer_role = "unknown";
	s.peers[0].replication = "off";
	s.peers[0].peer_disk = "unknown";
	cr_assert_eq(events_update(e, &s, T0, 10), 2);
	/* delta comes back */
	s.peers[2].connection = "connected";
	s.peers[2].peer_role = "secondary";
	cr_assert_eq(events_update(e, &s, T0, 20), 1);
	cr_assert_gt(events_read(e, &seq, buf, sizeof(buf), T0), 0);
	objects(buf, objs, sizeof(objs));
	cr_assert_str_eq(objs, "connection:alpha peer-device:alpha connection:delta");
	cr_assert(strstr(buf, "\"conn_name\": \"alpha\", \"connection\": \"connecting\""), "%s",
		  buf);
	cr_assert(strstr(buf, "\"conn_name\": \"delta\", \"connection\": \"connected\", "
			      "\"role\": \"secondary\""),
		  "%s", buf);
	events_free(e);
}

/* Each peer's progress makes a line at most once a second, on its own. */
Test(events, three_peers_progress_each_once_a_second)
{
	struct events *e = events_new();
	struct events_state s = three();
	char buf[16384], objs[512];
	uint64_t seq;

	(void)events_update(e, &s, T0, 0);
	s.peers[1].done_bytes += 4096;
	cr_assert_eq(events_update(e, &s, T0, 500), 0, "gamma: too soon");
	s.peers[2].replication = "sync-target";
	s.peers[2].resync = true;
	s.peers[2].total_bytes = 100;
	cr_assert_eq(events_update(e, &s, T0, 600), 1, "delta's resync starts");
	s.peers[2].done_bytes = 50;
	s.peers[1].done_bytes += 4096;
	seq = events_next_seq(e);
	cr_assert_eq(events_update(e, &s, T0, 1100), 1, "gamma's second has passed, not delta's");
	(void)events_read(e, &seq, buf, sizeof(buf), T0);
	objects(buf, objs, sizeof(objs));
	cr_assert_str_eq(objs, "peer-device:gamma");
	cr_assert(strstr(buf, "\"done_bytes\": 1056768"), "%s", buf);
	s.peers[2].done_bytes = 60;
	cr_assert_eq(events_update(e, &s, T0, 1700), 1, "now delta's");
	events_free(e);
}
