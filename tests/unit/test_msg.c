/* Unit tests for proto/msg: the header layout against bytes written out by
 * hand, one test per validation rule, the HELLO codec and its validation,
 * version negotiation and refusal reasons. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/msg.h"

#define KiB	(1U << 10)
#define MiB	(1U << 20)

static int decode(uint16_t type, uint16_t flags, uint32_t length, uint32_t count, uint64_t seq,
		  uint64_t offset, const char **why)
{
	struct msg_hdr h = {
		.type = type,
		.flags = flags,
		.length = length,
		.count = count,
		.seq = seq,
		.offset = offset,
	};
	struct msg_hdr out;
	uint8_t b[MSG_HDR_SIZE];
	int rc;

	msg_hdr_encode(b, &h);
	*why = NULL;
	rc = msg_hdr_decode(b, &out, why);
	if (rc == 0) {
		cr_assert_null(*why);
		cr_assert_eq(out.type, type);
		cr_assert_eq(out.flags, flags);
		cr_assert_eq(out.length, length);
		cr_assert_eq(out.count, count);
		cr_assert_eq(out.seq, seq);
		cr_assert_eq(out.offset, offset);
	} else {
		cr_assert_eq(rc, -1);
		cr_assert_not_null(*why);
	}
	return rc;
}

#define OK(type, flags, length, count, seq, offset)                                      \
	do {                                                                               \
		const char *why_;                                                          \
		cr_assert_eq(decode(type, flags, length, count, seq, offset, &why_), 0,  \
			     "%s refused: %s", msg_type_name(type), why_);                 \
	} while (0)

#define BAD(type, flags, length, count, seq, offset, reason)                             \
	do {                                                                               \
		const char *why_;                                                          \
		cr_assert_eq(decode(type, flags, length, count, seq, offset, &why_), -1, \
			     "%s accepted", msg_type_name(type));                          \
		cr_assert_str_eq(why_, reason);                                            \
	} while (0)

/* The wire format is frozen: check the encoder against hand-written bytes. */
Test(msg, header_layout_is_big_endian_and_frozen)
{
	static const uint8_t want[MSG_HDR_SIZE] = {
		0x42, 0x4c, 0x4b, 0x52,				/* "BLKR" */
		0x00, 0x05,					/* WRITE */
		0x00, 0x01,					/* FUA */
		0x00, 0x00, 0x10, 0x00,				/* length 4096 */
		0x00, 0x00, 0x10, 0x00,				/* count 4096 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,	/* seq */
		0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00,	/* offset */
	};
	struct msg_hdr h = {
		.type = MSG_WRITE,
		.flags = MSG_F_FUA,
		.length = 4096,
		.count = 4096,
		.seq = 0x0102030405060708ULL,
		.offset = 0x100000200ULL,
	};
	uint8_t b[MSG_HDR_SIZE];
	const char *why;

	msg_hdr_encode(b, &h);
	cr_assert_arr_eq(b, want, sizeof(want));
	cr_assert_eq(msg_hdr_decode(want, &h, &why), 0);
	cr_assert_eq(h.seq, 0x0102030405060708ULL);
	cr_assert_eq(h.offset, 0x100000200ULL);
}

Test(msg, constants_are_the_protocol)
{
	cr_assert_eq(MSG_MAGIC, 0x424c4b52U);
	cr_assert_eq(MSG_HDR_SIZE, 32);
	cr_assert_eq(MSG_HELLO, 1);
	cr_assert_eq(MSG_RESYNC_DONE, 16);
	cr_assert_eq(MSG_MAX_DATA, 32 * MiB);
	cr_assert_eq(MSG_MAX_BITMAP, 64 * KiB);
	cr_assert_eq(MSG_VERSION_MIN, 1);
	cr_assert_eq(MSG_VERSION_MAX, 1);
}

Test(msg, bad_magic_is_refused)
{
	uint8_t b[MSG_HDR_SIZE];
	struct msg_hdr h = { .type = MSG_PING };
	const char *why = NULL;

	msg_hdr_encode(b, &h);
	b[0] ^= 0x01;
	cr_assert_eq(msg_hdr_decode(b, &h, &why), -1);
	cr_assert_str_eq(why, "bad magic");
}

Test(msg, unknown_types_are_refused)
{
	BAD(0, 0, 0, 0, 0, 0, "unknown message type");
	BAD(MSG_TYPE_MAX + 1, 0, 0, 0, 0, 0, "unknown message type");
	BAD(0xffff, 0, 0, 0, 0, 0, "unknown message type");
}

Test(msg, a_valid_session_decodes)
{
	OK(MSG_HELLO, 0, MSG_HELLO_SIZE, 0, 0, 0);
	OK(MSG_AUTH, 0, MSG_AUTH_SIZE, 0, 0, 0);
	OK(MSG_STATE, 0, MSG_HELLO_SIZE, 0, 7, 0);
	OK(MSG_WRITE, 0, 4096, 4096, 1, 8192);
	OK(MSG_WRITE, MSG_F_FUA, 1, 1, 2, 0);
	OK(MSG_TRIM, 0, 0, 4096, 3, 0);
	OK(MSG_ZERO, MSG_F_FUA | MSG_F_NO_HOLE, 0, 65536, 4, 0);
	OK(MSG_FLUSH, 0, 0, 0, 17, 0);
	OK(MSG_ACK, 0, 0, 0, 1, 0);
	OK(MSG_ACK, 0, 0, 5 /* EIO */, 1, 0);
	OK(MSG_FLUSH_ACK, 0, 0, 0, 17, 0);
	OK(MSG_PING, 0, 0, 0, 99, 0);
	OK(MSG_PONG, 0, 0, 0, 99, 0);
	OK(MSG_BITMAP, 0, 64 * KiB, 0, 0, 0);
	OK(MSG_BITMAP, MSG_F_LAST, 3, 0, 0, 8 * 64 * KiB);
	OK(MSG_RESYNC_REQ, 0, 0, MiB, 5, 4 * MiB);
	OK(MSG_RESYNC_DATA, 0, MiB, MiB, 5, 4 * MiB);
	OK(MSG_RESYNC_DONE, 0, 0, 0, 0, 0);
	OK(MSG_VERIFY_REQ, 0, 0, MiB, 6, 8 * MiB);
	OK(MSG_VERIFY_REPLY, 0, 128, 0, 6, 0);
	OK(MSG_REFUSE, 0, 1, 0, 0, 0);
}

Test(msg, checksum_lists_are_whole_digests)
{
	BAD(MSG_VERIFY_REPLY, 0, 12, 0, 1, 0, "bad checksum list length");
	BAD(MSG_VERIFY_REPLY, 0, 0, 0, 1, 0, "bad checksum list length");
	BAD(MSG_VERIFY_REPLY, 0, 64 * KiB + 8, 0, 1, 0, "bad checksum list length");
	BAD(MSG_VERIFY_REQ, 0, 0, 0, 1, 0, "empty range");
	BAD(MSG_VERIFY_REQ, 0, 0, 32 * MiB + 1, 1, 0, "range too large");
}

Test(msg, flags_are_allowed_only_where_they_mean_something)
{
	for (uint16_t t = 1; t <= MSG_TYPE_MAX; t++) {
		for (int bit = 0; bit < 16; bit++) {
			uint16_t f = (uint16_t)(1U << bit);
			bool allowed = (f == MSG_F_FUA && (t == MSG_WRITE || t == MSG_TRIM ||
							   t == MSG_ZERO)) ||
				       (f == MSG_F_NO_HOLE && t == MSG_ZERO) ||
				       (f == MSG_F_LAST && t == MSG_BITMAP) ||
				       (f == MSG_F_NOBARRIER && t == MSG_FLUSH);
			uint32_t len = t == MSG_WRITE || t == MSG_RESYNC_DATA ? 512 :
				       t == MSG_HELLO || t == MSG_STATE	 ? MSG_HELLO_SIZE :
				       t == MSG_AUTH				 ? MSG_AUTH_SIZE :
				       t == MSG_REFUSE || t == MSG_BITMAP	 ? 16 :
										   0;
			uint32_t count = t == MSG_WRITE || t == MSG_RESYNC_DATA ||
							 t == MSG_TRIM || t == MSG_ZERO ||
							 t == MSG_RESYNC_REQ ?
						 512 :
						 0;
			const char *why;
			int rc = decode(t, f, len, count, 0, 0, &why);

			cr_assert_eq(rc, allowed ? 0 : -1, "%s flag %#x: %s", msg_type_name(t),
				     f, why ? why : "accepted");
			if (!allowed)
				cr_assert_str_eq(why, "flags not allowed for this type");
		}
	}
}

Test(msg, write_payload_equals_count_within_32_mib)
{
	OK(MSG_WRITE, 0, MSG_MAX_DATA, MSG_MAX_DATA, 1, 0);
	BAD(MSG_WRITE, 0, MSG_MAX_DATA + 1, MSG_MAX_DATA + 1, 1, 0, "data payload too large");
	BAD(MSG_WRITE, 0, 0, 0, 1, 0, "empty data payload");
	BAD(MSG_WRITE, 0, 4096, 8192, 1, 0, "payload length differs from count");
	BAD(MSG_WRITE, 0, 8192, 4096, 1, 0, "payload length differs from count");
	BAD(MSG_RESYNC_DATA, 0, MSG_MAX_DATA + 1, MSG_MAX_DATA + 1, 1, 0,
	    "data payload too large");
	BAD(MSG_RESYNC_DATA, 0, 512, 1024, 1, 0, "payload length differs from count");
}

/* Rule 5 of DESIGN.md: TRIM and ZERO are never capped like data writes. */
Test(msg, trim_and_zero_carry_no_payload_and_may_be_huge)
{
	OK(MSG_TRIM, 0, 0, UINT32_MAX, 1, 0);
	OK(MSG_ZERO, 0, 0, UINT32_MAX, 1, 1ULL << 40);
	BAD(MSG_TRIM, 0, 4096, 4096, 1, 0, "unexpected payload");
	BAD(MSG_ZERO, 0, 1, 1, 1, 0, "unexpected payload");
	BAD(MSG_TRIM, 0, 0, 0, 1, 0, "empty range");
	BAD(MSG_ZERO, 0, 0, 0, 1, 0, "empty range");
}

Test(msg, messages_without_payload_refuse_one)
{
	static const uint16_t types[] = { MSG_FLUSH, MSG_ACK,	     MSG_FLUSH_ACK, MSG_PING,
					  MSG_PONG,  MSG_RESYNC_REQ, MSG_RESYNC_DONE, MSG_VERIFY_REQ };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint32_t count = types[i] == MSG_RESYNC_REQ || types[i] == MSG_VERIFY_REQ ? 512 : 0;

		BAD(types[i], 0, 1, count, 0, 0, "unexpected payload");
		BAD(types[i], 0, UINT32_MAX, count, 0, 0, "unexpected payload");
	}
}

Test(msg, fixed_size_payloads)
{
	BAD(MSG_HELLO, 0, MSG_HELLO_SIZE - 1, 0, 0, 0, "bad hello length");
	OK(MSG_HELLO, 0, MSG_MAX_HELLO, 0, 0, 0);	/* a later version's longer HELLO */
	BAD(MSG_HELLO, 0, MSG_MAX_HELLO + 1, 0, 0, 0, "bad hello length");
	BAD(MSG_STATE, 0, MSG_HELLO_SIZE + 1, 0, 0, 0, "bad state length");
	BAD(MSG_STATE, 0, MSG_HELLO_SIZE - 1, 0, 0, 0, "bad state length");
	BAD(MSG_AUTH, 0, 31, 0, 0, 0, "bad auth length");
	BAD(MSG_AUTH, 0, 33, 0, 0, 0, "bad auth length");
	BAD(MSG_AUTH, 0, 0, 0, 0, 0, "bad auth length");
}

Test(msg, refusal_reason_is_1_to_1024_bytes)
{
	OK(MSG_REFUSE, 0, MSG_MAX_REASON, 0, 0, 0);
	BAD(MSG_REFUSE, 0, 0, 0, 0, 0, "bad refusal length");
	BAD(MSG_REFUSE, 0, MSG_MAX_REASON + 1, 0, 0, 0, "bad refusal length");
}

Test(msg, bitmap_chunks_are_byte_aligned_and_at_most_64_kib)
{
	OK(MSG_BITMAP, 0, 1, 0, 0, 8);
	BAD(MSG_BITMAP, 0, 0, 0, 0, 0, "bad bitmap chunk length");
	BAD(MSG_BITMAP, 0, 64 * KiB + 1, 0, 0, 0, "bad bitmap chunk length");
	BAD(MSG_BITMAP, 0, 16, 0, 0, 12, "bitmap chunk not byte-aligned");
	BAD(MSG_BITMAP, MSG_F_LAST, 16, 0, 0, 1, "bitmap chunk not byte-aligned");
	BAD(MSG_BITMAP, 0, 16, 16, 0, 0, "count must be zero");
	BAD(MSG_BITMAP, 0, 16, 0, 0, UINT64_MAX - 7, "bitmap chunk out of range");
}

/* Unused fields must be zero: one encoding per message, and a sender that
 * fills them has a bug worth hearing about. */
Test(msg, unused_fields_must_be_zero)
{
	BAD(MSG_FLUSH, 0, 0, 0, 1, 4096, "offset must be zero");
	BAD(MSG_FLUSH, 0, 0, 4096, 1, 0, "count must be zero");
	BAD(MSG_PING, 0, 0, 1, 1, 0, "count must be zero");
	BAD(MSG_PONG, 0, 0, 0, 1, 1, "offset must be zero");
	BAD(MSG_ACK, 0, 0, 0, 1, 512, "offset must be zero");
	BAD(MSG_HELLO, 0, MSG_HELLO_SIZE, 1, 0, 0, "count must be zero");
	BAD(MSG_AUTH, 0, MSG_AUTH_SIZE, 0, 0, 1, "offset must be zero");
	BAD(MSG_RESYNC_DONE, 0, 0, 0, 0, 1, "offset must be zero");
}

Test(msg, ack_count_is_an_errno)
{
	OK(MSG_ACK, 0, 0, MSG_MAX_ERRNO, 1, 0);
	OK(MSG_FLUSH_ACK, 0, 0, 28 /* ENOSPC */, 1, 0);
	BAD(MSG_ACK, 0, 0, MSG_MAX_ERRNO + 1, 1, 0, "bad error code");
	BAD(MSG_FLUSH_ACK, 0, 0, UINT32_MAX, 1, 0, "bad error code");
}

Test(msg, resync_request_fits_one_data_reply)
{
	OK(MSG_RESYNC_REQ, 0, 0, MSG_MAX_DATA, 1, 0);
	BAD(MSG_RESYNC_REQ, 0, 0, MSG_MAX_DATA + 1, 1, 0, "range too large");
	BAD(MSG_RESYNC_REQ, 0, 0, 0, 1, 0, "empty range");
}

/* pwrite() takes a signed off_t: nothing may reach 2^63, and offset +
 * count must not wrap. */
Test(msg, ranges_stay_below_2_pow_63)
{
	uint64_t top = (uint64_t)INT64_MAX;

	OK(MSG_TRIM, 0, 0, 4096, 1, top - 4096);
	BAD(MSG_TRIM, 0, 0, 4096, 1, top - 4095, "range beyond 2^63");
	BAD(MSG_WRITE, 0, 512, 512, 1, UINT64_MAX - 100, "range beyond 2^63");
	BAD(MSG_ZERO, 0, 0, UINT32_MAX, 1, UINT64_MAX, "range beyond 2^63");
	BAD(MSG_RESYNC_REQ, 0, 0, 512, 1, 1ULL << 63, "range beyond 2^63");
}

static int bounds(uint16_t type, uint32_t length, uint32_t count, uint64_t offset,
		  uint64_t size, uint64_t bits)
{
	struct msg_hdr h = { .type = type, .length = length, .count = count, .offset = offset };
	const char *why = NULL;
	int rc = msg_hdr_check_bounds(&h, size, bits, &why);

	cr_assert((rc == 0) == (why == NULL));
	return rc;
}

Test(msg, ranges_and_bitmap_chunks_stay_inside_the_session)
{
	uint64_t size = 1ULL << 30;

	cr_assert_eq(bounds(MSG_WRITE, 4096, 4096, size - 4096, size, 0), 0);
	cr_assert_eq(bounds(MSG_WRITE, 4096, 4096, size - 4095, size, 0), -1);
	cr_assert_eq(bounds(MSG_TRIM, 0, UINT32_MAX, size, size, 0), -1);
	cr_assert_eq(bounds(MSG_ZERO, 0, 1, size - 1, size, 0), 0);
	cr_assert_eq(bounds(MSG_RESYNC_REQ, 0, 1, size, size, 0), -1);
	cr_assert_eq(bounds(MSG_RESYNC_DATA, 512, 512, 2 * size, size, 0), -1);
	cr_assert_eq(bounds(MSG_FLUSH, 0, 0, 0, size, 0), 0);

	/* 20 bits: 3 bytes, the last one with 4 padding bits */
	cr_assert_eq(bounds(MSG_BITMAP, 3, 0, 0, size, 20), 0);
	cr_assert_eq(bounds(MSG_BITMAP, 4, 0, 0, size, 20), -1);
	cr_assert_eq(bounds(MSG_BITMAP, 1, 0, 16, size, 20), 0);
	cr_assert_eq(bounds(MSG_BITMAP, 2, 0, 16, size, 20), -1);
	cr_assert_eq(bounds(MSG_BITMAP, 1, 0, 24, size, 20), -1);
	cr_assert_eq(bounds(MSG_BITMAP, 1, 0, UINT64_MAX - 7, size, 20), -1);
	cr_assert_eq(bounds(0, 0, 0, 0, size, 20), -1);
}

static struct msg_hello sample_hello(void)
{
	struct msg_hello m = {
		.version_min = 1,
		.version_max = 1,
		.resource = "r0",
		.node = "alpha",
		.size_bytes = 1ULL << 30,
		.extent_bytes = 64 * KiB,
		.role = MSG_ROLE_PRIMARY,
		.disk = MSG_DISK_UPTODATE,
		.flags = MSG_HELLO_F_CRASHED_PRIMARY | MSG_HELLO_F_ZEROED,
		.gen_current = 0x1122334455667788ULL,
		.gen_bitmap = 4,
		.gen_history = { 0xa, 0xb, 0, 0 },
	};

	for (int i = 0; i < MSG_NONCE_SIZE; i++)
		m.nonce[i] = (uint8_t)(i * 7 + 1);
	return m;
}

/* Field by field: the struct has padding. */
static void assert_hello_eq(const struct msg_hello *a, const struct msg_hello *b)
{
	cr_assert_eq(a->version_min, b->version_min);
	cr_assert_eq(a->version_max, b->version_max);
	cr_assert_arr_eq(a->resource, b->resource, MSG_NAME_SIZE);
	cr_assert_arr_eq(a->node, b->node, MSG_NAME_SIZE);
	cr_assert_eq(a->size_bytes, b->size_bytes);
	cr_assert_eq(a->extent_bytes, b->extent_bytes);
	cr_assert_eq(a->role, b->role);
	cr_assert_eq(a->disk, b->disk);
	cr_assert_eq(a->flags, b->flags);
	cr_assert_eq(a->gen_current, b->gen_current);
	cr_assert_eq(a->gen_bitmap, b->gen_bitmap);
	cr_assert_arr_eq(a->gen_history, b->gen_history, sizeof(a->gen_history));
	cr_assert_arr_eq(a->nonce, b->nonce, MSG_NONCE_SIZE);
}

Test(msg, hello_roundtrips)
{
	struct msg_hello m = sample_hello(), out;
	uint8_t buf[MSG_HELLO_SIZE];
	const char *why = NULL;

	msg_hello_encode(buf, &m);
	cr_assert_eq(msg_hello_decode(buf, sizeof(buf), &out, &why), 0, "%s", why);
	assert_hello_eq(&m, &out);
	/* version fields first, big-endian; names zero-padded */
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[1], 1);
	cr_assert_str_eq((const char *)buf + 4, "r0");
	cr_assert_eq(buf[4 + 63], 0);
	cr_assert_str_eq((const char *)buf + 4 + 64, "alpha");
}

Test(msg, hello_with_a_later_versions_tail_decodes)
{
	struct msg_hello m = sample_hello(), out;
	uint8_t buf[MSG_HELLO_SIZE + 100];
	const char *why = NULL;

	memset(buf, 0xee, sizeof(buf));
	m.version_max = 3;
	msg_hello_encode(buf, &m);
	cr_assert_eq(msg_hello_decode(buf, sizeof(buf), &out, &why), 0, "%s", why);
	cr_assert_eq(out.version_max, 3);
	cr_assert_eq(msg_hello_decode(buf, MSG_HELLO_SIZE - 1, &out, &why), -1);
	cr_assert_str_eq(why, "hello too short");
}

Test(msg, a_witness_hello_decodes_diskless_with_no_size)
{
	struct msg_hello m = sample_hello(), out;
	uint8_t buf[MSG_HELLO_SIZE];
	const char *why = NULL;

	m.role = MSG_ROLE_WITNESS;
	m.disk = MSG_DISK_DISKLESS;
	m.size_bytes = 0;
	m.extent_bytes = 4096;
	msg_hello_encode(buf, &m);
	cr_assert_eq(msg_hello_decode(buf, sizeof(buf), &out, &why), 0, "%s", why);
	cr_assert_eq(out.size_bytes, 0);
	cr_assert_str_eq(msg_role_name(out.role), "witness");
	cr_assert_str_eq(msg_disk_name(out.disk), "diskless");
	cr_assert_str_eq(msg_role_name(MSG_ROLE_PRIMARY), "primary");
	cr_assert_str_eq(msg_role_name(7), "unknown");
}

Test(msg, long_names_are_truncated_on_encode)
{
	struct msg_hello m = sample_hello(), out;
	uint8_t buf[MSG_HELLO_SIZE];
	const char *why = NULL;

	memset(m.node, 'n', sizeof(m.node));	/* no NUL at all */
	msg_hello_encode(buf, &m);
	cr_assert_eq(msg_hello_decode(buf, sizeof(buf), &out, &why), 0, "%s", why);
	cr_assert_eq(strlen(out.node), MSG_NAME_SIZE - 1);
}

/* Encodes the sample, lets the caller corrupt it, expects a refusal. */
static void hello_refused(void (*spoil)(uint8_t *buf), const char *reason)
{
	struct msg_hello m = sample_hello(), out;
	uint8_t buf[MSG_HELLO_SIZE];
	const char *why = NULL;

	msg_hello_encode(buf, &m);
	spoil(buf);
	cr_assert_eq(msg_hello_decode(buf, sizeof(buf), &out, &why), -1, "accepted, wanted %s",
		     reason);
	cr_assert_str_eq(why, reason);
}

static void versions_reversed(uint8_t *b)
{
	b[1] = 3;	/* min 3 > max 1 */
}

static void version_zero(uint8_t *b)
{
	b[1] = 0;
}

static void resource_empty(uint8_t *b)
{
	b[4] = 0;
	b[5] = 0;
}

static void resource_unterminated(uint8_t *b)
{
	memset(b + 4, 'r', 64);
}

static void resource_unprintable(uint8_t *b)
{
	b[5] = '\n';
}

static void resource_junk_after_nul(uint8_t *b)
{
	b[4 + 40] = 'x';
}

static void node_unprintable(uint8_t *b)
{
	b[68 + 1] = 0x80;
}

static void size_zero(uint8_t *b)
{
	memset(b + 132, 0, 8);
}

static void size_huge(uint8_t *b)
{
	b[132] = 0x80;
}

static void extent_not_power_of_two(uint8_t *b)
{
	b[142] = 0x03;	/* 0x00030000 */
}

static void extent_too_small(uint8_t *b)
{
	memset(b + 140, 0, 4);
	b[143] = 0x80;	/* 128 */
}

static void role_bad(uint8_t *b)
{
	b[144] = 3;
}

static void disk_bad(uint8_t *b)
{
	b[145] = 5;
}

/* A witness must be diskless, and only a diskless node has no data area. */
static void witness_with_a_disk(uint8_t *b)
{
	b[144] = MSG_ROLE_WITNESS;
}

static void diskless_with_a_size(uint8_t *b)
{
	b[144] = MSG_ROLE_WITNESS;
	b[145] = MSG_DISK_DISKLESS;
}

static void flags_unknown(uint8_t *b)
{
	b[146] = 0x80;
}

static void flags2_unknown(uint8_t *b)
{
	b[147] = 4; /* MSG_HELLO_F2_ALL is 0x03 */
}

static void current_zero(uint8_t *b)
{
	memset(b + 148, 0, 8);
}

Test(msg, hello_validation)
{
	hello_refused(versions_reversed, "bad version range");
	hello_refused(version_zero, "bad version range");
	hello_refused(resource_empty, "bad resource name");
	hello_refused(resource_unterminated, "bad resource name");
	hello_refused(resource_unprintable, "bad resource name");
	hello_refused(resource_junk_after_nul, "bad resource name");
	hello_refused(node_unprintable, "bad node name");
	hello_refused(size_zero, "bad size");
	hello_refused(size_huge, "bad size");
	hello_refused(extent_not_power_of_two, "bad extent size");
	hello_refused(extent_too_small, "bad extent size");
	hello_refused(role_bad, "bad role");
	hello_refused(disk_bad, "bad disk state");
	hello_refused(witness_with_a_disk, "bad disk state");
	hello_refused(diskless_with_a_size, "bad size");
	hello_refused(flags_unknown, "unknown hello flags");
	hello_refused(flags2_unknown, "unknown hello flags");
	hello_refused(current_zero, "no current generation");
}

Test(msg, negotiation_picks_the_highest_common_version)
{
	uint16_t v = 0;

	cr_assert_eq(msg_negotiate(1, 1, 1, 1, &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(msg_negotiate(1, 3, 2, 5, &v), 0);
	cr_assert_eq(v, 3);
	cr_assert_eq(msg_negotiate(2, 5, 1, 3, &v), 0);
	cr_assert_eq(v, 3);
	cr_assert_eq(msg_negotiate(1, 4, 4, 4, &v), 0);
	cr_assert_eq(v, 4);
	v = 77;
	cr_assert_eq(msg_negotiate(1, 1, 2, 3, &v), -1);
	cr_assert_eq(msg_negotiate(2, 3, 1, 1, &v), -1);
	cr_assert_eq(v, 77, "chosen must be untouched on failure");
}

Test(msg, version_refusal_reads_clearly)
{
	char buf[128];
	int n = msg_refuse_version(buf, sizeof(buf), 2, 3, MSG_VERSION_MIN, MSG_VERSION_MAX);

	cr_assert_str_eq(buf, "incompatible protocol version: peer speaks 2..3, this node 1..1");
	cr_assert_eq(n, (int)strlen(buf));
	/* and fits a REFUSE payload */
	cr_assert_leq(n, MSG_MAX_REASON);
}

static void sanitized(const char *in, size_t len, const char *want)
{
	char out[64];
	size_t n = msg_reason_sanitize((const uint8_t *)in, len, out);

	cr_assert_str_eq(out, want);
	cr_assert_eq(n, strlen(want));
}

Test(msg, refusal_reason_is_sanitized_for_logs)
{
	sanitized("wrong secret", 12, "wrong secret");
	sanitized("caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac");	/* é € kept */
	sanitized("a\nb\x1b[31mc", 9, "a?b?[31mc");
	sanitized("nul\0x", 5, "nul?x");
	sanitized("bad \xff\xfe", 6, "bad ??");
	sanitized("overlong \xc0\xaf", 11, "overlong ??");
	sanitized("cut \xe2\x82", 6, "cut ??");
	sanitized("surrogate \xed\xa0\x80", 13, "surrogate ???");
	sanitized("c1 \xc2\x85", 5, "c1 ??");
	sanitized("\xf0\x9f\x92\xa5", 4, "\xf0\x9f\x92\xa5");
	sanitized("del\x7f", 4, "del?");
}

Test(msg, names_for_logs)
{
	cr_assert_str_eq(msg_type_name(MSG_HELLO), "HELLO");
	cr_assert_str_eq(msg_type_name(MSG_WRITE), "WRITE");
	cr_assert_str_eq(msg_type_name(MSG_FLUSH_ACK), "FLUSH_ACK");
	cr_assert_str_eq(msg_type_name(MSG_RESYNC_DONE), "RESYNC_DONE");
	cr_assert_str_eq(msg_type_name(0), "UNKNOWN");
	cr_assert_str_eq(msg_type_name(999), "UNKNOWN");
	for (uint16_t t = 1; t <= MSG_TYPE_MAX; t++)
		cr_assert_str_neq(msg_type_name(t), "UNKNOWN");
	cr_assert_str_eq(msg_disk_name(MSG_DISK_UPTODATE), "uptodate");
	cr_assert_str_eq(msg_disk_name(MSG_DISK_INCONSISTENT), "inconsistent");
	cr_assert_str_eq(msg_disk_name(9), "unknown");
}

/* Three nodes or more: MSG_GEN names the nodes that miss the stream. */
Test(msg, gen_lists_whole_entries_of_named_nodes)
{
	struct msg_gen g = { .old_current = 0x1111, .new_current = 0x2222, .nbehind = 2 }, out;
	uint8_t buf[MSG_GEN_MAX];
	const char *why = NULL;
	size_t n;

	snprintf(g.behind[0].node, sizeof(g.behind[0].node), "gamma");
	g.behind[0].bitmap_gen = 0x1111;
	snprintf(g.behind[1].node, sizeof(g.behind[1].node), "delta");
	n = msg_gen_encode(buf, &g);
	cr_assert_eq(n, 16 + 2 * (MSG_NAME_SIZE + 8));
	OK(MSG_GEN, 0, (uint32_t)n, 0, 0, 0);
	cr_assert_eq(msg_gen_decode(buf, n, &out, &why), 0, "%s", why);
	cr_assert_eq(out.old_current, 0x1111);
	cr_assert_eq(out.new_current, 0x2222);
	cr_assert_eq(out.nbehind, 2);
	cr_assert_str_eq(out.behind[0].node, "gamma");
	cr_assert_eq(out.behind[0].bitmap_gen, 0x1111);
	cr_assert_str_eq(out.behind[1].node, "delta");
	cr_assert_eq(out.behind[1].bitmap_gen, 0);
	/* No one behind: 16 bytes. */
	g.nbehind = 0;
	cr_assert_eq(msg_gen_encode(buf, &g), 16);
	cr_assert_eq(msg_gen_decode(buf, 16, &out, &why), 0);
	cr_assert_eq(out.nbehind, 0);
	/* Broken: part of an entry, too many entries, a zero generation, a
	 * name that is not printable or not terminated. */
	BAD(MSG_GEN, 0, 15, 0, 0, 0, "bad generation list length");
	BAD(MSG_GEN, 0, 17, 0, 0, 0, "bad generation list length");
	BAD(MSG_GEN, 0, MSG_GEN_MAX + MSG_NAME_SIZE + 8, 0, 0, 0, "bad generation list length");
	BAD(MSG_GEN, 0, 16, 1, 0, 0, "count must be zero");
	cr_assert_eq(msg_gen_decode(buf, 17, &out, &why), -1);
	memset(buf, 0, 8);
	cr_assert_eq(msg_gen_decode(buf, 16, &out, &why), -1);
	cr_assert_str_eq(why, "no current generation");
	g.nbehind = 1;
	snprintf(g.behind[0].node, sizeof(g.behind[0].node), "gamma");
	n = msg_gen_encode(buf, &g);
	buf[16 + 2] = 0x07;
	cr_assert_eq(msg_gen_decode(buf, n, &out, &why), -1);
	cr_assert_str_eq(why, "bad node name");
	memset(buf + 16, 'x', MSG_NAME_SIZE);
	cr_assert_eq(msg_gen_decode(buf, n, &out, &why), -1);
}

Test(msg, mark_carries_nothing)
{
	OK(MSG_MARK, 0, 0, 0, 7, 0);
	BAD(MSG_MARK, 0, 1, 0, 0, 0, "unexpected payload");
	BAD(MSG_MARK, 0, 0, 1, 0, 0, "count must be zero");
	BAD(MSG_MARK, 0, 0, 0, 0, 4096, "offset must be zero");
	cr_assert_str_eq(msg_type_name(MSG_MARK), "MARK");
	cr_assert_str_eq(msg_type_name(MSG_GEN), "GEN");
}
