/* The config unit tests' (test_config*.c) two ways to parse a text: it
 * must be accepted, or refused with exactly one message. */
#ifndef BLKREP_TEST_CONFIG_PARSE_H
#define BLKREP_TEST_CONFIG_PARSE_H

#include <criterion/criterion.h>

#include "daemon/config.h"

#define FNAME "/etc/blkrep/t.conf"

static inline struct config *parse_ok(const char *text)
{
	struct config *c = NULL;
	char err[512] = "";

	cr_assert_eq(config_parse_string(text, FNAME, &c, err, sizeof(err)), 0,
		     "refused: %s\n--- text:\n%s", err, text);
	cr_assert_not_null(c);
	return c;
}

/* The text must be refused with exactly this message. */
static inline void parse_fails(const char *text, const char *want)
{
	struct config *c = NULL;
	char err[512] = "";

	cr_assert_eq(config_parse_string(text, FNAME, &c, err, sizeof(err)), -1,
		     "accepted, expected: %s\n--- text:\n%s", want, text);
	cr_assert_null(c);
	cr_assert_str_eq(err, want, "--- text:\n%s", text);
}

#endif
