/* The monotonic clock, the one time source of the daemon's timers, rates
 * and timeouts.  Never fails (CLOCK_MONOTONIC always exists on Linux). */
#ifndef BLKREP_CLOCK_H
#define BLKREP_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_now_ns(void);

/* CLOCK_MONOTONIC in milliseconds (clock_now_ns() / 1000000). */
uint64_t clock_now_ms(void);

/* The wall clock (CLOCK_REALTIME), for time stamps people read only: in
 * milliseconds since the epoch. */
uint64_t clock_realtime_ms(void);

/* The longest text clock_rfc3339() writes, with its NUL. */
#define CLOCK_RFC3339_LEN 32

/* realtime_ms as RFC 3339 in UTC with milliseconds
 * ("2026-12-07T12:13:15.123Z") into buf.  Pure.  Returns its length, or -1
 * if len is too small. */
int clock_rfc3339(char *buf, size_t len, uint64_t realtime_ms);

#endif
