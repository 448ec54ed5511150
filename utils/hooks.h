/* End-of-batch hooks: a small table of fn(arg) calls that an event loop
 * runs after each batch of completions (utils/loop.c, and the simulator's
 * loop, tests/sim/simloop.c).  A removed hook leaves an empty slot (fn
 * NULL) for the next one, so that removing from inside a hook never shifts
 * the table under hooks_run().  Pure, no allocation. */
#ifndef BLKREP_HOOKS_H
#define BLKREP_HOOKS_H

#define HOOKS_MAX 8

struct hooks {
	struct {
		void (*fn)(void *arg);
		void *arg;
	} h[HOOKS_MAX];
	int n;
};

/* Adds fn(arg); returns -1 when all HOOKS_MAX are taken. */
int hooks_add(struct hooks *t, void (*fn)(void *arg), void *arg);
void hooks_remove(struct hooks *t, void (*fn)(void *arg), void *arg);
void hooks_run(struct hooks *t);

#endif
