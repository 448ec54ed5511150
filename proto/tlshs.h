/* One TLS handshake on a connected socket, run on the event loop: the
 * ciphertext goes out with SENDMSG and comes in with RECV, one record at a
 * time and never a byte past the handshake's last record, so that the
 * kernel can take the connection's record layer over afterwards (see
 * proto/tls.h).  The link runs one for the connection it makes, and one for
 * each connection its listener accepts, several at once, the first to
 * authenticate winning (proto/link.c).
 *
 * done(arg, hs) is called once, from a completion handler, when the
 * handshake succeeded (every byte of it sent) or failed (tlshs_error());
 * nothing of the handshake is in flight then, and the owner either takes
 * the connection (tlshs_take()) or frees it (tlshs_free()).  Until then the
 * owner may abandon it with tlshs_abort(): it frees itself once its
 * operations have completed, without calling done. */
#ifndef BLKREP_PROTO_TLSHS_H
#define BLKREP_PROTO_TLSHS_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct tls;
struct tlshs;

/* Takes fd and t (both closed and freed with the handshake unless taken).
 * NULL when out of memory (fd and t are then the caller's still). */
struct tlshs *tlshs_start(struct loop *loop, int fd, struct tls *t,
			  void (*done)(void *arg, struct tlshs *hs), void *arg);

/* After done(): whether the handshake succeeded, and why not. */
bool tlshs_ok(const struct tlshs *hs);
const char *tlshs_error(const struct tlshs *hs);
/* When it started (clock_now_ms()). */
uint64_t tlshs_started_ms(const struct tlshs *hs);

/* After a successful done(): hands over the socket and the TLS state and
 * frees hs. */
void tlshs_take(struct tlshs *hs, int *fd, struct tls **t);

/* After done(): closes the socket and frees everything.  Also at once,
 * whatever is in flight, when the loop will never run its completions
 * again (tearing down with the ring). */
void tlshs_free(struct tlshs *hs);

/* Before done(): gives up (the socket is shut down); hs frees itself once
 * nothing is in flight, and done() is not called. */
void tlshs_abort(struct tlshs *hs);

#endif
