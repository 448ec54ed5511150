/* Structured replies and BLOCK_STATUS descriptors.  See reply.h. */
#include "nbd/reply.h"

#include <stdbool.h>

#include "nbd/store.h"

_Static_assert(4 + 8 * REPLY_STATUS_MAX <= NBD_STATUS_BUF,
	       "BLOCK_STATUS descriptors fit in their buffer");

uint32_t reply_structured(uint8_t hdr[REPLY_HDR_MAX], const struct nbd_request *r, uint32_t error,
			  uint32_t *data_len)
{
	if (error) {
		nbd_chunk_encode(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r->cookie, 6);
		put_be32(hdr + 20, error);
		put_be16(hdr + 24, 0);
		*data_len = 0;
		return 26;
	}
	if (r->type == NBD_CMD_BLOCK_STATUS) {
		nbd_chunk_encode(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie,
				 *data_len);
		return 20;
	}
	if (r->length == 0) {
		nbd_chunk_encode(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 0);
		*data_len = 0;
		return 20;
	}
	nbd_chunk_encode(hdr, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
			 8 + r->length);
	put_be64(hdr + 20, r->offset);
	*data_len = r->length;
	return 28;
}

/* From SEEK_DATA/SEEK_HOLE.  These lseeks do not wait for data I/O, so the
 * connection runs them inline rather than on a helper thread. */
uint32_t reply_block_status(const struct store *st, uint32_t meta_id,
			    const struct nbd_request *r, uint8_t *buf)
{
	uint64_t off = r->offset, end = off + r->length;
	int max = r->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : REPLY_STATUS_MAX, n = 0;

	put_be32(buf, meta_id);
	while (off < end && n < max) {
		bool hole;
		uint64_t len = store_extent(st, off, end - off, &hole);

		put_be32(buf + 4 + 8 * n, (uint32_t)len);
		put_be32(buf + 8 + 8 * n, hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0);
		off += len;
		n++;
	}
	return 4 + 8 * (uint32_t)n;
}
