/* TLS 1.3 for the replication link (OpenSSL 3), over memory buffers: this
 * module never touches a socket's data.  The link (proto/tlshs.c for the
 * handshake, proto/peer.c afterwards) receives ciphertext with io_uring
 * and hands it to tls_feed(), takes what to send from tls_out_take(),
 * and moves plaintext with tls_read() and tls_write().  After the
 * handshake tls_ktls() may hand the record layer to the kernel instead
 * (kTLS), and the link then sends and receives plaintext on the socket.
 *
 * One cipher suite, TLS_AES_128_GCM_SHA256 (TLS 1.3's mandatory one, fast
 * with AES-NI and one the kernel can take over).  Two ways to authenticate,
 * both mutual:
 *	PSK: an external pre-shared key derived from the resource's secret and
 *	    name, and (tls_ctx_pair()) the two nodes' names (with (EC)DHE, so
 *	    keys are per connection).  Its identity is a hash of the same:
 *	    opaque, naming neither resource nor node, one per pair of nodes;
 *	certificates: each side presents its own, signed by the configured CA,
 *	    and checks that the peer's names the peer node (tls_cert_names()).
 * No session tickets, no resumption, no middlebox compatibility records:
 * what the handshake sends is all there is, so the kernel can take over at
 * record sequence 0.
 *
 * Errors: functions return -1 (or NULL) and keep one line saying why,
 * tls_error(); nothing here prints. */
#ifndef BLKREP_PROTO_TLS_H
#define BLKREP_PROTO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TLS_ERR_MAX 256
/* A TLS 1.3 record on the wire: 5-byte header and at most 2^14 + 256
 * bytes of body. */
#define TLS_HDR_SIZE	 5
#define TLS_RECORD_MAX	 (16384 + 256)
#define TLS_PSK_ID_LEN	 32 /* hex characters */

struct tls_ctx;
struct tls;

struct tls_cfg {
	const char *resource;
	/* PSK mode: the resource's secret. */
	const uint8_t *secret;
	size_t secret_len;
	/* Certificate mode (all three, PEM files): set ca to choose it. */
	const char *ca, *certificate, *key;
};

/* The TLS context of a resource: reads the certificate, key and CA files
 * (certificate mode) or derives the PSK (kept in locked memory).  NULL
 * with why in err. */
struct tls_ctx *tls_ctx_new(const struct tls_cfg *cfg, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *c);
/* PSK mode: the key and identity of the pair node_a, node_b (in either
 * order) from now on: HMAC-SHA256(resource key, label NUL lo NUL hi), lo
 * the name that sorts first.  Nothing in certificate mode.  0, or -1
 * (libcrypto). */
int tls_ctx_pair(struct tls_ctx *c, const char *node_a, const char *node_b);
/* "psk" or "certificate". */
const char *tls_ctx_auth(const struct tls_ctx *c);

/* A connection's TLS state: client on the connecting side.  peer_node is
 * the name the peer must prove.  NULL when out of memory. */
struct tls *tls_new(struct tls_ctx *c, bool client, const char *peer_node);
void tls_free(struct tls *t);

/* A listener shared by several peers (proto/hub.c) learns from the
 * handshake which peer connected: on a server connection given a chooser,
 * psk() is asked for the context whose identity the client offered (NULL:
 * none, the handshake fails), cert() whether the client's certificate,
 * its chain already checked, names one of the peers (false: it fails);
 * each records its answer in arg.  ch and arg outlive the handshake. */
struct x509_st;
struct tls_chooser {
	const struct tls_ctx *(*psk)(void *arg, const uint8_t *id, size_t len);
	bool (*cert)(void *arg, const struct x509_st *cert);
};
void tls_set_chooser(struct tls *t, const struct tls_chooser *ch, void *arg);

enum tls_step {
	TLS_STEP_DONE, /* the handshake is complete: both sides authenticated */
	TLS_STEP_MORE, /* send tls_out_take()'s bytes, feed the peer's */
	TLS_STEP_FAIL, /* tls_error() says why; send tls_out_take()'s alert */
};

/* Runs the handshake as far as the bytes fed so far allow. */
enum tls_step tls_handshake(struct tls *t);

/* Ciphertext from the peer (all of it is taken).  -1 if out of memory. */
int tls_feed(struct tls *t, const void *buf, size_t n);

/* Ciphertext waiting to be sent, and taking up to n bytes of it. */
size_t tls_out_pending(const struct tls *t);
size_t tls_out_take(struct tls *t, void *buf, size_t n);

/* OpenSSL's own record layer, which the link leaves for proto/tlsrec.c or
 * the kernel after the handshake (the tests check tlsrec against these).
 * Decrypts into buf: > 0 bytes, 0 when more ciphertext is needed, -1 when
 * the stream is bad or the peer closed it (tls_error()). */
ssize_t tls_read(struct tls *t, void *buf, size_t n);

/* Encrypts n bytes (records of up to 16 KiB) for tls_out_take().  -1 on
 * failure. */
int tls_write(struct tls *t, const void *buf, size_t n);

/* After TLS_STEP_DONE, with nothing fed beyond the handshake: installs the
 * connection's keys in the kernel (TCP_ULP "tls", TLS_TX and TLS_RX), so
 * that plaintext goes through the socket.  1 when done; 0 when this kernel
 * has no kTLS (nothing changed on the socket: stay in userspace); -1 when
 * the socket is half set up and must be closed (tls_error()). */
int tls_ktls(struct tls *t, int fd);

/* After TLS_STEP_DONE: the application traffic secret this side sends
 * with (tx) or receives with, for proto/tlsrec.c.  0, or -1 if OpenSSL
 * never told it. */
int tls_traffic_secret(const struct tls *t, bool tx, uint8_t out[32]);
/* After TLS_STEP_DONE: nothing beyond the handshake was fed or is waiting
 * to be sent, so the record layer may move (to the kernel, to tlsrec). */
bool tls_drained(const struct tls *t);

/* The body length of a record from its 5-byte header, or -1 for a header
 * that no TLS 1.3 peer sends (why in *bad). */
int tls_record_len(const uint8_t hdr[TLS_HDR_SIZE], const char **bad);

/* TLS 1.3's HKDF-Expand-Label with SHA-256 (RFC 8446, 7.1) and an empty
 * context: out_len bytes of secret's expansion for label ("key", "iv").
 * 0, or -1 if libcrypto failed. */
int tls_expand_label(const uint8_t *secret, size_t secret_len, const char *label, uint8_t *out,
		     size_t out_len);

/* Whether a PSK identity the peer offered is the one this context expects
 * (constant time in the identity's bytes). */
bool tls_psk_identity_ok(const struct tls_ctx *c, const uint8_t *id, size_t len);

/* Whether a certificate names node: one of its DNS subjectAltNames is
 * node, byte for byte, or, when it has none, its common name is.  No
 * wildcards and no case folding: node names are the config's. */
bool tls_cert_names(const struct x509_st *cert, const char *node);

/* Why the last call failed. */
const char *tls_error(const struct tls *t);

/* Blocks (16-byte units) encrypted so far under this connection's sending
 * key, records counted as one more each: the link reconnects for fresh
 * keys before TLS_REKEY_BLOCKS (AES-GCM's limit for TLS 1.3 is about 2^34.5
 * blocks at a 2^-57 margin, RFC 8446 5.5). */
#define TLS_REKEY_BLOCKS (1ULL << 34)
uint64_t tls_blocks_sent(const struct tls *t);
/* Counts bytes sent by the kernel (kTLS), n bytes in one send. */
void tls_count_sent(struct tls *t, size_t n);

#endif
