/* TLS 1.3 records after the handshake, in userspace: what the kernel does
 * with kTLS, done here so that the link encrypts straight from the payloads
 * it sends and decrypts straight into its receive buffers, with no copy
 * (OpenSSL's record layer copies each byte three times on each side).
 * OpenSSL runs the handshake (proto/tls.c); its traffic secrets give each
 * direction its key and IV (RFC 8446, 7.3), and records count from 0.
 *
 * A record (RFC 8446, 5.2): a 5-byte header (type 23, version 0x0303,
 * length), then AES-128-GCM over the plaintext and its inner content type,
 * the 16-byte tag last; the nonce is the IV XOR the record's sequence
 * number, the header the additional data.  A record that fails its tag,
 * comes out of order, is replayed or cut never yields a byte.
 *
 * Pure apart from libcrypto; -1 for every failure. */
#ifndef BLKREP_PROTO_TLSREC_H
#define BLKREP_PROTO_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSREC_PLAIN_MAX 16384
#define TLSREC_TAG	 16
/* Bytes a record adds to its plaintext: header, content type, tag. */
#define TLSREC_OVERHEAD	 (5 + 1 + TLSREC_TAG)
#define TLSREC_TYPE_DATA 23

struct tlsrec;

/* One direction's protection, from its traffic secret (32 bytes): for
 * sealing (seal) or opening records. */
struct tlsrec *tlsrec_new(const uint8_t *secret, size_t len, bool seal);
void tlsrec_free(struct tlsrec *r);

/* Seals one record of plen (1..TLSREC_PLAIN_MAX) bytes of application
 * data into out (room for plen + TLSREC_OVERHEAD): begin writes the
 * header, each add encrypts the next n bytes of the plaintext (writing n
 * bytes of out), end the content type and the tag.  Returns the bytes
 * written to out by that call, or -1. */
int tlsrec_seal_begin(struct tlsrec *r, size_t plen, uint8_t *out);
int tlsrec_seal_add(struct tlsrec *r, const void *in, size_t n, uint8_t *out);
int tlsrec_seal_end(struct tlsrec *r, uint8_t *out);

/* Opens one whole record (header included, reclen bytes) into out (room
 * for reclen - TLSREC_OVERHEAD + 1 bytes: its plaintext, content type and
 * padding): on success sets *plen to the plaintext's length and *type to
 * its content type (23 for data; 21 an alert).  -1 if the record is
 * malformed or not authentic: out then holds nothing to use. */
int tlsrec_open(struct tlsrec *r, const uint8_t *rec, size_t reclen, uint8_t *out, size_t *plen,
		uint8_t *type);

/* The name of a TLS alert's description (the second byte of an alert
 * record's plaintext), "alert" for the rest. */
const char *tlsrec_alert_name(uint8_t desc);

/* Records sealed so far (the sequence number of the next one). */
uint64_t tlsrec_count(const struct tlsrec *r);

#endif
