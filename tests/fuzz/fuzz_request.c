/* libFuzzer harness for request decoding and validation.
 *
 * Input: a 15-byte session (size u64, tflags u16, bit 0 of a byte for
 * structured replies, meta_id u32, all big-endian), then any number of
 * 28-byte request headers.  Every header is decoded, checked, and the
 * verdict judged by the independent rules in oracle.h. */
#include <stddef.h>
#include <stdint.h>

#include "oracle.h"

#define SESSION_SIZE	15

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nbd_session session_from(const uint8_t *d)
{
	struct nbd_session s = {
		.size = get_be64(d),
		.tflags = get_be16(d + 8),
		.structured = d[10] & 1,
		.meta_id = get_be32(d + 11),
	};
	return s;
}

/* Maps a store errno to the wire: always a known NBD error, 0 only for 0. */
static void check_errno_map(uint64_t bits)
{
	int e = (int)(bits & 0x1ff);
	uint32_t w = nbd_errno_to_wire(-e);

	FUZZ_CHECK((w == 0) == (e == 0));
	FUZZ_CHECK(w == 0 || w == NBD_EPERM || w == NBD_EIO || w == NBD_ENOMEM ||
		   w == NBD_EINVAL || w == NBD_ENOSPC || w == NBD_EOVERFLOW ||
		   w == NBD_ENOTSUP || w == NBD_ESHUTDOWN);
}

/* Reply headers carry the request's cookie back unchanged. */
static void check_reply_encoders(const struct nbd_request *r)
{
	uint8_t b[NBD_CHUNK_HDR_SIZE];

	nbd_simple_reply_encode(b, r->length, r->cookie);
	FUZZ_CHECK(get_be32(b) == NBD_SIMPLE_REPLY_MAGIC);
	FUZZ_CHECK(get_be32(b + 4) == r->length && get_be64(b + 8) == r->cookie);
	nbd_chunk_encode(b, r->flags, r->type, r->cookie, r->length);
	FUZZ_CHECK(get_be32(b) == NBD_STRUCT_REPLY_MAGIC);
	FUZZ_CHECK(get_be16(b + 4) == r->flags && get_be16(b + 6) == r->type);
	FUZZ_CHECK(get_be64(b + 8) == r->cookie && get_be32(b + 16) == r->length);
}

static void fuzz_one(const uint8_t *hdr, const struct nbd_session *s)
{
	uint8_t fixed[NBD_REQUEST_SIZE];
	struct nbd_request r;

	/* Only the magic can make decoding fail; then judge the rest of the
	 * header anyway, with the magic repaired. */
	if (nbd_request_decode(hdr, &r) != 0) {
		FUZZ_CHECK(get_be32(hdr) != NBD_REQUEST_MAGIC);
		memcpy(fixed, hdr, sizeof(fixed));
		put_be32(fixed, NBD_REQUEST_MAGIC);
		hdr = fixed;
		FUZZ_CHECK(nbd_request_decode(hdr, &r) == 0);
	}
	oracle_roundtrip(hdr, &r);
	(void)oracle_check(&r, s);
	check_errno_map(r.offset);
	check_reply_encoders(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nbd_session s;

	if (size < SESSION_SIZE)
		return 0;
	s = session_from(data);
	FUZZ_CHECK((nbd_export_tflags(data[10] & 2, data[10] & 4) & NBD_FLAG_HAS_FLAGS) != 0);
	for (size_t pos = SESSION_SIZE; size - pos >= NBD_REQUEST_SIZE; pos += NBD_REQUEST_SIZE)
		fuzz_one(data + pos, &s);
	return 0;
}
