/* The shell commands the daemon runs on events: promote-command after an
 * automatic promotion, fence-peer when a primary under freeze is without
 * a peer, unfence-peer after a resync (issue 18).  Each runs with
 * /bin/sh -c, its own session, no descriptor of the daemon's but 0-2
 * (stdin /dev/null) and BLKREP_* in its environment.
 *
 * A detached command runs in a grandchild, nothing to reap.  A watched one
 * (struct hook) reports its wait status to a callback from the event loop
 * (a pidfd polled on the ring), so a daemon waiting for its answer wakes
 * at once.  Daemon-level: failures are logged. */
#ifndef BLKREP_HOOK_H
#define BLKREP_HOOK_H

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct hook;

/* The environment: BLKREP_CONFIG, BLKREP_RESOURCE, BLKREP_NODE,
 * BLKREP_DEVICE, BLKREP_PEERS (NULL: set to ""), and BLKREP_BIN (this
 * program). */
struct hook_env {
	const char *config, *resource, *node, *device, *peers;
};

/* Runs line in the background; 0, or -1 after logging (what names it). */
int hook_run_detached(const char *what, const char *line, const struct hook_env *e);

/* A watched command: done(arg, wstatus) once it ended. */
struct hook *hook_new(struct loop *loop, void (*done)(void *arg, int wstatus), void *arg);
/* The command goes on; its answer is ignored. */
void hook_free(struct hook *h);
/* Starts line; 0, or -1 after logging.  One at a time: -1 if one runs. */
int hook_start(struct hook *h, const char *what, const char *line, const struct hook_env *e);
bool hook_running(const struct hook *h);

/* fence-peer's answer (DRBD's exit codes): 3 the peer is inconsistent,
 * 4 outdated, 5 down (unreachable), 7 fenced: it may be left behind.
 * Anything else (6: the peer is primary; a failure; a signal): not. */
bool hook_fence_outdates(int wstatus);
/* "exit 4", "killed by signal 9", for the log and status. */
const char *hook_status_str(int wstatus, char *buf, size_t len);

#endif
