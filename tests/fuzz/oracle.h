/* Shared by the fuzz harnesses: an independent statement of the NBD request
 * rules (NBD.md, "What a correct server does"), used to judge every verdict
 * nbd_request_check() gives.  It lists the errors a request deserves rather
 * than re-deriving one, so it does not depend on the order the checks run
 * in: OK must mean no rule is broken, REJECT must name a broken rule. */
#ifndef BLKREP_FUZZ_ORACLE_H
#define BLKREP_FUZZ_ORACLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/request.h"
#include "nbd/wire.h"
#include "tests/fuzz/check.h"

/* Errors the request deserves, as a bit set over a few NBD errors. */
#define DESERVES_EPERM		(1U << 0)
#define DESERVES_EINVAL		(1U << 1)
#define DESERVES_ENOSPC		(1U << 2)
#define DESERVES_EOVERFLOW	(1U << 3)

static inline unsigned oracle_error_bit(uint32_t error)
{
	switch (error) {
	case NBD_EPERM:
		return DESERVES_EPERM;
	case NBD_EINVAL:
		return DESERVES_EINVAL;
	case NBD_ENOSPC:
		return DESERVES_ENOSPC;
	case NBD_EOVERFLOW:
		return DESERVES_EOVERFLOW;
	default:
		return 0;	/* no validation rule yields anything else */
	}
}

/* Flags the spec allows per command; FUA is allowed on all of them. */
static inline uint16_t oracle_flags_allowed(uint16_t type)
{
	uint16_t f = NBD_CMD_FLAG_FUA;

	if (type == NBD_CMD_READ)
		f |= NBD_CMD_FLAG_DF;
	if (type == NBD_CMD_WRITE_ZEROES)
		f |= NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	if (type == NBD_CMD_BLOCK_STATUS)
		f |= NBD_CMD_FLAG_REQ_ONE;
	return f;
}

static inline bool oracle_in_range(const struct nbd_request *r, uint64_t size)
{
	return r->offset <= size && r->length <= size - r->offset;
}

static inline unsigned oracle_deserves(const struct nbd_request *r,
				       const struct nbd_session *s)
{
	bool writes = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
		      r->type == NBD_CMD_WRITE_ZEROES;
	unsigned d = 0;

	if (r->type > NBD_CMD_BLOCK_STATUS)
		return DESERVES_EINVAL;
	if (r->flags & ~oracle_flags_allowed(r->type))
		d |= DESERVES_EINVAL;
	if ((r->flags & NBD_CMD_FLAG_DF) && !s->structured)
		d |= DESERVES_EINVAL;
	if (writes && (s->tflags & NBD_FLAG_READ_ONLY))
		d |= DESERVES_EPERM;
	if (r->type == NBD_CMD_FLUSH)
		return d | (r->offset || r->length ? DESERVES_EINVAL : 0);
	if (r->type == NBD_CMD_WRITE && r->length > NBD_MAX_PAYLOAD)
		d |= DESERVES_EINVAL;
	if (r->type == NBD_CMD_READ && r->length > NBD_MAX_PAYLOAD)
		d |= s->structured ? DESERVES_EOVERFLOW | DESERVES_EINVAL : DESERVES_EINVAL;
	if (r->type == NBD_CMD_BLOCK_STATUS && (!s->meta_id || !r->length))
		d |= DESERVES_EINVAL;
	if (!oracle_in_range(r, s->size))
		d |= r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ?
			     DESERVES_ENOSPC : DESERVES_EINVAL;
	return d;
}

/* Checks one request and judges the verdict.  Returns the check so the
 * caller can skip the payload or stop. */
static inline struct nbd_check oracle_check(const struct nbd_request *r,
					    const struct nbd_session *s)
{
	struct nbd_check c;
	unsigned d;

	memset(&c, 0xa5, sizeof(c));
	nbd_request_check(r, s, &c);
	/* Framing: only WRITE carries a payload, and it is always reported. */
	FUZZ_CHECK(c.payload == (r->type == NBD_CMD_WRITE ? r->length : 0));
	FUZZ_CHECK((c.verdict == NBD_V_DISCONNECT) ==
		   (r->type == NBD_CMD_WRITE && r->length > NBD_DISCONNECT_PAYLOAD));
	if (r->type == NBD_CMD_DISC) {
		FUZZ_CHECK(c.verdict == NBD_V_OK);
		return c;
	}
	if (c.verdict == NBD_V_DISCONNECT)
		return c;
	d = oracle_deserves(r, s);
	if (c.verdict == NBD_V_OK) {
		FUZZ_CHECK(c.error == 0);
		FUZZ_CHECK(d == 0);
	} else {
		FUZZ_CHECK(c.verdict == NBD_V_REJECT);
		FUZZ_CHECK(oracle_error_bit(c.error) & d);
	}
	return c;
}

/* The codec must reproduce the bytes it decoded. */
static inline void oracle_roundtrip(const uint8_t in[NBD_REQUEST_SIZE],
				    const struct nbd_request *r)
{
	uint8_t again[NBD_REQUEST_SIZE];

	nbd_request_encode(again, r);
	FUZZ_CHECK(memcmp(again, in, NBD_REQUEST_SIZE) == 0);
	FUZZ_CHECK(nbd_cmd_name(r->type) != NULL);
}

#endif
