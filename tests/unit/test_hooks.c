/* utils/hooks: the end-of-batch table both event loops run. */
#include <criterion/criterion.h>

#include "utils/hooks.h"

static struct hooks table;
static int calls[HOOKS_MAX + 1];

static void count(void *arg)
{
	calls[(int *)arg - calls]++;
}

static void remove_self(void *arg)
{
	calls[(int *)arg - calls]++;
	hooks_remove(&table, remove_self, arg);
}

Test(hooks, each_runs_once_per_batch_until_removed)
{
	struct hooks t = { 0 };

	memset(calls, 0, sizeof(calls));
	cr_assert_eq(hooks_add(&t, count, &calls[0]), 0);
	cr_assert_eq(hooks_add(&t, count, &calls[1]), 0);
	hooks_run(&t);
	hooks_remove(&t, count, &calls[0]);
	hooks_run(&t);
	cr_assert_eq(calls[0], 1);
	cr_assert_eq(calls[1], 2);
}

Test(hooks, a_hook_removing_itself_does_not_skip_the_next)
{
	memset(&table, 0, sizeof(table));
	memset(calls, 0, sizeof(calls));
	hooks_add(&table, remove_self, &calls[0]);
	hooks_add(&table, count, &calls[1]);
	hooks_run(&table);
	hooks_run(&table);
	cr_assert_eq(calls[0], 1);
	cr_assert_eq(calls[1], 2, "the hook after the removed one ran every time");
}

Test(hooks, the_table_is_bounded_and_reuses_empty_slots)
{
	struct hooks t = { 0 };

	for (int i = 0; i < HOOKS_MAX; i++)
		cr_assert_eq(hooks_add(&t, count, &calls[i]), 0);
	cr_assert_eq(hooks_add(&t, count, &calls[HOOKS_MAX]), -1, "full");
	hooks_remove(&t, count, &calls[3]);
	cr_assert_eq(hooks_add(&t, count, &calls[HOOKS_MAX]), 0, "a removed slot is reused");
	cr_assert_eq(t.n, HOOKS_MAX);
}
