/* TLS 1.3 records in userspace.  See tlsrec.h. */
#include "proto/tlsrec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls.h"

struct tlsrec {
	EVP_CIPHER_CTX *ctx;
	uint8_t key[16], iv[12];
	uint64_t seq;
	bool sealing;
};

struct tlsrec *tlsrec_new(const uint8_t *secret, size_t len, bool seal)
{
	struct tlsrec *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ctx = EVP_CIPHER_CTX_new();
	/* The key once; each record sets only its nonce. */
	if (!r->ctx || tls_expand_label(secret, len, "key", r->key, sizeof(r->key)) < 0 ||
	    tls_expand_label(secret, len, "iv", r->iv, sizeof(r->iv)) < 0 ||
	    EVP_CipherInit_ex(r->ctx, EVP_aes_128_gcm(), NULL, r->key, NULL, seal) != 1) {
		tlsrec_free(r);
		return NULL;
	}
	return r;
}

void tlsrec_free(struct tlsrec *r)
{
	if (!r)
		return;
	EVP_CIPHER_CTX_free(r->ctx);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

uint64_t tlsrec_count(const struct tlsrec *r)
{
	return r->seq;
}

static void header(uint8_t *h, size_t body)
{
	h[0] = TLSREC_TYPE_DATA;
	h[1] = 3;
	h[2] = 3;
	h[3] = (uint8_t)(body >> 8);
	h[4] = (uint8_t)body;
}

/* The per-record nonce: the IV XOR the sequence number (right-aligned). */
static int start(struct tlsrec *r, bool enc, const uint8_t *hdr)
{
	uint8_t nonce[12];
	int n;

	memcpy(nonce, r->iv, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(r->seq >> (8 * i));
	if (EVP_CipherInit_ex(r->ctx, NULL, NULL, NULL, nonce, enc) != 1 ||
	    EVP_CipherUpdate(r->ctx, NULL, &n, hdr, 5) != 1)
		return -1;
	return 0;
}

int tlsrec_seal_begin(struct tlsrec *r, size_t plen, uint8_t *out)
{
	if (plen == 0 || plen > TLSREC_PLAIN_MAX)
		return -1;
	header(out, plen + 1 + TLSREC_TAG);
	if (start(r, true, out) < 0)
		return -1;
	r->sealing = true;
	return 5;
}

int tlsrec_seal_add(struct tlsrec *r, const void *in, size_t n, uint8_t *out)
{
	int got;

	if (!r->sealing || EVP_EncryptUpdate(r->ctx, out, &got, in, (int)n) != 1 ||
	    (size_t)got != n)
		return -1;
	return got;
}

int tlsrec_seal_end(struct tlsrec *r, uint8_t *out)
{
	static const uint8_t type = TLSREC_TYPE_DATA;
	int got, fin;

	if (!r->sealing || EVP_EncryptUpdate(r->ctx, out, &got, &type, 1) != 1 || got != 1 ||
	    EVP_EncryptFinal_ex(r->ctx, out + 1, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_GET_TAG, TLSREC_TAG, out + 1) != 1)
		return -1;
	r->sealing = false;
	r->seq++;
	return 1 + TLSREC_TAG;
}

int tlsrec_open(struct tlsrec *r, const uint8_t *rec, size_t reclen, uint8_t *out, size_t *plen,
		uint8_t *type)
{
	size_t body = reclen - 5, clen;
	uint8_t tag[TLSREC_TAG];
	int got, fin;

	if (reclen < TLSREC_OVERHEAD || rec[0] != TLSREC_TYPE_DATA || rec[1] != 3 || rec[2] != 3 ||
	    (size_t)(rec[3] << 8 | rec[4]) != body || body > TLS_RECORD_MAX)
		return -1;
	clen = body - TLSREC_TAG;
	memcpy(tag, rec + reclen - TLSREC_TAG, TLSREC_TAG);
	if (start(r, false, rec) < 0 || EVP_DecryptUpdate(r->ctx, out, &got, rec + 5, (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_TAG, TLSREC_TAG, tag) != 1 ||
	    EVP_DecryptFinal_ex(r->ctx, out + got, &fin) != 1)
		return -1;
	r->seq++;
	/* The inner content type is the last byte that is not padding. */
	while (clen > 0 && out[clen - 1] == 0)
		clen--;
	if (clen == 0)
		return -1;
	*type = out[clen - 1];
	*plen = clen - 1;
	return 0;
}

const char *tlsrec_alert_name(uint8_t desc)
{
	switch (desc) {
	case 0:
		return "close notify";
	case 40:
		return "handshake failure";
	case 42:
		return "bad certificate";
	case 43:
		return "unsupported certificate";
	case 44:
		return "certificate revoked";
	case 45:
		return "certificate expired";
	case 46:
		return "certificate unknown";
	case 48:
		return "unknown CA";
	case 51:
		return "decrypt error";
	case 116:
		return "certificate required";
	default:
		return "alert";
	}
}
