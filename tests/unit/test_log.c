/* utils/log: the prefix of a line in each style (log_format_prefix(), pure). */
#include <criterion/criterion.h>
#include <string.h>

#include "utils/log.h"

/* 2026-12-07T12:00:00.123456789Z */
static const struct timespec when = { 1796644800, 123456789 };

/* Each level's prefix in style: want[lvl]. */
static void expect_prefixes(enum log_style style, const char *const want[4])
{
	char buf[64];

	for (int lvl = LOG_ERR; lvl <= LOG_DEBUG; lvl++) {
		cr_assert_eq(log_format_prefix(buf, sizeof(buf), &when, lvl, style),
			     (int)strlen(want[lvl]));
		cr_assert_str_eq(buf, want[lvl]);
	}
}

Test(log, stamped_is_rfc3339_utc_with_milliseconds_and_the_level)
{
	static const char *const want[] = {
		"2026-12-07T12:00:00.123Z error ", "2026-12-07T12:00:00.123Z warning ",
		"2026-12-07T12:00:00.123Z info ", "2026-12-07T12:00:00.123Z debug ",
	};

	expect_prefixes(LOG_STAMPED, want);
}

Test(log, milliseconds_are_truncated_and_padded)
{
	struct timespec t = { 0, 7999999 };
	char buf[64];

	log_format_prefix(buf, sizeof(buf), &t, LOG_INFO, LOG_STAMPED);
	cr_assert_str_eq(buf, "1970-01-01T00:00:00.007Z info ");
}

Test(log, journal_gets_syslog_levels_and_no_time)
{
	static const char *const want[] = { "<3>", "<4>", "<6>", "<7>" };

	expect_prefixes(LOG_JOURNAL, want);
}

Test(log, plain_is_empty_and_short_buffers_fail)
{
	char buf[64];

	cr_assert_eq(log_format_prefix(buf, sizeof(buf), &when, LOG_WARN, LOG_PLAIN), 0);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(log_format_prefix(buf, 30, &when, LOG_INFO, LOG_STAMPED), -1);
	cr_assert_eq(log_format_prefix(buf, 31, &when, LOG_INFO, LOG_STAMPED), 30);
}
