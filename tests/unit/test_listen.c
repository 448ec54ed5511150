/* nbd/listen: who may use a Unix export. */
#include <criterion/criterion.h>

#include "nbd/listen.h"

Test(listen, unix_uid_allowed)
{
	cr_assert(listen_uid_allowed(0, 1000, (uid_t)-1), "root");
	cr_assert(listen_uid_allowed(1000, 1000, (uid_t)-1), "the daemon's user");
	cr_assert_not(listen_uid_allowed(1001, 1000, (uid_t)-1));
	cr_assert(listen_uid_allowed(1001, 1000, 1001), "nbd-user");
	cr_assert_not(listen_uid_allowed(1002, 1000, 1001));
	cr_assert_not(listen_uid_allowed((uid_t)-1, 1000, (uid_t)-1));
}
