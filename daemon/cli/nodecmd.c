/* The node commands on the CLI side: `up` starts the daemon, the others
 * send one request to its control socket and print the answer. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cli/cli.h"
#include "daemon/cli/cmdspec.h"
#include "daemon/cli/commands.h"
#include "daemon/config.h"
#include "daemon/ctl/control.h"
#include "daemon/ctl/ctlparse.h"
#include "daemon/ctl/rundir.h"
#include "daemon/node.h"
#include "daemon/witness/witness.h"
#include "utils/log.h"
#include "utils/privdir.h"

#define DOWN_WAIT_MS	30000

/* The run files of this node: control socket, pid file, log. */
static int node_paths(const struct config *cfg, const struct config_node *me, struct rundir *f)
{
	return rundir_paths(f, config_resource_name(cfg), me->name);
}

static pid_t read_pid(const char *path)
{
	FILE *f = fopen(path, "re");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

/* The daemon did not answer cmd (err): one line saying what to do next,
 * run `blkrep up` or read the log of the daemon that is there (`down`
 * needs neither). */
static void log_no_answer(const struct rundir *f, const char *cmd, const char *err)
{
	pid_t pid = read_pid(f->pid);

	if (strcmp(cmd, "down") == 0)
		log_err("%s", err);
	else if (pid > 0 && kill(pid, 0) == 0)
		log_err("%s; the daemon (pid %d) is there: see its log %s", err, (int)pid, f->log);
	else
		log_err("%s; run: blkrep up (the daemon's log: %s)", err, f->log);
}

/* words[0..n) as one request line, its file names made absolute
 * (command_takes_paths()).  0, 1 (logged: no working directory, no
 * memory) or 2 (a word the daemon would split differently, such as a path
 * with a space: refused here, not mangled). */
static int request_line(int n, char **words, char *line, size_t len)
{
	char **w = calloc((size_t)n, sizeof(*w)), **owned = calloc((size_t)n, sizeof(*owned));
	const char *why;
	int rc = 0;

	if (!w || !owned) {
		log_err("out of memory");
		rc = 1;
	}
	for (int i = 0; !rc && i < n; i++) {
		w[i] = words[i];
		if (i && command_takes_paths(words[0]) && words[i][0] != '-' && words[i][0] != '/' &&
		    !(w[i] = owned[i] = cli_absolute(words[i])))
			rc = 1;
	}
	if (!rc && ctlparse_join(w, n, line, len, &why) < 0) {
		log_err("cannot send this request: %s", why);
		rc = 2;
	}
	for (int i = 0; owned && i < n; i++)
		free(owned[i]);
	free(owned);
	free(w);
	return rc;
}

/* Sends words[0..n) as one request line; prints the body.  Exit status. */
static int call_daemon(const struct rundir *f, int n, char **words, int wait_ms)
{
	char line[CONTROL_LINE_MAX], err[512], *body = NULL;
	bool ok;
	int rc;

	rc = request_line(n, words, line, sizeof(line));
	if (rc)
		return rc;
	if (control_call(f->ctl, line, wait_ms, &body, &ok, err, sizeof(err)) < 0) {
		log_no_answer(f, words[0], err);
		return 1;
	}
	if (ok && body && *body)
		printf("%s\n", body);	/* control_call() strips the final newline */
	else
		log_err("%s", body && *body ? strtok(body, "\n") : "request failed");
	rc = ok ? 0 : 1;
	free(body);
	return rc;
}

/* Runs a command on this node's daemon: the request is the command line
 * itself (`primary --force`, `status --json`, ...). */
int cmd_request(struct cli *cli)
{
	struct rundir f;
	const struct config_node *me;
	struct config *cfg;
	int rc;

	if (cli_load_node(cli, &cfg, &me) < 0)
		return 1;
	rc = node_paths(cfg, me, &f);
	if (rc == 0)
		rc = call_daemon(&f, cli->argc, cli->argv, CONTROL_WAIT_MS);
	else
		rc = 1;
	config_free(cfg);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* One answer to "progress WHAT": true once it says "done"; draws a bar on
 * a terminal while it says "running DONE TOTAL". */
static bool show_progress(const char *body, bool tty)
{
	unsigned long long done, total;

	if (strncmp(body, "done", 4) == 0) {
		if (tty)
			fprintf(stderr, "\r%60s\r", "");
		if (body[4])
			printf("%s\n", body + 5);
		return true;
	}
	if (tty && sscanf(body, "running %llu %llu", &done, &total) == 2 && total) {
		unsigned pct = (unsigned)(done * 100 / total);
		char bar[41];

		for (unsigned i = 0; i < 40; i++)
			bar[i] = i < pct * 40 / 100 ? '#' : '.';
		bar[40] = '\0';
		fprintf(stderr, "\r[%s] %3u%% of %llu bytes", bar, pct, total);
	}
	return false;
}

/* Commands that start work in the daemon and return once it is finished
 * (`mode sync` waits for the lag to drain, `verify` for the comparison):
 * the request, then "progress WHAT" every 200 ms until "done". */
int cmd_wait_request(struct cli *cli)
{
	char line[64], err[512], *body = NULL;
	struct rundir f;
	const struct config_node *me;
	struct config *cfg;
	bool ok = true, tty = isatty(STDERR_FILENO);
	int rc = 1;

	if (cli_load_node(cli, &cfg, &me) < 0)
		return 1;
	if (node_paths(cfg, me, &f) < 0 ||
	    (rc = call_daemon(&f, cli->argc, cli->argv, CONTROL_WAIT_MS)) != 0)
		goto out;
	snprintf(line, sizeof(line), "progress %s", cli->argv[0]);
	for (;;) {
		if (control_call(f.ctl, line, 0, &body, &ok, err, sizeof(err)) < 0) {
			log_err("%s", err);
			rc = 1;
			break;
		}
		if (!ok || show_progress(body ? body : "", tty)) {
			if (!ok)
				log_err("%s", body && *body ? strtok(body, "\n") : "request failed");
			rc = ok ? 0 : 1;
			break;
		}
		free(body);
		body = NULL;
		sleep_ms(200);
	}
	free(body);
out:
	config_free(cfg);
	return rc;
}

/* `down`: the daemon answers, shuts down cleanly and exits; wait for it. */
int cmd_down(struct cli *cli)
{
	struct rundir f;
	const struct config_node *me;
	struct config *cfg;
	pid_t pid;
	int rc = 1;

	if (cli_load_node(cli, &cfg, &me) < 0)
		return 1;
	if (node_paths(cfg, me, &f) < 0)
		goto out;
	pid = read_pid(f.pid);
	rc = call_daemon(&f, cli->argc, cli->argv, 0);
	if (rc != 0 || pid <= 0)
		goto out;
	for (int waited = 0; kill(pid, 0) == 0; waited += 50) {
		if (waited >= DOWN_WAIT_MS) {
			log_err("the daemon (pid %d) did not exit within %d s", (int)pid,
				DOWN_WAIT_MS / 1000);
			rc = 1;
			goto out;
		}
		sleep_ms(50);
	}
out:
	config_free(cfg);
	return rc;
}

/* The line each start logs first, with the version and pid: on stderr
 * under --foreground, stamped (or with the journal's levels); in the
 * background to the log file alone (`up` does not print it), which then
 * also gets, stamped, what the daemon says before it is ready. */
static void log_start(const struct config *cfg, const struct config_node *me, bool foreground)
{
	char path[256], err[512];
	int fd;

	if (foreground && !log_stderr_is_journal())
		log_set_style(LOG_STAMPED);
	if (!foreground) {
		if (control_run_path(path, sizeof(path), config_resource_name(cfg), me->name,
				     "log") < 0)
			return; /* node_setup() says so */
		fd = privdir_open_file(path, O_WRONLY | O_CREAT | O_APPEND, 0600, err, sizeof(err));
		if (fd < 0)
			return; /* node_ready() says why */
		log_copy_to(fd);
	}
	log_copy_msg(LOG_INFO, "blkrep %s starting %s/%s, pid %d", BLKREP_VERSION,
		     config_resource_name(cfg), me->name, (int)getpid());
}

/* The parent relays the starting daemon's messages until it says READY
 * (exit 0) or closes the pipe without saying so (exit 1). */
static int relay_until_ready(int fd, pid_t child)
{
	char buf[4096];
	size_t have = 0;
	ssize_t got;
	bool ready = false;
	int status;

	while (!ready && (got = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		char *line = buf, *nl;

		have += (size_t)got;
		buf[have] = '\0';
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (strcmp(line, "READY") == 0)
				ready = true;
			else
				fprintf(stderr, "%s\n", line);
			line = nl + 1;
		}
		have = strlen(line);
		memmove(buf, line, have);
	}
	close(fd);
	if (ready)
		return 0;
	if (waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status))
		return WEXITSTATUS(status);
	log_err("the daemon exited before it was ready");
	return 1;
}

/* A data node's daemon, or a witness's. */
static int run_daemon(struct config *cfg, const struct config_node *me, int ready_fd)
{
	if (me->witness)
		return witness_run(cfg, me, ready_fd, &witness_above);
	return node_run(cfg, me, ready_fd, &node_above);
}

static int start_daemon(struct config *cfg, const struct config_node *me)
{
	int pfd[2];
	pid_t child;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_err("pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		log_err("fork: %s", strerror(errno));
		return 1;
	}
	if (child > 0) {
		close(pfd[1]);
		return relay_until_ready(pfd[0], child);
	}
	close(pfd[0]);
	(void)setsid();
	(void)dup2(pfd[1], STDERR_FILENO);
	if (freopen("/dev/null", "r", stdin) == NULL || freopen("/dev/null", "w", stdout) == NULL)
		_exit(1);
	log_start(cfg, me, false);
	_exit(run_daemon(cfg, me, pfd[1]));
}

int cmd_up(struct cli *cli)
{
	char err[512], *body = NULL;
	struct rundir f;
	bool foreground, ok;
	const struct config_node *me;
	struct config *cfg;
	int rc = 1;

	foreground = cmdspec_has_flag(cli->argc, cli->argv, "--foreground");
	if (cli_load_node(cli, &cfg, &me) < 0)
		return 1;
	if (node_paths(cfg, me, &f) < 0 || control_make_run_dir(f.ctl) < 0)
		goto out;
	if (control_call(f.ctl, "ping", 0, &body, &ok, err, sizeof(err)) == 0) {
		log_err("%s/%s is already up (pid file %s)", config_resource_name(cfg), me->name,
			f.pid);
		free(body);
		goto out;
	}
	if (foreground)
		log_start(cfg, me, true);
	rc = foreground ? run_daemon(cfg, me, -1) : start_daemon(cfg, me);
out:
	config_free(cfg);
	return rc;
}
