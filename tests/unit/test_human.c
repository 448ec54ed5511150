/* utils/human: sizes for people. */
#include <criterion/criterion.h>

#include "utils/human.h"

static void expect(uint64_t bytes, const char *want)
{
	char buf[HUMAN_BYTES_LEN];

	cr_assert_str_eq(human_bytes(bytes, buf, sizeof(buf)), want, "%llu",
			 (unsigned long long)bytes);
}

Test(human, bytes)
{
	expect(0, "0 B");
	expect(1, "1 B");
	expect(1023, "1023 B");
	expect(1024, "1.0 KiB");
	expect(1536, "1.5 KiB");
	expect(48ULL << 20, "48.0 MiB");
	expect(1ULL << 30, "1.0 GiB");
	expect((1ULL << 30) - 1, "1.0 GiB");
	expect((1ULL << 30) - (1ULL << 20), "1023.0 MiB");
	expect(5ULL << 40, "5.0 TiB");
	expect(UINT64_MAX, "16.0 EiB");
}

/* The resync line once said 100% with 48 MiB still out of sync (issue 15). */
Test(human, percent_is_never_100_while_anything_is_pending)
{
	cr_assert_eq(human_percent(0, 0, 0), 100);
	cr_assert_eq(human_percent(0, 100, 100), 0);
	cr_assert_eq(human_percent(52, 48, 48), 52);
	cr_assert_eq(human_percent(100ULL << 20, 0, 48ULL << 20), 99);
	cr_assert_eq(human_percent(100, 0, 0), 100);
	cr_assert_eq(human_percent(1ULL << 40, 1, 1), 99);
}
