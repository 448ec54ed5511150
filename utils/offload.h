/* Blocking work off the event loop: a call that may wait for the loop
 * itself (binding a loop device to the FUSE file flushes it, and the flush
 * is served by this daemon's loop) runs in a thread of its own, and its
 * result comes back on the loop through an eventfd.  One at a time.
 * Daemon-level: -1 after logging. */
#ifndef BLKREP_OFFLOAD_H
#define BLKREP_OFFLOAD_H

#include <stdbool.h>

struct loop;
struct offload;

struct offload *offload_new(struct loop *loop);
/* Waits for work still running (its done() is not called), then frees. */
void offload_free(struct offload *o);

/* Runs work(arg) in a new thread; then, on the loop, done(arg, its result).
 * -1 if work is already running or the thread cannot start. */
int offload_run(struct offload *o, int (*work)(void *arg), void (*done)(void *arg, int rc),
		void *arg);

bool offload_busy(const struct offload *o);

#endif
