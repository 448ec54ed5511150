// fuzz-sources: proto/tls.c proto/tlsrec.c utils/secmem.c utils/log.c utils/clock.c
/* libFuzzer harness for what proto/tls.c decides from bytes it does not
 * control: the network's, a certificate's.  The first byte picks a mode:
 *	0 an unauthenticated client's bytes to a PSK server, fed in pieces
 *	  (u16 length, then bytes): the handshake never completes, since
 *	  nobody without the key can finish it, and no plaintext comes out;
 *	1 the same toward a client whose ClientHello went out;
 *	2 an established PSK connection (a real handshake in memory) gets one
 *	  real record XORed with a mask from the input, then the input's
 *	  remaining bytes: it yields the record's plaintext only when the mask
 *	  is zero, and never any byte the sender did not write; the same for
 *	  the link's own record layer (proto/tlsrec.c) on the same record;
 *	3 a PSK identity offered by a peer: accepted exactly when it is the
 *	  resource's own (computed here from tls.h's statement of it);
 *	4 a certificate with the input's DNS names and common name:
 *	  tls_cert_names() is true exactly when a DNS name is the node's, or,
 *	  with no DNS name, the common name is;
 *	5 a record header: tls_record_len() gives a length only for a TLS
 *	  record no longer than TLS_RECORD_MAX. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/hmac.h>
#include <openssl/x509v3.h>

#include "proto/tls.h"
#include "proto/tlsrec.h"
#include "tests/fuzz/check.h"

#define SECRET "fuzz-secret-0123456789abcdef-0123456789"

static struct tls_ctx *server_ctx, *client_ctx;

static struct tls_ctx *make_ctx(void)
{
	struct tls_cfg c = { .resource = "r0", .secret = (const uint8_t *)SECRET,
			     .secret_len = sizeof(SECRET) - 1 };
	char err[256];
	struct tls_ctx *t = tls_ctx_new(&c, err, sizeof(err));

	FUZZ_CHECK(t != NULL);
	return t;
}

static void pump(struct tls *from, struct tls *to)
{
	uint8_t buf[16384];
	size_t n;

	while ((n = tls_out_take(from, buf, sizeof(buf))) > 0)
		FUZZ_CHECK(tls_feed(to, buf, n) == 0);
}

/* Modes 0 and 1: pieces of hostile bytes; never done, never data. */
static void hostile_handshake(bool client, const uint8_t *d, size_t n)
{
	struct tls *t = tls_new(client ? client_ctx : server_ctx, client, "peer");
	uint8_t sink[4096];
	bool failed = false;

	FUZZ_CHECK(t != NULL);
	if (client)
		FUZZ_CHECK(tls_handshake(t) == TLS_STEP_MORE);
	while (n >= 2 && !failed) {
		size_t len = (size_t)(d[0] << 8 | d[1]);

		d += 2;
		n -= 2;
		if (len > n)
			len = n;
		FUZZ_CHECK(tls_feed(t, d, len) == 0);
		d += len;
		n -= len;
		switch (tls_handshake(t)) {
		case TLS_STEP_DONE:
			FUZZ_CHECK(!"a handshake completed without the key");
			break;
		case TLS_STEP_FAIL:
			FUZZ_CHECK(tls_error(t)[0] != '\0');
			failed = true;
			break;
		case TLS_STEP_MORE:
			break;
		}
		(void)tls_out_take(t, sink, sizeof(sink));
		FUZZ_CHECK(tls_read(t, sink, sizeof(sink)) <= 0);
	}
	tls_free(t);
}

/* tlsrec_open() on the (maybe tampered) record: plaintext only if it is
 * the one sealed. */
static void tlsrec_check(struct tls *s, const uint8_t *rec, size_t len, bool zero, const char *text,
			 size_t tlen)
{
	uint8_t sec[32], out[TLS_RECORD_MAX];
	struct tlsrec *rx;
	size_t plen = 0;
	uint8_t type = 0;
	int rc;

	FUZZ_CHECK(tls_traffic_secret(s, false, sec) == 0);
	rx = tlsrec_new(sec, sizeof(sec), false);
	FUZZ_CHECK(rx != NULL);
	rc = tlsrec_open(rx, rec, len, out, &plen, &type);
	if (!zero)
		FUZZ_CHECK(rc < 0);
	else
		FUZZ_CHECK(rc == 0 && type == TLSREC_TYPE_DATA && plen == tlen &&
			   memcmp(out, text, tlen) == 0);
	tlsrec_free(rx);
}

/* Mode 2: a real record, tampered with by the input's mask. */
static void tampered_record(const uint8_t *d, size_t n)
{
	static const char text[] = "WRITE seq 7 at 4096";
	struct tls *c = tls_new(client_ctx, true, "beta"), *s = tls_new(server_ctx, false, "alpha");
	uint8_t rec[256], got[256];
	size_t len, i;
	bool zero = true;
	ssize_t r;

	FUZZ_CHECK(c && s);
	for (int k = 0; k < 6; k++) {
		(void)tls_handshake(c);
		pump(c, s);
		(void)tls_handshake(s);
		pump(s, c);
	}
	FUZZ_CHECK(tls_handshake(c) == TLS_STEP_DONE && tls_handshake(s) == TLS_STEP_DONE);
	FUZZ_CHECK(tls_write(c, text, sizeof(text)) == 0);
	len = tls_out_take(c, rec, sizeof(rec));
	FUZZ_CHECK(len > sizeof(text));
	for (i = 0; i < len && i < n; i++) {
		rec[i] ^= d[i];
		zero = zero && d[i] == 0;
	}
	tlsrec_check(s, rec, len, zero, text, sizeof(text));
	FUZZ_CHECK(tls_feed(s, rec, len) == 0);
	if (n > len)
		FUZZ_CHECK(tls_feed(s, d + len, n - len) == 0);
	r = tls_read(s, got, sizeof(got));
	if (!zero)
		FUZZ_CHECK(r <= 0);
	if (r > 0) {
		FUZZ_CHECK(r == (ssize_t)sizeof(text) && memcmp(got, text, sizeof(text)) == 0);
		FUZZ_CHECK(tls_read(s, got, sizeof(got)) <= 0); /* nothing forged after it */
	}
	tls_free(c);
	tls_free(s);
}

/* Mode 3: the identity is hex(HMAC-SHA256(secret, label NUL resource))
 * cut to 32 characters. */
static void identity(const uint8_t *d, size_t n)
{
	static const char label[] = "blkrep tls identity v1\0r0";
	uint8_t mac[32];
	unsigned int ml = sizeof(mac);
	char want[33];

	FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, sizeof(SECRET) - 1, (const uint8_t *)label,
			sizeof(label) - 1, mac, &ml));
	for (int i = 0; i < 16; i++)
		snprintf(want + 2 * i, 3, "%02x", mac[i]);
	FUZZ_CHECK(tls_psk_identity_ok(server_ctx, (const uint8_t *)want, 32));
	FUZZ_CHECK(tls_psk_identity_ok(server_ctx, d, n) == (n == 32 && memcmp(d, want, 32) == 0));
}

/* Mode 4: u8 node length and node, u8 count of DNS names, each u8 length
 * and bytes, then u8 CN length and bytes (0: none). */
static bool take(const uint8_t **d, size_t *n, const uint8_t **s, size_t *len)
{
	if (*n < 1)
		return false;
	*len = **d;
	if (*len > *n - 1)
		*len = *n - 1;
	*s = *d + 1;
	*d += 1 + *len;
	*n -= 1 + *len;
	return true;
}

static void cert_names(const uint8_t *d, size_t n)
{
	const uint8_t *node, *s;
	size_t nl, len, count;
	char name[256];
	X509 *x = X509_new();
	GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
	bool want = false, dns = false;

	FUZZ_CHECK(x && sans);
	if (!take(&d, &n, &node, &nl) || memchr(node, 0, nl) || n < 1)
		goto out;
	memcpy(name, node, nl);
	name[nl] = '\0';
	count = *d++ % 5;
	n--;
	for (size_t i = 0; i < count && take(&d, &n, &s, &len); i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

		FUZZ_CHECK(g && ia5 && ASN1_STRING_set(ia5, s, (int)len));
		GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
		sk_GENERAL_NAME_push(sans, g);
		dns = true;
		want = want || (len == nl && memcmp(s, node, nl) == 0);
	}
	if (dns)
		FUZZ_CHECK(X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, 0) == 1);
	if (take(&d, &n, &s, &len) && len &&
	    X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, V_ASN1_UTF8STRING,
				       s, (int)len, -1, 0) == 1 &&
	    !dns)
		want = len == nl && memcmp(s, node, nl) == 0;
	FUZZ_CHECK(tls_cert_names(x, name) == want);
out:
	GENERAL_NAMES_free(sans);
	X509_free(x);
}

static void record_header(const uint8_t *d, size_t n)
{
	const char *bad = NULL;
	int len;

	if (n < TLS_HDR_SIZE)
		return;
	len = tls_record_len(d, &bad);
	if (len >= 0)
		FUZZ_CHECK(d[0] >= 20 && d[0] <= 23 && d[1] == 3 && len == (d[3] << 8 | d[4]) &&
			   len <= TLS_RECORD_MAX);
	else
		FUZZ_CHECK(bad && *bad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!server_ctx) {
		server_ctx = make_ctx();
		client_ctx = make_ctx();
	}
	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		hostile_handshake(false, data + 1, size - 1);
		break;
	case 1:
		hostile_handshake(true, data + 1, size - 1);
		break;
	case 2:
		tampered_record(data + 1, size - 1);
		break;
	case 3:
		identity(data + 1, size - 1);
		break;
	case 4:
		cert_names(data + 1, size - 1);
		break;
	default:
		record_header(data + 1, size - 1);
		break;
	}
	return 0;
}
