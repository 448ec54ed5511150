/* TLS 1.3 for the replication link, over memory BIOs.  See tls.h. */
#include "proto/tls.h"

#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "utils/secmem.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define PSK_LEN	    32
#define SECRET_LEN  32 /* SHA-256 traffic secrets */
#define SUITE	    "TLS_AES_128_GCM_SHA256"
#define SUITE_BYTES "\x13\x01"

struct tls_ctx {
	SSL_CTX *ssl;
	bool psk;
	uint8_t *key; /* PSK, in locked memory */
	uint8_t *base; /* the resource's key, the pairs' keys derive from */
	char identity[TLS_PSK_ID_LEN + 1];
};

struct tls {
	struct tls_ctx *c;
	SSL *ssl;
	BIO *in, *out; /* ciphertext fed to SSL; ciphertext SSL wrote */
	bool client;
	char peer[64]; /* the node its certificate must name */
	const struct tls_chooser *chooser; /* a shared listener's: who it is */
	void *chooser_arg;
	uint8_t tx_secret[SECRET_LEN], rx_secret[SECRET_LEN];
	bool have_tx, have_rx;
	uint64_t blocks;
	char err[TLS_ERR_MAX];
};

static void set_err(struct tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct tls *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

/* OpenSSL's reason for a failure, and its error queue emptied: the last
 * (outermost) one, or with first the first (most specific, as "no start
 * line" under "PEM lib"). */
static const char *ssl_reason_of(bool first)
{
	const char *r = ERR_reason_error_string(first ? ERR_peek_error() : ERR_peek_last_error());

	ERR_clear_error();
	return r ? r : "unknown TLS error";
}

static const char *ssl_reason(void)
{
	return ssl_reason_of(false);
}

/* --- the context --- */

/* HMAC-SHA256(secret, label || NUL || resource): the PSK and its identity
 * are bound to the resource, so one secret shared by two resources gives
 * each its own key. */
static int derive(const struct tls_cfg *cfg, const char *label, uint8_t out[32])
{
	uint8_t msg[128];
	size_t ll = strlen(label), rl = strlen(cfg->resource);
	unsigned int len = 32;

	if (ll + 1 + rl > sizeof(msg))
		return -1;
	memcpy(msg, label, ll);
	msg[ll] = 0;
	memcpy(msg + ll + 1, cfg->resource, rl);
	if (!HMAC(EVP_sha256(), cfg->secret, (int)cfg->secret_len, msg, ll + 1 + rl, out, &len))
		return -1;
	return 0;
}

static void hex_identity(char *dst, const uint8_t id[32])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < TLS_PSK_ID_LEN / 2; i++) {
		dst[2 * i] = hex[id[i] >> 4];
		dst[2 * i + 1] = hex[id[i] & 15];
	}
}

static int ctx_psk(struct tls_ctx *c, const struct tls_cfg *cfg, char *err, size_t errlen)
{
	uint8_t id[32];

	c->psk = true;
	c->key = secmem_alloc(PSK_LEN);
	c->base = secmem_alloc(PSK_LEN);
	if (!c->key || !c->base || derive(cfg, "blkrep tls psk v1", c->key) < 0 ||
	    derive(cfg, "blkrep tls identity v1", id) < 0) {
		snprintf(err, errlen, "TLS: cannot derive the pre-shared key (libcrypto)");
		return -1;
	}
	memcpy(c->base, c->key, PSK_LEN);
	hex_identity(c->identity, id);
	return 0;
}

/* HMAC-SHA256(base, label NUL name_lo NUL name_hi). */
static int derive_pair(const struct tls_ctx *c, const char *label, const char *lo,
		       const char *hi, uint8_t out[32])
{
	uint8_t msg[256];
	size_t ll = strlen(label) + 1, l1 = strlen(lo) + 1, l2 = strlen(hi);
	unsigned int len = 32;

	if (ll + l1 + l2 > sizeof(msg))
		return -1;
	memcpy(msg, label, ll);
	memcpy(msg + ll, lo, l1);
	memcpy(msg + ll + l1, hi, l2);
	return HMAC(EVP_sha256(), c->base, PSK_LEN, msg, ll + l1 + l2, out, &len) ? 0 : -1;
}

int tls_ctx_pair(struct tls_ctx *c, const char *node_a, const char *node_b)
{
	const char *lo = strcmp(node_a, node_b) < 0 ? node_a : node_b;
	const char *hi = lo == node_a ? node_b : node_a;
	uint8_t id[32];

	if (!c->psk)
		return 0;
	if (derive_pair(c, "blkrep tls pair psk v2", lo, hi, c->key) < 0 ||
	    derive_pair(c, "blkrep tls pair identity v2", lo, hi, id) < 0)
		return -1;
	hex_identity(c->identity, id);
	return 0;
}

static int verify_name(int ok, X509_STORE_CTX *x);

/* A file OpenSSL is about to read: its own errors for a missing file are
 * "system lib". */
static int readable(const char *key, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

static int ctx_certs(struct tls_ctx *c, const struct tls_cfg *cfg, char *err, size_t errlen)
{
	if (!cfg->certificate || !cfg->key) {
		snprintf(err, errlen, "TLS: tls-ca is set but this node has no tls-certificate "
				      "and tls-key");
		return -1;
	}
	if (readable("tls-certificate", cfg->certificate, err, errlen) < 0 ||
	    readable("tls-key", cfg->key, err, errlen) < 0 ||
	    readable("tls-ca", cfg->ca, err, errlen) < 0)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(c->ssl, cfg->certificate) != 1) {
		snprintf(err, errlen, "tls-certificate %s: not a PEM certificate (%s)",
			 cfg->certificate, ssl_reason_of(true));
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(c->ssl, cfg->key, SSL_FILETYPE_PEM) != 1) {
		const char *r = ssl_reason_of(true);

		if (strstr(r, "mismatch"))
			snprintf(err, errlen, "tls-key %s is not the key of tls-certificate %s",
				 cfg->key, cfg->certificate);
		else
			snprintf(err, errlen, "tls-key %s: not a PEM private key (%s)", cfg->key, r);
		return -1;
	}
	if (SSL_CTX_check_private_key(c->ssl) != 1) {
		snprintf(err, errlen, "tls-key %s is not the key of tls-certificate %s", cfg->key,
			 cfg->certificate);
		ERR_clear_error();
		return -1;
	}
	if (SSL_CTX_load_verify_locations(c->ssl, cfg->ca, NULL) != 1) {
		snprintf(err, errlen, "tls-ca %s: no CA certificate in it (%s)", cfg->ca,
			 ssl_reason_of(true));
		return -1;
	}
	SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_name);
	return 0;
}

static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess);
static int find_psk(SSL *ssl, const unsigned char *id, size_t len, SSL_SESSION **sess);
static void keylog(const SSL *ssl, const char *line);

struct tls_ctx *tls_ctx_new(const struct tls_cfg *cfg, char *err, size_t errlen)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));
	int rc;

	if (!c || !(c->ssl = SSL_CTX_new(TLS_method()))) {
		snprintf(err, errlen, "TLS: out of memory");
		tls_ctx_free(c);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c->ssl, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(c->ssl, TLS1_3_VERSION);
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(c->ssl, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	SSL_CTX_set_num_tickets(c->ssl, 0);
	SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_keylog_callback(c->ssl, keylog);
	if (SSL_CTX_set_ciphersuites(c->ssl, SUITE) != 1) {
		snprintf(err, errlen, "TLS: %s is not available", SUITE);
		tls_ctx_free(c);
		return NULL;
	}
	if (cfg->ca) {
		rc = ctx_certs(c, cfg, err, errlen);
	} else if (cfg->secret_len) {
		rc = ctx_psk(c, cfg, err, errlen);
		SSL_CTX_set_psk_use_session_callback(c->ssl, use_psk);
		SSL_CTX_set_psk_find_session_callback(c->ssl, find_psk);
	} else {
		snprintf(err, errlen, "TLS needs a secret-file or certificates (tls-ca)");
		rc = -1;
	}
	if (rc < 0) {
		tls_ctx_free(c);
		return NULL;
	}
	return c;
}

void tls_ctx_free(struct tls_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ssl);
	secmem_free(c->key, PSK_LEN);
	secmem_free(c->base, PSK_LEN);
	free(c);
}

const char *tls_ctx_auth(const struct tls_ctx *c)
{
	return c->psk ? "psk" : "certificate";
}

bool tls_psk_identity_ok(const struct tls_ctx *c, const uint8_t *id, size_t len)
{
	return c->psk && id && len == TLS_PSK_ID_LEN &&
	       CRYPTO_memcmp(id, c->identity, TLS_PSK_ID_LEN) == 0;
}

/* --- callbacks from OpenSSL --- */

static SSL_SESSION *psk_session(SSL *ssl, const struct tls_ctx *c)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, (const unsigned char *)SUITE_BYTES);
	SSL_SESSION *s = SSL_SESSION_new();

	if (!cipher || !s || SSL_SESSION_set1_master_key(s, c->key, PSK_LEN) != 1 ||
	    SSL_SESSION_set_cipher(s, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* The client offers the PSK (for SHA-256 only: the one suite's hash). */
static int use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess)
{
	struct tls *t = SSL_get_app_data(ssl);

	*sess = NULL;
	if (md && !EVP_MD_is_a(md, "SHA256"))
		return 1;
	*sess = psk_session(ssl, t->c);
	*id = (const unsigned char *)t->c->identity;
	*idlen = TLS_PSK_ID_LEN;
	return *sess ? 1 : 0;
}

/* The server accepts only this resource's identity; anything else ends the
 * handshake (no certificate to fall back on). */
static int find_psk(SSL *ssl, const unsigned char *id, size_t len, SSL_SESSION **sess)
{
	struct tls *t = SSL_get_app_data(ssl);
	const struct tls_ctx *c = t->c;

	*sess = NULL;
	if (t->chooser)
		c = t->chooser->psk(t->chooser_arg, id, len);
	else if (!tls_psk_identity_ok(c, id, len))
		c = NULL;
	if (!c && t->chooser) {
		set_err(t, "authentication failed: the peer's TLS key is not one of this node's "
			   "peers' (the nodes' secret files, resource or node names differ)");
		return 1;
	}
	if (!c) {
		set_err(t, "authentication failed: the peer's TLS key is not this resource's "
			   "(the peers' secret files or resource names differ)");
		return 1;
	}
	*sess = psk_session(ssl, c);
	return *sess ? 1 : 0;
}

static bool asn1_is(const ASN1_STRING *s, const char *name, size_t len)
{
	return s && (size_t)ASN1_STRING_length(s) == len &&
	       memcmp(ASN1_STRING_get0_data(s), name, len) == 0;
}

bool tls_cert_names(const X509 *cert, const char *node)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const X509_NAME *subj = X509_get_subject_name(cert);
	size_t len = strlen(node);
	bool dns = false, match = false;
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

		if (g->type != GEN_DNS)
			continue;
		dns = true;
		match = match || asn1_is(g->d.dNSName, node, len);
	}
	GENERAL_NAMES_free(sans);
	if (dns || !subj)
		return match;
	for (i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;)
		if (asn1_is(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)), node, len))
			return true;
	return false;
}

/* After the chain checked out: the peer's own certificate must name the
 * peer node. */
static int verify_name(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls *t = ssl ? SSL_get_app_data(ssl) : NULL;

	if (!ok || !t || X509_STORE_CTX_get_error_depth(x) != 0)
		return ok;
	if (t->chooser ? t->chooser->cert(t->chooser_arg, X509_STORE_CTX_get_current_cert(x))
		       : tls_cert_names(X509_STORE_CTX_get_current_cert(x), t->peer))
		return 1;
	X509_STORE_CTX_set_error(x, X509_V_ERR_HOSTNAME_MISMATCH);
	if (t->chooser)
		set_err(t, "authentication failed: the peer's certificate names none of this "
			   "node's peers");
	else
		set_err(t, "authentication failed: the peer's certificate does not name %s",
			t->peer);
	return 0;
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char ch = s[2 * i + k];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v |= ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				v |= ch - 'A' + 10;
			else
				return -1;
		}
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* OpenSSL's key log line "LABEL CLIENT_RANDOM SECRET" (hex): the two
 * application traffic secrets are kept for tls_ktls(). */
static void keylog(const SSL *ssl, const char *line)
{
	struct tls *t = SSL_get_app_data(ssl);
	const char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	bool client_key;
	uint8_t *dst;

	if (!t || !sp2 || strlen(sp2 + 1) != 2 * SECRET_LEN)
		return;
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
		client_key = true;
	else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0)
		client_key = false;
	else
		return;
	dst = client_key == t->client ? t->tx_secret : t->rx_secret;
	if (unhex(sp2 + 1, SECRET_LEN, dst) == 0) {
		if (client_key == t->client)
			t->have_tx = true;
		else
			t->have_rx = true;
	}
}

/* --- a connection --- */

struct tls *tls_new(struct tls_ctx *c, bool client, const char *peer_node)
{
	struct tls *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->c = c;
	t->client = client;
	t->ssl = SSL_new(c->ssl);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->in || !t->out) {
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	BIO_set_mem_eof_return(t->in, -1); /* empty: "retry", not EOF */
	BIO_set_mem_eof_return(t->out, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	SSL_set_app_data(t->ssl, t);
	/* No SNI: the name is checked (verify_name()), never sent. */
	snprintf(t->peer, sizeof(t->peer), "%s", peer_node);
	if (client)
		SSL_set_connect_state(t->ssl);
	else
		SSL_set_accept_state(t->ssl);
	return t;
}

void tls_set_chooser(struct tls *t, const struct tls_chooser *ch, void *arg)
{
	t->chooser = ch;
	t->chooser_arg = arg;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* and both BIOs */
	OPENSSL_cleanse(t->tx_secret, sizeof(t->tx_secret));
	OPENSSL_cleanse(t->rx_secret, sizeof(t->rx_secret));
	free(t);
}

/* Why the handshake failed, unless a callback said it already. */
static void handshake_reason(struct tls *t)
{
	long v = SSL_get_verify_result(t->ssl);
	const char *r;

	if (t->err[0]) {
		ERR_clear_error();
		return;
	}
	if (!t->c->psk && v != X509_V_OK) {
		set_err(t, "authentication failed: the peer's certificate: %s",
			X509_verify_cert_error_string(v));
		ERR_clear_error();
		return;
	}
	r = ssl_reason();
	if (t->c->psk && strstr(r, "alert"))
		set_err(t, "authentication failed: the peer ended the TLS handshake (%s): "
			   "the peers' secret files or resource names differ, or its "
			   "certificate settings",
			r);
	else if (strstr(r, "alert"))
		set_err(t, "authentication failed: the peer ended the TLS handshake (%s): it "
			   "does not accept this node's certificate",
			r);
	else
		set_err(t, "TLS handshake failed: %s", r);
}

enum tls_step tls_handshake(struct tls *t)
{
	int r = SSL_do_handshake(t->ssl);

	if (r == 1)
		return TLS_STEP_DONE;
	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return TLS_STEP_MORE;
	default:
		handshake_reason(t);
		return TLS_STEP_FAIL;
	}
}

int tls_feed(struct tls *t, const void *buf, size_t n)
{
	if (n && BIO_write(t->in, buf, (int)n) != (int)n) {
		set_err(t, "TLS: out of memory");
		return -1;
	}
	return 0;
}

size_t tls_out_pending(const struct tls *t)
{
	return BIO_ctrl_pending(t->out);
}

size_t tls_out_take(struct tls *t, void *buf, size_t n)
{
	int r = n ? BIO_read(t->out, buf, n > INT32_MAX ? INT32_MAX : (int)n) : 0;

	return r > 0 ? (size_t)r : 0;
}

ssize_t tls_read(struct tls *t, void *buf, size_t n)
{
	int r = SSL_read(t->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);

	if (r > 0)
		return r;
	switch (SSL_get_error(t->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		set_err(t, "the peer closed the TLS session");
		return -1;
	default:
		set_err(t, "TLS: %s", ssl_reason());
		return -1;
	}
}

void tls_count_sent(struct tls *t, size_t n)
{
	size_t records = n / 16384 + 1;

	t->blocks += (n + 15) / 16 + records;
}

int tls_write(struct tls *t, const void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (SSL_write(t->ssl, buf, (int)n) != (int)n) {
		set_err(t, "TLS: %s", ssl_reason());
		return -1;
	}
	tls_count_sent(t, n);
	return 0;
}

uint64_t tls_blocks_sent(const struct tls *t)
{
	return t->blocks;
}

const char *tls_error(const struct tls *t)
{
	return t->err;
}

/* --- records and keys --- */

bool tls_drained(const struct tls *t)
{
	return !SSL_pending(t->ssl) && !BIO_ctrl_pending(t->in) && !BIO_ctrl_pending(t->out);
}

int tls_traffic_secret(const struct tls *t, bool tx, uint8_t out[32])
{
	if (!(tx ? t->have_tx : t->have_rx))
		return -1;
	memcpy(out, tx ? t->tx_secret : t->rx_secret, SECRET_LEN);
	return 0;
}

int tls_record_len(const uint8_t hdr[TLS_HDR_SIZE], const char **bad)
{
	int len = hdr[3] << 8 | hdr[4];

	if (hdr[0] < 20 || hdr[0] > 23 || hdr[1] != 3 || hdr[2] < 1 || hdr[2] > 4) {
		*bad = "not TLS (is allow-unencrypted set on one node only?)";
		return -1;
	}
	if (len > TLS_RECORD_MAX) {
		*bad = "TLS record too long";
		return -1;
	}
	return len;
}

int tls_expand_label(const uint8_t *secret, size_t secret_len, const char *label, uint8_t *out,
		     size_t out_len)
{
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t ll = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = -1;
	EVP_KDF *kdf;
	EVP_KDF_CTX *k = NULL;
	OSSL_PARAM params[5];

	uint8_t key[64];

	if (ll > 32 || out_len > 255 || secret_len > sizeof(key))
		return -1;
	memcpy(key, secret, secret_len); /* OSSL_PARAM wants it writable */
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0; /* empty context */
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf)
		k = EVP_KDF_CTX_new(kdf);
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	if (k && EVP_KDF_derive(k, out, out_len, params) == 1)
		rc = 0;
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int ktls_keys(const uint8_t *secret, struct tls12_crypto_info_aes_gcm_128 *ci)
{
	uint8_t iv[12];

	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_3_VERSION;
	ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
	if (tls_expand_label(secret, SECRET_LEN, "key", ci->key, sizeof(ci->key)) < 0 ||
	    tls_expand_label(secret, SECRET_LEN, "iv", iv, sizeof(iv)) < 0)
		return -1;
	memcpy(ci->salt, iv, 4);
	memcpy(ci->iv, iv + 4, 8);
	/* rec_seq 0: nothing was sent or received under these keys yet. */
	OPENSSL_cleanse(iv, sizeof(iv));
	return 0;
}

int tls_ktls(struct tls *t, int fd)
{
	struct tls12_crypto_info_aes_gcm_128 tx, rx;
	int rc = -1;

	if (!t->have_tx || !t->have_rx) {
		set_err(t, "OpenSSL gave no traffic secrets");
		return 0;
	}
	if (!tls_drained(t)) {
		set_err(t, "bytes beyond the handshake were read");
		return 0;
	}
	if (ktls_keys(t->tx_secret, &tx) < 0 || ktls_keys(t->rx_secret, &rx) < 0) {
		OPENSSL_cleanse(&tx, sizeof(tx));
		set_err(t, "cannot derive the record keys (libcrypto)");
		return 0;
	}
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		set_err(t, "the kernel has no TLS (TCP_ULP: %s)", strerror(errno));
		rc = 0; /* nothing changed */
	} else if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, sizeof(tx)) < 0 ||
		   setsockopt(fd, SOL_TLS, TLS_RX, &rx, sizeof(rx)) < 0) {
		set_err(t, "kernel TLS: %s", strerror(errno));
	} else {
		rc = 1;
	}
	OPENSSL_cleanse(&tx, sizeof(tx));
	OPENSSL_cleanse(&rx, sizeof(rx));
	return rc;
}
