/* The event loop: one io_uring per thread.  It submits and waits once,
 * drains a batch of completions, calls each one's ioop callback, then runs
 * the end-of-batch hooks (work that is cheaper once per batch: sending
 * replies, waking buffer waiters).  Daemon-level: -1 after logging. */
#ifndef BLKREP_LOOP_H
#define BLKREP_LOOP_H

#include <stdbool.h>

#include "utils/ioop.h"

struct loop;
struct io_uring_sqe;

/* Sets up the ring, checking that the kernel has every operation blkrep
 * uses.  Returns NULL after logging why. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* A submission queue entry whose completion goes to op (NULL: ignored, as
 * for cancel requests).  Submits pending entries when the queue is full. */
struct io_uring_sqe *loop_sqe(struct loop *l, struct ioop *op);


/* Adds fn(arg) to run after every batch of completions. */
void loop_add_hook(struct loop *l, void (*fn)(void *arg), void *arg);

/* Removes it; safe from inside a hook. */
void loop_remove_hook(struct loop *l, void (*fn)(void *arg), void *arg);

/* Runs until keep_going(arg) is false (asked before every wait).
 * Returns 0, or -1 if the ring failed. */
/* Blocks SIGINT and SIGTERM, which a daemon reads from the returned
 * signalfd (close-on-exec) as a request to stop, and ignores SIGPIPE.
 * Returns -1 after logging. */
int loop_stop_signalfd(void);

int loop_run(struct loop *l, bool (*keep_going)(void *arg), void *arg);

#endif
