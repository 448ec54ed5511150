/* NBD wire format codecs. */
#include "wire.h"

#include <errno.h>

int nbd_request_decode(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *req)
{
	if (get_be32(buf) != NBD_REQUEST_MAGIC)
		return -1;
	req->flags = get_be16(buf + 4);
	req->type = get_be16(buf + 6);
	req->cookie = get_be64(buf + 8);
	req->offset = get_be64(buf + 16);
	req->length = get_be32(buf + 24);
	return 0;
}

void nbd_request_encode(uint8_t buf[NBD_REQUEST_SIZE], const struct nbd_request *req)
{
	put_be32(buf, NBD_REQUEST_MAGIC);
	put_be16(buf + 4, req->flags);
	put_be16(buf + 6, req->type);
	put_be64(buf + 8, req->cookie);
	put_be64(buf + 16, req->offset);
	put_be32(buf + 24, req->length);
}

void nbd_simple_reply_encode(uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t error,
			     uint64_t cookie)
{
	put_be32(buf, NBD_SIMPLE_REPLY_MAGIC);
	put_be32(buf + 4, error);
	put_be64(buf + 8, cookie);
}

int nbd_simple_reply_decode(const uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t *error,
			    uint64_t *cookie)
{
	if (get_be32(buf) != NBD_SIMPLE_REPLY_MAGIC)
		return -1;
	*error = get_be32(buf + 4);
	*cookie = get_be64(buf + 8);
	return 0;
}

void nbd_chunk_encode(uint8_t buf[NBD_CHUNK_HDR_SIZE], uint16_t flags, uint16_t type,
		      uint64_t cookie, uint32_t length)
{
	put_be32(buf, NBD_STRUCT_REPLY_MAGIC);
	put_be16(buf + 4, flags);
	put_be16(buf + 6, type);
	put_be64(buf + 8, cookie);
	put_be32(buf + 16, length);
}

uint32_t nbd_errno_to_wire(int neg_errno)
{
	switch (-neg_errno) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case EOPNOTSUPP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

const char *nbd_cmd_name(uint16_t type)
{
	static const char *const names[] = {
		"READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES",
		"BLOCK_STATUS",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "UNKNOWN";
}
