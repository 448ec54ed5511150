/* Tests for daemon/control: a real loop on the test's thread (the ring is
 * single-issuer) with the control socket on it, and clients in a second
 * thread, since control_call() blocks.  Each run of the loop is bounded by
 * RUN_LIMIT_MS, each test by the suite's timeout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl/control.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "utils/log.h"

#define RUN_LIMIT_MS	5000
#define TICK_NS		(5 * 1000000LL)
#define BIG_MAX		(CONTROL_BODY_MAX + 1000)

struct fixture {
	char tmp[48];	/* mkdtemp */
	char dir[64];	/* tmp/run, left to control_new to create */
	char path[100];
	struct loop *loop;
	struct control *ctl;
	/* what the handler saw */
	int calls;
	int argc;
	char words[CONTROL_WORDS_MAX][64];
	struct control_req *held;	/* a request answered later */
	struct ioop later_op;
	struct __kernel_timespec later_ts;
	/* driving the loop */
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	uint64_t limit_ms;
	pthread_t client;
	atomic_bool client_done;
	bool (*until)(void);
};

static struct fixture fx;
static char big[BIG_MAX];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the handler: a few commands --- */

static void later_done(struct ioop *op, int res)
{
	(void)op;
	(void)res;
	control_reply(fx.held, true, "later done");
	fx.held = NULL;
}

static void handler(void *arg, struct control_req *req)
{
	int argc;
	char *const *argv = control_req_words(req, &argc);
	char joined[512] = "";

	cr_assert_eq(arg, &fx);
	cr_assert_null(argv[argc]);
	fx.calls++;
	fx.argc = argc;
	for (int i = 0; i < argc; i++) {
		snprintf(fx.words[i], sizeof(fx.words[i]), "%s", argv[i]);
		if (i)
			strcat(joined, "|");
		strncat(joined, argv[i], 64);
	}
	if (!strcmp(argv[0], "echo")) {
		control_reply(req, true, "%s", joined);
	} else if (!strcmp(argv[0], "fail")) {
		control_reply(req, false, "no good: %s", argc > 1 ? argv[1] : "?");
	} else if (!strcmp(argv[0], "big") && argc == 2) {
		control_reply(req, true, "%.*s", atoi(argv[1]), big);
	} else if (!strcmp(argv[0], "later")) {
		/* Answered from another completion, 50 ms on. */
		struct io_uring_sqe *sqe = loop_sqe(fx.loop, &fx.later_op);

		fx.held = req;
		fx.later_ts.tv_nsec = 50 * 1000000LL;
		io_uring_prep_timeout(sqe, &fx.later_ts, 0, 0);
	} else {
		control_reply(req, false, "unknown command: %s", argv[0]);
	}
}

/* --- driving the loop while a client thread runs --- */

static void tick_done(struct ioop *op, int res);

static void arm_tick(void)
{
	struct io_uring_sqe *sqe = loop_sqe(fx.loop, &fx.tick_op);

	fx.tick_ts.tv_nsec = TICK_NS;
	io_uring_prep_timeout(sqe, &fx.tick_ts, 0, 0);
}

/* Wakes the loop now and then, so that keep_going() sees the client end. */
static void tick_done(struct ioop *op, int res)
{
	(void)op;
	(void)res;
	arm_tick();
}

static bool keep_going(void *arg)
{
	(void)arg;
	if (now_ms() > fx.limit_ms)
		return false;
	return fx.until ? !fx.until() : !atomic_load(&fx.client_done);
}

static void run_loop(void)
{
	fx.limit_ms = now_ms() + RUN_LIMIT_MS;
	cr_assert_eq(loop_run(fx.loop, keep_going, NULL), 0);
}

struct job {
	void (*fn)(void *arg);
	void *arg;
};

static void *client_main(void *arg)
{
	struct job *j = arg;

	j->fn(j->arg);
	atomic_store(&fx.client_done, true);
	return NULL;
}

static void client_start(struct job *j)
{
	atomic_store(&fx.client_done, false);
	cr_assert_eq(pthread_create(&fx.client, NULL, client_main, j), 0);
}

static void client_finish(void)
{
	run_loop();
	cr_assert(atomic_load(&fx.client_done), "the client did not finish within %d ms",
		  RUN_LIMIT_MS);
	pthread_join(fx.client, NULL);
}

static void run_client(void (*fn)(void *arg), void *arg)
{
	struct job j = { fn, arg };

	client_start(&j);
	client_finish();
}

/* --- clients --- */

struct call {
	const char *line;
	int wait_ms;
	int rc;
	bool ok;
	char *body;
	char err[512];
	uint64_t elapsed_ms;
};

static void do_call(void *arg)
{
	struct call *c = arg;
	uint64_t t0 = now_ms();

	c->rc = control_call(fx.path, c->line, c->wait_ms, &c->body, &c->ok, c->err,
			     sizeof(c->err));
	c->elapsed_ms = now_ms() - t0;
}

/* One request through the loop; the answer must come (rc 0). */
static struct call call(const char *line)
{
	struct call c = { .line = line, .wait_ms = 1000 };

	run_client(do_call, &c);
	cr_assert_eq(c.rc, 0, "control_call(\"%s\"): %s", line, c.err);
	cr_assert_not_null(c.body);
	return c;
}

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 3 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx.path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	/* Bounds every read below. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Reads until EOF; -1 on a timeout. */
static ssize_t raw_read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n = 0;

	while (len < cap - 1 && (n = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (n < 0 && errno == EAGAIN)
		return -1;
	return (ssize_t)len;
}

struct raw {
	const char *data;
	size_t len;
	bool shut_wr;
	char answer[256];
	ssize_t alen;
	uint64_t elapsed_ms;
};

static void do_raw(void *arg)
{
	struct raw *r = arg;
	uint64_t t0 = now_ms();
	int fd = raw_connect();

	if (r->len)
		cr_assert_eq(send(fd, r->data, r->len, MSG_NOSIGNAL), (ssize_t)r->len);
	if (r->shut_wr)
		shutdown(fd, SHUT_WR);
	r->alen = raw_read_all(fd, r->answer, sizeof(r->answer));
	r->elapsed_ms = now_ms() - t0;
	close(fd);
}

/* --- set-up --- */

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	memset(big, 'y', sizeof(big));
	log_init("blkrep", LOG_WARN);
	snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/blkrep-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.tmp));
	snprintf(fx.dir, sizeof(fx.dir), "%s/run", fx.tmp);
	snprintf(fx.path, sizeof(fx.path), "%s/r0-alpha.ctl", fx.dir);
	fx.loop = loop_new();
	cr_assert_not_null(fx.loop);
	fx.tick_op.done = tick_done;
	fx.later_op.done = later_done;
	arm_tick();
}

static void teardown(void)
{
	control_free(fx.ctl);
	loop_free(fx.loop);
	unlink(fx.path);
	rmdir(fx.dir);
	rmdir(fx.tmp);
}

static void start(void)
{
	fx.ctl = control_new(fx.loop, fx.path, handler, &fx);
	cr_assert_not_null(fx.ctl);
}

TestSuite(control, .init = setup, .fini = teardown, .timeout = 20);

/* --- answers --- */

Test(control, a_request_gets_the_handlers_answer)
{
	struct call c;

	start();
	c = call("echo status --json");
	cr_assert(c.ok);
	cr_assert_str_eq(c.body, "echo|status|--json");
	cr_assert_eq(fx.calls, 1);
	free(c.body);
}

Test(control, words_are_split_on_runs_of_spaces_and_tabs)
{
	struct call c;

	start();
	c = call("  echo   primary\t--force  ");
	cr_assert_eq(fx.argc, 3);
	cr_assert_str_eq(fx.words[0], "echo");
	cr_assert_str_eq(fx.words[1], "primary");
	cr_assert_str_eq(fx.words[2], "--force");
	cr_assert_str_eq(c.body, "echo|primary|--force");
	free(c.body);
}

Test(control, thirty_two_words_pass_thirty_three_do_not)
{
	char line[256] = "echo";
	struct call c;

	start();
	for (int i = 1; i < CONTROL_WORDS_MAX; i++)
		strcat(line, " w");
	c = call(line);
	cr_assert(c.ok);
	cr_assert_eq(fx.argc, CONTROL_WORDS_MAX);
	free(c.body);
	strcat(line, " w");
	c = call(line);
	cr_assert_not(c.ok);
	cr_assert_str_eq(c.body, "too many words (at most 32)");
	cr_assert_eq(fx.calls, 1);
	free(c.body);
}

Test(control, an_empty_request_is_answered_without_the_handler)
{
	struct call c;

	start();
	c = call(" \t ");
	cr_assert_not(c.ok);
	cr_assert_str_eq(c.body, "empty request");
	cr_assert_eq(fx.calls, 0);
	free(c.body);
}

Test(control, an_error_answer_is_an_answer)
{
	struct call c;

	start();
	c = call("fail because");
	cr_assert_not(c.ok);
	cr_assert_str_eq(c.body, "no good: because");
	free(c.body);
	c = call("frobnicate");
	cr_assert_not(c.ok);
	cr_assert_str_eq(c.body, "unknown command: frobnicate");
	free(c.body);
}

Test(control, a_deferred_answer_comes_from_a_later_completion)
{
	struct call c;

	start();
	c = call("later please");
	cr_assert(c.ok);
	cr_assert_str_eq(c.body, "later done");
	cr_assert_null(fx.held);
	cr_assert_geq(c.elapsed_ms, 40);
	free(c.body);
}

Test(control, a_64k_body_arrives_whole_a_longer_one_is_cut)
{
	char line[32];
	struct call c;

	start();
	snprintf(line, sizeof(line), "big %u", CONTROL_BODY_MAX);
	c = call(line);
	cr_assert(c.ok);
	cr_assert_eq(strlen(c.body), CONTROL_BODY_MAX);
	cr_assert_eq(memcmp(c.body, big, CONTROL_BODY_MAX), 0);
	free(c.body);
	snprintf(line, sizeof(line), "big %u", CONTROL_BODY_MAX + 500);
	c = call(line);
	cr_assert(c.ok);
	cr_assert_eq(strlen(c.body), CONTROL_BODY_MAX);
	free(c.body);
}

/* --- malformed clients --- */

Test(control, a_too_long_request_is_refused)
{
	static char data[5000];
	struct raw r = { .data = data, .len = sizeof(data) };
	struct call c = { .line = data, .wait_ms = 0 };

	memset(data, 'x', sizeof(data));
	start();
	run_client(do_raw, &r);
	cr_assert_str_eq(r.answer, "error\nrequest too long\n");
	cr_assert_eq(fx.calls, 0);
	/* The client refuses it before sending. */
	data[sizeof(data) - 1] = '\0';
	do_call(&c);
	cr_assert_eq(c.rc, -1);
	cr_assert_str_eq(c.err, "request too long (4999 bytes, at most 4095)");
}

Test(control, eof_before_the_newline_closes_without_an_answer)
{
	struct raw r = { .data = "echo hi", .len = 7, .shut_wr = true };

	start();
	run_client(do_raw, &r);
	cr_assert_eq(r.alen, 0);
	cr_assert_eq(fx.calls, 0);
}

Test(control, a_silent_client_is_dropped_after_the_idle_time)
{
	struct raw r = { .data = "ech", .len = 3 };

	start();
	control_set_idle_ms(fx.ctl, 200);
	run_client(do_raw, &r);
	cr_assert_eq(r.alen, 0, "answer: %s", r.answer);
	cr_assert_geq(r.elapsed_ms, 190);
	cr_assert_lt(r.elapsed_ms, 2000);
	cr_assert_eq(fx.calls, 0);
}

struct busy {
	char answer[64];
	struct call after;
};

static void do_busy(void *arg)
{
	struct busy *b = arg;
	int fds[CONTROL_CONNS_MAX], fd;

	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		fds[i] = raw_connect();
	/* Accepted in order: this one finds every slot taken. */
	fd = raw_connect();
	raw_read_all(fd, b->answer, sizeof(b->answer));
	close(fd);
	for (int i = 0; i < CONTROL_CONNS_MAX; i++)
		close(fds[i]);
	usleep(200 * 1000);	/* the daemon sees them go */
	b->after.line = "echo again";
	b->after.wait_ms = 1000;
	do_call(&b->after);
}

Test(control, the_seventeenth_client_is_told_busy)
{
	struct busy b = { .answer = "" };

	start();
	run_client(do_busy, &b);
	cr_assert_str_eq(b.answer, "error\nbusy\n");
	cr_assert_eq(b.after.rc, 0, "%s", b.after.err);
	cr_assert(b.after.ok);
	cr_assert_str_eq(b.after.body, "echo|again");
	free(b.after.body);
}

/* --- the socket file --- */

Test(control, socket_is_0600_in_a_0700_directory_whatever_the_umask)
{
	struct stat st;

	umask(0);
	start();
	cr_assert_eq(stat(fx.path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(stat(fx.dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0700, "mode %o", st.st_mode & 07777);
}

Test(control, a_stale_socket_file_is_replaced)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct call c;

	/* What a killed daemon leaves: a socket file nobody listens on. */
	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx.path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	start();
	c = call("echo alive");
	cr_assert(c.ok);
	free(c.body);
}

Test(control, a_file_that_is_not_a_socket_is_left_alone)
{
	int fd;

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	fd = open(fx.path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_null(control_new(fx.loop, fx.path, handler, &fx));
	cr_assert_eq(access(fx.path, F_OK), 0);
}

/* Returns what f wrote on stderr. */
static void capture_stderr(void (*f)(void), char *out, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	cr_assert_not_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	f();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, len - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

static struct control *second;

static void start_second(void)
{
	second = control_new(fx.loop, fx.path, handler, &fx);
}

Test(control, a_second_daemon_does_not_steal_a_live_socket)
{
	char msg[1024], want[256];
	struct call c;

	start();
	capture_stderr(start_second, msg, sizeof(msg));
	cr_assert_null(second);
	snprintf(want, sizeof(want), "another blkrep daemon is running for this node (%s)",
		 fx.path);
	cr_assert_not_null(strstr(msg, want), "stderr: %s", msg);
	/* The first one still has its socket. */
	c = call("echo still");
	cr_assert(c.ok);
	free(c.body);
}

/* --- the client's waiting --- */

Test(control, no_daemon_fails_clearly_after_the_wait)
{
	struct call c = { .line = "status", .wait_ms = 300 };
	char want[256];

	do_call(&c);
	cr_assert_eq(c.rc, -1);
	snprintf(want, sizeof(want), "no blkrep daemon is running for this node (%s)", fx.path);
	cr_assert_str_eq(c.err, want);
	cr_assert_null(c.body);
	cr_assert_geq(c.elapsed_ms, 300);
	cr_assert_lt(c.elapsed_ms, 2000);
}

Test(control, the_client_waits_for_a_daemon_that_is_starting)
{
	struct call c = { .line = "echo up", .wait_ms = 3000 };
	struct job j = { do_call, &c };

	client_start(&j);
	usleep(300 * 1000);	/* the client retries meanwhile */
	start();
	client_finish();
	cr_assert_eq(c.rc, 0, "%s", c.err);
	cr_assert(c.ok);
	cr_assert_str_eq(c.body, "echo|up");
	cr_assert_geq(c.elapsed_ms, 250);
	free(c.body);
}

/* --- stopping --- */

static bool ctl_idle(void)
{
	return control_idle(fx.ctl);
}

Test(control, stop_drops_silent_clients_and_ends_idle)
{
	struct raw r = { .data = "", .len = 0 };
	struct job j = { do_raw, &r };
	struct call c;

	start();
	c = call("echo before");
	free(c.body);
	cr_assert_not(control_idle(fx.ctl));
	client_start(&j);
	usleep(100 * 1000);	/* connected, sending nothing */
	fx.until = NULL;
	fx.limit_ms = now_ms() + 200;
	loop_run(fx.loop, keep_going, NULL);	/* let the loop accept it */
	control_stop(fx.ctl);
	fx.until = ctl_idle;
	run_loop();
	cr_assert(control_idle(fx.ctl));
	fx.until = NULL;
	client_finish();
	cr_assert_eq(r.alen, 0);
}

Test(control, paths)
{
	char buf[128];

	cr_assert_eq(control_path(buf, sizeof(buf), "/tmp/x", "r0", "alpha"), 0);
	cr_assert_str_eq(buf, "/tmp/x/r0-alpha.ctl");
	unsetenv(CONTROL_RUN_DIR_ENV);
	cr_assert_eq(control_path(buf, sizeof(buf), NULL, "r0", "beta"), 0);
	cr_assert_str_eq(buf, "/run/blkrep/r0-beta.ctl");
	setenv(CONTROL_RUN_DIR_ENV, "/tmp/t", 1);
	cr_assert_eq(control_path(buf, sizeof(buf), NULL, "r0", "beta"), 0);
	cr_assert_str_eq(buf, "/tmp/t/r0-beta.ctl");
	cr_assert_eq(control_path(buf, 10, NULL, "r0", "beta"), -1);
	cr_assert_eq(control_path(buf, sizeof(buf), NULL, "r0/x", "beta"), -1);
	setenv(CONTROL_RUN_DIR_ENV, "/tmp/a-very-long-directory-name-that-goes-on-and-on-and-on-"
				    "and-on-past-what-a-unix-socket-address-holds",
	       1);
	cr_assert_eq(control_path(buf, sizeof(buf), NULL, "r0", "beta"), -1);
}
