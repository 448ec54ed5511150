/* Unit tests for the torture tool's checker (tests/torture/tcheck) and
 * block format (tblock): small logs and hand-made replicas that must be
 * flagged (a lost acked write, an older version left in place, torn,
 * garbage, stale copies, happens-before and lag violations, a durable
 * write missing) and ones that must pass (unacked writes absent, replaced
 * writes). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/torture/tblock.h"
#include "tests/torture/tcheck.h"

#define BS    512
#define NBLK  16
#define SEED  77
#define WRTR  3

static struct tcheck *tc;
static uint8_t image[NBLK][BS]; /* the replica as the test builds it */

static void setup(void)
{
	struct tcheck_run run = { .block_size = BS, .area_blocks = NBLK, .seed = SEED,
				  .writer = WRTR };

	tc = tcheck_new(&run);
	cr_assert_not_null(tc);
	memset(image, 0, sizeof(image));
}

static void teardown(void)
{
	tcheck_free(tc);
}

/* Puts into image block `at` what write seq (conn) put into block `blk`. */
static void put_block(uint64_t at, uint64_t seq, uint32_t conn, uint64_t blk, uint64_t seed)
{
	struct tblock_hdr h = { .writer = WRTR, .conn = conn, .seq = seq, .block = blk,
				.seed = seed };

	tblock_fill(image[at], BS, &h);
}

/* Image blocks first..first+n-1 hold write seq, as it wrote them. */
static void put_write(uint64_t seq, uint64_t first, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++)
		put_block(first + k, seq, 0, first + k, SEED);
}

static void wr(uint64_t seq, uint64_t first, uint32_t n, bool fua)
{
	cr_assert_eq(tcheck_log_write(tc, seq, 0, first, n, fua), 0);
}

static void reply(uint64_t clock, uint64_t id, uint32_t error)
{
	cr_assert_eq(tcheck_log_reply(tc, clock, id, error), 0);
}

static struct tcheck_result judge(enum tcheck_mode mode, uint64_t max_lag)
{
	struct tcheck_result r;

	cr_assert_eq(tcheck_log_end(tc), 0);
	for (uint64_t b = 0; b < NBLK; b++)
		(void)tcheck_block(tc, b, image[b]);
	tcheck_result(tc, mode, max_lag, &r);
	cr_assert_eq(r.blocks_checked, NBLK);
	return r;
}

TestSuite(tcheck, .init = setup, .fini = teardown);

Test(tcheck, block_round_trip)
{
	uint8_t b[BS];
	struct tblock_hdr in = { .writer = 9, .conn = 2, .seq = 1234, .block = 55, .seed = 99 }, out;

	tblock_fill(b, BS, &in);
	cr_assert_eq(tblock_decode(b, BS, &out), TBLOCK_VALID);
	cr_assert(out.writer == 9 && out.conn == 2 && out.seq == 1234 && out.block == 55 &&
		  out.seed == 99);
	b[BS - 1] ^= 1;
	cr_assert_eq(tblock_decode(b, BS, &out), TBLOCK_TORN);
	memset(b, 0, BS);
	cr_assert_eq(tblock_decode(b, BS, &out), TBLOCK_ZERO);
	b[100] = 1;
	cr_assert_eq(tblock_decode(b, BS, &out), TBLOCK_GARBAGE);
}

Test(tcheck, everything_present_passes)
{
	wr(1, 0, 4, false);
	wr(2, 8, 2, false);
	reply(3, 2, 0);
	reply(4, 1, 0);
	put_write(1, 0, 4);
	put_write(2, 8, 2);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert(r.ok);
	cr_assert_eq(r.writes_checked, 2);
	cr_assert_eq(r.lost + r.stale + r.torn + r.garbage, 0);
}

Test(tcheck, acked_write_lost_is_flagged)
{
	wr(1, 2, 2, false);
	reply(2, 1, 0);
	/* the image stays zero */
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 1);
	cr_assert_eq(r.lost_blocks, 2);
}

Test(tcheck, one_block_of_a_write_lost_is_flagged)
{
	wr(1, 2, 3, false);
	reply(2, 1, 0);
	put_write(1, 2, 3);
	memset(image[3], 0, BS);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 1);
	cr_assert_eq(r.lost_blocks, 1);
}

Test(tcheck, older_version_left_in_place_is_flagged)
{
	wr(1, 5, 1, false);
	reply(2, 1, 0);
	wr(3, 5, 1, false);
	reply(4, 3, 0);
	put_write(1, 5, 1);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);
	struct tcheck_missing ex[4];

	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 1);
	cr_assert_eq(r.stale, 0);
	cr_assert_eq(tcheck_missing_examples(tc, TCHECK_SYNC, ex, 4), 1);
	cr_assert(ex[0].block == 5 && ex[0].lost_seq == 3 && ex[0].found_seq == 1);
}

Test(tcheck, replaced_write_passes)
{
	wr(1, 5, 2, false);
	reply(2, 1, 0);
	wr(3, 6, 1, false);
	reply(4, 3, 0);
	put_write(1, 5, 2);
	put_write(3, 6, 1);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert(r.ok);
	cr_assert_eq(r.lost, 0);
}

Test(tcheck, unacked_write_absent_passes)
{
	wr(1, 5, 1, false);
	reply(2, 1, 0);
	wr(3, 5, 1, false); /* never answered */
	wr(4, 9, 1, false);
	reply(5, 4, 5); /* an NBD error (EIO): not acknowledged */
	put_write(1, 5, 1);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert(r.ok);
	cr_assert_eq(r.writes_checked, 1);
}

Test(tcheck, unacked_write_present_passes)
{
	wr(1, 5, 1, false);
	reply(2, 1, 0);
	wr(3, 5, 1, false); /* never answered, but it landed */
	put_write(3, 5, 1);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert(r.ok);
}

Test(tcheck, torn_block_is_flagged)
{
	wr(1, 4, 1, false);
	reply(2, 1, 0);
	put_write(1, 4, 1);
	image[4][300] ^= 0x40;
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.torn, 1);
}

Test(tcheck, garbage_in_a_never_written_block_is_flagged)
{
	wr(1, 4, 1, false);
	reply(2, 1, 0);
	put_write(1, 4, 1);
	memset(image[12], 0xa5, BS);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.garbage, 1);
}

Test(tcheck, block_copied_from_another_offset_is_stale)
{
	wr(1, 4, 1, false);
	reply(2, 1, 0);
	put_write(1, 4, 1);
	memcpy(image[11], image[4], BS);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.stale, 1);
}

Test(tcheck, copy_onto_a_written_block_is_stale)
{
	wr(1, 4, 2, false);
	reply(2, 1, 0);
	put_write(1, 4, 2);
	memcpy(image[5], image[4], BS); /* same write, wrong block number */
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.stale, 1);
}

Test(tcheck, another_runs_block_is_stale)
{
	wr(1, 4, 1, false);
	reply(2, 1, 0);
	put_block(4, 1, 0, 4, SEED + 1);
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.stale, 1);
}

Test(tcheck, seq_never_issued_to_the_block_is_stale)
{
	wr(1, 4, 1, false);
	reply(2, 1, 0);
	wr(3, 7, 1, false);
	reply(4, 3, 0);
	put_write(1, 4, 1);
	put_block(7, 1, 0, 7, SEED); /* write 1 never covered block 7 */
	struct tcheck_result r = judge(TCHECK_SYNC, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.stale, 1);
}

Test(tcheck, async_happens_before_violation_is_flagged)
{
	wr(1, 1, 1, false);
	reply(2, 1, 0);
	wr(3, 2, 1, false); /* issued after write 1 was acknowledged */
	reply(4, 3, 0);
	put_write(3, 2, 1);
	struct tcheck_result r = judge(TCHECK_ASYNC, 1 << 20);

	cr_assert_not(r.ok);
	cr_assert_eq(r.hb_violations, 1);
	cr_assert_eq(r.newest_present_seq, 3);
}

Test(tcheck, async_concurrent_write_missing_passes_within_lag)
{
	wr(1, 1, 1, false);
	wr(2, 2, 1, false); /* issued before write 1 was acknowledged */
	reply(3, 1, 0);
	reply(4, 2, 0);
	put_write(2, 2, 1);
	struct tcheck_result r = judge(TCHECK_ASYNC, BS);

	cr_assert(r.ok);
	cr_assert_eq(r.hb_violations, 0);
	cr_assert_eq(r.acked_missing_bytes, BS);
}

Test(tcheck, async_lag_over_max_lag_is_flagged)
{
	wr(1, 1, 2, false);
	wr(2, 4, 1, false);
	reply(3, 1, 0);
	reply(4, 2, 0);
	put_write(2, 4, 1);
	struct tcheck_result r = judge(TCHECK_ASYNC, BS);

	cr_assert_not(r.ok);
	cr_assert_eq(r.hb_violations, 0);
	cr_assert_eq(r.acked_missing_bytes, 2 * BS);
}

Test(tcheck, durable_write_covered_by_acked_flush_missing_is_flagged)
{
	wr(1, 3, 1, false);
	reply(2, 1, 0);
	cr_assert_eq(tcheck_log_flush(tc, 3), 0);
	reply(4, 3, 0);
	struct tcheck_result r = judge(TCHECK_DURABLE, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 1);
	cr_assert_eq(r.writes_checked, 1);
}

Test(tcheck, durable_fua_write_missing_is_flagged)
{
	wr(1, 3, 1, true);
	reply(2, 1, 0);
	struct tcheck_result r = judge(TCHECK_DURABLE, 0);

	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 1);
}

Test(tcheck, durable_unflushed_write_missing_passes)
{
	wr(1, 3, 1, false);
	cr_assert_eq(tcheck_log_flush(tc, 2), 0); /* issued before write 1's ack */
	reply(3, 1, 0);
	reply(4, 2, 0);
	wr(5, 6, 1, false);
	reply(6, 5, 0);
	cr_assert_eq(tcheck_log_flush(tc, 7), 0); /* never acknowledged */
	struct tcheck_result r = judge(TCHECK_DURABLE, 0);

	cr_assert(r.ok);
	cr_assert_eq(r.writes_checked, 0);
	/* the same image in sync mode loses both */
	tcheck_result(tc, TCHECK_SYNC, 0, &r);
	cr_assert_not(r.ok);
	cr_assert_eq(r.lost, 2);
}

Test(tcheck, inconsistent_logs_are_refused)
{
	wr(5, 0, 1, false);
	cr_assert_eq(tcheck_log_write(tc, 5, 0, 1, 1, false), -EINVAL);   /* clock not increasing */
	cr_assert_eq(tcheck_log_write(tc, 6, 0, NBLK - 1, 2, false), -EINVAL); /* past the area */
	cr_assert_eq(tcheck_log_write(tc, 7, 0, 1, 0, false), -EINVAL);   /* empty */
	cr_assert_eq(tcheck_log_reply(tc, 8, 99, 0), -EINVAL);	   /* unknown request */
	reply(9, 5, 0);
	cr_assert_eq(tcheck_log_reply(tc, 10, 5, 0), -EINVAL);	   /* answered twice */
}

Test(tcheck, bad_runs_are_refused)
{
	struct tcheck_run run = { .block_size = 1000, .area_blocks = 4 };

	cr_assert_null(tcheck_new(&run));
	run.block_size = 256;
	cr_assert_null(tcheck_new(&run));
	run.block_size = 4096;
	run.area_blocks = 0;
	cr_assert_null(tcheck_new(&run));
}
