/* End-of-batch hooks (see hooks.h). */
#include "utils/hooks.h"

#include <stddef.h>

int hooks_add(struct hooks *t, void (*fn)(void *arg), void *arg)
{
	int i = 0;

	while (i < t->n && t->h[i].fn)
		i++;
	if (i == HOOKS_MAX)
		return -1;
	if (i == t->n)
		t->n++;
	t->h[i].fn = fn;
	t->h[i].arg = arg;
	return 0;
}

void hooks_remove(struct hooks *t, void (*fn)(void *arg), void *arg)
{
	for (int i = 0; i < t->n; i++)
		if (t->h[i].fn == fn && t->h[i].arg == arg)
			t->h[i].fn = NULL;
}

void hooks_run(struct hooks *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->h[i].fn)
			t->h[i].fn(t->h[i].arg);
}
