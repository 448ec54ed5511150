/* The simulator's daemon/loop.c: the same API (daemon/loop.h), but the
 * entries the daemon fills go to simfd.c instead of a ring, and their
 * completions come back as events of the simulation (simrt.h).  Each
 * completion is a batch of its own: its ioop's done(), then the hooks,
 * then the entries they queued are submitted. */
#ifndef BLKREP_SIMLOOP_H
#define BLKREP_SIMLOOP_H

struct loop;

/* Submits the entries queued outside a completion (by node_start()). */
void simloop_submit(struct loop *l);

#endif
