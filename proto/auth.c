/* HMAC-SHA256 challenge-response; see auth.h for the construction. */
#include "auth.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define AUTH_LABEL	"blkrep-auth-v1"

int auth_nonce(uint8_t nonce[AUTH_NONCE_SIZE])
{
	size_t got = 0;

	while (got < AUTH_NONCE_SIZE) {
		ssize_t n = getrandom(nonce + got, AUTH_NONCE_SIZE - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* HELLO carries names of at most 63 bytes; the cap only bounds the
 * buffer, and both sides apply it alike. */
#define AUTH_NAME_MAX	255
#define AUTH_MSG_MAX \
	(sizeof(AUTH_LABEL) - 1 + 2 * AUTH_NONCE_SIZE + 2 * (AUTH_NAME_MAX + 1))

static size_t put_name(uint8_t *p, const char *name)
{
	size_t n = strnlen(name, AUTH_NAME_MAX);

	memcpy(p, name, n);
	p[n] = '\0';
	return n + 1;
}

static int auth_mac(const uint8_t *secret, size_t secret_len, const uint8_t *first_nonce,
		    const uint8_t *second_nonce, const char *resource, const char *node,
		    uint8_t mac[AUTH_MAC_SIZE])
{
	uint8_t msg[AUTH_MSG_MAX];
	unsigned int mac_len = 0;
	size_t n = 0;
	/* HMAC() refuses a NULL key; an empty one is legal HMAC. */
	static const uint8_t no_key[1];

	memcpy(msg, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
	n += sizeof(AUTH_LABEL) - 1;
	memcpy(msg + n, first_nonce, AUTH_NONCE_SIZE);
	n += AUTH_NONCE_SIZE;
	memcpy(msg + n, second_nonce, AUTH_NONCE_SIZE);
	n += AUTH_NONCE_SIZE;
	n += put_name(msg + n, resource);
	n += put_name(msg + n, node);

	if (secret_len > INT_MAX)
		goto fail;
	if (!HMAC(EVP_sha256(), secret_len ? secret : no_key, (int)secret_len, msg, n, mac,
		  &mac_len) ||
	    mac_len != AUTH_MAC_SIZE)
		goto fail;
	return 0;
fail:
	memset(mac, 0, AUTH_MAC_SIZE);
	return -1;
}

int auth_compute(const uint8_t *secret, size_t secret_len,
		 const uint8_t their_nonce[AUTH_NONCE_SIZE],
		 const uint8_t my_nonce[AUTH_NONCE_SIZE], const char *resource,
		 const char *my_node, uint8_t mac[AUTH_MAC_SIZE])
{
	return auth_mac(secret, secret_len, their_nonce, my_nonce, resource, my_node, mac);
}

bool auth_check(const uint8_t *secret, size_t secret_len,
		const uint8_t my_nonce[AUTH_NONCE_SIZE],
		const uint8_t their_nonce[AUTH_NONCE_SIZE], const char *resource,
		const char *their_node, const uint8_t mac[AUTH_MAC_SIZE])
{
	uint8_t want[AUTH_MAC_SIZE];
	bool ok;

	/* A peer that echoes our nonce is trying to make us answer our own
	 * challenge. */
	if (CRYPTO_memcmp(my_nonce, their_nonce, AUTH_NONCE_SIZE) == 0)
		return false;
	/* From the peer's side, our nonce is "their" nonce. */
	if (auth_mac(secret, secret_len, my_nonce, their_nonce, resource, their_node, want))
		return false;
	ok = CRYPTO_memcmp(want, mac, AUTH_MAC_SIZE) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}
