/* NBD fixed-newstyle option haggling, server side.  See handshake.h. */
#include "handshake.h"

#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "wire.h"

#define OUT_CAP		(20U << 10)
#define OPT_HDR_SIZE	16
#define REP_HDR_SIZE	20
#define META_ALLOC	"base:allocation"
#define META_ALLOC_ID	1

enum phase { PH_FLAGS, PH_OPT_HDR, PH_OPT_DATA, PH_DONE, PH_CLOSED };

struct nbd_hs {
	struct nbd_hs_export exp;
	enum phase phase;
	size_t want;
	uint32_t opt;		/* option being read */
	bool no_zeroes;
	bool structured;
	uint32_t meta_id;
	const char *error;
	size_t out_len;
	uint8_t out[OUT_CAP];
};

/* A cursor over an option's payload; any overrun marks it bad. */
struct cursor {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
	const uint8_t *p = c->p;

	if (c->bad || n > c->left) {
		c->bad = true;
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint32_t take32(struct cursor *c)
{
	const uint8_t *p = take(c, 4);

	return p ? get_be32(p) : 0;
}

static uint16_t take16(struct cursor *c)
{
	const uint8_t *p = take(c, 2);

	return p ? get_be16(p) : 0;
}

/* Is there room for len more output bytes?  If not the machine closes;
 * only reachable if the caller feeds before draining output. */
static bool room_for(struct nbd_hs *hs, size_t len)
{
	if (hs->out_len + len <= OUT_CAP)
		return true;
	hs->error = "handshake output overflow";
	hs->phase = PH_CLOSED;
	return false;
}

static void emit(struct nbd_hs *hs, const void *data, size_t len)
{
	/* Once closed nothing more goes out, so no reply is left half-sent.
	 * len == 0 returns early: data may be NULL then, and memcpy's
	 * arguments must not be. */
	if (hs->phase == PH_CLOSED || len == 0 || !room_for(hs, len))
		return;
	memcpy(hs->out + hs->out_len, data, len);
	hs->out_len += len;
}

/* Option reply header followed by len bytes that the caller emits next.
 * Room is checked for both at once: a header without its data would
 * desynchronise the client. */
static void reply_hdr(struct nbd_hs *hs, uint32_t type, uint32_t len)
{
	uint8_t h[REP_HDR_SIZE];

	if (hs->phase == PH_CLOSED || !room_for(hs, sizeof(h) + (size_t)len))
		return;
	put_be64(h, NBD_REP_MAGIC);
	put_be32(h + 8, hs->opt);
	put_be32(h + 12, type);
	put_be32(h + 16, len);
	emit(hs, h, sizeof(h));
}

static void reply(struct nbd_hs *hs, uint32_t type, const char *msg)
{
	size_t len = msg ? strlen(msg) : 0;

	reply_hdr(hs, type, (uint32_t)len);
	emit(hs, msg, len);
}

static bool name_matches(const struct nbd_hs *hs, const uint8_t *name, size_t len)
{
	const char *mine = hs->exp.name;

	if (len == 0)
		return true;
	return mine && strlen(mine) == len && memcmp(mine, name, len) == 0;
}

static uint16_t tflags(const struct nbd_hs *hs)
{
	return nbd_export_tflags(hs->exp.read_only, hs->structured);
}

static enum nbd_hs_step do_export_name(struct nbd_hs *hs, const uint8_t *d, size_t len)
{
	uint8_t r[10 + 124] = { 0 };

	if (!name_matches(hs, d, len)) {
		hs->error = "client asked for an unknown export (EXPORT_NAME)";
		return NBD_HS_CLOSE;
	}
	put_be64(r, hs->exp.size);
	put_be16(r + 8, tflags(hs));
	emit(hs, r, hs->no_zeroes ? 10 : sizeof(r));
	return NBD_HS_DONE;
}

static void do_list(struct nbd_hs *hs, size_t len)
{
	const char *name = hs->exp.name ? hs->exp.name : "";
	uint8_t n[4];

	if (len) {
		reply(hs, NBD_REP_ERR_INVALID, "LIST takes no data");
		return;
	}
	put_be32(n, (uint32_t)strlen(name));
	reply_hdr(hs, NBD_REP_SERVER, 4 + (uint32_t)strlen(name));
	emit(hs, n, 4);
	emit(hs, name, strlen(name));
	reply(hs, NBD_REP_ACK, NULL);
}

static void info_string(struct nbd_hs *hs, uint16_t type, const void *s, size_t len)
{
	uint8_t t[2];

	put_be16(t, type);
	reply_hdr(hs, NBD_REP_INFO, 2 + (uint32_t)len);
	emit(hs, t, 2);
	emit(hs, s, len);
}

static void info_export(struct nbd_hs *hs)
{
	uint8_t r[12];

	put_be16(r, NBD_INFO_EXPORT);
	put_be64(r + 2, hs->exp.size);
	put_be16(r + 10, tflags(hs));
	reply_hdr(hs, NBD_REP_INFO, sizeof(r));
	emit(hs, r, sizeof(r));
}

static void info_block_size(struct nbd_hs *hs)
{
	uint8_t r[14];

	put_be16(r, NBD_INFO_BLOCK_SIZE);
	put_be32(r + 2, hs->exp.min_block);
	put_be32(r + 6, hs->exp.pref_block);
	put_be32(r + 10, hs->exp.max_block);
	reply_hdr(hs, NBD_REP_INFO, sizeof(r));
	emit(hs, r, sizeof(r));
}

static enum nbd_hs_step do_info_go(struct nbd_hs *hs, const uint8_t *d, size_t len)
{
	struct cursor c = { d, len, false };
	uint32_t name_len = take32(&c);
	const uint8_t *name = take(&c, name_len);
	uint16_t n = take16(&c);
	const uint8_t *reqs = take(&c, 2U * n);
	bool sent_name = false, sent_desc = false;

	if (c.bad || c.left) {
		reply(hs, NBD_REP_ERR_INVALID, "malformed INFO/GO option length");
		return NBD_HS_MORE;
	}
	if (!name_matches(hs, name, name_len)) {
		reply(hs, NBD_REP_ERR_UNKNOWN, "no such export");
		return NBD_HS_MORE;
	}
	info_export(hs);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t t = get_be16(reqs + 2 * i);

		if (t == NBD_INFO_NAME && !sent_name) {
			info_string(hs, t, name, name_len);
			sent_name = true;
		} else if (t == NBD_INFO_DESCRIPTION && !sent_desc && hs->exp.description) {
			info_string(hs, t, hs->exp.description, strlen(hs->exp.description));
			sent_desc = true;
		}
	}
	/* Always sent: min_block is 1 unless --direct needs alignment. */
	info_block_size(hs);
	reply(hs, NBD_REP_ACK, NULL);
	return hs->opt == NBD_OPT_GO ? NBD_HS_DONE : NBD_HS_MORE;
}

/* Does a LIST query string select base:allocation? */
static bool query_selects_alloc(const uint8_t *q, size_t len, bool list)
{
	if (len == strlen(META_ALLOC) && memcmp(q, META_ALLOC, len) == 0)
		return true;
	return list && len == 5 && memcmp(q, "base:", 5) == 0;
}

static void do_meta(struct nbd_hs *hs, const uint8_t *d, size_t len)
{
	bool list = hs->opt == NBD_OPT_LIST_META_CONTEXT;
	struct cursor c = { d, len, false };
	uint32_t name_len = take32(&c);
	const uint8_t *name = take(&c, name_len);
	uint32_t nq = take32(&c);
	bool selected = list && nq == 0;
	uint8_t id[4];

	for (uint32_t i = 0; i < nq && !c.bad; i++) {
		uint32_t qlen = take32(&c);
		const uint8_t *q = take(&c, qlen);

		if (q && query_selects_alloc(q, qlen, list))
			selected = true;
	}
	if (c.bad || c.left) {
		reply(hs, NBD_REP_ERR_INVALID, "malformed meta context option length");
		return;
	}
	if (!hs->structured) {
		reply(hs, NBD_REP_ERR_INVALID, "meta contexts need structured replies first");
		return;
	}
	if (!name_matches(hs, name, name_len)) {
		reply(hs, NBD_REP_ERR_UNKNOWN, "no such export");
		return;
	}
	if (!list)
		hs->meta_id = selected ? META_ALLOC_ID : 0;
	if (selected) {
		put_be32(id, list ? 0 : META_ALLOC_ID);
		reply_hdr(hs, NBD_REP_META_CONTEXT, 4 + (uint32_t)strlen(META_ALLOC));
		emit(hs, id, 4);
		emit(hs, META_ALLOC, strlen(META_ALLOC));
	}
	reply(hs, NBD_REP_ACK, NULL);
}

static enum nbd_hs_step do_option(struct nbd_hs *hs, const uint8_t *d, size_t len)
{
	switch (hs->opt) {
	case NBD_OPT_EXPORT_NAME:
		return do_export_name(hs, d, len);
	case NBD_OPT_ABORT:
		reply(hs, NBD_REP_ACK, NULL);
		hs->error = "";
		return NBD_HS_CLOSE;
	case NBD_OPT_LIST:
		do_list(hs, len);
		return NBD_HS_MORE;
	case NBD_OPT_STARTTLS:
		reply(hs, len ? NBD_REP_ERR_INVALID : NBD_REP_ERR_POLICY,
		      "TLS is not configured on this server");
		return NBD_HS_MORE;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return do_info_go(hs, d, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len) {
			reply(hs, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
			return NBD_HS_MORE;
		}
		hs->structured = true;
		reply(hs, NBD_REP_ACK, NULL);
		return NBD_HS_MORE;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		do_meta(hs, d, len);
		return NBD_HS_MORE;
	default:
		reply(hs, NBD_REP_ERR_UNSUP, "option not supported");
		return NBD_HS_MORE;
	}
}

static enum nbd_hs_step after_option(struct nbd_hs *hs, enum nbd_hs_step step)
{
	if (hs->phase == PH_CLOSED)
		return NBD_HS_CLOSE;
	if (step == NBD_HS_DONE)
		hs->phase = PH_DONE;
	else if (step == NBD_HS_CLOSE)
		hs->phase = PH_CLOSED;
	else {
		hs->phase = PH_OPT_HDR;
		hs->want = OPT_HDR_SIZE;
	}
	return step;
}

static enum nbd_hs_step close_with(struct nbd_hs *hs, const char *why)
{
	hs->error = why;
	hs->phase = PH_CLOSED;
	return NBD_HS_CLOSE;
}

static enum nbd_hs_step feed_flags(struct nbd_hs *hs, const uint8_t *in)
{
	uint32_t f = get_be32(in);

	if (f & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES))
		return close_with(hs, "client sent unknown handshake flags");
	if (!(f & NBD_FLAG_FIXED_NEWSTYLE))
		return close_with(hs, "client does not speak fixed newstyle");
	hs->no_zeroes = f & NBD_FLAG_NO_ZEROES;
	hs->phase = PH_OPT_HDR;
	hs->want = OPT_HDR_SIZE;
	return NBD_HS_MORE;
}

static enum nbd_hs_step feed_opt_hdr(struct nbd_hs *hs, const uint8_t *in)
{
	uint32_t len = get_be32(in + 12);

	if (get_be64(in) != NBD_IHAVEOPT)
		return close_with(hs, "bad option magic");
	hs->opt = get_be32(in + 8);
	if (len > NBD_HS_MAX_OPTION)
		return close_with(hs, "option payload too long");
	if (len == 0)
		return after_option(hs, do_option(hs, NULL, 0));
	hs->phase = PH_OPT_DATA;
	hs->want = len;
	return NBD_HS_MORE;
}

enum nbd_hs_step nbd_hs_feed(struct nbd_hs *hs, const uint8_t *in, size_t len)
{
	if (len != hs->want)
		return close_with(hs, "handshake fed a wrong length");
	switch (hs->phase) {
	case PH_FLAGS:
		return feed_flags(hs, in);
	case PH_OPT_HDR:
		return feed_opt_hdr(hs, in);
	case PH_OPT_DATA:
		return after_option(hs, do_option(hs, in, len));
	case PH_DONE:
		return NBD_HS_DONE;
	default:
		return NBD_HS_CLOSE;
	}
}

struct nbd_hs *nbd_hs_new(const struct nbd_hs_export *exp)
{
	struct nbd_hs *hs = calloc(1, sizeof(*hs));
	uint8_t g[18];

	if (!hs)
		return NULL;
	hs->exp = *exp;
	hs->phase = PH_FLAGS;
	hs->want = 4;
	hs->error = "";
	put_be64(g, NBD_MAGIC);
	put_be64(g + 8, NBD_IHAVEOPT);
	put_be16(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	emit(hs, g, sizeof(g));
	return hs;
}

void nbd_hs_free(struct nbd_hs *hs)
{
	free(hs);
}

size_t nbd_hs_want(const struct nbd_hs *hs)
{
	return hs->phase == PH_FLAGS || hs->phase == PH_OPT_HDR || hs->phase == PH_OPT_DATA ?
		       hs->want : 0;
}

const uint8_t *nbd_hs_output(const struct nbd_hs *hs, size_t *len)
{
	*len = hs->out_len;
	return hs->out;
}

void nbd_hs_consume(struct nbd_hs *hs, size_t n)
{
	if (n >= hs->out_len) {
		hs->out_len = 0;
		return;
	}
	memmove(hs->out, hs->out + n, hs->out_len - n);
	hs->out_len -= n;
}

void nbd_hs_result(const struct nbd_hs *hs, struct nbd_hs_result *res)
{
	res->structured = hs->structured;
	res->meta_id = hs->meta_id;
	res->tflags = tflags(hs);
}

const char *nbd_hs_error(const struct nbd_hs *hs)
{
	return hs->error;
}
