/* Peer authentication: HMAC-SHA256 challenge-response over the shared
 * secret.  Pure apart from auth_nonce(), which reads the kernel's random
 * source; nothing here prints, exits or touches a socket.
 *
 * The exchange, symmetric on both sides:
 *	each side sends a fresh nonce in its HELLO;
 *	each side sends AUTH = auth_compute(secret, peer's nonce, own nonce,
 *	                                    resource, own node name);
 *	each side accepts the peer only if auth_check() on the peer's AUTH
 *	says so.
 * The MAC covers "blkrep-auth-v1" || their nonce || my nonce || resource
 * || NUL || my node || NUL.  Binding both nonces defeats replay (a MAC is
 * good for one pair of nonces only); putting the challenger's nonce first
 * and binding the sender's node name defeats reflection (a side's own MAC
 * sent back to it does not verify as its peer's).  The NULs keep
 * ("ab", "c") and ("a", "bc") apart. */
#ifndef BLKREP_PROTO_AUTH_H
#define BLKREP_PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_NONCE_SIZE	32
#define AUTH_MAC_SIZE	32

/* Fills nonce with fresh random bytes (getrandom).  Returns 0, or -1 with
 * errno set. */
int auth_nonce(uint8_t nonce[AUTH_NONCE_SIZE]);

/* Computes this side's AUTH payload into mac.  Returns 0, or -1 if
 * libcrypto failed (mac is then zeroed, which no peer accepts). */
int auth_compute(const uint8_t *secret, size_t secret_len,
		 const uint8_t their_nonce[AUTH_NONCE_SIZE],
		 const uint8_t my_nonce[AUTH_NONCE_SIZE], const char *resource,
		 const char *my_node, uint8_t mac[AUTH_MAC_SIZE]);

/* Verifies the peer's AUTH payload: true only if mac is what a peer named
 * their_node holding the same secret computes for this pair of nonces.
 * Also false if the peer echoed our own nonce or libcrypto failed.
 * Compares in constant time. */
bool auth_check(const uint8_t *secret, size_t secret_len,
		const uint8_t my_nonce[AUTH_NONCE_SIZE],
		const uint8_t their_nonce[AUTH_NONCE_SIZE], const char *resource,
		const char *their_node, const uint8_t mac[AUTH_MAC_SIZE]);

#endif
