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
	uint64_t progress_ms;	       /* when resync progress alone last made a line */
	uint64_t next_seq;	       /* the next line's number */
	char (*ring)[EVENTS_LINE_MAX]; /* line seq at ring[seq % EVENTS_RING] */
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

static void fields_resource(struct strbuf *o, const struct events_state *s)
{
	strbuf_printf(o, ", \"role\": \"%s\", \"suspended\": %s, \"mode\": \"%s\"", s->role,
		      json_bool(s->suspended), s->mode);
}

static void fields_connection(struct strbuf *o, const struct events_state *s)
{
	char err[2 * EVENTS_TEXT_MAX];

	events_json_escape(err, sizeof(err), s->last_error);
	strbuf_printf(o,
		      ", \"conn_name\": \"%s\", \"connection\": \"%s\", \"role\": \"%s\", "
		      "\"split_brain\": %s, \"last_error\": \"%s\"",
		      s->peer, s->connection, s->peer_role, json_bool(s->split_brain), err);
}

static void fields_device(struct strbuf *o, const struct events_state *s)
{
	char err[2 * EVENTS_TEXT_MAX];

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
static double done_percent(const struct events_state *s)
{
	double pct = s->total_bytes ? (double)s->done_bytes * 100 / (double)s->total_bytes : 100;

	if (pct > 100)
		pct = 100;
	return pct >= 100 && s->out_of_sync_bytes ? 99.99 : pct;
}

static void fields_peer_device(struct strbuf *o, const struct events_state *s)
{
	strbuf_printf(o,
		      ", \"conn_name\": \"%s\", \"volume\": 0, \"replication\": \"%s\", "
		      "\"peer_disk\": \"%s\"",
		      s->peer, s->replication, s->peer_disk);
	if (s->resync)
		strbuf_printf(o, ", \"done\": %.2f", done_percent(s));
	else
		strbuf_printf(o, ", \"done\": null");
	strbuf_printf(o,
		      ", \"done_bytes\": %" PRIu64 ", \"total_bytes\": %" PRIu64
		      ", \"bytes_per_second\": %" PRIu64 ", \"out_of_sync_bytes\": %" PRIu64,
		      s->done_bytes, s->total_bytes, s->bytes_per_second, s->out_of_sync_bytes);
}

/* One line for object obj of s into buf: its length, 0 if it does not fit. */
static size_t render(char *buf, size_t len, const char *kind, enum events_object obj,
		     const struct events_state *s, uint64_t realtime_ms)
{
	static void (*const fields[EV_OBJECTS])(struct strbuf *, const struct events_state *) = {
		[EV_RESOURCE] = fields_resource,
		[EV_CONNECTION] = fields_connection,
		[EV_DEVICE] = fields_device,
		[EV_PEER_DEVICE] = fields_peer_device,
	};
	struct strbuf o = STRBUF_INIT(buf, len);

	line_head(&o, kind, object_names[obj], s, realtime_ms);
	fields[obj](&o, s);
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
	switch (obj) {
	case EV_RESOURCE:
		return differ(a->role, b->role) || a->suspended != b->suspended ||
		       differ(a->mode, b->mode);
	case EV_CONNECTION:
		return differ(a->connection, b->connection) || differ(a->peer_role, b->peer_role) ||
		       a->split_brain != b->split_brain || differ(a->last_error, b->last_error);
	case EV_DEVICE:
		return differ(a->disk, b->disk) || differ(a->disk_error, b->disk_error) ||
		       a->attached != b->attached || differ(a->path, b->path);
	default:
		return differ(a->replication, b->replication) ||
		       differ(a->peer_disk, b->peer_disk) || a->resync != b->resync;
	}
}

static bool progressed(const struct events_state *a, const struct events_state *b)
{
	return a->done_bytes != b->done_bytes || a->total_bytes != b->total_bytes;
}

static void append(struct events *e, const char *kind, enum events_object obj,
		   const struct events_state *s, uint64_t realtime_ms)
{
	char *slot = e->ring[e->next_seq % EVENTS_RING];

	if (render(slot, EVENTS_LINE_MAX, kind, obj, s, realtime_ms))
		e->next_seq++;
}

unsigned events_update(struct events *e, const struct events_state *st, uint64_t realtime_ms,
		       uint64_t mono_ms)
{
	uint64_t before = e->next_seq;
	bool progress;

	if (!e->have_prev) {
		e->prev = *st;
		e->have_prev = true;
		e->progress_ms = mono_ms;
		return 0;
	}
	progress = st->resync && progressed(&e->prev, st) &&
		   mono_ms - e->progress_ms >= EVENTS_PROGRESS_MS;
	for (enum events_object obj = EV_RESOURCE; obj < EV_PEER_DEVICE; obj++)
		if (changed(&e->prev, st, obj))
			append(e, "change", obj, st, realtime_ms);
	if (progress || changed(&e->prev, st, EV_PEER_DEVICE)) {
		append(e, "change", EV_PEER_DEVICE, st, realtime_ms);
		e->progress_ms = mono_ms;
		e->prev = *st;
	} else if (!st->resync) {
		e->prev = *st;
	} else {
		/* Progress not shown yet: compared again from the last shown. */
		uint64_t done = e->prev.done_bytes, total = e->prev.total_bytes;

		e->prev = *st;
		e->prev.done_bytes = done;
		e->prev.total_bytes = total;
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
	return render(buf, len, kind, o, &e->prev, realtime_ms);
}

size_t events_exists(const struct events *e, char *buf, size_t len, uint64_t realtime_ms)
{
	struct strbuf o = STRBUF_INIT(buf, len);
	size_t pos = 0;

	for (enum events_object obj = EV_RESOURCE; obj < EV_OBJECTS; obj++)
		pos += render(buf + pos, len - pos, "exists", obj, &e->prev, realtime_ms);
	o.pos = pos;
	line_head(&o, "exists", "-", &e->prev, realtime_ms);
	strbuf_printf(&o, "}\n");
	return o.ok ? o.pos : pos;
}
