// fuzz-sources: proto/auth.c proto/msg.c utils/namefield.c
/* libFuzzer harness for the replication link's authentication: what a
 * peer sends during the handshake (HELLO with its nonce and name, then
 * AUTH with its answer), parsed and judged as proto/peer.c does, by
 * msg_hdr_decode(), msg_hello_decode() and auth_check().
 *
 * Input: mode u8, secret length u8, the secret, this node's nonce (32),
 * then the peer's bytes: a HELLO header and payload, an AUTH header and
 * its 32 bytes.  The mode says where the AUTH answer comes from, so that
 * the fuzzer reaches both verdicts; the 32 bytes are the answer itself
 * (mode 0) or XORed into a computed one:
 *	0 raw (an attacker guessing);
 *	1 the right answer (a peer holding the secret), plus the XOR mask;
 *	2 the right construction under another secret (next in the input);
 *	3 this node's own answer reflected back;
 *	4 a right answer for another challenge (a replay; nonce next in the
 *	  input).
 * Oracle: auth_check() accepts exactly when the answer equals HMAC-SHA256
 * computed here, from auth.h's statement of the construction, with the
 * right secret, and the peer did not echo our nonce; so the right answer
 * (mode 1, zero mask) is always accepted, and a reflected or replayed one
 * never.  Another secret is accepted only where HMAC itself cannot tell
 * the keys apart (trailing NUL bytes; a key over 64 bytes and its SHA-256),
 * which only someone holding the secret can exploit.  auth_compute() must
 * agree with the construction too. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "proto/auth.h"
#include "proto/msg.h"
#include "tests/fuzz/oracle.h"

#define RESOURCE	"r0"
#define MY_NODE		"alpha"

enum mode { M_RAW, M_RIGHT, M_WRONG_SECRET, M_REFLECT, M_REPLAY, M_COUNT };

struct input {
	const uint8_t *p;
	size_t left;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *take(struct input *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->left < n)
		return NULL;
	in->p += n;
	in->left -= n;
	return p;
}

/* auth.h: HMAC(secret, "blkrep-auth-v1" || challenger's nonce || sender's
 * nonce || resource || NUL || sender || NUL). */
static void reference_mac(const uint8_t *key, size_t key_len, const uint8_t *challenge,
			  const uint8_t *sender_nonce, const char *sender, uint8_t out[32])
{
	uint8_t msg[512];
	unsigned out_len = 0;
	size_t n = 0;

	memcpy(msg, "blkrep-auth-v1", 14);
	n = 14;
	memcpy(msg + n, challenge, 32);
	memcpy(msg + n + 32, sender_nonce, 32);
	n += 64;
	memcpy(msg + n, RESOURCE, sizeof(RESOURCE));
	n += sizeof(RESOURCE);
	memcpy(msg + n, sender, strlen(sender) + 1);
	n += strlen(sender) + 1;
	FUZZ_CHECK(HMAC(EVP_sha256(), key_len ? key : (const uint8_t *)"", (int)key_len, msg, n,
			out, &out_len) &&
		   out_len == 32);
}

/* The key HMAC really uses: longer than a block, its hash; then zero-padded. */
static size_t hmac_key(const uint8_t *key, size_t len, uint8_t out[64])
{
	memset(out, 0, 64);
	if (len > 64) {
		SHA256(key, len, out);
		len = 32;
	} else {
		memcpy(out, key, len);
	}
	while (len && !out[len - 1])
		len--;
	return len;
}

static bool same_hmac_key(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t ka[64], kb[64];

	return hmac_key(a, alen, ka) == hmac_key(b, blen, kb) && !memcmp(ka, kb, 64);
}

/* The peer's HELLO, checked as peer.c's on_hello() does, except that any
 * resource and node name goes on (peer.c wants its own resource and the
 * configured peer), so that the MAC's binding to them is tested too.
 * Returns false if the link would refuse it before any AUTH. */
static bool peer_hello(struct input *in, struct msg_hello *m)
{
	const uint8_t *b = take(in, MSG_HDR_SIZE), *payload;
	const char *why = NULL;
	struct msg_hdr h;

	if (!b || msg_hdr_decode(b, &h, &why) < 0 || h.type != MSG_HELLO)
		return false;
	payload = take(in, h.length);
	if (!payload)
		return false;
	if (msg_hello_decode(payload, h.length, m, &why) < 0) {
		FUZZ_CHECK(why && *why);
		return false;
	}
	FUZZ_CHECK(memchr(m->node, '\0', sizeof(m->node)) && m->node[0]);
	return !(m->flags & MSG_HELLO_F_NO_SECRET);	/* both have a secret */
}

/* The AUTH header, then its 32 bytes.  NULL if the link would refuse it. */
static const uint8_t *peer_auth(struct input *in)
{
	const uint8_t *b = take(in, MSG_HDR_SIZE);
	const char *why = NULL;
	struct msg_hdr h;

	if (!b || msg_hdr_decode(b, &h, &why) < 0 || h.type != MSG_AUTH)
		return NULL;
	FUZZ_CHECK(h.length == AUTH_MAC_SIZE);
	return take(in, AUTH_MAC_SIZE);
}

/* The answer mode m makes of the peer's 32 bytes. */
static bool make_answer(enum mode m, struct input *in, const uint8_t *secret, size_t secret_len,
			const uint8_t *my_nonce, const struct msg_hello *h, const uint8_t *bytes,
			uint8_t mac[32], bool *wrong_key_same)
{
	const uint8_t *other, *len;

	switch (m) {
	case M_RAW:
		memcpy(mac, bytes, 32);
		return true;
	case M_RIGHT:
		reference_mac(secret, secret_len, my_nonce, h->nonce, h->node, mac);
		break;
	case M_WRONG_SECRET:
		if (!(len = take(in, 1)) || !(other = take(in, *len)))
			return false;
		*wrong_key_same = same_hmac_key(secret, secret_len, other, *len);
		reference_mac(other, *len, my_nonce, h->nonce, h->node, mac);
		break;
	case M_REFLECT:
		FUZZ_CHECK(auth_compute(secret, secret_len, h->nonce, my_nonce, RESOURCE, MY_NODE,
					mac) == 0);
		break;
	default:
		if (!(other = take(in, AUTH_NONCE_SIZE)))
			return false;
		reference_mac(secret, secret_len, other, h->nonce, h->node, mac);
		break;
	}
	for (int i = 0; i < 32; i++)
		mac[i] ^= bytes[i];
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (p[n])
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	const uint8_t *mode_b, *len_b, *secret, *my_nonce, *bytes;
	uint8_t mac[32], want[32], mine[32];
	struct msg_hello h;
	bool accepted, wrong_key_same = false, echoed;
	enum mode mode;

	if (!(mode_b = take(&in, 1)) || !(len_b = take(&in, 1)) || !(secret = take(&in, *len_b)) ||
	    !(my_nonce = take(&in, AUTH_NONCE_SIZE)))
		return 0;
	mode = (enum mode)(*mode_b % M_COUNT);
	if (!peer_hello(&in, &h) || !(bytes = peer_auth(&in)))
		return 0;
	if (!make_answer(mode, &in, secret, *len_b, my_nonce, &h, bytes, mac, &wrong_key_same))
		return 0;

	/* Our own answer follows the construction. */
	FUZZ_CHECK(auth_compute(secret, *len_b, h.nonce, my_nonce, RESOURCE, MY_NODE, mine) == 0);
	reference_mac(secret, *len_b, h.nonce, my_nonce, MY_NODE, want);
	FUZZ_CHECK(!memcmp(mine, want, 32));

	accepted = auth_check(secret, *len_b, my_nonce, h.nonce, RESOURCE, h.node, mac);
	echoed = !memcmp(my_nonce, h.nonce, AUTH_NONCE_SIZE);
	reference_mac(secret, *len_b, my_nonce, h.nonce, h.node, want);
	FUZZ_CHECK(accepted == (!echoed && !CRYPTO_memcmp(want, mac, 32)));
	if (mode == M_RIGHT && all_zero(bytes, 32))
		FUZZ_CHECK(accepted == !echoed);
	if (mode == M_WRONG_SECRET && accepted)
		FUZZ_CHECK(wrong_key_same);
	if (mode == M_REFLECT && strcmp(h.node, MY_NODE) != 0)
		FUZZ_CHECK(!accepted);
	return 0;
}
