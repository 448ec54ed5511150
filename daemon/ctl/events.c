/* The node's change events: snapshots compared, lines rendered and kept in
 * a ring.  See events.h. */
#include "daemon/ctl/events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils/clock.h"
#include "utils/strbuf.h"

struct events {
	struct events_state prev; /* the last snapshot */
	bool have_prev;
	uint64_t progress_ms[EVENTS_PEERS_MAX]; /* when a peer's resync progress alone last made a
						   line */
	uint64_t next_seq;			/* the next line's number */
	char (*ring)[EVENTS_LINE_MAX];		/* line seq at ring[seq % EVENTS_RING] */
};

static const char *const object_names[EV_OBJECTS] = {
	[EV_RESOURCE] = "resource",
	[EV_CONNECTION] = "connection",
	[EV_DEVICE] = "device",
	[EV_PEER_DEVICE] = "peer-device",
};

struct events *events_new(void)
{
	struct events *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->ring = calloc(EVENTS_RING, EVENTS_LINE_MAX);
	if (!e->ring) {
		free(e);
		return NULL;
	}
	e->next_seq = 1;
	return e;
}

void events_free(struct events *e)
{
	if (!e)
		return;
	free(e->ring);
	free(e);
}

/* Per batch, twice: no printf. */
void events_copy_text(char *dst, size_t len, const char *s)
{
	size_t n = s && len ? strnlen(s, len - 1) : 0;

	if (!len)
		return;
	memcpy(dst, s ? s : "", n);
	dst[n] = '\0';
}

void events_json_escape(char *out, size_t len, const char *s)
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
	if (len)
		out[o] = '\0';
}

/* --- rendering --- */

static const char *json_bool(bool b)
{
	return b ? "true" : "false";
}

/* The fields every line starts with. */
static void line_head(struct strbuf *o, const char *kind, const char *object,
		      const struct events_state *s, uint64_t realtime_ms)
{
	char ts[CLOCK_RFC3339_LEN];

	(void)clock_rfc3339(ts, sizeof(ts), realtime_ms);
	strbuf_printf(o,
		      "{\"time\": \"%s\", \"kind\": \"%s\", \"object\": \"%s\", \"name\": \"%s\", "
		      "\"node\": \"%s\"",
		      ts, kind, object, s->resource ? s->resource : "", s->node ? s->node : "");
}

static void fields_resource(struct strbuf *o, const struct events_state *s,
			    const struct events_peer *p)
{
	(void)p;
	strbuf_printf(o, ", \"role\": \"%s\", \"suspended\": %s, \"quorum\": %s, \"mode\": \"%s\"",
		      s->role, json_bool(s->suspended), json_bool(s->quorum), s->mode);
}

static void fields_connection(struct strbuf *o, const struct events_state *s,
			      const struct events_peer *p)
{
	char err[2 * EVENTS_TEXT_MAX];

	(void)s;
	events_json_escape(err, sizeof(err), p->last_error);
	strbuf_printf(o,
		      ", \"conn_name\": \"%s\", \"connection\": \"%s\", \"role\": \"%s\", "
		      "\"split_brain\": %s, \"last_error\": \"%s\"",
		      p->name, p->connection, p->peer_role, json_bool(p->split_brain), err);
}

static void fields_device(struct strbuf *o, const struct events_state *s,
			  const struct events_peer *p)
{
	char err[2 * EVENTS_TEXT_MAX];

	(void)p;
	events_json_escape(err, sizeof(err), s->disk_error);
	strbuf_printf(o,
		      ", \"volume\": 0, \"disk\": \"%s\", \"disk_error\": \"%s\", \"attached\": %s",
		      s->disk, err, json_bool(s->attached));
	if (*s->path)
		strbuf_printf(o, ", \"path\": \"%s\"", s->path);
	else
		strbuf_printf(o, ", \"path\": null");
}

/* Of the resync's total, at most 100, and never 100 while anything is
 * out of sync (the status line's rule, human_percent()). */
static double done_percent(const struct events_peer *p)
{
	double pct = p->total_bytes ? (double)p->done_bytes * 100 / (double)p->total_bytes : 100;

	if (pct > 100)
		pct = 100;
	return pct >= 100 && p->out_of_sync_bytes ? 99.99 : pct;
}

static void fields_peer_device(struct strbuf *o, const struct events_state *s,
			       const struct events_peer *p)
{
	(void)s;
	strbuf_printf(o,
		      ", \"conn_name\": \"%s\", \"volume\": 0, \"replication\": \"%s\", "
		      "\"peer_disk\": \"%s\"",
		      p->name, p->replication, p->peer_disk);
	if (p->resync)
		strbuf_printf(o, ", \"done\": %.2f", done_percent(p));
	else
		strbuf_printf(o, ", \"done\": null");
	strbuf_printf(o,
		      ", \"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
		      ", \"bytes_per_second\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64,
		      p->done_bytes, p->total_bytes, p->bytes_per_second, p->out_of_sync_bytes);
}

static bool per_peer(enum events_object obj)
{
	return obj == EV_CONNECTION || obj == EV_PEER_DEVICE;
}

/* One line for object obj of s (of its peer number peer, for a peer's
 * object) into buf: its length, 0 if it does not fit. */
static size_t render(char *buf, size_t len, const char *kind, enum events_object obj,
		     const struct events_state *s, unsigned peer, uint64_t realtime_ms)
{
	static void (*const fields[EV_OBJECTS])(struct strbuf *, const struct events_state *,
						const struct events_peer *) = {
		[EV_RESOURCE] = fields_resource,
		[EV_CONNECTION] = fields_connection,
		[EV_DEVICE] = fields_device,
		[EV_PEER_DEVICE] = fields_peer_device,
	};
	struct strbuf o = STRBUF_INIT(buf, len);

	if (per_peer(obj) && peer >= s->npeers) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	line_head(&o, kind, object_names[obj], s, realtime_ms);
	fields[obj](&o, s, &s->peers[peer]);
	strbuf_printf(&o, "}\n");
	if (!o.ok && len)
		buf[0] = '\0';
	return o.ok ? o.pos : 0;
}

/* --- comparing snapshots --- */

static bool differ(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

static bool changed(const struct events_state *a, const struct events_state *b,
		    enum events_object obj)
{
	if (obj == EV_RESOURCE)
		return differ(a->role, b->role) || a->suspended != b->suspended ||
		       a->quorum != b->quorum || differ(a->mode, b->mode);
	return differ(a->disk, b->disk) || differ(a->disk_error, b->disk_error) ||
	       a->attached != b->attached || differ(a->path, b->path);
}

static bool peer_changed(const struct events_peer *a, const struct events_peer *b,
			 enum events_object obj)
{
	if (differ(a->name, b->name))
		return true;
	if (obj == EV_CONNECTION)
		return differ(a->connection, b->connection) || differ(a->peer_role, b->peer_role) ||
		       a->split_brain != b->split_brain || differ(a->last_error, b->last_error);
	return differ(a->replication, b->replication) || differ(a->peer_disk, b->peer_disk) ||
	       a->resync != b->resync;
}

static bool progressed(const struct events_peer *a, const struct events_peer *b)
{
	return a->done_bytes != b->done_bytes || a->total_bytes != b->total_bytes;
}

static void append(struct events *e, const char *kind, enum events_object obj,
		   const struct events_state *s, unsigned peer, uint64_t realtime_ms)
{
	char *slot = e->ring[e->next_seq % EVENTS_RING];

	if (render(slot, EVENTS_LINE_MAX, kind, obj, s, peer, realtime_ms))
		e->next_seq++;
}

/* The last snapshot's peer number i: an empty one if it had fewer. */
static const struct events_peer *prev_peer(const struct events *e, unsigned i)
{
	static const struct events_peer none;

	return i < e->prev.npeers ? &e->prev.peers[i] : &none;
}

/* Peer i's peer-device line if it changed, or its progress alone after
 * EVENTS_PROGRESS_MS.  Returns whether its progress waits unshown (then
 * the last shown stays the one compared). */
static bool peer_device_update(struct events *e, const struct events_state *st, unsigned i,
			       uint64_t realtime_ms, uint64_t mono_ms)
{
	const struct events_peer *a = prev_peer(e, i), *b = &st->peers[i];
	bool progress =
		b->resync && progressed(a, b) && mono_ms - e->progress_ms[i] >= EVENTS_PROGRESS_MS;

	if (progress || peer_changed(a, b, EV_PEER_DEVICE)) {
		append(e, "change", EV_PEER_DEVICE, st, i, realtime_ms);
		e->progress_ms[i] = mono_ms;
		return false;
	}
	return b->resync;
}

unsigned events_update(struct events *e, const struct events_state *st, uint64_t realtime_ms,
		       uint64_t mono_ms)
{
	uint64_t before = e->next_seq, done[EVENTS_PEERS_MAX], total[EVENTS_PEERS_MAX];
	bool keep[EVENTS_PEERS_MAX];
	unsigned np = st->npeers < EVENTS_PEERS_MAX ? st->npeers : EVENTS_PEERS_MAX;

	if (!e->have_prev) {
		e->prev = *st;
		e->prev.npeers = np;
		e->have_prev = true;
		for (unsigned i = 0; i < EVENTS_PEERS_MAX; i++)
			e->progress_ms[i] = mono_ms;
		return 0;
	}
	if (changed(&e->prev, st, EV_RESOURCE))
		append(e, "change", EV_RESOURCE, st, 0, realtime_ms);
	for (unsigned i = 0; i < np; i++)
		if (peer_changed(prev_peer(e, i), &st->peers[i], EV_CONNECTION))
			append(e, "change", EV_CONNECTION, st, i, realtime_ms);
	if (changed(&e->prev, st, EV_DEVICE))
		append(e, "change", EV_DEVICE, st, 0, realtime_ms);
	for (unsigned i = 0; i < np; i++) {
		keep[i] = peer_device_update(e, st, i, realtime_ms, mono_ms);
		done[i] = prev_peer(e, i)->done_bytes;
		total[i] = prev_peer(e, i)->total_bytes;
	}
	e->prev = *st;
	e->prev.npeers = np;
	/* Progress not shown yet: compared again from the last shown. */
	for (unsigned i = 0; i < np; i++)
		if (keep[i]) {
			e->prev.peers[i].done_bytes = done[i];
			e->prev.peers[i].total_bytes = total[i];
		}
	return (unsigned)(e->next_seq - before);
}

uint64_t events_next_seq(const struct events *e)
{
	return e->next_seq;
}

static size_t lost_line(const struct events *e, uint64_t lost, char *buf, size_t len,
			uint64_t realtime_ms)
{
	struct strbuf o = STRBUF_INIT(buf, len);

	line_head(&o, "lost", "-", &e->prev, realtime_ms);
	strbuf_printf(&o, ", \"lines\": %" PRIu64 "}\n", lost);
	return o.ok ? o.pos : 0;
}

size_t events_read(const struct events *e, uint64_t *seq, char *buf, size_t len,
		   uint64_t realtime_ms)
{
	uint64_t oldest = e->next_seq > EVENTS_RING ? e->next_seq - EVENTS_RING + 1 : 1;
	size_t pos = 0;

	if (len)
		buf[0] = '\0';
	if (*seq < oldest && *seq < e->next_seq) {
		pos = lost_line(e, oldest - *seq, buf, len, realtime_ms);
		if (!pos)
			return 0;
		*seq = oldest;
	}
	for (; *seq < e->next_seq; ++*seq) {
		const char *line = e->ring[*seq % EVENTS_RING];
		size_t n = strlen(line);

		if (pos + n >= len)
			break;
		memcpy(buf + pos, line, n + 1);
		pos += n;
	}
	return pos;
}

size_t events_line(const struct events *e, const char *kind, enum events_object o, char *buf,
		   size_t len, uint64_t realtime_ms)
{
	return render(buf, len, kind, o, &e->prev, 0, realtime_ms);
}

size_t events_exists(const struct events *e, char *buf, size_t len, uint64_t realtime_ms)
{
	struct strbuf o = STRBUF_INIT(buf, len);
	size_t pos = 0;

	for (enum events_object obj = EV_RESOURCE; obj < EV_OBJECTS; obj++)
		for (unsigned i = 0; i < (per_peer(obj) ? e->prev.npeers : 1); i++)
			pos += render(buf + pos, len - pos, "exists", obj, &e->prev, i,
				      realtime_ms);
	o.pos = pos;
	line_head(&o, "exists", "-", &e->prev, realtime_ms);
	strbuf_printf(&o, "}\n");
	return o.ok ? o.pos : pos;
}
