/* Unit tests for nbd/handshake: a scripted client drives the machine the
 * way the event loop does (nbd_hs_want() bytes at a time, output drained
 * after every feed) and checks every reply against the NBD spec. */
#include <criterion/criterion.h>
#include <string.h>

#include "nbd/handshake.h"
#include "nbd/request.h"
#include "nbd/wire.h"

#define CF_FIXED	NBD_FLAG_FIXED_NEWSTYLE
#define CF_BOTH		(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
#define OPT_HDR		16
#define REP_HDR		20
#define MAX_DATA	1024
#define MAX_REPS	16
#define EXPORT_SIZE	0x40000200ULL	/* 1 GiB + 512: no byte is zero by luck */
#define ALLOC_CTX	"base:allocation"

static const struct nbd_hs_export test_export = {
	.name = "disk",
	.description = "blkrep test disk",
	.size = EXPORT_SIZE,
	.read_only = false,
	.min_block = 1,
	.pref_block = 4096,
	.max_block = 32U << 20,
};

/* The client side of one connection: everything the server sent that the
 * test has not looked at yet. */
struct client {
	struct nbd_hs *hs;
	size_t out_len;
	uint8_t out[64U << 10];
};

struct rep {
	uint32_t opt;
	uint32_t type;
	uint32_t len;
	const uint8_t *data;
};

static void drain(struct client *c)
{
	size_t len;
	const uint8_t *o = nbd_hs_output(c->hs, &len);

	cr_assert_leq(c->out_len + len, sizeof(c->out));
	memcpy(c->out + c->out_len, o, len);
	c->out_len += len;
	nbd_hs_consume(c->hs, len);
}

/* Feeds a byte stream in nbd_hs_want() pieces, as the event loop would,
 * until it is used up or the machine leaves NBD_HS_MORE.  The stream must
 * end exactly where the machine stops. */
static enum nbd_hs_step feed(struct client *c, const uint8_t *in, size_t len)
{
	enum nbd_hs_step step = NBD_HS_MORE;
	size_t pos = 0;

	while (pos < len && step == NBD_HS_MORE) {
		size_t want = nbd_hs_want(c->hs);

		cr_assert(want > 0 && want <= len - pos, "machine wants %zu, stream has %zu",
			  want, len - pos);
		step = nbd_hs_feed(c->hs, in + pos, want);
		pos += want;
		drain(c);
	}
	cr_assert_eq(pos, len, "machine stopped with %zu bytes unread", len - pos);
	return step;
}

/* Builds one option packet: IHAVEOPT, option, length, data. */
static size_t opt_packet(uint8_t *buf, uint32_t opt, const void *data, uint32_t len)
{
	put_be64(buf, NBD_IHAVEOPT);
	put_be32(buf + 8, opt);
	put_be32(buf + 12, len);
	if (len)
		memcpy(buf + OPT_HDR, data, len);
	return OPT_HDR + len;
}

static enum nbd_hs_step send_opt(struct client *c, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t buf[OPT_HDR + MAX_DATA];

	cr_assert_leq(len, MAX_DATA);
	return feed(c, buf, opt_packet(buf, opt, data, len));
}

/* INFO/GO data: name, then n info requests. */
static uint32_t go_data(uint8_t *buf, const char *name, const uint16_t *info, uint16_t n)
{
	uint32_t len = (uint32_t)strlen(name);

	put_be32(buf, len);
	memcpy(buf + 4, name, len);
	put_be16(buf + 4 + len, n);
	for (uint16_t i = 0; i < n; i++)
		put_be16(buf + 6 + len + 2 * i, info[i]);
	return 6 + len + 2U * n;
}

/* LIST/SET_META_CONTEXT data: name, then nq query strings. */
static uint32_t meta_data(uint8_t *buf, const char *name, const char *const *q, uint32_t nq)
{
	uint32_t len = (uint32_t)strlen(name), pos;

	put_be32(buf, len);
	memcpy(buf + 4, name, len);
	put_be32(buf + 4 + len, nq);
	pos = 8 + len;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t qlen = (uint32_t)strlen(q[i]);

		put_be32(buf + pos, qlen);
		memcpy(buf + pos + 4, q[i], qlen);
		pos += 4 + qlen;
	}
	return pos;
}

static enum nbd_hs_step send_go(struct client *c, uint32_t opt, const char *name,
				const uint16_t *info, uint16_t n)
{
	uint8_t d[MAX_DATA];

	return send_opt(c, opt, d, go_data(d, name, info, n));
}

static enum nbd_hs_step send_meta(struct client *c, uint32_t opt, const char *name,
				  const char *const *q, uint32_t nq)
{
	uint8_t d[MAX_DATA];

	return send_opt(c, opt, d, meta_data(d, name, q, nq));
}

/* Splits the pending output into option replies, checking the magic and
 * that no partial reply is left.  Data pointers stay valid until the next
 * feed.  Returns the number of replies. */
static size_t take_replies(struct client *c, struct rep *r, size_t max)
{
	size_t n = 0, pos = 0;

	while (pos < c->out_len) {
		cr_assert_lt(n, max);
		cr_assert_geq(c->out_len - pos, REP_HDR, "partial reply header");
		cr_assert_eq(get_be64(c->out + pos), NBD_REP_MAGIC);
		r[n].opt = get_be32(c->out + pos + 8);
		r[n].type = get_be32(c->out + pos + 12);
		r[n].len = get_be32(c->out + pos + 16);
		r[n].data = c->out + pos + REP_HDR;
		pos += REP_HDR;
		cr_assert_geq(c->out_len - pos, r[n].len, "partial reply data");
		pos += r[n].len;
		n++;
	}
	c->out_len = 0;
	return n;
}

/* Asserts that the output is exactly one reply of this type. */
static void expect_one(struct client *c, uint32_t opt, uint32_t type)
{
	struct rep r[MAX_REPS];

	cr_assert_eq(take_replies(c, r, MAX_REPS), 1);
	cr_assert_eq(r[0].opt, opt);
	cr_assert_eq(r[0].type, type, "reply type %#x, expected %#x", r[0].type, type);
	if (type == NBD_REP_ACK)
		cr_assert_eq(r[0].len, 0);
}

/* Connects: checks and drops the greeting, sends the client flags. */
static void start(struct client *c, const struct nbd_hs_export *exp, uint32_t cflags,
		  enum nbd_hs_step expect)
{
	uint8_t f[4];

	c->hs = nbd_hs_new(exp);
	c->out_len = 0;
	cr_assert_not_null(c->hs);
	drain(c);
	cr_assert_eq(c->out_len, 18);
	c->out_len = 0;
	cr_assert_eq(nbd_hs_want(c->hs), 4);
	put_be32(f, cflags);
	cr_assert_eq(feed(c, f, 4), expect);
	cr_assert_eq(c->out_len, 0, "client flags are never answered");
}

static void finish(struct client *c)
{
	nbd_hs_free(c->hs);
}

static void expect_closed(struct client *c)
{
	cr_assert_eq(nbd_hs_want(c->hs), 0);
	cr_assert_str_neq(nbd_hs_error(c->hs), "", "a close must say why");
}

static struct nbd_hs_result result(struct client *c)
{
	struct nbd_hs_result res;

	cr_assert_eq(nbd_hs_want(c->hs), 0);
	nbd_hs_result(c->hs, &res);
	return res;
}

static void assert_info_export(const struct rep *r, uint32_t opt, uint64_t size, uint16_t tflags)
{
	cr_assert_eq(r->opt, opt);
	cr_assert_eq(r->type, NBD_REP_INFO);
	cr_assert_eq(r->len, 12);
	cr_assert_eq(get_be16(r->data), NBD_INFO_EXPORT);
	cr_assert_eq(get_be64(r->data + 2), size);
	cr_assert_eq(get_be16(r->data + 10), tflags, "tflags %#x, expected %#x",
		     get_be16(r->data + 10), tflags);
}

static void assert_block_size(const struct rep *r, const struct nbd_hs_export *exp)
{
	cr_assert_eq(r->type, NBD_REP_INFO);
	cr_assert_eq(r->len, 14);
	cr_assert_eq(get_be16(r->data), NBD_INFO_BLOCK_SIZE);
	cr_assert_eq(get_be32(r->data + 2), exp->min_block);
	cr_assert_eq(get_be32(r->data + 6), exp->pref_block);
	cr_assert_eq(get_be32(r->data + 10), exp->max_block);
}

/* A plain GO for the default export that must succeed. */
static void go_ok(struct client *c)
{
	struct rep r[MAX_REPS];
	size_t n;

	cr_assert_eq(send_go(c, NBD_OPT_GO, "", NULL, 0), NBD_HS_DONE);
	n = take_replies(c, r, MAX_REPS);
	cr_assert_geq(n, 2);
	cr_assert_eq(r[n - 1].type, NBD_REP_ACK);
}

Test(handshake, greeting_is_byte_exact)
{
	static const uint8_t want[18] = {
		0x4e, 0x42, 0x44, 0x4d, 0x41, 0x47, 0x49, 0x43, /* NBDMAGIC */
		0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54, /* IHAVEOPT */
		0x00, 0x03,					/* FIXED | NO_ZEROES */
	};
	struct nbd_hs *hs = nbd_hs_new(&test_export);
	const uint8_t *out;
	size_t len;

	cr_assert_not_null(hs);
	out = nbd_hs_output(hs, &len);
	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(out, want, sizeof(want));
	cr_assert_eq(nbd_hs_want(hs), 4);
	cr_assert_str_eq(nbd_hs_error(hs), "");
	nbd_hs_free(hs);
}

Test(handshake, unknown_client_flag_closes)
{
	static const uint32_t bad[] = { CF_BOTH | (1U << 2), CF_FIXED | (1U << 31), 0xffffffffU };
	struct client c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start(&c, &test_export, bad[i], NBD_HS_CLOSE);
		expect_closed(&c);
		finish(&c);
	}
}

/* Old-style newstyle clients cannot be served: nothing to haggle with. */
Test(handshake, client_without_fixed_newstyle_closes)
{
	struct client c;

	start(&c, &test_export, 0, NBD_HS_CLOSE);
	expect_closed(&c);
	finish(&c);
	start(&c, &test_export, NBD_FLAG_NO_ZEROES, NBD_HS_CLOSE);
	expect_closed(&c);
	finish(&c);
}

Test(handshake, export_name_with_no_zeroes_sends_10_bytes)
{
	struct client c;
	struct nbd_hs_result res;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "disk", 4), NBD_HS_DONE);
	cr_assert_eq(c.out_len, 10);
	cr_assert_eq(get_be64(c.out), EXPORT_SIZE);
	cr_assert_eq(get_be16(c.out + 8), nbd_export_tflags(false, false));
	res = result(&c);
	cr_assert_not(res.structured);
	cr_assert_eq(res.meta_id, 0);
	cr_assert_eq(res.tflags, nbd_export_tflags(false, false));
	finish(&c);
}

Test(handshake, export_name_without_no_zeroes_sends_134_bytes)
{
	static const uint8_t zeroes[124];
	struct client c;

	start(&c, &test_export, CF_FIXED, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "disk", 4), NBD_HS_DONE);
	cr_assert_eq(c.out_len, 134);
	cr_assert_eq(get_be64(c.out), EXPORT_SIZE);
	cr_assert_eq(get_be16(c.out + 8), nbd_export_tflags(false, false));
	cr_assert_arr_eq(c.out + 10, zeroes, sizeof(zeroes));
	finish(&c);
}

/* The empty name selects the default export. */
Test(handshake, export_name_empty_is_the_default_export)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, NULL, 0), NBD_HS_DONE);
	cr_assert_eq(c.out_len, 10);
	finish(&c);
}

Test(handshake, export_name_reports_read_only)
{
	struct nbd_hs_export ro = test_export;
	struct client c;

	ro.read_only = true;
	start(&c, &ro, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "disk", 4), NBD_HS_DONE);
	cr_assert_eq(get_be16(c.out + 8), nbd_export_tflags(true, false));
	cr_assert(get_be16(c.out + 8) & NBD_FLAG_READ_ONLY);
	cr_assert(result(&c).tflags & NBD_FLAG_READ_ONLY);
	finish(&c);
}

/* EXPORT_NAME has no error reply: the only answer is to hang up. */
Test(handshake, export_name_unknown_closes)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "nope", 4), NBD_HS_CLOSE);
	cr_assert_eq(c.out_len, 0);
	expect_closed(&c);
	finish(&c);
	/* A prefix of the right name is not the name. */
	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "dis", 3), NBD_HS_CLOSE);
	finish(&c);
}

/* An export configured without a name answers only to "". */
Test(handshake, unnamed_export_answers_only_the_empty_name)
{
	struct nbd_hs_export anon = test_export;
	struct client c;

	anon.name = NULL;
	start(&c, &anon, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, "disk", 4), NBD_HS_CLOSE);
	finish(&c);
	start(&c, &anon, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_EXPORT_NAME, NULL, 0), NBD_HS_DONE);
	finish(&c);
}

Test(handshake, abort_acks_then_closes)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_ABORT, NULL, 0), NBD_HS_CLOSE);
	expect_one(&c, NBD_OPT_ABORT, NBD_REP_ACK);
	cr_assert_eq(nbd_hs_want(c.hs), 0);
	finish(&c);
}

Test(handshake, list_names_the_export)
{
	struct client c;
	struct rep r[MAX_REPS];

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_LIST, NULL, 0), NBD_HS_MORE);
	cr_assert_eq(take_replies(&c, r, MAX_REPS), 2);
	cr_assert_eq(r[0].opt, NBD_OPT_LIST);
	cr_assert_eq(r[0].type, NBD_REP_SERVER);
	cr_assert_eq(r[0].len, 8);
	cr_assert_eq(get_be32(r[0].data), 4);
	cr_assert_arr_eq(r[0].data + 4, "disk", 4);
	cr_assert_eq(r[1].opt, NBD_OPT_LIST);
	cr_assert_eq(r[1].type, NBD_REP_ACK);
	cr_assert_eq(r[1].len, 0);
	cr_assert_eq(nbd_hs_want(c.hs), OPT_HDR);
	go_ok(&c);
	finish(&c);
}

Test(handshake, list_with_data_is_invalid_and_continues)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_LIST, "xy", 2), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_LIST, NBD_REP_ERR_INVALID);
	go_ok(&c);
	finish(&c);
}

/* Without TLS configured the answer is POLICY, never TLS_REQD. */
Test(handshake, starttls_is_refused_by_policy)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_STARTTLS, NULL, 0), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY);
	go_ok(&c);
	finish(&c);
}

Test(handshake, unknown_option_is_unsupported_and_continues)
{
	static const uint32_t opts[] = { 0, 4, NBD_OPT_EXTENDED_HEADERS, 12, 42, 0xffffffffU };
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		cr_assert_eq(send_opt(&c, opts[i], NULL, 0), NBD_HS_MORE);
		expect_one(&c, opts[i], NBD_REP_ERR_UNSUP);
		/* With data: the data is read off and the stream stays in sync. */
		cr_assert_eq(send_opt(&c, opts[i], "0123456789", 10), NBD_HS_MORE);
		expect_one(&c, opts[i], NBD_REP_ERR_UNSUP);
	}
	go_ok(&c);
	finish(&c);
}

/* INFO answers like GO but stays in negotiation. */
Test(handshake, info_replies_export_name_description_block_size)
{
	static const uint16_t req[] = { NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE };
	struct client c;
	struct rep r[MAX_REPS];
	const char *desc = test_export.description;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_INFO, "disk", req, 3), NBD_HS_MORE);
	cr_assert_eq(take_replies(&c, r, MAX_REPS), 5);
	assert_info_export(&r[0], NBD_OPT_INFO, EXPORT_SIZE, nbd_export_tflags(false, false));
	cr_assert_eq(r[1].type, NBD_REP_INFO);
	cr_assert_eq(r[1].len, 2 + 4);
	cr_assert_eq(get_be16(r[1].data), NBD_INFO_NAME);
	cr_assert_arr_eq(r[1].data + 2, "disk", 4);
	cr_assert_eq(r[2].type, NBD_REP_INFO);
	cr_assert_eq(r[2].len, 2 + strlen(desc));
	cr_assert_eq(get_be16(r[2].data), NBD_INFO_DESCRIPTION);
	cr_assert_arr_eq(r[2].data + 2, desc, strlen(desc));
	assert_block_size(&r[3], &test_export);
	cr_assert_eq(r[4].opt, NBD_OPT_INFO);
	cr_assert_eq(r[4].type, NBD_REP_ACK);
	cr_assert_eq(r[4].len, 0);
	cr_assert_eq(nbd_hs_want(c.hs), OPT_HDR);
	go_ok(&c);
	finish(&c);
}

/* INFO_EXPORT is mandatory and comes before the ACK, even unrequested;
 * after GO's ACK there is no padding, NO_ZEROES or not. */
Test(handshake, go_without_requests_sends_export_then_ack)
{
	struct client c;
	struct rep r[MAX_REPS];
	size_t n;

	start(&c, &test_export, CF_FIXED, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_GO, "disk", NULL, 0), NBD_HS_DONE);
	n = take_replies(&c, r, MAX_REPS);
	cr_assert_geq(n, 2);
	assert_info_export(&r[0], NBD_OPT_GO, EXPORT_SIZE, nbd_export_tflags(false, false));
	for (size_t i = 1; i < n - 1; i++)
		cr_assert_eq(r[i].type, NBD_REP_INFO);
	cr_assert_eq(r[n - 1].opt, NBD_OPT_GO);
	cr_assert_eq(r[n - 1].type, NBD_REP_ACK);
	cr_assert_eq(nbd_hs_want(c.hs), 0);
	finish(&c);
}

Test(handshake, go_answers_each_info_request_once)
{
	static const uint16_t req[] = {
		NBD_INFO_NAME, NBD_INFO_NAME, NBD_INFO_DESCRIPTION, 0x7777, NBD_INFO_DESCRIPTION,
	};
	struct client c;
	struct rep r[MAX_REPS];
	int names = 0, descs = 0, exports = 0;
	size_t n;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_GO, "disk", req, 5), NBD_HS_DONE);
	n = take_replies(&c, r, MAX_REPS);
	for (size_t i = 0; i < n - 1; i++) {
		cr_assert_eq(r[i].type, NBD_REP_INFO);
		names += get_be16(r[i].data) == NBD_INFO_NAME;
		descs += get_be16(r[i].data) == NBD_INFO_DESCRIPTION;
		exports += get_be16(r[i].data) == NBD_INFO_EXPORT;
	}
	cr_assert(names == 1 && descs == 1 && exports == 1);
	cr_assert_eq(r[n - 1].type, NBD_REP_ACK);
	finish(&c);
}

/* No description configured: nothing to say, and no empty string. */
Test(handshake, go_without_description_sends_none)
{
	static const uint16_t req[] = { NBD_INFO_DESCRIPTION };
	struct nbd_hs_export e = test_export;
	struct client c;
	struct rep r[MAX_REPS];
	size_t n;

	e.description = NULL;
	start(&c, &e, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_GO, "disk", req, 1), NBD_HS_DONE);
	n = take_replies(&c, r, MAX_REPS);
	for (size_t i = 0; i < n - 1; i++)
		cr_assert_neq(get_be16(r[i].data), NBD_INFO_DESCRIPTION);
	finish(&c);
}

Test(handshake, go_block_size_reflects_the_export)
{
	static const uint16_t req[] = { NBD_INFO_BLOCK_SIZE };
	struct nbd_hs_export e = test_export;
	struct client c;
	struct rep r[MAX_REPS];
	size_t n;

	e.min_block = 512;	/* what --direct asks for */
	e.pref_block = 65536;
	e.max_block = 1U << 20;
	start(&c, &e, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_GO, "disk", req, 1), NBD_HS_DONE);
	n = take_replies(&c, r, MAX_REPS);
	cr_assert_eq(n, 3);
	assert_block_size(&r[1], &e);
	finish(&c);
}

Test(handshake, go_unknown_export_is_err_unknown_and_continues)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_GO, "other", NULL, 0), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN);
	cr_assert_eq(send_go(&c, NBD_OPT_INFO, "other", NULL, 0), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_INFO, NBD_REP_ERR_UNKNOWN);
	go_ok(&c);
	finish(&c);
}

/* Sends a GO whose data is d with its length fields lying, checks the
 * machine says INVALID and keeps negotiating. */
static void expect_malformed_go(struct client *c, const uint8_t *d, uint32_t len)
{
	cr_assert_eq(send_opt(c, NBD_OPT_GO, d, len), NBD_HS_MORE);
	expect_one(c, NBD_OPT_GO, NBD_REP_ERR_INVALID);
	cr_assert_eq(nbd_hs_want(c->hs), OPT_HDR);
}

Test(handshake, malformed_go_is_invalid_and_negotiation_continues)
{
	static const uint16_t req[] = { NBD_INFO_NAME };
	struct client c;
	uint8_t d[64];
	uint32_t len;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	expect_malformed_go(&c, NULL, 0);		/* no data at all */
	len = go_data(d, "disk", req, 1);
	expect_malformed_go(&c, d, len - 1);		/* last request cut */
	expect_malformed_go(&c, d, len - 2);		/* one request missing */
	expect_malformed_go(&c, d, 5);			/* name cut */
	d[len] = 0;
	expect_malformed_go(&c, d, len + 1);		/* trailing byte */
	put_be32(d, 0xffffffffU);
	expect_malformed_go(&c, d, len);		/* name length absurd */
	len = go_data(d, "disk", NULL, 0);
	put_be16(d + 8, 3);
	expect_malformed_go(&c, d, len);		/* request count lies */
	go_ok(&c);
	finish(&c);
}

Test(handshake, structured_reply_acks_and_adds_df)
{
	struct client c;
	struct nbd_hs_result res;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_STRUCTURED_REPLY, NULL, 0), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK);
	go_ok(&c);
	res = result(&c);
	cr_assert(res.structured);
	cr_assert_eq(res.meta_id, 0);
	cr_assert(res.tflags & NBD_FLAG_SEND_DF);
	cr_assert_eq(res.tflags, nbd_export_tflags(false, true));
	finish(&c);
}

/* The kernel never asks for structured replies: no DF for it. */
Test(handshake, no_df_without_structured_replies)
{
	struct client c;
	struct rep r[MAX_REPS];
	struct nbd_hs_result res;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_go(&c, NBD_OPT_INFO, "", NULL, 0), NBD_HS_MORE);
	take_replies(&c, r, MAX_REPS);
	cr_assert_eq(get_be16(r[0].data + 10) & NBD_FLAG_SEND_DF, 0);
	/* Negotiated later, the next INFO reflects it. */
	cr_assert_eq(send_opt(&c, NBD_OPT_STRUCTURED_REPLY, NULL, 0), NBD_HS_MORE);
	c.out_len = 0;
	cr_assert_eq(send_go(&c, NBD_OPT_INFO, "", NULL, 0), NBD_HS_MORE);
	take_replies(&c, r, MAX_REPS);
	cr_assert_neq(get_be16(r[0].data + 10) & NBD_FLAG_SEND_DF, 0);
	finish(&c);

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	go_ok(&c);
	res = result(&c);
	cr_assert_not(res.structured);
	cr_assert_eq(res.tflags & NBD_FLAG_SEND_DF, 0);
	finish(&c);
}

Test(handshake, structured_reply_with_data_is_invalid)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(&c, NBD_OPT_STRUCTURED_REPLY, "x", 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID);
	go_ok(&c);
	cr_assert_not(result(&c).structured);
	finish(&c);
}

/* Asserts the output is one META_CONTEXT for base:allocation then ACK;
 * returns the context id. */
static uint32_t expect_alloc_ctx(struct client *c, uint32_t opt)
{
	struct rep r[MAX_REPS];

	cr_assert_eq(take_replies(c, r, MAX_REPS), 2);
	cr_assert_eq(r[0].opt, opt);
	cr_assert_eq(r[0].type, NBD_REP_META_CONTEXT);
	cr_assert_eq(r[0].len, 4 + strlen(ALLOC_CTX));
	cr_assert_arr_eq(r[0].data + 4, ALLOC_CTX, strlen(ALLOC_CTX));
	cr_assert_eq(r[1].opt, opt);
	cr_assert_eq(r[1].type, NBD_REP_ACK);
	return get_be32(r[0].data);
}

static void start_structured(struct client *c)
{
	start(c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_opt(c, NBD_OPT_STRUCTURED_REPLY, NULL, 0), NBD_HS_MORE);
	expect_one(c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK);
}

static const char *const alloc_q[] = { ALLOC_CTX };

Test(handshake, set_meta_context_selects_base_allocation)
{
	struct client c;
	struct nbd_hs_result res;
	uint32_t id;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "disk", alloc_q, 1), NBD_HS_MORE);
	id = expect_alloc_ctx(&c, NBD_OPT_SET_META_CONTEXT);
	cr_assert_neq(id, 0);
	go_ok(&c);
	res = result(&c);
	cr_assert(res.structured);
	cr_assert_eq(res.meta_id, id);
	finish(&c);
}

Test(handshake, set_meta_context_among_unknown_queries)
{
	static const char *const q[] = { "qemu:dirty-bitmap:x", ALLOC_CTX, "base:" };
	struct client c;
	uint32_t id;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "", q, 3), NBD_HS_MORE);
	id = expect_alloc_ctx(&c, NBD_OPT_SET_META_CONTEXT);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, id);
	finish(&c);
}

/* Unknown contexts are not an error: the reply just names none. */
Test(handshake, set_meta_context_unknown_selects_nothing)
{
	static const char *const q[] = { "foo:bar", "base:" };
	struct client c;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "disk", q, 2), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, 0);
	finish(&c);
}

/* Each SET replaces the previous selection, including with nothing. */
Test(handshake, set_meta_context_again_replaces_selection)
{
	struct client c;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "disk", alloc_q, 1), NBD_HS_MORE);
	expect_alloc_ctx(&c, NBD_OPT_SET_META_CONTEXT);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "disk", NULL, 0), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ACK);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, 0);
	finish(&c);
}

Test(handshake, meta_context_needs_structured_replies_first)
{
	struct client c;
	struct nbd_hs_result res;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "disk", alloc_q, 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
	cr_assert_eq(send_meta(&c, NBD_OPT_LIST_META_CONTEXT, "disk", alloc_q, 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_INVALID);
	go_ok(&c);
	res = result(&c);
	cr_assert_not(res.structured);
	cr_assert_eq(res.meta_id, 0);
	finish(&c);
}

/* LIST answers queries but selects nothing for transmission. */
Test(handshake, list_meta_context)
{
	static const char *const base[] = { "base:" };
	static const char *const other[] = { "qemu:dirty-bitmap:x" };
	struct client c;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_LIST_META_CONTEXT, "disk", NULL, 0), NBD_HS_MORE);
	expect_alloc_ctx(&c, NBD_OPT_LIST_META_CONTEXT);
	cr_assert_eq(send_meta(&c, NBD_OPT_LIST_META_CONTEXT, "disk", base, 1), NBD_HS_MORE);
	expect_alloc_ctx(&c, NBD_OPT_LIST_META_CONTEXT);
	cr_assert_eq(send_meta(&c, NBD_OPT_LIST_META_CONTEXT, "disk", alloc_q, 1), NBD_HS_MORE);
	expect_alloc_ctx(&c, NBD_OPT_LIST_META_CONTEXT);
	cr_assert_eq(send_meta(&c, NBD_OPT_LIST_META_CONTEXT, "disk", other, 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ACK);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, 0);
	finish(&c);
}

Test(handshake, meta_context_unknown_export)
{
	struct client c;

	start_structured(&c);
	cr_assert_eq(send_meta(&c, NBD_OPT_SET_META_CONTEXT, "nope", alloc_q, 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_UNKNOWN);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, 0);
	finish(&c);
}

Test(handshake, meta_context_malformed_is_invalid)
{
	struct client c;
	uint8_t d[MAX_DATA];
	uint32_t len;

	start_structured(&c);
	len = meta_data(d, "disk", alloc_q, 1);
	cr_assert_eq(send_opt(&c, NBD_OPT_SET_META_CONTEXT, d, len - 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
	cr_assert_eq(send_opt(&c, NBD_OPT_SET_META_CONTEXT, d, len + 1), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
	put_be32(d + 8, 1000);		/* query count lies */
	cr_assert_eq(send_opt(&c, NBD_OPT_SET_META_CONTEXT, d, len), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_INVALID);
	cr_assert_eq(send_opt(&c, NBD_OPT_LIST_META_CONTEXT, d, 3), NBD_HS_MORE);
	expect_one(&c, NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_INVALID);
	go_ok(&c);
	cr_assert_eq(result(&c).meta_id, 0);
	finish(&c);
}

/* A wrong magic means we are not talking to an NBD client any more. */
Test(handshake, bad_option_magic_closes)
{
	struct client c;
	uint8_t p[OPT_HDR];

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	opt_packet(p, NBD_OPT_GO, NULL, 0);
	p[0] ^= 0x80;
	cr_assert_eq(feed(&c, p, sizeof(p)), NBD_HS_CLOSE);
	cr_assert_eq(c.out_len, 0);
	expect_closed(&c);
	finish(&c);
}

/* Closes straight after the header: the data is never buffered. */
Test(handshake, huge_option_length_closes)
{
	static const uint32_t lens[] = { NBD_HS_MAX_OPTION + 1, 1U << 31, 0xffffffffU };
	struct client c;
	uint8_t p[OPT_HDR];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
		opt_packet(p, NBD_OPT_GO, NULL, 0);
		put_be32(p + 12, lens[i]);
		cr_assert_eq(feed(&c, p, sizeof(p)), NBD_HS_CLOSE);
		expect_closed(&c);
		finish(&c);
	}
}

/* The largest option accepted is read in one piece and answered. */
Test(handshake, option_of_max_length_is_read)
{
	static uint8_t big[OPT_HDR + NBD_HS_MAX_OPTION];
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	opt_packet(big, 4242, NULL, 0);
	put_be32(big + 12, NBD_HS_MAX_OPTION);
	cr_assert_eq(nbd_hs_feed(c.hs, big, OPT_HDR), NBD_HS_MORE);
	cr_assert_eq(nbd_hs_want(c.hs), NBD_HS_MAX_OPTION);
	cr_assert_eq(nbd_hs_feed(c.hs, big + OPT_HDR, NBD_HS_MAX_OPTION), NBD_HS_MORE);
	drain(&c);
	expect_one(&c, 4242, NBD_REP_ERR_UNSUP);
	go_ok(&c);
	finish(&c);
}

Test(handshake, feeding_the_wrong_length_closes)
{
	struct client c;
	uint8_t p[OPT_HDR + 1] = { 0 };

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	cr_assert_eq(nbd_hs_feed(c.hs, p, OPT_HDR + 1), NBD_HS_CLOSE);
	expect_closed(&c);
	finish(&c);
}

/* Replies pile up in order until the caller consumes them, and a
 * partial consume keeps the rest. */
Test(handshake, output_accumulates_until_consumed)
{
	struct client c;
	uint8_t p[2 * OPT_HDR];
	const uint8_t *out;
	size_t len, first;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	opt_packet(p, NBD_OPT_STARTTLS, NULL, 0);
	opt_packet(p + OPT_HDR, NBD_OPT_LIST, NULL, 0);
	cr_assert_eq(nbd_hs_feed(c.hs, p, OPT_HDR), NBD_HS_MORE);
	out = nbd_hs_output(c.hs, &first);
	cr_assert_gt(first, REP_HDR);
	cr_assert_eq(nbd_hs_feed(c.hs, p + OPT_HDR, OPT_HDR), NBD_HS_MORE);
	out = nbd_hs_output(c.hs, &len);
	cr_assert_gt(len, first);
	cr_assert_eq(get_be32(out + 8), NBD_OPT_STARTTLS);
	cr_assert_eq(get_be32(out + first + 8), NBD_OPT_LIST);
	nbd_hs_consume(c.hs, 5);
	out = nbd_hs_output(c.hs, &len);
	cr_assert_eq(get_be32(out + first - 5 + 8), NBD_OPT_LIST);
	nbd_hs_consume(c.hs, len);
	nbd_hs_output(c.hs, &len);
	cr_assert_eq(len, 0);
	finish(&c);
}

/* A client may haggle for as long as it likes when it reads the replies. */
Test(handshake, long_negotiation_stays_bounded)
{
	struct client c;

	start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
	for (int i = 0; i < 5000; i++) {
		cr_assert_eq(send_opt(&c, NBD_OPT_LIST, NULL, 0), NBD_HS_MORE);
		c.out_len = 0;
	}
	go_ok(&c);
	finish(&c);
}

/* A caller that never drains output must get a close, never a write past
 * the machine's buffer, and what it has to send must be whole replies.
 * The UNSUP replies before shift where the buffer boundary falls inside
 * the STARTTLS replies (header and message are emitted separately). */
Test(handshake, undrained_output_closes_instead_of_overflowing)
{
	static struct rep r[4096];
	struct client c;
	uint8_t unsup[OPT_HDR], tls[OPT_HDR];
	enum nbd_hs_step step;

	opt_packet(unsup, 4242, NULL, 0);
	opt_packet(tls, NBD_OPT_STARTTLS, NULL, 0);
	for (int shift = 0; shift < 64; shift++) {
		start(&c, &test_export, CF_BOTH, NBD_HS_MORE);
		for (int i = 0; i < shift; i++)
			cr_assert_eq(nbd_hs_feed(c.hs, unsup, OPT_HDR), NBD_HS_MORE);
		step = NBD_HS_MORE;
		for (int i = 0; i < 100000 && step == NBD_HS_MORE; i++)
			step = nbd_hs_feed(c.hs, tls, OPT_HDR);
		cr_assert_eq(step, NBD_HS_CLOSE);
		expect_closed(&c);
		drain(&c);
		take_replies(&c, r, 4096);
		finish(&c);
	}
}
