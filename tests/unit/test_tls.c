/* Unit tests for proto/tls: TLS 1.3's key schedule against RFC 8448's
 * trace, and two ends of a PSK connection joined in memory: what a
 * tampered stream (a flipped byte, a replayed or dropped record, a cut)
 * gives the receiver: an error, never bytes. */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/tls.h"
#include "proto/tlsrec.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";

static struct tls_ctx *ctx(const char *resource, const char *sec)
{
	struct tls_cfg c = { .resource = resource,
			     .secret = (const uint8_t *)sec,
			     .secret_len = strlen(sec) };
	char err[256];
	struct tls_ctx *t = tls_ctx_new(&c, err, sizeof(err));

	cr_assert_not_null(t, "%s", err);
	return t;
}

/* Moves every byte one side wrote to the other. */
static void pump(struct tls *from, struct tls *to)
{
	uint8_t buf[65536];
	size_t n;

	while ((n = tls_out_take(from, buf, sizeof(buf))) > 0)
		cr_assert_eq(tls_feed(to, buf, n), 0);
}

/* Runs both handshakes to their end; returns each side's result. */
static void handshake(struct tls *c, struct tls *s, enum tls_step *rc, enum tls_step *rs)
{
	*rc = *rs = TLS_STEP_MORE;
	for (int i = 0; i < 10 && (*rc == TLS_STEP_MORE || *rs == TLS_STEP_MORE); i++) {
		if (*rc == TLS_STEP_MORE)
			*rc = tls_handshake(c);
		pump(c, s);
		if (*rs == TLS_STEP_MORE)
			*rs = tls_handshake(s);
		pump(s, c);
	}
}

struct pair {
	struct tls_ctx *cc, *sc;
	struct tls *c, *s;
};

static void connect_pair(struct pair *p, const char *csecret, const char *ssecret)
{
	enum tls_step rc, rs;

	p->cc = ctx("r0", csecret);
	p->sc = ctx("r0", ssecret);
	p->c = tls_new(p->cc, true, "beta");
	p->s = tls_new(p->sc, false, "alpha");
	cr_assert(p->c && p->s);
	handshake(p->c, p->s, &rc, &rs);
	if (strcmp(csecret, ssecret) == 0) {
		cr_assert_eq(rc, TLS_STEP_DONE, "client: %s", tls_error(p->c));
		cr_assert_eq(rs, TLS_STEP_DONE, "server: %s", tls_error(p->s));
	}
}

static void free_pair(struct pair *p)
{
	tls_free(p->c);
	tls_free(p->s);
	tls_ctx_free(p->cc);
	tls_ctx_free(p->sc);
}

Test(tls, key_schedule_matches_rfc8448)
{
	/* RFC 8448, section 3: the server's handshake traffic secret and
	 * the write key and IV expanded from it. */
	static const uint8_t sec[32] = {
		0xb6, 0x7b, 0x7d, 0x69, 0x0c, 0xc1, 0x6c, 0x4e, 0x75, 0xe5, 0x42,
		0x13, 0xcb, 0x2d, 0x37, 0xb4, 0xe9, 0xc9, 0x12, 0xbc, 0xde, 0xd9,
		0x10, 0x5d, 0x42, 0xbe, 0xfd, 0x59, 0xd3, 0x91, 0xad, 0x38,
	};
	static const uint8_t key[16] = { 0x3f, 0xce, 0x51, 0x60, 0x09, 0xc2, 0x17, 0x27,
					 0xd0, 0xf2, 0xe4, 0xe8, 0x6e, 0xe4, 0x03, 0xbc };
	static const uint8_t iv[12] = { 0x5d, 0x31, 0x3e, 0xb2, 0x67, 0x12,
					0x76, 0xee, 0x13, 0x00, 0x0b, 0x30 };
	uint8_t out[16];

	cr_assert_eq(tls_expand_label(sec, sizeof(sec), "key", out, 16), 0);
	cr_assert_arr_eq(out, key, 16);
	cr_assert_eq(tls_expand_label(sec, sizeof(sec), "iv", out, 12), 0);
	cr_assert_arr_eq(out, iv, 12);
}

Test(tls, psk_handshake_and_data_both_ways)
{
	struct pair p;
	uint8_t big[100000], got[100000];
	size_t have = 0;
	ssize_t n;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 1);
	connect_pair(&p, (const char *)secret, (const char *)secret);
	cr_assert_eq(tls_write(p.c, big, sizeof(big)), 0);
	pump(p.c, p.s);
	while (have < sizeof(got) && (n = tls_read(p.s, got + have, sizeof(got) - have)) > 0)
		have += (size_t)n;
	cr_assert_eq(have, sizeof(big));
	cr_assert_arr_eq(got, big, sizeof(big));
	cr_assert_eq(tls_write(p.s, "pong", 4), 0);
	pump(p.s, p.c);
	cr_assert_eq(tls_read(p.c, got, sizeof(got)), 4);
	cr_assert_eq(memcmp(got, "pong", 4), 0);
	cr_assert_eq(tls_read(p.c, got, sizeof(got)), 0, "nothing more");
	cr_assert_gt(tls_blocks_sent(p.c), sizeof(big) / 16);
	free_pair(&p);
}

Test(tls, different_secrets_fail_on_both_sides)
{
	struct pair p;
	enum tls_step rc, rs;

	p.cc = ctx("r0", (const char *)secret);
	p.sc = ctx("r0", "another secret, 32 bytes long....");
	p.c = tls_new(p.cc, true, "beta");
	p.s = tls_new(p.sc, false, "alpha");
	handshake(p.c, p.s, &rc, &rs);
	cr_assert_eq(rs, TLS_STEP_FAIL);
	cr_assert(strstr(tls_error(p.s), "secret"), "server: %s", tls_error(p.s));
	cr_assert_eq(rc, TLS_STEP_FAIL);
	cr_assert(strstr(tls_error(p.c), "authentication failed"), "client: %s", tls_error(p.c));
	free_pair(&p);
}

/* The PSK identity says nothing of the resource or nodes, and depends on
 * the resource as well as the secret. */
Test(tls, psk_identity_is_opaque_and_per_resource)
{
	struct tls_ctx *a = ctx("payroll", (const char *)secret),
		       *b = ctx("billing", (const char *)secret);
	struct pair p;
	uint8_t hello[4096];
	size_t n;

	p.cc = a;
	p.c = tls_new(a, true, "beta");
	cr_assert_eq(tls_handshake(p.c), TLS_STEP_MORE);
	n = tls_out_take(p.c, hello, sizeof(hello));
	cr_assert_gt(n, 100);
	cr_assert_null(memmem(hello, n, "payroll", 7), "the resource name is in the ClientHello");
	cr_assert_null(memmem(hello, n, "beta", 4), "the peer's name is in the ClientHello");
	cr_assert_null(memmem(hello, n, secret, 16), "the secret is in the ClientHello");
	cr_assert(!tls_psk_identity_ok(b, (const uint8_t *)"0123", 4));
	tls_free(p.c);
	tls_ctx_free(a);
	tls_ctx_free(b);
}

/* A mesh's pair key (tls_ctx_pair()): the same whichever node names the
 * pair first, another for every other pair and for the resource alone, and
 * no node name in the ClientHello. */
static enum tls_step paired_server(const char *cme, const char *cpeer, const char *sme,
				   const char *speer)
{
	struct pair p;
	enum tls_step rc, rs;
	uint8_t hello[4096];
	size_t n;

	p.cc = ctx("r0", (const char *)secret);
	p.sc = ctx("r0", (const char *)secret);
	cr_assert_eq(tls_ctx_pair(p.sc, sme, speer), 0);
	if (cme)
		cr_assert_eq(tls_ctx_pair(p.cc, cme, cpeer), 0);
	p.c = tls_new(p.cc, true, "x");
	p.s = tls_new(p.sc, false, "x");
	cr_assert_eq(tls_handshake(p.c), TLS_STEP_MORE);
	n = tls_out_take(p.c, hello, sizeof(hello));
	cr_assert(cme == NULL || (!memmem(hello, n, cme, strlen(cme)) &&
				  !memmem(hello, n, cpeer, strlen(cpeer))),
		  "a node name is in the ClientHello");
	cr_assert_eq(tls_feed(p.s, hello, n), 0);
	handshake(p.c, p.s, &rc, &rs);
	free_pair(&p);
	return rs;
}

Test(tls, pair_keys_are_per_pair_and_either_way_round)
{
	cr_assert_eq(paired_server("gamma", "alpha", "alpha", "gamma"), TLS_STEP_DONE);
	cr_assert_eq(paired_server("alpha", "beta", "gamma", "alpha"), TLS_STEP_FAIL);
	cr_assert_eq(paired_server(NULL, NULL, "gamma", "alpha"), TLS_STEP_FAIL);
}

/* One record from the client, as it went on the wire. */
static size_t record(struct pair *p, const char *text, uint8_t *buf, size_t size)
{
	cr_assert_eq(tls_write(p->c, text, strlen(text)), 0);
	return tls_out_take(p->c, buf, size);
}

Test(tls, a_flipped_byte_ends_the_stream)
{
	struct pair p;
	uint8_t rec[512], got[64];
	size_t n;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	n = record(&p, "WRITE 4096 at 0", rec, sizeof(rec));
	rec[n / 2] ^= 0x01;
	cr_assert_eq(tls_feed(p.s, rec, n), 0);
	cr_assert_eq(tls_read(p.s, got, sizeof(got)), -1);
	cr_assert(strstr(tls_error(p.s), "TLS"), "%s", tls_error(p.s));
	free_pair(&p);
}

Test(tls, a_replayed_record_ends_the_stream)
{
	struct pair p;
	uint8_t rec[512], got[64];
	size_t n;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	n = record(&p, "ACK 7", rec, sizeof(rec));
	cr_assert_eq(tls_feed(p.s, rec, n), 0);
	cr_assert_eq(tls_read(p.s, got, sizeof(got)), 5);
	cr_assert_eq(tls_feed(p.s, rec, n), 0); /* the same record again */
	cr_assert_eq(tls_read(p.s, got, sizeof(got)), -1);
	free_pair(&p);
}

Test(tls, a_dropped_record_ends_the_stream)
{
	struct pair p;
	uint8_t rec1[512], rec2[512], got[64];
	size_t n2;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	(void)record(&p, "WRITE 1", rec1, sizeof(rec1));
	n2 = record(&p, "FLUSH 2", rec2, sizeof(rec2));
	cr_assert_eq(tls_feed(p.s, rec2, n2), 0); /* the first never arrives */
	cr_assert_eq(tls_read(p.s, got, sizeof(got)), -1);
	free_pair(&p);
}

Test(tls, a_cut_record_gives_nothing)
{
	struct pair p;
	uint8_t rec[512], got[64];
	size_t n;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	n = record(&p, "WRITE 4096 at 0", rec, sizeof(rec));
	cr_assert_eq(tls_feed(p.s, rec, n - 1), 0);
	cr_assert_eq(tls_read(p.s, got, sizeof(got)), 0, "no bytes from half a record");
	free_pair(&p);
}

Test(tls, record_headers)
{
	const char *bad = NULL;
	static const uint8_t ok[5] = { 23, 3, 3, 0x40, 0x11 }, big[5] = { 23, 3, 3, 0x41, 0x01 },
			     plain[5] = { 'B', 'L', 'K', 'R', 0 };

	cr_assert_eq(tls_record_len(ok, &bad), 0x4011);
	cr_assert_eq(tls_record_len(big, &bad), -1);
	cr_assert(strstr(bad, "too long"));
	cr_assert_eq(tls_record_len(plain, &bad), -1);
	cr_assert(strstr(bad, "not TLS"));
}

/* --- proto/tlsrec: the records after the handshake, against OpenSSL's --- */

static struct tlsrec *rec_side(struct tls *t, bool tx)
{
	uint8_t sec[32];
	struct tlsrec *r;

	cr_assert_eq(tls_traffic_secret(t, tx, sec), 0);
	r = tlsrec_new(sec, sizeof(sec), tx);
	cr_assert_not_null(r);
	return r;
}

/* Seals text as one record with tlsrec, in two pieces. */
static size_t seal(struct tlsrec *r, const char *text, uint8_t *out)
{
	size_t n = strlen(text), h = n / 2;
	int a = tlsrec_seal_begin(r, n, out), b, c, d;

	cr_assert_eq(a, 5);
	b = tlsrec_seal_add(r, text, h, out + a);
	c = tlsrec_seal_add(r, text + h, n - h, out + a + b);
	d = tlsrec_seal_end(r, out + a + b + c);
	cr_assert(b >= 0 && c >= 0 && d == 1 + TLSREC_TAG);
	return (size_t)(a + b + c + d);
}

Test(tls, own_records_interoperate_with_openssl)
{
	struct pair p;
	struct tlsrec *ctx_tx, *srx;
	uint8_t rec[512], got[512];
	size_t n, plen;
	uint8_t type;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	ctx_tx = rec_side(p.c, true);
	/* ours -> OpenSSL's reader, twice (sequence numbers advance) */
	for (int i = 0; i < 2; i++) {
		n = seal(ctx_tx, i ? "second record" : "WRITE seq 1 with its payload", rec);
		cr_assert_eq(tls_feed(p.s, rec, n), 0);
		cr_assert_eq(tls_read(p.s, got, sizeof(got)), (ssize_t)strlen(i ? "second record"
										 : "WRITE seq 1 with its payload"));
	}
	/* OpenSSL's writer -> ours */
	srx = rec_side(p.c, false);
	cr_assert_eq(tls_write(p.s, "ACK 1", 5), 0);
	n = tls_out_take(p.s, rec, sizeof(rec));
	cr_assert_eq(tlsrec_open(srx, rec, n, got, &plen, &type), 0);
	cr_assert_eq(type, TLSREC_TYPE_DATA);
	cr_assert_eq(plen, 5);
	cr_assert_eq(memcmp(got, "ACK 1", 5), 0);
	/* the same record again: a replay */
	cr_assert_eq(tlsrec_open(srx, rec, n, got, &plen, &type), -1);
	tlsrec_free(ctx_tx);
	tlsrec_free(srx);
	free_pair(&p);
}

Test(tls, own_records_refuse_tampering)
{
	struct pair p;
	struct tlsrec *tx, *rx;
	uint8_t rec[512], copy[512], got[512];
	size_t n, plen;
	uint8_t type;

	connect_pair(&p, (const char *)secret, (const char *)secret);
	tx = rec_side(p.c, true);
	rx = rec_side(p.s, false);
	n = seal(tx, "FLUSH 9", rec);
	for (size_t i = 0; i < n; i++) { /* every byte, header and tag included */
		memcpy(copy, rec, n);
		copy[i] ^= 0x20;
		cr_assert_eq(tlsrec_open(rx, copy, n, got, &plen, &type), -1, "byte %zu", i);
	}
	cr_assert_eq(tlsrec_open(rx, rec, n - 1, got, &plen, &type), -1, "a cut record");
	cr_assert_eq(tlsrec_open(rx, rec, n, got, &plen, &type), 0);
	cr_assert_eq(plen, 7);
	n = seal(tx, "skipped", rec);
	n = seal(tx, "after a dropped record", rec);
	cr_assert_eq(tlsrec_open(rx, rec, n, got, &plen, &type), -1, "a dropped record");
	tlsrec_free(tx);
	tlsrec_free(rx);
	free_pair(&p);
}
