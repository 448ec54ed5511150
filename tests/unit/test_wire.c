/* Unit tests for nbd/wire: byte-exact encodings checked against bytes
 * written out by hand from the NBD spec, not against the codec itself. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "nbd/wire.h"

/* The constants are the protocol: a typo here breaks every client. */
Test(wire, constants_match_the_spec)
{
	cr_assert_eq(NBD_MAGIC, 0x4e42444d41474943ULL);
	cr_assert_eq(NBD_IHAVEOPT, 0x49484156454F5054ULL);
	cr_assert_eq(NBD_REP_MAGIC, 0x0003e889045565a9ULL);
	cr_assert_eq(NBD_REQUEST_MAGIC, 0x25609513U);
	cr_assert_eq(NBD_SIMPLE_REPLY_MAGIC, 0x67446698U);
	cr_assert_eq(NBD_STRUCT_REPLY_MAGIC, 0x668e33efU);
	cr_assert_eq(NBD_REP_ERR_UNSUP, 0x80000001U);
	cr_assert_eq(NBD_REP_ERR_POLICY, 0x80000002U);
	cr_assert_eq(NBD_REP_ERR_INVALID, 0x80000003U);
	cr_assert_eq(NBD_REP_ERR_UNKNOWN, 0x80000006U);
	cr_assert_eq(NBD_REP_ERR_TOO_BIG, 0x80000009U);
	/* nbd.h upstream has a stale 3 here; the spec says 5. */
	cr_assert_eq(NBD_REPLY_TYPE_BLOCK_STATUS, 5);
	cr_assert_eq(NBD_REPLY_TYPE_ERROR, 32769);
	cr_assert_eq(NBD_FLAG_SEND_DF, 0x80U);
	cr_assert_eq(NBD_FLAG_CAN_MULTI_CONN, 0x100U);
	cr_assert_eq(NBD_FLAG_SEND_CACHE, 0x400U);
	cr_assert_eq(NBD_FLAG_SEND_FAST_ZERO, 0x800U);
	cr_assert_eq(NBD_CMD_FLAG_FAST_ZERO, 0x10U);
	cr_assert_eq(NBD_EOVERFLOW, 75);
	cr_assert_eq(NBD_ESHUTDOWN, 108);
	cr_assert_eq(NBD_MAX_PAYLOAD, 32U << 20);
}

Test(wire, be_helpers_are_big_endian)
{
	uint8_t b[8];
	static const uint8_t be64[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

	put_be16(b, 0xbeef);
	cr_assert(b[0] == 0xbe && b[1] == 0xef);
	cr_assert_eq(get_be16(b), 0xbeef);
	put_be32(b, 0xdeadbeefU);
	cr_assert(b[0] == 0xde && b[1] == 0xad && b[2] == 0xbe && b[3] == 0xef);
	cr_assert_eq(get_be32(b), 0xdeadbeefU);
	put_be64(b, 0x0123456789abcdefULL);
	cr_assert_arr_eq(b, be64, 8);
	cr_assert_eq(get_be64(b), 0x0123456789abcdefULL);
	/* High bits must not sign-extend through int promotion. */
	memset(b, 0xff, sizeof(b));
	cr_assert_eq(get_be16(b), 0xffff);
	cr_assert_eq(get_be32(b), 0xffffffffU);
	cr_assert_eq(get_be64(b), UINT64_MAX);
}

static const uint8_t req_bytes[NBD_REQUEST_SIZE] = {
	0x25, 0x60, 0x95, 0x13,				/* magic */
	0x00, 0x05,					/* flags FUA|DF */
	0x00, 0x01,					/* type WRITE */
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* cookie */
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00, /* offset */
	0x00, 0x02, 0x00, 0x00,				/* length */
};

Test(wire, request_decode_reads_every_field)
{
	struct nbd_request r;

	cr_assert_eq(nbd_request_decode(req_bytes, &r), 0);
	cr_assert_eq(r.flags, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF);
	cr_assert_eq(r.type, NBD_CMD_WRITE);
	cr_assert_eq(r.cookie, 0x1122334455667788ULL);
	cr_assert_eq(r.offset, 0x100001000ULL);
	cr_assert_eq(r.length, 0x20000U);
}

Test(wire, request_encode_is_byte_exact)
{
	struct nbd_request r = {
		.flags = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF,
		.type = NBD_CMD_WRITE,
		.cookie = 0x1122334455667788ULL,
		.offset = 0x100001000ULL,
		.length = 0x20000U,
	};
	uint8_t buf[NBD_REQUEST_SIZE];

	memset(buf, 0xaa, sizeof(buf));
	nbd_request_encode(buf, &r);
	cr_assert_arr_eq(buf, req_bytes, NBD_REQUEST_SIZE);
}

/* A wrong magic means the stream lost framing: the caller must drop it. */
Test(wire, request_decode_rejects_bad_magic)
{
	uint8_t buf[NBD_REQUEST_SIZE];
	struct nbd_request r;

	memcpy(buf, req_bytes, sizeof(buf));
	buf[3] ^= 1;
	cr_assert_eq(nbd_request_decode(buf, &r), -1);
	/* The simple reply magic is not a request magic either. */
	put_be32(buf, NBD_SIMPLE_REPLY_MAGIC);
	cr_assert_eq(nbd_request_decode(buf, &r), -1);
}

Test(wire, request_roundtrip_extremes)
{
	struct nbd_request in = {
		.flags = 0xffff,
		.type = 0xffff,
		.cookie = UINT64_MAX,
		.offset = UINT64_MAX - 1,
		.length = UINT32_MAX,
	};
	struct nbd_request out;
	uint8_t buf[NBD_REQUEST_SIZE];

	nbd_request_encode(buf, &in);
	cr_assert_eq(nbd_request_decode(buf, &out), 0);
	cr_assert_eq(out.flags, in.flags);
	cr_assert_eq(out.type, in.type);
	cr_assert_eq(out.cookie, in.cookie);
	cr_assert_eq(out.offset, in.offset);
	cr_assert_eq(out.length, in.length);
}

Test(wire, simple_reply_is_byte_exact)
{
	static const uint8_t want[NBD_SIMPLE_REPLY_SIZE] = {
		0x67, 0x44, 0x66, 0x98,				/* magic */
		0x00, 0x00, 0x00, 0x1c,				/* ENOSPC */
		0xca, 0xfe, 0xba, 0xbe, 0x00, 0x00, 0x00, 0x2a, /* cookie */
	};
	uint8_t buf[NBD_SIMPLE_REPLY_SIZE];

	nbd_simple_reply_encode(buf, NBD_ENOSPC, 0xcafebabe0000002aULL);
	cr_assert_arr_eq(buf, want, sizeof(want));
}

Test(wire, chunk_header_is_byte_exact)
{
	static const uint8_t want[NBD_CHUNK_HDR_SIZE] = {
		0x66, 0x8e, 0x33, 0xef,				/* magic */
		0x00, 0x01,					/* DONE */
		0x00, 0x05,					/* BLOCK_STATUS */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* cookie */
		0x00, 0x00, 0x00, 0x0c,				/* length */
	};
	uint8_t buf[NBD_CHUNK_HDR_SIZE];

	nbd_chunk_encode(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
			 0x0102030405060708ULL, 12);
	cr_assert_arr_eq(buf, want, sizeof(want));
}

Test(wire, error_chunk_type_is_32769)
{
	uint8_t buf[NBD_CHUNK_HDR_SIZE];

	nbd_chunk_encode(buf, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, 7, 6);
	cr_assert(buf[6] == 0x80 && buf[7] == 0x01);
}

Test(wire, errno_to_wire_maps_store_errors)
{
	cr_assert_eq(nbd_errno_to_wire(0), 0);
	cr_assert_eq(nbd_errno_to_wire(-EPERM), NBD_EPERM);
	cr_assert_eq(nbd_errno_to_wire(-EROFS), NBD_EPERM);
	cr_assert_eq(nbd_errno_to_wire(-EIO), NBD_EIO);
	cr_assert_eq(nbd_errno_to_wire(-ENOMEM), NBD_ENOMEM);
	cr_assert_eq(nbd_errno_to_wire(-EINVAL), NBD_EINVAL);
	cr_assert_eq(nbd_errno_to_wire(-ENOSPC), NBD_ENOSPC);
	cr_assert_eq(nbd_errno_to_wire(-EDQUOT), NBD_ENOSPC);
	cr_assert_eq(nbd_errno_to_wire(-EFBIG), NBD_ENOSPC);
	cr_assert_eq(nbd_errno_to_wire(-EOVERFLOW), NBD_EOVERFLOW);
	cr_assert_eq(nbd_errno_to_wire(-EOPNOTSUPP), NBD_ENOTSUP);
	cr_assert_eq(nbd_errno_to_wire(-ESHUTDOWN), NBD_ESHUTDOWN);
}

/* Errors with no NBD equivalent must still be errors, never 0. */
Test(wire, errno_to_wire_unknown_is_eio)
{
	cr_assert_eq(nbd_errno_to_wire(-EBADF), NBD_EIO);
	cr_assert_eq(nbd_errno_to_wire(-ENODEV), NBD_EIO);
	cr_assert_eq(nbd_errno_to_wire(-EAGAIN), NBD_EIO);
	cr_assert_eq(nbd_errno_to_wire(-9999), NBD_EIO);
	cr_assert_eq(nbd_errno_to_wire(EINVAL), NBD_EIO);
}

Test(wire, cmd_names)
{
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_READ), "READ");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_WRITE), "WRITE");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_DISC), "DISC");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_FLUSH), "FLUSH");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_TRIM), "TRIM");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_CACHE), "CACHE");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_WRITE_ZEROES), "WRITE_ZEROES");
	cr_assert_str_eq(nbd_cmd_name(NBD_CMD_BLOCK_STATUS), "BLOCK_STATUS");
	cr_assert_str_eq(nbd_cmd_name(8), "UNKNOWN");
	cr_assert_str_eq(nbd_cmd_name(0xffff), "UNKNOWN");
}

Test(wire, simple_reply_decodes_what_it_encodes)
{
	uint8_t buf[NBD_SIMPLE_REPLY_SIZE];
	uint32_t error;
	uint64_t cookie;

	nbd_simple_reply_encode(buf, NBD_EIO, 0x1122334455667788ULL);
	cr_assert_eq(nbd_simple_reply_decode(buf, &error, &cookie), 0);
	cr_assert_eq(error, NBD_EIO);
	cr_assert_eq(cookie, 0x1122334455667788ULL);
	buf[0] ^= 1;
	cr_assert_eq(nbd_simple_reply_decode(buf, &error, &cookie), -1, "bad magic");
}
