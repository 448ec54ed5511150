/* Unit tests for nbd/request: one test per validation rule of the NBD spec
 * (see docs in /work/shared/NBD.md, "What a correct server does"). */
#include <criterion/criterion.h>
#include <string.h>

#include "nbd/request.h"

#define MiB		(1ULL << 20)
#define GiB		(1ULL << 30)
#define EXPORT_SIZE	GiB

static const uint16_t all_cmds[] = {
	NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_FLUSH, NBD_CMD_TRIM,
	NBD_CMD_CACHE, NBD_CMD_WRITE_ZEROES, NBD_CMD_BLOCK_STATUS,
};
#define NCMDS	(sizeof(all_cmds) / sizeof(all_cmds[0]))

/* A read-write 1 GiB export with structured replies and base:allocation:
 * every command is allowed unless a test takes something away. */
static struct nbd_session full_session(void)
{
	struct nbd_session s = {
		.size = EXPORT_SIZE,
		.tflags = nbd_export_tflags(false, true),
		.structured = true,
		.meta_id = 1,
	};
	return s;
}

/* What the kernel client negotiates: no structured replies, no contexts. */
static struct nbd_session simple_session(void)
{
	struct nbd_session s = {
		.size = EXPORT_SIZE,
		.tflags = nbd_export_tflags(false, false),
	};
	return s;
}

static struct nbd_check check(const struct nbd_session *s, uint16_t type, uint16_t flags,
			      uint64_t offset, uint32_t length)
{
	struct nbd_request r = {
		.flags = flags,
		.type = type,
		.cookie = 0x1234,
		.offset = offset,
		.length = length,
	};
	struct nbd_check c;

	memset(&c, 0xa5, sizeof(c));	/* prove that check fills everything */
	nbd_request_check(&r, s, &c);
	return c;
}

static void assert_ok(struct nbd_check c, uint32_t payload)
{
	cr_assert_eq(c.verdict, NBD_V_OK);
	cr_assert_eq(c.error, 0);
	cr_assert_eq(c.payload, payload);
}

static void assert_reject(struct nbd_check c, uint32_t error, uint32_t payload)
{
	cr_assert_eq(c.verdict, NBD_V_REJECT);
	cr_assert_eq(c.error, error, "error %u, expected %u", c.error, error);
	cr_assert_eq(c.payload, payload, "payload %u, expected %u", c.payload, payload);
}

/* Payload to read off: only WRITE carries one. */
static uint32_t payload_of(uint16_t type, uint32_t length)
{
	return type == NBD_CMD_WRITE ? length : 0;
}

Test(request, valid_requests_pass)
{
	struct nbd_session s = full_session();

	assert_ok(check(&s, NBD_CMD_READ, 0, 0, 4096), 0);
	assert_ok(check(&s, NBD_CMD_WRITE, 0, 4096, 65536), 65536);
	assert_ok(check(&s, NBD_CMD_FLUSH, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_TRIM, 0, MiB, MiB), 0);
	assert_ok(check(&s, NBD_CMD_CACHE, 0, 0, MiB), 0);
	assert_ok(check(&s, NBD_CMD_WRITE_ZEROES, 0, 0, MiB), 0);
	assert_ok(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, (uint32_t)EXPORT_SIZE), 0);
}

/* The last byte of the export is addressable; one past it is not. */
Test(request, range_up_to_the_end_passes)
{
	struct nbd_session s = full_session();

	for (size_t i = 0; i < NCMDS; i++) {
		uint16_t t = all_cmds[i];

		if (t == NBD_CMD_FLUSH)
			continue;
		assert_ok(check(&s, t, 0, EXPORT_SIZE - 512, 512), payload_of(t, 512));
		assert_ok(check(&s, t, 0, EXPORT_SIZE - 1, 1), payload_of(t, 1));
	}
}

Test(request, read_trim_cache_block_status_past_end_are_einval)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_READ, 0, EXPORT_SIZE - 512, 513), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_READ, 0, EXPORT_SIZE, 1), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_TRIM, 0, EXPORT_SIZE - 4096, 8192), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_CACHE, 0, EXPORT_SIZE, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, EXPORT_SIZE - 1, 2), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, 2 * EXPORT_SIZE, 4096), NBD_EINVAL, 0);
}

Test(request, write_past_end_is_enospc_with_payload)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_WRITE, 0, EXPORT_SIZE - 512, 1024), NBD_ENOSPC, 1024);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, EXPORT_SIZE, 1), NBD_ENOSPC, 1);
	assert_reject(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 5 * EXPORT_SIZE, 4096),
		      NBD_ENOSPC, 4096);
}

Test(request, write_zeroes_past_end_is_enospc_without_payload)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_WRITE_ZEROES, 0, EXPORT_SIZE - MiB, 2 * MiB),
		      NBD_ENOSPC, 0);
	assert_reject(check(&s, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, EXPORT_SIZE, 1),
		      NBD_ENOSPC, 0);
}

/* offset + length wraps around 2^64: a naive end > size test passes it. */
Test(request, offset_plus_length_overflow_is_caught)
{
	struct nbd_session s = full_session();
	uint64_t off = UINT64_MAX - 100;

	s.size = UINT64_MAX;	/* so that only the wrap can catch it */
	assert_reject(check(&s, NBD_CMD_READ, 0, off, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_TRIM, 0, off, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_CACHE, 0, off, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, off, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, off, 4096), NBD_ENOSPC, 4096);
	assert_reject(check(&s, NBD_CMD_WRITE_ZEROES, 0, off, 4096), NBD_ENOSPC, 0);
	/* Exactly reaching 2^64 - 1 does not wrap. */
	assert_ok(check(&s, NBD_CMD_READ, 0, off, 100), 0);

	s = full_session();
	assert_reject(check(&s, NBD_CMD_READ, 0, UINT64_MAX, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, UINT64_MAX - 1, 2), NBD_ENOSPC, 2);
}

Test(request, writes_on_read_only_are_eperm)
{
	struct nbd_session s = full_session();

	s.tflags = nbd_export_tflags(true, true);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, 0, 4096), NBD_EPERM, 4096);
	assert_reject(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 0), NBD_EPERM, 0);
	assert_reject(check(&s, NBD_CMD_TRIM, 0, 0, MiB), NBD_EPERM, 0);
	assert_reject(check(&s, NBD_CMD_WRITE_ZEROES, 0, 0, MiB), NBD_EPERM, 0);
	/* Past the end on a read-only export: refused either way, and the
	 * payload is still read off. */
	cr_assert_eq(check(&s, NBD_CMD_WRITE, 0, EXPORT_SIZE, 512).verdict, NBD_V_REJECT);
	cr_assert_eq(check(&s, NBD_CMD_WRITE, 0, EXPORT_SIZE, 512).payload, 512);
}

Test(request, reads_and_flush_on_read_only_pass)
{
	struct nbd_session s = full_session();

	s.tflags = nbd_export_tflags(true, true);
	assert_ok(check(&s, NBD_CMD_READ, 0, 0, MiB), 0);
	assert_ok(check(&s, NBD_CMD_FLUSH, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_CACHE, 0, 0, MiB), 0);
	assert_ok(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, MiB), 0);
}

Test(request, unknown_commands_are_einval)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, 8, 0, 0, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, 9, 0, 0, 0), NBD_EINVAL, 0);
	assert_reject(check(&s, 0x100, 0, 0, 4096), NBD_EINVAL, 0);
	assert_reject(check(&s, 0xffff, 0xffff, UINT64_MAX, UINT32_MAX), NBD_EINVAL, 0);
}

Test(request, unknown_flags_are_einval)
{
	struct nbd_session s = full_session();

	for (size_t i = 0; i < NCMDS; i++) {
		uint16_t t = all_cmds[i];
		uint32_t len = t == NBD_CMD_FLUSH ? 0 : 4096;

		for (unsigned bit = 5; bit < 16; bit++)
			assert_reject(check(&s, t, (uint16_t)(1U << bit), 0, len), NBD_EINVAL,
				      payload_of(t, len));
	}
}

/* Each known flag is only valid for the commands the spec names. */
Test(request, flags_not_valid_for_the_command_are_einval)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL, 512);
	assert_reject(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL, 512);
	assert_reject(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_FAST_ZERO, 0, 512), NBD_EINVAL, 512);
	assert_reject(check(&s, NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0, 512), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_READ, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_TRIM, NBD_CMD_FLAG_FAST_ZERO, 0, 512), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_TRIM, NBD_CMD_FLAG_NO_HOLE, 0, 512), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_FLUSH, NBD_CMD_FLAG_DF, 0, 0), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_DF, 0, 512), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_REQ_ONE, 0, 512),
		      NBD_EINVAL, 0);
}

Test(request, valid_flags_pass)
{
	struct nbd_session s = full_session();

	/* FUA is valid on every command (the server may ignore it). */
	for (size_t i = 0; i < NCMDS; i++) {
		uint16_t t = all_cmds[i];
		uint32_t len = t == NBD_CMD_FLUSH ? 0 : 4096;

		assert_ok(check(&s, t, NBD_CMD_FLAG_FUA, 0, len), payload_of(t, len));
	}
	assert_ok(check(&s, NBD_CMD_WRITE_ZEROES,
			NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_FUA, 0, MiB),
		  0);
	assert_ok(check(&s, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, MiB), 0);
	assert_ok(check(&s, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, MiB), 0);
}

/* DF only means something with structured replies. */
Test(request, df_without_structured_replies_is_einval)
{
	struct nbd_session s = simple_session();

	assert_reject(check(&s, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 4096), NBD_EINVAL, 0);
	s.structured = true;
	assert_ok(check(&s, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 4096), 0);
}

Test(request, block_status_without_meta_context_is_einval)
{
	struct nbd_session s = full_session();

	s.meta_id = 0;
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, 4096), NBD_EINVAL, 0);
	s = simple_session();
	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, 4096), NBD_EINVAL, 0);
	s = full_session();
	s.meta_id = 42;
	assert_ok(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, 4096), 0);
}

Test(request, block_status_of_zero_length_is_einval)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_BLOCK_STATUS, 0, 0, 0), NBD_EINVAL, 0);
}

/* The kernel sends up to 32 MiB per WRITE: exactly that must work. */
Test(request, write_of_32_mib_passes)
{
	struct nbd_session s = full_session();

	assert_ok(check(&s, NBD_CMD_WRITE, 0, 0, 32 * MiB), 32 * MiB);
	assert_ok(check(&s, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, EXPORT_SIZE - 32 * MiB, 32 * MiB),
		  32 * MiB);
}

/* Too big to serve, small enough to read off: reject and keep framing. */
Test(request, write_above_32_mib_is_rejected_with_payload)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_WRITE, 0, 0, 32 * MiB + 1), NBD_EINVAL, 32 * MiB + 1);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, 0, 48 * MiB), NBD_EINVAL, 48 * MiB);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, 0, 64 * MiB), NBD_EINVAL, 64 * MiB);
}

/* Beyond 64 MiB reading the payload off is not worth it: drop the client. */
Test(request, write_above_64_mib_disconnects)
{
	struct nbd_session s = full_session();
	struct nbd_check c = check(&s, NBD_CMD_WRITE, 0, 0, 64 * MiB + 1);

	cr_assert_eq(c.verdict, NBD_V_DISCONNECT);
	cr_assert_eq(c.payload, 64 * MiB + 1);
	cr_assert_eq(check(&s, NBD_CMD_WRITE, 0, 0, UINT32_MAX).verdict, NBD_V_DISCONNECT);
	/* Whatever else is wrong with it, framing is lost. */
	s.tflags = nbd_export_tflags(true, true);
	cr_assert_eq(check(&s, NBD_CMD_WRITE, 0xffff, UINT64_MAX, UINT32_MAX).verdict,
		     NBD_V_DISCONNECT);
}

/* Only WRITE carries a payload: a huge length elsewhere never disconnects. */
Test(request, huge_length_without_payload_never_disconnects)
{
	struct nbd_session s = full_session();

	for (size_t i = 0; i < NCMDS; i++) {
		if (all_cmds[i] == NBD_CMD_WRITE)
			continue;
		cr_assert_neq(check(&s, all_cmds[i], 0, 0, UINT32_MAX).verdict,
			      NBD_V_DISCONNECT);
	}
}

Test(request, read_above_32_mib_is_refused)
{
	struct nbd_session s = simple_session();

	assert_ok(check(&s, NBD_CMD_READ, 0, 0, 32 * MiB), 0);
	assert_reject(check(&s, NBD_CMD_READ, 0, 0, 32 * MiB + 1), NBD_EINVAL, 0);
	/* With structured replies the spec prefers EOVERFLOW. */
	s = full_session();
	assert_reject(check(&s, NBD_CMD_READ, 0, 0, 32 * MiB + 1), NBD_EOVERFLOW, 0);
}

/* mkfs.ext4 on a 6.1 kernel sends single TRIMs of hundreds of MiB. */
Test(request, huge_trim_and_write_zeroes_inside_export_pass)
{
	struct nbd_session s = simple_session();

	assert_ok(check(&s, NBD_CMD_TRIM, 0, 0, 768 * MiB), 0);
	assert_ok(check(&s, NBD_CMD_TRIM, 0, 256 * MiB, 768 * MiB), 0);
	assert_ok(check(&s, NBD_CMD_WRITE_ZEROES, 0, 0, 512 * MiB), 0);
	s.size = 8 * GiB;
	assert_ok(check(&s, NBD_CMD_TRIM, 0, GiB, UINT32_MAX), 0);
}

Test(request, flush_with_offset_or_length_is_einval)
{
	struct nbd_session s = full_session();

	assert_reject(check(&s, NBD_CMD_FLUSH, 0, 4096, 0), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_FLUSH, 0, 0, 4096), NBD_EINVAL, 0);
}

/* Zero-length requests are odd but legal: answer them, never disconnect. */
Test(request, zero_length_requests_pass)
{
	struct nbd_session s = full_session();

	assert_ok(check(&s, NBD_CMD_READ, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_WRITE, 0, 4096, 0), 0);
	assert_ok(check(&s, NBD_CMD_TRIM, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_WRITE_ZEROES, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_CACHE, 0, 0, 0), 0);
	/* At the very end: the empty range [size, size) is inside. */
	assert_ok(check(&s, NBD_CMD_READ, 0, EXPORT_SIZE, 0), 0);
	assert_reject(check(&s, NBD_CMD_READ, 0, EXPORT_SIZE + 1, 0), NBD_EINVAL, 0);
}

/* DISC ends the session whatever its other fields say. */
Test(request, disc_is_always_ok)
{
	struct nbd_session s = simple_session();

	assert_ok(check(&s, NBD_CMD_DISC, 0, 0, 0), 0);
	assert_ok(check(&s, NBD_CMD_DISC, 0xffff, UINT64_MAX, UINT32_MAX), 0);
}

/* An empty export refuses everything that touches data. */
Test(request, zero_size_export)
{
	struct nbd_session s = simple_session();

	s.size = 0;
	assert_ok(check(&s, NBD_CMD_READ, 0, 0, 0), 0);
	assert_reject(check(&s, NBD_CMD_READ, 0, 0, 1), NBD_EINVAL, 0);
	assert_reject(check(&s, NBD_CMD_WRITE, 0, 0, 1), NBD_ENOSPC, 1);
	assert_ok(check(&s, NBD_CMD_FLUSH, 0, 0, 0), 0);
}

Test(request, export_tflags)
{
	uint16_t base = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
			NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
			NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE |
			NBD_FLAG_CAN_MULTI_CONN;

	cr_assert_eq(base, 0x0d6d);
	cr_assert_eq(nbd_export_tflags(false, false), base);
	cr_assert_eq(nbd_export_tflags(true, false), base | NBD_FLAG_READ_ONLY);
	/* DF is advertised only once structured replies are on. */
	cr_assert_eq(nbd_export_tflags(false, true), base | NBD_FLAG_SEND_DF);
	cr_assert_eq(nbd_export_tflags(true, true),
		     base | NBD_FLAG_READ_ONLY | NBD_FLAG_SEND_DF);
	/* blkrep never claims a rotational disk. */
	cr_assert_eq(nbd_export_tflags(true, true) & NBD_FLAG_ROTATIONAL, 0);
}
