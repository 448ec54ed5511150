/* Validation of NBD transmission requests.  Pure code: it decides, the
 * event loop acts.  Every request passes through nbd_request_check() before
 * any work is done for it. */
#ifndef BLKREP_NBD_REQUEST_H
#define BLKREP_NBD_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

/* A WRITE payload above this is not read off: the connection is dropped. */
#define NBD_DISCONNECT_PAYLOAD	(64U << 20)

/* What the connection negotiated, as far as validation cares. */
struct nbd_session {
	uint64_t size;		/* export size in bytes */
	uint16_t tflags;	/* transmission flags sent to the client */
	bool structured;	/* structured replies negotiated */
	uint32_t meta_id;	/* base:allocation context id, 0 if none */
};

enum nbd_verdict {
	NBD_V_OK,		/* do the request */
	NBD_V_REJECT,		/* reply with .error; read off .payload bytes first */
	NBD_V_DISCONNECT,	/* framing cannot be kept: drop the connection */
};

struct nbd_check {
	enum nbd_verdict verdict;
	uint32_t error;		/* NBD error for NBD_V_REJECT */
	uint32_t payload;	/* bytes of payload that follow the header */
};

/* Checks one decoded request against the session.  Always fills *out. */
void nbd_request_check(const struct nbd_request *req, const struct nbd_session *s,
		       struct nbd_check *out);

/* Buffer bytes a BLOCK_STATUS request needs for its descriptors. */
#define NBD_STATUS_BUF	4096U

/* Bytes of buffer a request needs before it can start: its data (READ,
 * WRITE), its descriptors (BLOCK_STATUS), or none. */
uint32_t nbd_request_buf_len(const struct nbd_request *r);

/* Whether a request of this type is mirrored to the peer: the write-type
 * ones and FLUSH. */
bool nbd_request_mirrored(uint16_t type);

/* Transmission flags blkrep advertises for an export. */
uint16_t nbd_export_tflags(bool read_only, bool structured);

#endif
