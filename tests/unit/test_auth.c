/* Unit tests for proto/auth: both sides of the challenge-response, run
 * in one process, and the attacks it must stop (replay, reflection). */
#include <criterion/criterion.h>
#include <string.h>

#include <openssl/hmac.h>

#include "proto/auth.h"

static const uint8_t secret[] = "correct horse battery staple";
#define SECRET_LEN	(sizeof(secret) - 1)

struct side {
	const char *node;
	uint8_t nonce[AUTH_NONCE_SIZE];
	uint8_t mac[AUTH_MAC_SIZE];
};

static void new_side(struct side *s, const char *node)
{
	s->node = node;
	cr_assert_eq(auth_nonce(s->nonce), 0);
}

/* s answers the challenge of peer. */
static void answer(struct side *s, const struct side *peer, const uint8_t *key, size_t key_len)
{
	cr_assert_eq(auth_compute(key, key_len, peer->nonce, s->nonce, "r0", s->node, s->mac), 0);
}

/* s checks what peer sent. */
static bool accepts(const struct side *s, const struct side *peer, const uint8_t *key,
		    size_t key_len)
{
	return auth_check(key, key_len, s->nonce, peer->nonce, "r0", peer->node, peer->mac);
}

Test(auth, nonces_are_fresh)
{
	uint8_t a[AUTH_NONCE_SIZE], b[AUTH_NONCE_SIZE];

	cr_assert_eq(auth_nonce(a), 0);
	cr_assert_eq(auth_nonce(b), 0);
	cr_assert_arr_neq(a, b, AUTH_NONCE_SIZE);
}

Test(auth, both_sides_agree_with_the_same_secret)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	answer(&a, &b, secret, SECRET_LEN);
	answer(&b, &a, secret, SECRET_LEN);
	cr_assert(accepts(&a, &b, secret, SECRET_LEN));
	cr_assert(accepts(&b, &a, secret, SECRET_LEN));
	/* the two MACs differ: each is bound to its sender */
	cr_assert_arr_neq(a.mac, b.mac, AUTH_MAC_SIZE);
}

Test(auth, a_different_secret_is_refused_both_ways)
{
	static const uint8_t other[] = "correct horse battery stapler";
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	answer(&a, &b, secret, SECRET_LEN);
	answer(&b, &a, other, sizeof(other) - 1);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
	cr_assert_not(accepts(&b, &a, other, sizeof(other) - 1));
	/* a prefix of the secret is a different secret */
	answer(&b, &a, secret, SECRET_LEN - 1);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
}

/* An eavesdropper replays b's old answer on a new connection, where a
 * sent a new nonce. */
Test(auth, a_replayed_response_fails_with_a_new_nonce)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	answer(&b, &a, secret, SECRET_LEN);
	cr_assert(accepts(&a, &b, secret, SECRET_LEN));
	cr_assert_eq(auth_nonce(a.nonce), 0);	/* the next connection */
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
}

/* Reflection: an impostor claiming to be beta sends alpha's own answer
 * back to it.  The nonce order refuses it; offering alpha's nonce as its
 * own so that the nonces line up is refused as an echo. */
Test(auth, a_response_reflected_to_its_sender_fails)
{
	struct side a, m;

	new_side(&a, "alpha");
	new_side(&m, "beta");
	answer(&a, &m, secret, SECRET_LEN);
	memcpy(m.mac, a.mac, AUTH_MAC_SIZE);
	cr_assert_not(accepts(&a, &m, secret, SECRET_LEN));

	/* Second connection: the impostor offers alpha's nonce as its own. */
	memcpy(m.nonce, a.nonce, AUTH_NONCE_SIZE);
	answer(&a, &m, secret, SECRET_LEN);
	memcpy(m.mac, a.mac, AUTH_MAC_SIZE);
	cr_assert_not(accepts(&a, &m, secret, SECRET_LEN));
}

/* With the nonces exactly as the checker expects, a MAC made under
 * another node's name still fails: the sender's name is bound. */
Test(auth, the_sender_name_is_bound)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	cr_assert_eq(auth_compute(secret, SECRET_LEN, a.nonce, b.nonce, "r0", "alpha", b.mac), 0);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
	cr_assert_eq(auth_compute(secret, SECRET_LEN, a.nonce, b.nonce, "r0", "beta", b.mac), 0);
	cr_assert(accepts(&a, &b, secret, SECRET_LEN));
}

/* Swapped nonce order: a MAC made for (their, mine) is not one for
 * (mine, their), even with equal names. */
Test(auth, nonce_order_is_bound)
{
	struct side a, b;

	new_side(&a, "node");
	new_side(&b, "node");
	answer(&a, &b, secret, SECRET_LEN);
	memcpy(b.mac, a.mac, AUTH_MAC_SIZE);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
}

Test(auth, the_resource_is_bound)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	cr_assert_eq(auth_compute(secret, SECRET_LEN, a.nonce, b.nonce, "r1", "beta", b.mac), 0);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
}

/* The NUL after each name keeps ("r0", "xbeta") apart from ("r0x", "beta"). */
Test(auth, names_cannot_shift_into_each_other)
{
	uint8_t n1[AUTH_NONCE_SIZE] = { 1 }, n2[AUTH_NONCE_SIZE] = { 2 };
	uint8_t m1[AUTH_MAC_SIZE], m2[AUTH_MAC_SIZE];

	cr_assert_eq(auth_compute(secret, SECRET_LEN, n1, n2, "r0", "xbeta", m1), 0);
	cr_assert_eq(auth_compute(secret, SECRET_LEN, n1, n2, "r0x", "beta", m2), 0);
	cr_assert_arr_neq(m1, m2, AUTH_MAC_SIZE);
}

/* The MAC is exactly HMAC-SHA256 over the documented message, so that
 * another implementation can interoperate. */
Test(auth, construction_matches_the_documentation)
{
	uint8_t their[AUTH_NONCE_SIZE], mine[AUTH_NONCE_SIZE];
	uint8_t msg[14 + 64 + 3 + 6], want[32], got[AUTH_MAC_SIZE];
	unsigned int len = 0;

	memset(their, 0x11, sizeof(their));
	memset(mine, 0x22, sizeof(mine));
	memcpy(msg, "blkrep-auth-v1", 14);
	memcpy(msg + 14, their, 32);
	memcpy(msg + 46, mine, 32);
	memcpy(msg + 78, "r0", 3);
	memcpy(msg + 81, "alpha", 6);
	cr_assert_not_null(HMAC(EVP_sha256(), secret, (int)SECRET_LEN, msg, sizeof(msg), want,
				&len));
	cr_assert_eq(auth_compute(secret, SECRET_LEN, their, mine, "r0", "alpha", got), 0);
	cr_assert_arr_eq(got, want, sizeof(want));
}

/* A peer echoing our nonce is refused even with a correctly computed MAC. */
Test(auth, an_echoed_nonce_is_refused)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	memcpy(b.nonce, a.nonce, AUTH_NONCE_SIZE);
	answer(&b, &a, secret, SECRET_LEN);
	cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
}

Test(auth, a_flipped_bit_is_refused)
{
	struct side a, b;

	new_side(&a, "alpha");
	new_side(&b, "beta");
	answer(&b, &a, secret, SECRET_LEN);
	for (int i = 0; i < AUTH_MAC_SIZE * 8; i += 37) {
		b.mac[i / 8] ^= (uint8_t)(1U << (i % 8));
		cr_assert_not(accepts(&a, &b, secret, SECRET_LEN));
		b.mac[i / 8] ^= (uint8_t)(1U << (i % 8));
	}
	cr_assert(accepts(&a, &b, secret, SECRET_LEN));
}
