/* daemon/repl/diskerr: the error status shows, logged once; the reconnect
 * backoff after replicated failures. */
#include <criterion/criterion.h>

#include "daemon/repl/diskerr.h"

#define S 1000000000ULL

Test(diskerr, the_first_error_is_reported_once_until_cleared)
{
	struct diskerr *d = diskerr_new();

	cr_assert_str_empty(diskerr_text(d));
	cr_assert(diskerr_set(d, "WRITE of %u bytes", 4096u));
	cr_assert_str_eq(diskerr_text(d), "WRITE of 4096 bytes");
	cr_assert_not(diskerr_set(d, "TRIM"), "not the first");
	cr_assert_str_eq(diskerr_text(d), "TRIM", "the latest is shown");
	diskerr_clear(d);
	cr_assert(diskerr_set(d, "again"));
	diskerr_free(d);
}

Test(diskerr, a_client_flush_error_is_told_apart)
{
	struct diskerr *d = diskerr_new();

	cr_assert(diskerr_set(d, DISKERR_FLUSH "%s", "Input/output error"));
	cr_assert(diskerr_is_flush(d));
	(void)diskerr_set(d, "client WRITE of 1 bytes at 0 on this node: EIO");
	cr_assert_not(diskerr_is_flush(d));
	diskerr_free(d);
}

/* Found by the simulator (seeds 1079, 1255): a FLUSH error after a failed
 * WRITE replaced it, a good FLUSH then cleared it, and status stopped
 * asking for the resync the WRITE's range still needed. */
Test(diskerr, a_flush_error_never_hides_an_error_that_needs_a_resync)
{
	struct diskerr *d = diskerr_new();

	cr_assert(diskerr_set(d, "client WRITE of 1 bytes at 0 on this node: EIO"));
	cr_assert_not(diskerr_set(d, DISKERR_FLUSH "%s", "Input/output error"));
	cr_assert_str_eq(diskerr_text(d), "client WRITE of 1 bytes at 0 on this node: EIO");
	cr_assert_not(diskerr_is_flush(d), "a good FLUSH must not clear it");
	diskerr_free(d);
}

Test(diskerr, the_backoff_doubles_to_the_maximum_and_restarts_once_repaired)
{
	struct diskerr *d = diskerr_new();
	unsigned want[] = { 1, 2, 4, 8, DISKERR_RETRY_MAX_S };

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(diskerr_failed(d, 0), want[i]);
	diskerr_repaired(d);
	cr_assert_str_empty(diskerr_text(d));
	cr_assert_eq(diskerr_failed(d, 0), 1);
	diskerr_free(d);
}

Test(diskerr, the_reconnect_is_due_once_at_its_time)
{
	struct diskerr *d = diskerr_new();

	cr_assert_not(diskerr_retry_due(d, 100 * S), "none pending");
	(void)diskerr_failed(d, 10 * S); /* due at 11 s */
	(void)diskerr_failed(d, 10 * S); /* due at 12 s */
	cr_assert_not(diskerr_retry_due(d, 11 * S));
	cr_assert(diskerr_retry_due(d, 12 * S));
	cr_assert_not(diskerr_retry_due(d, 13 * S), "once");
	(void)diskerr_failed(d, 20 * S);
	diskerr_cancel_retry(d);
	cr_assert_not(diskerr_retry_due(d, 100 * S), "cancelled");
	diskerr_free(d);
}

Test(diskerr, a_long_error_is_cut)
{
	struct diskerr *d = diskerr_new();
	char big[400];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)diskerr_set(d, "%s", big);
	cr_assert_eq(strlen(diskerr_text(d)), 255);
	diskerr_free(d);
}
