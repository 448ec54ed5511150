/* A daemon's run directory and process.  See rundir.h. */
#include "daemon/ctl/rundir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <liburing.h>

#include "daemon/ctl/control.h"
#include "utils/log.h"
#include "utils/loop.h"
#include "utils/privdir.h"

int rundir_paths(struct rundir *r, const char *resource, const char *node)
{
	if (control_run_path(r->ctl, sizeof(r->ctl), resource, node, "ctl") < 0 ||
	    control_run_path(r->pid, sizeof(r->pid), resource, node, "pid") < 0 ||
	    control_run_path(r->log, sizeof(r->log), resource, node, "log") < 0) {
		log_err("run directory path too long");
		return -1;
	}
	return 0;
}

/* In the checked run directory, never through a planted symlink. */
int rundir_write_pid(const struct rundir *r)
{
	char err[512], pid[24];

	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (privdir_write_file(r->pid, pid, 0644, err, sizeof(err)) == 0)
		return 0;
	log_err("pid file %s", err);
	return -1;
}

void rundir_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/* The parent `blkrep up` returns once it reads READY; later log lines go
 * to the daemon's log file, stamped. */
void rundir_ready(const struct rundir *r, int *ready_fd)
{
	char err[512], ready[48];
	int logfd;

	/* MAINPID: this process, also when `up` without --foreground forked it. */
	snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%d", (int)getpid());
	rundir_notify(ready);
	if (*ready_fd < 0)
		return;
	/* Opened before READY, so that a refusal still reaches `up`. */
	logfd = privdir_open_file(r->log, O_WRONLY | O_CREAT | O_APPEND, 0600, err, sizeof(err));
	if (logfd < 0)
		log_warn("log file %s; running without one", err);
	if (write(*ready_fd, "READY\n", 6) != 6)
		log_warn("cannot tell blkrep up that the daemon is ready");
	if (logfd >= 0) {
		(void)dup2(logfd, STDERR_FILENO);
		close(logfd);
		log_copy_to(-1); /* the start's copy (cmd_up()): stderr is the file now */
		log_set_style(LOG_STAMPED);
	}
	close(*ready_fd);
	*ready_fd = -1;
}

static void rundir_arm_signal(struct rundir_signals *s)
{
	io_uring_prep_read(loop_sqe(s->loop, &s->op), s->fd, &s->si, sizeof(s->si), 0);
}

static void rundir_on_signal(struct ioop *op, int res)
{
	struct rundir_signals *s = container_of(op, struct rundir_signals, op);

	if (res > 0)
		s->stop(s->arg);
	if (!*s->stopping)
		rundir_arm_signal(s);
}

int rundir_signals_start(struct rundir_signals *s, struct loop *loop, void (*stop)(void *arg),
			 void *arg, const bool *stopping)
{
	s->fd = loop_stop_signalfd();
	if (s->fd < 0)
		return -1;
	s->loop = loop;
	s->stop = stop;
	s->arg = arg;
	s->stopping = stopping;
	s->op.done = rundir_on_signal;
	rundir_arm_signal(s);
	return 0;
}

void rundir_signals_close(struct rundir_signals *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}
