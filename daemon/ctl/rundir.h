/* What every blkrep daemon of a (resource, node) does with its run
 * directory and its process, the data node's (daemon/node.c) and the
 * witness's (daemon/witness) alike: its run files' paths, the pid file,
 * readiness (systemd's notify socket, the READY line `blkrep up` waits
 * for, stderr moving to the log file) and SIGINT/SIGTERM read on the
 * event loop.  Daemon-level: failures are logged here. */
#ifndef BLKREP_RUNDIR_H
#define BLKREP_RUNDIR_H

#include <stdbool.h>
#include <sys/signalfd.h>

#include "utils/ioop.h"

struct loop;

/* RUN_DIR/RESOURCE-NODE.ctl, .pid and .log (control_run_path()). */
struct rundir {
	char ctl[256], pid[256], log[256];
};

/* Fills r: 0, or -1 after logging "run directory path too long". */
int rundir_paths(struct rundir *r, const char *resource, const char *node);

/* The pid file, in the checked run directory: 0, or -1 after logging. */
int rundir_write_pid(const struct rundir *r);

/* systemd's readiness protocol (NOTIFY_SOCKET), without libsystemd. */
void rundir_notify(const char *msg);

/* The daemon is ready: READY=1 to systemd; and with *ready_fd >= 0 (the
 * pipe of the parent `blkrep up`), "READY\n" written there, stderr moved
 * to the log file with stamped lines, *ready_fd closed and set to -1. */
void rundir_ready(const struct rundir *r, int *ready_fd);

/* SIGINT and SIGTERM, read on the loop: stop(arg) for each, and the read
 * re-armed while *stopping is false. */
struct rundir_signals {
	struct ioop op;
	int fd;
	struct signalfd_siginfo si;
	struct loop *loop;
	void (*stop)(void *arg);
	void *arg;
	const bool *stopping;
};

/* 0, or -1 after logging.  s->fd is -1 until it succeeds. */
int rundir_signals_start(struct rundir_signals *s, struct loop *loop, void (*stop)(void *arg),
			 void *arg, const bool *stopping);
/* Closes the signalfd (after the loop is freed); fine on a zeroed or
 * failed s whose fd is -1. */
void rundir_signals_close(struct rundir_signals *s);

#endif
