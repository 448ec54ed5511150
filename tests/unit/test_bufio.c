/* utils/bufio and proto/sendq.h (in proto/peer.c): iovec bookkeeping after short sends,
 * receive-buffer compaction, and the peer link's send queue. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/sendq.h"
#include "utils/bufio.h"
#include "utils/clock.h"
#include "utils/fifo.h"

Test(bufio, iov_advance_trims_and_skips)
{
	uint8_t a[10] = { 0 }, b[20] = { 0 };
	struct iovec iov[2];
	unsigned cnt = 0, pos = 0;

	iov_push(iov, &cnt, a, sizeof(a));
	iov_push(iov, &cnt, b, sizeof(b));
	cr_assert_eq(cnt, 2);
	cr_assert_not(iov_advance(iov, &pos, cnt, 4));
	cr_assert_eq(pos, 0);
	cr_assert_eq(iov[0].iov_base, a + 4);
	cr_assert_eq(iov[0].iov_len, 6);
	cr_assert_not(iov_advance(iov, &pos, cnt, 10));
	cr_assert_eq(pos, 1);
	cr_assert_eq(iov[1].iov_base, b + 4);
	cr_assert(iov_advance(iov, &pos, cnt, 16));
	cr_assert_eq(pos, 2);
}

Test(bufio, rbuf_compact_moves_only_when_short_of_room)
{
	uint8_t buf[100];
	uint32_t pos = 30, end = 40;

	memset(buf, 0, sizeof(buf));
	buf[30] = 7;
	rbuf_compact(buf, sizeof(buf), &pos, &end);
	cr_assert_eq(pos, 30, "60 bytes left: no move");
	end = 60;
	rbuf_compact(buf, sizeof(buf), &pos, &end);
	cr_assert_eq(pos, 0);
	cr_assert_eq(end, 30);
	cr_assert_eq(buf[0], 7);
	pos = end = 77;
	rbuf_compact(buf, sizeof(buf), &pos, &end);
	cr_assert_eq(pos, 0);
	cr_assert_eq(end, 0);
}

Test(clock, monotonic_and_consistent)
{
	uint64_t ns = clock_now_ns(), ms = clock_now_ms();

	cr_assert_geq(ms, ns / 1000000);
	cr_assert_geq(clock_now_ns(), ns);
}

Test(fifo, room_leaves_out_the_wasted_end_of_a_wrap)
{
	struct fifo *f = fifo_new(100);
	void *a = fifo_alloc(f, 60), *b = fifo_alloc(f, 30);

	cr_assert_eq(fifo_room(f), 10);
	cr_assert_eq(fifo_release(f, a, 60), 0);
	cr_assert_eq(fifo_room(f), 70);
	cr_assert_not_null(fifo_alloc(f, 20), "wraps: [90, 100) is wasted");
	cr_assert_eq(fifo_room(f), 40);
	cr_assert_eq(fifo_release(f, b, 30), 0);
	cr_assert_eq(fifo_room(f), 80);
	fifo_free(f);
}

Test(sendq, batches_pops_and_copies)
{
	struct sendq *q = sendq_new(8, 64);
	struct msg_hdr h = { .type = MSG_PING };
	uint8_t payload[40] = { 1 }, big[64] = { 0 };
	struct msghdr *m;
	size_t total = 0;

	cr_assert_not_null(q);
	cr_assert_eq(sendq_push(q, &h, NULL, 0, false), 0);
	h.length = sizeof(payload);
	cr_assert_eq(sendq_push(q, &h, payload, 0, false), 0, "copied");
	cr_assert_eq(sendq_arena_room(q), 24);
	h.length = sizeof(big);
	cr_assert_eq(sendq_push(q, &h, big, 0, false), -ENOBUFS, "no arena room");
	cr_assert_eq(sendq_push(q, &h, big, 0, true), 0, "by reference");
	cr_assert_eq(sendq_len(q), 3);
	cr_assert_eq(sendq_push(q, &h, big, 5, true), -ENOBUFS, "the reserve");
	cr_assert_eq(sendq_batch(q), 3);
	m = sendq_msghdr(q);
	cr_assert_eq(m->msg_iovlen, 5);
	for (size_t i = 0; i < m->msg_iovlen; i++)
		total += m->msg_iov[i].iov_len;
	cr_assert_eq(total, 3 * MSG_HDR_SIZE + 40 + 64);
	cr_assert_not(sendq_sent(q, MSG_HDR_SIZE + 1));
	cr_assert_eq(sendq_msghdr(q)->msg_iovlen, 4);
	cr_assert(sendq_sent(q, total - MSG_HDR_SIZE - 1));
	cr_assert_eq(sendq_in_batch(q), 3);
	cr_assert_null(sendq_pop(q));
	cr_assert_null(sendq_pop(q));
	cr_assert_eq(sendq_arena_room(q), 64);
	cr_assert_eq(sendq_pop(q), big, "the caller's buffer back");
	cr_assert_eq(sendq_in_batch(q), 0);
	cr_assert_eq(sendq_len(q), 0);
	sendq_free(q);
}
