/* The event loop (utils/loop.h) as the unit tests run it: never without a
 * bound.  A ticker wakes the loop every few milliseconds, so that a test's
 * condition and its deadline are looked at again even when nothing else
 * completes; loop_run_until() runs it until the condition holds or the
 * deadline passes.  Header-only, for the test files that drive a loop. */
#ifndef BLKREP_UNIT_LOOP_UNTIL_H
#define BLKREP_UNIT_LOOP_UNTIL_H

#include <criterion/criterion.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "utils/ioop.h"
#include "utils/loop.h"

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ticker {
	struct ioop op;
	struct loop *loop;
	struct __kernel_timespec every;
};

static inline void ticker_done(struct ioop *op, int res)
{
	struct ticker *t = container_of(op, struct ticker, op);

	(void)res;
	io_uring_prep_timeout(loop_sqe(t->loop, op), &t->every, 0, 0);
}

/* Wakes l every ms milliseconds from now on (until the loop is freed); t
 * must live as long as l. */
static inline void ticker_start(struct ticker *t, struct loop *l, unsigned ms)
{
	t->loop = l;
	t->every = (struct __kernel_timespec){ .tv_nsec = ms * 1000000LL };
	t->op.done = ticker_done;
	io_uring_prep_timeout(loop_sqe(l, &t->op), &t->every, 0, 0);
}

struct until {
	bool (*cond)(void);
	uint64_t deadline_ms;
};

static inline bool until_keep_going(void *arg)
{
	const struct until *u = arg;

	return !u->cond() && now_ms() < u->deadline_ms;
}

/* Runs l until cond() or ms milliseconds have passed (the loop must have a
 * ticker); returns cond(). */
static inline bool loop_run_until(struct loop *l, bool (*cond)(void), unsigned ms)
{
	struct until u = { cond, now_ms() + ms };

	cr_assert_eq(loop_run(l, until_keep_going, &u), 0);
	return cond();
}

#endif
