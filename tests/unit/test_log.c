/* utils/log: the prefix of a line in each style (log_format_prefix(), pure). */
#include <criterion/criterion.h>
#include <string.h>

#include "utils/log.h"

/* 2026-12-07T12:00:00.123456789Z */
static const struct timespec when = { 1796644800, 123456789 };

Test(log, stamped_is_rfc3339_utc_with_milliseconds_and_the_level)
{
	char buf[64];

	cr_assert_eq(log_format_prefix(buf, sizeof(buf), &when, LOG_INFO, LOG_STAMPED), 30);
	cr_assert_str_eq(buf, "2026-12-07T12:00:00.123Z info ");
	log_format_prefix(buf, sizeof(buf), &when, LOG_ERR, LOG_STAMPED);
	cr_assert_str_eq(buf, "2026-12-07T12:00:00.123Z error ");
	log_format_prefix(buf, sizeof(buf), &when, LOG_WARN, LOG_STAMPED);
	cr_assert_str_eq(buf, "2026-12-07T12:00:00.123Z warning ");
	log_format_prefix(buf, sizeof(buf), &when, LOG_DEBUG, LOG_STAMPED);
	cr_assert_str_eq(buf, "2026-12-07T12:00:00.123Z debug ");
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
	char buf[64];

	cr_assert_eq(log_format_prefix(buf, sizeof(buf), &when, LOG_ERR, LOG_JOURNAL), 3);
	cr_assert_str_eq(buf, "<3>");
	log_format_prefix(buf, sizeof(buf), &when, LOG_WARN, LOG_JOURNAL);
	cr_assert_str_eq(buf, "<4>");
	log_format_prefix(buf, sizeof(buf), &when, LOG_INFO, LOG_JOURNAL);
	cr_assert_str_eq(buf, "<6>");
	log_format_prefix(buf, sizeof(buf), &when, LOG_DEBUG, LOG_JOURNAL);
	cr_assert_str_eq(buf, "<7>");
}

Test(log, plain_is_empty_and_short_buffers_fail)
{
	char buf[64];

	cr_assert_eq(log_format_prefix(buf, sizeof(buf), &when, LOG_WARN, LOG_PLAIN), 0);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(log_format_prefix(buf, 30, &when, LOG_INFO, LOG_STAMPED), -1);
	cr_assert_eq(log_format_prefix(buf, 31, &when, LOG_INFO, LOG_STAMPED), 30);
}
