/* The server side of the NBD fixed-newstyle handshake as a pure state
 * machine.  The caller reads exactly nbd_hs_want() bytes from the client,
 * feeds them in, sends whatever nbd_hs_output() holds, and acts on the step
 * returned.  No sockets, no allocation after nbd_hs_new(). */
#ifndef BLKREP_NBD_HANDSHAKE_H
#define BLKREP_NBD_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Option payloads longer than this are refused by disconnecting: the spec
 * caps strings at 4096 bytes, so no valid option comes near it. */
#define NBD_HS_MAX_OPTION	(64U << 10)

struct nbd_hs_export {
	const char *name;	/* answered besides "" ; may be NULL */
	const char *description; /* may be NULL */
	uint64_t size;
	bool read_only;
	uint32_t min_block;	/* 1, or the O_DIRECT alignment */
	uint32_t pref_block;
	uint32_t max_block;
};

enum nbd_hs_step {
	NBD_HS_MORE,		/* send the output, then read nbd_hs_want() bytes */
	NBD_HS_DONE,		/* send the output, then enter transmission */
	NBD_HS_CLOSE,		/* send the output (may be empty), then close */
};

/* What the transmission phase needs to know once NBD_HS_DONE is returned. */
struct nbd_hs_result {
	bool structured;
	uint32_t meta_id;	/* base:allocation id, 0 if not selected */
	uint16_t tflags;
};

struct nbd_hs;

/* Creates a machine for one connection; *exp is copied, its strings are
 * borrowed and must outlive the machine.  The greeting is already in the
 * output.  Returns NULL on allocation failure. */
struct nbd_hs *nbd_hs_new(const struct nbd_hs_export *exp);
void nbd_hs_free(struct nbd_hs *hs);

/* Bytes the machine needs next (> 0 while it is in NBD_HS_MORE). */
size_t nbd_hs_want(const struct nbd_hs *hs);

/* Feeds exactly nbd_hs_want() bytes.  Output accumulates until consumed. */
enum nbd_hs_step nbd_hs_feed(struct nbd_hs *hs, const uint8_t *in, size_t len);

/* Pending output bytes; nbd_hs_consume() drops n of them once sent. */
const uint8_t *nbd_hs_output(const struct nbd_hs *hs, size_t *len);
void nbd_hs_consume(struct nbd_hs *hs, size_t n);

/* Filled in once nbd_hs_feed() returned NBD_HS_DONE. */
void nbd_hs_result(const struct nbd_hs *hs, struct nbd_hs_result *res);

/* One line saying why the machine closed, for the log ("" if it did not). */
const char *nbd_hs_error(const struct nbd_hs *hs);

#endif
