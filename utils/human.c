/* Sizes for people.  See human.h. */
#include "utils/human.h"

#include <inttypes.h>
#include <stdio.h>

const char *human_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes / 1024;
	unsigned u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	/* 1023.96 MiB prints as 1.0 GiB, not 1024.0 MiB. */
	while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

unsigned human_percent(uint64_t done, uint64_t left, uint64_t pending)
{
	unsigned pct = done + left ? (unsigned)(done * 100 / (done + left)) : 100;

	return pct >= 100 && pending ? 99 : pct;
}
