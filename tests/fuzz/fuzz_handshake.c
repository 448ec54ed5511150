/* libFuzzer harness for the handshake machine, then request validation.
 *
 * The input is the client's byte stream.  The harness feeds it the way the
 * event loop does (nbd_hs_want() bytes at a time, output drained after each
 * feed) and checks what the machine says against what it was fed: how many
 * bytes it wants next, and that every option gets whole replies ending in
 * exactly one final reply.  After NBD_HS_DONE the rest of the input is read
 * as transmission requests, judged by oracle.h, payloads skipped. */
#include <stddef.h>
#include <stdint.h>

#include "nbd/handshake.h"
#include "oracle.h"

#define OPT_HDR		16
#define REP_HDR		20
#define GREETING	18

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct nbd_hs_export fuzz_export = {
	.name = "blkrep",
	.description = "fuzz export",
	.size = 64ULL << 20,
	.read_only = false,
	.min_block = 1,
	.pref_block = 4096,
	.max_block = 32U << 20,
};

enum expect { EXP_FLAGS, EXP_OPT_HDR, EXP_OPT_DATA };

/* What the harness knows independently of the machine. */
struct driver {
	struct nbd_hs *hs;
	enum expect next;
	bool no_zeroes;
	uint32_t opt;		/* option whose header was fed last */
	uint32_t opt_len;
};

static size_t expected_want(const struct driver *d)
{
	switch (d->next) {
	case EXP_FLAGS:
		return 4;
	case EXP_OPT_HDR:
		return OPT_HDR;
	default:
		return d->opt_len;
	}
}

static bool is_final(uint32_t type)
{
	return type == NBD_REP_ACK || (type & (1U << 31));
}

static bool is_known_option(uint32_t opt)
{
	return opt == NBD_OPT_EXPORT_NAME || opt == NBD_OPT_ABORT || opt == NBD_OPT_LIST ||
	       opt == NBD_OPT_STARTTLS || opt == NBD_OPT_INFO || opt == NBD_OPT_GO ||
	       opt == NBD_OPT_STRUCTURED_REPLY || opt == NBD_OPT_LIST_META_CONTEXT ||
	       opt == NBD_OPT_SET_META_CONTEXT;
}

/* Whole replies to d->opt, the last one final and only the last.  Returns
 * that final type, or 0 when there is no output. */
static uint32_t check_replies(const struct driver *d, const uint8_t *out, size_t len)
{
	uint32_t type = 0, first = 0;
	size_t pos = 0;

	while (pos < len) {
		FUZZ_CHECK(type == 0 || !is_final(type));
		FUZZ_CHECK(len - pos >= REP_HDR);
		FUZZ_CHECK(get_be64(out + pos) == NBD_REP_MAGIC);
		FUZZ_CHECK(get_be32(out + pos + 8) == d->opt);
		type = get_be32(out + pos + 12);
		if (!first)
			first = type;
		pos += REP_HDR;
		FUZZ_CHECK(len - pos >= get_be32(out + pos - 4));
		pos += get_be32(out + pos - 4);
	}
	FUZZ_CHECK(type == 0 || is_final(type));
	/* A successful INFO/GO opens with INFO_EXPORT. */
	if ((d->opt == NBD_OPT_INFO || d->opt == NBD_OPT_GO) && type == NBD_REP_ACK)
		FUZZ_CHECK(first == NBD_REP_INFO && get_be16(out + REP_HDR) == NBD_INFO_EXPORT);
	return type;
}

/* The answer an option got, judged by what the spec allows for it. */
static void check_option_answer(const struct driver *d, enum nbd_hs_step step,
				const uint8_t *out, size_t len)
{
	uint32_t final;

	if (d->opt == NBD_OPT_EXPORT_NAME) {
		FUZZ_CHECK(step != NBD_HS_MORE);
		FUZZ_CHECK(step == NBD_HS_CLOSE ? len == 0 : len == (d->no_zeroes ? 10u : 134u));
		return;
	}
	final = check_replies(d, out, len);
	if (step == NBD_HS_CLOSE) {
		FUZZ_CHECK(d->opt == NBD_OPT_ABORT && final == NBD_REP_ACK);
		return;
	}
	FUZZ_CHECK(final != 0);		/* every option is answered */
	if (step == NBD_HS_DONE)
		FUZZ_CHECK(d->opt == NBD_OPT_GO && final == NBD_REP_ACK);
	if (d->opt == NBD_OPT_STARTTLS)
		FUZZ_CHECK(final == NBD_REP_ERR_POLICY || final == NBD_REP_ERR_INVALID);
	if (!is_known_option(d->opt))
		FUZZ_CHECK(final == NBD_REP_ERR_UNSUP);
}

/* Judges one feed of bytes `in` that the driver expected as d->next. */
static void after_feed(struct driver *d, const uint8_t *in, enum nbd_hs_step step)
{
	size_t len;
	const uint8_t *out = nbd_hs_output(d->hs, &len);
	bool option_done = true;

	if (d->next == EXP_FLAGS) {
		FUZZ_CHECK(len == 0);
		d->no_zeroes = get_be32(in) & NBD_FLAG_NO_ZEROES;
		option_done = false;
	} else if (d->next == EXP_OPT_HDR) {
		/* Bad magic and oversized options close before any answer. */
		if (get_be64(in) != NBD_IHAVEOPT || get_be32(in + 12) > NBD_HS_MAX_OPTION) {
			FUZZ_CHECK(step == NBD_HS_CLOSE && len == 0);
			option_done = false;
		} else {
			d->opt = get_be32(in + 8);
			d->opt_len = get_be32(in + 12);
			option_done = d->opt_len == 0;
		}
	}
	if (option_done)
		check_option_answer(d, step, out, len);
	else if (step == NBD_HS_MORE)
		FUZZ_CHECK(len == 0);
	nbd_hs_consume(d->hs, len);
	if (d->next == EXP_OPT_HDR && !option_done)
		d->next = EXP_OPT_DATA;
	else
		d->next = EXP_OPT_HDR;
}

static void check_result(const struct nbd_hs *hs)
{
	struct nbd_hs_result res;

	nbd_hs_result(hs, &res);
	FUZZ_CHECK(res.tflags == nbd_export_tflags(fuzz_export.read_only, res.structured));
	FUZZ_CHECK(!!(res.tflags & NBD_FLAG_SEND_DF) == res.structured);
	FUZZ_CHECK(res.meta_id == 0 || res.structured);
}

/* Transmission: requests until the input ends or the server would stop. */
static void fuzz_requests(const struct nbd_hs *hs, const uint8_t *in, size_t len)
{
	struct nbd_hs_result res;
	struct nbd_session s;
	size_t pos = 0;

	nbd_hs_result(hs, &res);
	s.size = fuzz_export.size;
	s.tflags = res.tflags;
	s.structured = res.structured;
	s.meta_id = res.meta_id;
	while (len - pos >= NBD_REQUEST_SIZE) {
		struct nbd_request r;
		struct nbd_check c;

		if (nbd_request_decode(in + pos, &r) != 0)
			return;		/* framing lost: the server drops */
		oracle_roundtrip(in + pos, &r);
		c = oracle_check(&r, &s);
		if (r.type == NBD_CMD_DISC || c.verdict == NBD_V_DISCONNECT)
			return;
		pos += NBD_REQUEST_SIZE;
		if (c.payload > len - pos)
			return;
		pos += c.payload;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct driver d = { .next = EXP_FLAGS };
	enum nbd_hs_step step = NBD_HS_MORE;
	const uint8_t *out;
	size_t pos = 0, len;

	d.hs = nbd_hs_new(&fuzz_export);
	FUZZ_CHECK(d.hs != NULL);
	out = nbd_hs_output(d.hs, &len);
	FUZZ_CHECK(len == GREETING && get_be64(out) == NBD_MAGIC);
	nbd_hs_consume(d.hs, len);

	while (step == NBD_HS_MORE) {
		size_t want = nbd_hs_want(d.hs);

		FUZZ_CHECK(want > 0 && want == expected_want(&d));
		if (want > size - pos)
			break;
		step = nbd_hs_feed(d.hs, data + pos, want);
		after_feed(&d, data + pos, step);
		pos += want;
	}
	if (step != NBD_HS_MORE)
		FUZZ_CHECK(nbd_hs_want(d.hs) == 0 && nbd_hs_error(d.hs) != NULL);
	if (step == NBD_HS_DONE) {
		check_result(d.hs);
		fuzz_requests(d.hs, data + pos, size - pos);
	}
	nbd_hs_free(d.hs);
	return 0;
}
