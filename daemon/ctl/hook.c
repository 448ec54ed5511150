/* Shell commands on events (see hook.h). */
#include "daemon/ctl/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <liburing.h>

#include "utils/ioop.h"
#include "utils/log.h"
#include "utils/loop.h"

struct hook {
	struct loop *loop;
	struct ioop op; /* the poll on pidfd */
	void (*done)(void *arg, int wstatus);
	void *arg;
	pid_t pid; /* 0: none runs */
	int pidfd;
};

static void hook_setenv(const struct hook_env *e)
{
	char self[256];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[len > 0 ? len : 0] = '\0';
	setenv("BLKREP_BIN", self, 1);
	setenv("BLKREP_CONFIG", e->config ? e->config : "", 1);
	setenv("BLKREP_RESOURCE", e->resource ? e->resource : "", 1);
	setenv("BLKREP_NODE", e->node ? e->node : "", 1);
	setenv("BLKREP_DEVICE", e->device ? e->device : "", 1);
	setenv("BLKREP_PEERS", e->peers ? e->peers : "", 1);
}

/* In the child: a clean start for the command, then the shell. */
static void hook_exec(const char *line, const struct hook_env *e)
{
	sigset_t all;
	int null = open("/dev/null", O_RDONLY);

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL); /* the daemon's signalfd blocks some */
	signal(SIGPIPE, SIG_DFL);	      /* the daemon ignores it */
	if (null > 0)
		(void)dup2(null, 0);
	(void)close_range(3, ~0U, 0); /* sockets, the ring, the backing file */
	(void)setsid();
	hook_setenv(e);
	execl("/bin/sh", "sh", "-c", line, (char *)NULL);
	_exit(127);
}

int hook_run_detached(const char *what, const char *line, const struct hook_env *e)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (fork() == 0)
			hook_exec(line, e);
		_exit(0);
	}
	if (pid < 0) {
		log_err("%s: cannot start `%s`: %s", what, line, strerror(errno));
		return -1;
	}
	(void)waitpid(pid, NULL, 0);
	return 0;
}

static void hook_arm(struct hook *h)
{
	io_uring_prep_poll_add(loop_sqe(h->loop, &h->op), h->pidfd, POLLIN);
}

static void hook_on_exit(struct ioop *op, int res)
{
	struct hook *h = container_of(op, struct hook, op);
	int st = 0;

	(void)res;
	if (waitpid(h->pid, &st, WNOHANG) == 0) {
		hook_arm(h); /* not yet (a spurious wake) */
		return;
	}
	close(h->pidfd);
	h->pidfd = -1;
	h->pid = 0;
	h->done(h->arg, st);
}

struct hook *hook_new(struct loop *loop, void (*done)(void *arg, int wstatus), void *arg)
{
	struct hook *h = calloc(1, sizeof(*h));

	if (!h) {
		log_err("out of memory");
		return NULL;
	}
	h->loop = loop;
	h->op.done = hook_on_exit;
	h->done = done;
	h->arg = arg;
	h->pidfd = -1;
	return h;
}

/* Only once the loop no longer runs (the daemon's end): a command still
 * running goes on by itself. */
void hook_free(struct hook *h)
{
	if (!h)
		return;
	if (h->pidfd >= 0)
		close(h->pidfd);
	free(h);
}

int hook_start(struct hook *h, const char *what, const char *line, const struct hook_env *e)
{
	pid_t pid;
	int fd;

	if (h->pid)
		return -1;
	pid = fork();
	if (pid == 0)
		hook_exec(line, e);
	if (pid < 0) {
		log_err("%s: cannot start `%s`: %s", what, line, strerror(errno));
		return -1;
	}
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		/* Without a pidfd its answer cannot be awaited: it goes on
		 * unheard (the kernel is older than 5.3). */
		log_err("%s: cannot watch `%s` (pidfd_open: %s)", what, line, strerror(errno));
		return -1;
	}
	h->pid = pid;
	h->pidfd = fd;
	hook_arm(h);
	return 0;
}

bool hook_running(const struct hook *h)
{
	return h && h->pid;
}

bool hook_fence_outdates(int wstatus)
{
	if (!WIFEXITED(wstatus))
		return false;
	switch (WEXITSTATUS(wstatus)) {
	case 3: /* the peer is inconsistent */
	case 4: /* outdated */
	case 5: /* down, unreachable */
	case 7: /* fenced */
		return true;
	default:
		return false;
	}
}

const char *hook_status_str(int wstatus, char *buf, size_t len)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, len, "exit %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(wstatus));
	else
		snprintf(buf, len, "wait status %d", wstatus);
	return buf;
}
