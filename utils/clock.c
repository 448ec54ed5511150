/* The monotonic clock, and the wall clock's time stamps.  See clock.h. */
#include "utils/clock.h"

#include <stdio.h>
#include <time.h>

uint64_t clock_now_ns(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000U + (uint64_t)t.tv_nsec;
}

uint64_t clock_now_ms(void)
{
	return clock_now_ns() / 1000000;
}

uint64_t clock_realtime_ms(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int clock_rfc3339(char *buf, size_t len, uint64_t realtime_ms)
{
	time_t sec = (time_t)(realtime_ms / 1000);
	struct tm tm;
	int n;

	if (!gmtime_r(&sec, &tm))
		return -1;
	n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (unsigned)(realtime_ms % 1000));
	return n < 0 || (size_t)n >= len ? -1 : n;
}
