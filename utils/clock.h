/* The monotonic clock, the one time source of the daemon's timers, rates
 * and timeouts.  Never fails (CLOCK_MONOTONIC always exists on Linux). */
#ifndef BLKREP_CLOCK_H
#define BLKREP_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_now_ns(void);

/* CLOCK_MONOTONIC in milliseconds (clock_now_ns() / 1000000). */
uint64_t clock_now_ms(void);

#endif
