/* NBD wire format: constants and byte-order codecs.  Pure code, no I/O.
 * Every integer on the wire is big-endian; conversion happens only here. */
#ifndef BLKREP_NBD_WIRE_H
#define BLKREP_NBD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define NBD_MAGIC		0x4e42444d41474943ULL
#define NBD_IHAVEOPT		0x49484156454F5054ULL
#define NBD_REP_MAGIC		0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC	0x25609513U
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698U
#define NBD_STRUCT_REPLY_MAGIC	0x668e33efU

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE	(1U << 0)
#define NBD_FLAG_NO_ZEROES	(1U << 1)

enum nbd_opt {
	NBD_OPT_EXPORT_NAME = 1,
	NBD_OPT_ABORT = 2,
	NBD_OPT_LIST = 3,
	NBD_OPT_STARTTLS = 5,
	NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7,
	NBD_OPT_STRUCTURED_REPLY = 8,
	NBD_OPT_LIST_META_CONTEXT = 9,
	NBD_OPT_SET_META_CONTEXT = 10,
	NBD_OPT_EXTENDED_HEADERS = 11,
};

#define NBD_REP_ACK		1U
#define NBD_REP_SERVER		2U
#define NBD_REP_INFO		3U
#define NBD_REP_META_CONTEXT	4U
#define NBD_REP_ERR(n)		((1U << 31) + (n))
#define NBD_REP_ERR_UNSUP	NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY	NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID	NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM	NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD	NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN	NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN	NBD_REP_ERR(7)
#define NBD_REP_ERR_TOO_BIG	NBD_REP_ERR(9)

#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS		(1U << 0)
#define NBD_FLAG_READ_ONLY		(1U << 1)
#define NBD_FLAG_SEND_FLUSH		(1U << 2)
#define NBD_FLAG_SEND_FUA		(1U << 3)
#define NBD_FLAG_ROTATIONAL		(1U << 4)
#define NBD_FLAG_SEND_TRIM		(1U << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES	(1U << 6)
#define NBD_FLAG_SEND_DF		(1U << 7)
#define NBD_FLAG_CAN_MULTI_CONN		(1U << 8)
#define NBD_FLAG_SEND_CACHE		(1U << 10)
#define NBD_FLAG_SEND_FAST_ZERO		(1U << 11)

enum nbd_cmd {
	NBD_CMD_READ = 0,
	NBD_CMD_WRITE = 1,
	NBD_CMD_DISC = 2,
	NBD_CMD_FLUSH = 3,
	NBD_CMD_TRIM = 4,
	NBD_CMD_CACHE = 5,
	NBD_CMD_WRITE_ZEROES = 6,
	NBD_CMD_BLOCK_STATUS = 7,
};

#define NBD_CMD_FLAG_FUA	(1U << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1U << 1)
#define NBD_CMD_FLAG_DF		(1U << 2)
#define NBD_CMD_FLAG_REQ_ONE	(1U << 3)
#define NBD_CMD_FLAG_FAST_ZERO	(1U << 4)

#define NBD_REPLY_FLAG_DONE		(1U << 0)
#define NBD_REPLY_TYPE_NONE		0
#define NBD_REPLY_TYPE_OFFSET_DATA	1
#define NBD_REPLY_TYPE_OFFSET_HOLE	2
#define NBD_REPLY_TYPE_BLOCK_STATUS	5
#define NBD_REPLY_TYPE_ERROR		32769

#define NBD_STATE_HOLE	(1U << 0)
#define NBD_STATE_ZERO	(1U << 1)

#define NBD_EPERM	1
#define NBD_EIO		5
#define NBD_ENOMEM	12
#define NBD_EINVAL	22
#define NBD_ENOSPC	28
#define NBD_EOVERFLOW	75
#define NBD_ENOTSUP	95
#define NBD_ESHUTDOWN	108

#define NBD_REQUEST_SIZE	28
#define NBD_SIMPLE_REPLY_SIZE	16
#define NBD_CHUNK_HDR_SIZE	20

/* Largest data payload blkrep advertises and accepts (the kernel's maximum). */
#define NBD_MAX_PAYLOAD		(32U << 20)

struct nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Decodes a 28-byte request header.  Returns 0, or -1 when the magic is
 * wrong (the connection has lost framing and must be dropped). */
int nbd_request_decode(const uint8_t buf[NBD_REQUEST_SIZE], struct nbd_request *req);

/* Encodes a request header (used by tests and clients). */
void nbd_request_encode(uint8_t buf[NBD_REQUEST_SIZE], const struct nbd_request *req);

/* Encodes a 16-byte simple reply header. */
void nbd_simple_reply_encode(uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t error,
			     uint64_t cookie);

/* Decodes a simple reply header (a client's side).  Returns 0, or -1 when
 * the magic is wrong. */
int nbd_simple_reply_decode(const uint8_t buf[NBD_SIMPLE_REPLY_SIZE], uint32_t *error,
			    uint64_t *cookie);

/* Encodes a 20-byte structured reply chunk header. */
void nbd_chunk_encode(uint8_t buf[NBD_CHUNK_HDR_SIZE], uint16_t flags, uint16_t type,
		      uint64_t cookie, uint32_t length);

/* Maps a negative errno from the backing store to the NBD error to send. */
uint32_t nbd_errno_to_wire(int neg_errno);

/* Name of a command for log lines ("READ", ...; "UNKNOWN" otherwise). */
const char *nbd_cmd_name(uint16_t type);

#endif
