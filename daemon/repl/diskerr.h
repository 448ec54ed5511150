/* The node's disk errors: the one status shows, and the reconnect after a
 * replicated request the disk failed (DRBD's on-io-error=detach, made
 * short: the disk is outdated, the range in the bitmap, the link dropped;
 * the reconnect's bitmap exchange and resync repair it).  The backoff
 * doubles up to DISKERR_RETRY_MAX_S while the disk keeps failing.  Pure:
 * no I/O, no logging; the node does both with what this answers. */
#ifndef BLKREP_DISKERR_H
#define BLKREP_DISKERR_H

#include <stdbool.h>
#include <stdint.h>

/* Reconnects after replicated failures, at most this far apart. */
#define DISKERR_RETRY_MAX_S 8
/* What a client FLUSH's error starts with. */
#define DISKERR_FLUSH "client FLUSH on this node: "

struct diskerr;

struct diskerr *diskerr_new(void);    /* NULL when out of memory */
void diskerr_free(struct diskerr *d); /* NULL is ignored */

/* The error for status, "" when none. */
const char *diskerr_text(const struct diskerr *d);
/* Records an error (cut to 255 bytes), the latest shown, except that a
 * client FLUSH's (fmt starting with DISKERR_FLUSH) never replaces another
 * kind, which needs a resync to repair.  True when none was recorded
 * before, so that the caller logs a dead disk once, not at every write. */
bool diskerr_set(struct diskerr *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The error recorded is a client FLUSH's (it starts with DISKERR_FLUSH). */
bool diskerr_is_flush(const struct diskerr *d);
/* Forgets the error; the backoff stays. */
void diskerr_clear(struct diskerr *d);
/* A resync repaired what the errors left out: no error, and the next
 * backoff is 1 s again. */
void diskerr_repaired(struct diskerr *d);

/* A replicated request failed at now_ns: the reconnect is due 1, 2, 4,
 * then every DISKERR_RETRY_MAX_S seconds later; returns those seconds. */
unsigned diskerr_failed(struct diskerr *d, uint64_t now_ns);
/* True once, when the reconnect is due at now_ns. */
bool diskerr_retry_due(struct diskerr *d, uint64_t now_ns);
/* The operator's connect or disconnect overrides a reconnect due. */
void diskerr_cancel_retry(struct diskerr *d);

/* The metadata could not record the failure yet (retried when the
 * reconnect is due). */
void diskerr_set_md_unsaved(struct diskerr *d, bool unsaved);
bool diskerr_md_unsaved(const struct diskerr *d);

#endif
