/* The per-node control socket.  See control.h.
 *
 * Daemon side: one ACCEPT at a time, re-armed from its completion; each
 * connection then has at most one RECV or SEND in flight, so it is freed
 * from that operation's completion and never while the kernel still points
 * at it.  One timer ticks while some client must still send its request or
 * read its answer, and shuts down the sockets of clients past their
 * deadline: their operation then completes and the connection ends there.
 *
 * Client side: plain blocking calls, for the CLI process. */
#include "control.h"

#include <errno.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl/ctlparse.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "utils/clock.h"
#include "utils/log.h"
#include "utils/privdir.h"

#define SUN_PATH_MAX	sizeof(((struct sockaddr_un *)0)->sun_path)
#define LISTEN_BACKLOG	(2 * CONTROL_CONNS_MAX)
#define RETRY_MS	100
#define DRAIN_MAX	(64U << 10)
#define ANSWER_MAX	(sizeof("error\n") + CONTROL_BODY_MAX)

static const char busy_answer[] = "error\nbusy\n";

enum req_state { RS_RECV, RS_HANDLER, RS_SEND };

/* One connection, which carries one request. */
struct control_req {
	struct ioop op;			/* the RECV or SEND in flight */
	struct control *ctl;
	int fd;
	enum req_state state;
	bool dropped;			/* shut down: end at op's completion */
	uint64_t deadline_ms;		/* for the client, in RS_RECV and RS_SEND */
	unsigned rlen;
	int argc;
	char *argv[CONTROL_WORDS_MAX + 1];
	size_t olen, opos;
	char rbuf[CONTROL_LINE_MAX + 1];
	char obuf[ANSWER_MAX];
};

struct control {
	struct loop *loop;
	control_handler_fn *handler;
	void *arg;
	int fd;
	dev_t sock_dev;			/* the socket file we bound, so that */
	ino_t sock_ino;			/* we never unlink a successor's */
	bool bound;
	bool accept_armed;
	bool accept_paused;		/* out of fds: retried at the next tick */
	bool tick_armed;
	bool stopping;
	unsigned idle_ms;
	struct ioop accept_op;
	struct ioop tick_op;
	struct __kernel_timespec tick_ts;
	struct control_req *reqs[CONTROL_CONNS_MAX];
	int nreqs;
	char path[SUN_PATH_MAX];
};

static int sun_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n >= SUN_PATH_MAX)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* Closing a unix socket whose receive queue is not empty makes the peer's
 * next read fail with ECONNRESET instead of seeing the answer end cleanly,
 * so what the client sent beyond its request is read off first.  Never
 * blocks, and is bounded against a client that keeps sending. */
static void control_drain(int fd)
{
	char scratch[4096];
	size_t total = 0;
	ssize_t n;

	while (total < DRAIN_MAX && (n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT)) > 0)
		total += (size_t)n;
}

/* --- the timer --- */

static bool control_needs_tick(const struct control *c)
{
	if (c->accept_paused)
		return true;
	for (int i = 0; i < c->nreqs; i++)
		if (c->reqs[i]->state != RS_HANDLER && !c->reqs[i]->dropped)
			return true;
	return false;
}

/* Deadlines are checked a tenth of the idle time apart: a client is
 * dropped between 1 and 1.1 times the idle time after its deadline began. */
static void control_want_tick(struct control *c)
{
	unsigned tick_ms = c->idle_ms / 10;
	struct io_uring_sqe *sqe;

	if (c->tick_armed || !control_needs_tick(c))
		return;
	if (tick_ms < 10)
		tick_ms = 10;
	if (tick_ms > 1000)
		tick_ms = 1000;
	c->tick_ts.tv_sec = tick_ms / 1000;
	c->tick_ts.tv_nsec = (long long)(tick_ms % 1000) * 1000000;
	sqe = loop_sqe(c->loop, &c->tick_op);
	io_uring_prep_timeout(sqe, &c->tick_ts, 0, 0);
	c->tick_armed = true;
}

/* Ends the connection's wait: its RECV or SEND completes (EOF, EPIPE) and
 * the connection is freed there. */
static void req_drop(struct control_req *r)
{
	r->dropped = true;
	(void)shutdown(r->fd, SHUT_RDWR);
}

static void control_arm_accept(struct control *c);

static void control_on_tick(struct ioop *op, int res)
{
	struct control *c = container_of(op, struct control, tick_op);
	uint64_t now = clock_now_ms();

	(void)res;	/* expired, or cancelled by control_stop(): same checks */
	c->tick_armed = false;
	for (int i = 0; i < c->nreqs; i++) {
		struct control_req *r = c->reqs[i];

		if (r->state == RS_HANDLER || r->dropped || now < r->deadline_ms)
			continue;
		log_info("control socket %s: dropping a client that did not %s within %u ms", c->path,
			 r->state == RS_RECV ? "send its request" : "read its answer", c->idle_ms);
		req_drop(r);
	}
	if (c->accept_paused && !c->stopping) {
		c->accept_paused = false;
		control_arm_accept(c);
	}
	control_want_tick(c);
}

/* --- connections --- */

static void req_close(struct control_req *r)
{
	struct control *c = r->ctl;

	control_drain(r->fd);
	(void)close(r->fd);
	for (int i = 0; i < c->nreqs; i++) {
		if (c->reqs[i] == r) {
			c->reqs[i] = c->reqs[--c->nreqs];
			break;
		}
	}
	free(r);
}

static void req_on_recv(struct ioop *op, int res);
static void req_on_send(struct ioop *op, int res);

static void req_arm_recv(struct control_req *r)
{
	struct io_uring_sqe *sqe;

	r->op.done = req_on_recv;
	sqe = loop_sqe(r->ctl->loop, &r->op);
	io_uring_prep_recv(sqe, r->fd, r->rbuf + r->rlen, CONTROL_LINE_MAX - r->rlen, 0);
}

static void req_arm_send(struct control_req *r)
{
	struct io_uring_sqe *sqe;

	r->op.done = req_on_send;
	sqe = loop_sqe(r->ctl->loop, &r->op);
	io_uring_prep_send(sqe, r->fd, r->obuf + r->opos, r->olen - r->opos, MSG_NOSIGNAL);
}

/* Reads what came; a whole line goes to the handler, a line the handler
 * could not act on is answered here. */
static void req_on_recv(struct ioop *op, int res)
{
	struct control_req *r = container_of(op, struct control_req, op);
	struct control *c = r->ctl;
	const char *why = NULL;
	int rc;

	/* EOF before a whole line: the client gave up, nobody to answer.
	 * Errors alike (ECONNRESET): it is gone. */
	if (res <= 0 || r->dropped) {
		if (res < 0 && res != -ECONNRESET)
			log_debug("control socket %s: recv: %s", c->path, strerror(-res));
		req_close(r);
		return;
	}
	r->rlen += (unsigned)res;
	rc = ctlparse_request(r->rbuf, r->rlen, r->argv, &r->argc, &why);
	if (rc < 0) {
		control_reply(r, false, "%s", why);
	} else if (rc == 0) {
		req_arm_recv(r);
	} else {
		r->state = RS_HANDLER;
		c->handler(c->arg, r);
	}
}

static void req_on_send(struct ioop *op, int res)
{
	struct control_req *r = container_of(op, struct control_req, op);

	if (res <= 0 || r->dropped) {
		if (res < 0 && res != -EPIPE && res != -ECONNRESET)
			log_info("control socket %s: cannot send an answer: %s", r->ctl->path,
				 strerror(-res));
		req_close(r);
		return;
	}
	r->opos += (size_t)res;
	if (r->opos < r->olen)
		req_arm_send(r);
	else
		req_close(r);
}

char *const *control_req_words(const struct control_req *req, int *argc)
{
	*argc = req->argc;
	return req->argv;
}

void control_reply(struct control_req *r, bool ok, const char *fmt, ...)
{
	const char *head = ok ? "ok\n" : "error\n";
	size_t n = strlen(head);
	va_list ap;
	int len;

	if (r->state == RS_SEND) {
		log_warn("control socket %s: a request was answered twice; keeping the first answer",
			 r->ctl->path);
		return;
	}
	memcpy(r->obuf, head, n);
	va_start(ap, fmt);
	len = vsnprintf(r->obuf + n, CONTROL_BODY_MAX + 1, fmt, ap);
	va_end(ap);
	if (len < 0) {
		log_warn("control socket %s: cannot format an answer", r->ctl->path);
		len = 0;
	} else if ((size_t)len > CONTROL_BODY_MAX) {
		log_warn("control socket %s: an answer of %d bytes was cut at %u", r->ctl->path, len,
			 CONTROL_BODY_MAX);
		len = CONTROL_BODY_MAX;
	}
	n += (size_t)len;
	/* ANSWER_MAX has room for it: the '\n' takes the place of the NUL. */
	if (len && r->obuf[n - 1] != '\n')
		r->obuf[n++] = '\n';
	r->olen = n;
	r->opos = 0;
	r->state = RS_SEND;
	r->deadline_ms = clock_now_ms() + r->ctl->idle_ms;
	req_arm_send(r);
	control_want_tick(r->ctl);
}

/* --- accepting --- */

/* Answers at once and closes: a fresh socket's send buffer is empty, so a
 * non-blocking send of a few bytes goes through whole. */
static void control_refuse(struct control *c, int fd)
{
	log_warn("control socket %s: %d clients already; refusing one", c->path, CONTROL_CONNS_MAX);
	(void)send(fd, busy_answer, sizeof(busy_answer) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	control_drain(fd);
	(void)close(fd);
}

static void control_take(struct control *c, int fd)
{
	struct control_req *r;

	if (c->nreqs == CONTROL_CONNS_MAX) {
		control_refuse(c, fd);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		log_err("control socket %s: out of memory for a client", c->path);
		(void)close(fd);
		return;
	}
	r->ctl = c;
	r->fd = fd;
	r->state = RS_RECV;
	r->deadline_ms = clock_now_ms() + c->idle_ms;
	c->reqs[c->nreqs++] = r;
	req_arm_recv(r);
	control_want_tick(c);
}

static void control_on_accept(struct ioop *op, int res)
{
	struct control *c = container_of(op, struct control, accept_op);

	c->accept_armed = false;
	if (c->stopping) {
		if (res >= 0)
			(void)close(res);
		return;
	}
	if (res >= 0) {
		control_take(c, res);
	} else if (res != -ECONNABORTED && res != -EINTR && res != -EAGAIN) {
		/* Out of fds or memory: accepting again at once would fail
		 * again at once, so the next tick retries. */
		log_warn("control socket %s: accept: %s; retrying shortly", c->path, strerror(-res));
		c->accept_paused = true;
		control_want_tick(c);
		return;
	}
	control_arm_accept(c);
}

static void control_arm_accept(struct control *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->accept_op);

	io_uring_prep_accept(sqe, c->fd, NULL, NULL, SOCK_CLOEXEC);
	c->accept_armed = true;
}

/* --- set-up and tear-down --- */

/* Only the last component: /run exists on any system we run on, and a
 * typo in a test's BLKREP_RUN_DIR should fail rather than build a tree. */
int control_make_run_dir(const char *path)
{
	char err[512];
	int fd = privdir_open_parent(path, err, sizeof(err));

	if (fd < 0) {
		log_err("run directory %s", err);
		return -1;
	}
	close(fd);
	return 0;
}

/* Makes path free for our bind: nothing there, or a socket nobody listens
 * on any more (a daemon that was killed).  A live daemon answers the
 * connect (or has a full backlog: EAGAIN), and keeps its socket. */
static int control_claim_path(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc, err;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("control socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control socket %s: the file exists and is not a socket; not removing it",
			path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_err("control socket %s: socket: %s", path, strerror(errno));
		return -1;
	}
	(void)sun_addr(&sa, path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	(void)close(fd);
	if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
		log_err("another blkrep daemon is running for this node (%s)", path);
		return -1;
	}
	if (err != ECONNREFUSED && err != ENOENT) {
		log_err("control socket %s: cannot tell whether a daemon listens there: %s", path,
			strerror(err));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		log_err("control socket %s: cannot remove the stale socket: %s", path,
			strerror(errno));
		return -1;
	}
	log_info("control socket %s: removed a stale socket", path);
	return 0;
}

static int control_listen(struct control *c)
{
	struct sockaddr_un sa;
	struct stat st;

	(void)sun_addr(&sa, c->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		log_err("control socket %s: socket: %s", c->path, strerror(errno));
		return -1;
	}
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* Another daemon bound it since control_claim_path(). */
		if (errno == EADDRINUSE)
			log_err("another blkrep daemon is running for this node (%s)", c->path);
		else
			log_err("control socket %s: bind: %s", c->path, strerror(errno));
		return -1;
	}
	if (lstat(c->path, &st) == 0) {
		c->sock_dev = st.st_dev;
		c->sock_ino = st.st_ino;
		c->bound = true;
	}
	/* bind() applied the umask; the mode is set before listen(), so no
	 * client connects while it is wider (until then they are refused). */
	if (chmod(c->path, 0600) < 0) {
		log_err("control socket %s: chmod: %s", c->path, strerror(errno));
		return -1;
	}
	if (listen(c->fd, LISTEN_BACKLOG) < 0) {
		log_err("control socket %s: listen: %s", c->path, strerror(errno));
		return -1;
	}
	return 0;
}

struct control *control_new(struct loop *loop, const char *path, control_handler_fn *handler,
			    void *arg)
{
	struct control *c = calloc(1, sizeof(*c));

	if (!c) {
		log_err("control socket %s: out of memory", path);
		return NULL;
	}
	c->loop = loop;
	c->handler = handler;
	c->arg = arg;
	c->fd = -1;
	c->idle_ms = CONTROL_IDLE_MS;
	c->accept_op.done = control_on_accept;
	c->tick_op.done = control_on_tick;
	if (strlen(path) >= sizeof(c->path)) {
		log_err("control socket path %s is too long (at most %zu bytes)", path,
			sizeof(c->path) - 1);
		goto fail;
	}
	memcpy(c->path, path, strlen(path) + 1);
	if (control_make_run_dir(path) < 0 || control_claim_path(path) < 0 || control_listen(c) < 0)
		goto fail;
	control_arm_accept(c);
	return c;
fail:
	control_free(c);
	return NULL;
}

void control_set_idle_ms(struct control *c, unsigned idle_ms)
{
	c->idle_ms = idle_ms;
}

void control_stop(struct control *c)
{
	struct io_uring_sqe *sqe;

	if (c->stopping)
		return;
	c->stopping = true;
	c->accept_paused = false;
	if (c->accept_armed) {
		sqe = loop_sqe(c->loop, NULL);
		io_uring_prep_cancel(sqe, &c->accept_op, 0);
	}
	for (int i = 0; i < c->nreqs; i++)
		if (c->reqs[i]->state == RS_RECV && !c->reqs[i]->dropped)
			req_drop(c->reqs[i]);
	/* Its completion re-arms it only if answers are still being sent. */
	if (c->tick_armed) {
		sqe = loop_sqe(c->loop, NULL);
		io_uring_prep_cancel(sqe, &c->tick_op, 0);
	}
}

bool control_idle(const struct control *c)
{
	return c->stopping && !c->accept_armed && !c->tick_armed && c->nreqs == 0;
}

void control_free(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	for (int i = 0; i < c->nreqs; i++) {
		(void)close(c->reqs[i]->fd);
		free(c->reqs[i]);
	}
	if (c->fd >= 0)
		(void)close(c->fd);
	/* A daemon started after we stopped listening may have replaced the
	 * file already: only ours is removed. */
	if (c->bound && lstat(c->path, &st) == 0 && st.st_dev == c->sock_dev &&
	    st.st_ino == c->sock_ino && unlink(c->path) < 0)
		log_warn("control socket %s: unlink: %s", c->path, strerror(errno));
	free(c);
}

int control_path(char *buf, size_t len, const char *run_dir, const char *resource,
		 const char *node)
{
	const char *env = getenv(CONTROL_RUN_DIR_ENV);
	int n;

	if (!run_dir)
		run_dir = env && *env ? env : CONTROL_RUN_DIR;
	if (!*resource || !*node || strchr(resource, '/') || strchr(node, '/')) {
		log_err("control socket: resource \"%s\" and node \"%s\" must be non-empty names "
			"without '/'",
			resource, node);
		return -1;
	}
	n = snprintf(buf, len, "%s/%s-%s.ctl", run_dir, resource, node);
	if (n < 0 || (size_t)n >= len || (size_t)n >= SUN_PATH_MAX) {
		log_err("control socket path %s/%s-%s.ctl is too long (at most %zu bytes)", run_dir,
			resource, node, (len < SUN_PATH_MAX ? len : SUN_PATH_MAX) - 1);
		return -1;
	}
	return 0;
}

/* --- client side --- */

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Connects, retrying while the daemon may still be starting: no socket file
 * yet, a stale one not yet replaced (refused), or a full backlog. */
static int call_connect(const char *path, int wait_ms, char *err, size_t errlen)
{
	uint64_t deadline = clock_now_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
	struct sockaddr_un sa;
	int fd, e;

	if (sun_addr(&sa, path) < 0) {
		snprintf(err, errlen, "control socket path %s is too long", path);
		return -1;
	}
	for (;;) {
		uint64_t now = clock_now_ms();
		uint64_t left = deadline > now ? deadline - now : 0;
		/* A connect to a full backlog waits up to SO_SNDTIMEO. */
		struct timeval tv = { .tv_sec = (time_t)(left / 1000),
				      .tv_usec = (suseconds_t)(left % 1000) * 1000 };

		if (left < RETRY_MS)
			tv = (struct timeval){ .tv_usec = RETRY_MS * 1000 };
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		e = errno;
		(void)close(fd);
		if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR) {
			snprintf(err, errlen, "cannot reach the blkrep daemon for this node (%s): %s",
				 path, strerror(e));
			return -1;
		}
		now = clock_now_ms();
		if (now >= deadline) {
			if (e == EAGAIN)
				snprintf(err, errlen,
					 "the blkrep daemon for this node accepts no connections (%s)",
					 path);
			else
				snprintf(err, errlen,
					 "no blkrep daemon is running for this node (%s)", path);
			return -1;
		}
		sleep_ms((long)(deadline - now < RETRY_MS ? deadline - now : RETRY_MS));
	}
}

/* Sends the line; a daemon that closed early (busy) has answered already,
 * so a broken pipe is left for the read to sort out. */
static int call_send(int fd, const char *msg, size_t len, const char *path, char *err,
		     size_t errlen)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return 0;
		if (n < 0) {
			snprintf(err, errlen, "cannot send to the blkrep daemon (%s): %s", path,
				 strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads the whole answer, until EOF.  Returns its length, or -1. */
static ssize_t call_recv(int fd, char *buf, size_t cap, const char *path, char *err,
			 size_t errlen)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		if (len == cap) {
			snprintf(err, errlen, "the answer of the blkrep daemon (%s) is too long",
				 path);
			return -1;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* The daemon closed with our bytes unread: its answer came
		 * before, and is whole. */
		if (n < 0 && errno == ECONNRESET && len)
			return (ssize_t)len;
		if (n < 0) {
			snprintf(err, errlen, "cannot read the answer of the blkrep daemon (%s): %s",
				 path, strerror(errno));
			return -1;
		}
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
	}
}

int control_call(const char *path, const char *request_line, int wait_ms, char **body, bool *ok,
		 char *err, size_t errlen)
{
	size_t n = strlen(request_line), boff, blen;
	char msg[CONTROL_LINE_MAX];
	char *ans = NULL;
	ssize_t alen;
	int fd = -1, rc = -1;

	if (body)
		*body = NULL;
	*ok = false;
	if (n >= CONTROL_LINE_MAX) {
		snprintf(err, errlen, "request too long (%zu bytes, at most %d)", n,
			 CONTROL_LINE_MAX - 1);
		goto out;
	}
	if (memchr(request_line, '\n', n)) {
		snprintf(err, errlen, "a request is one line: it cannot hold a newline");
		goto out;
	}
	memcpy(msg, request_line, n);
	msg[n++] = '\n';
	/* One byte over the longest answer tells a too long one apart. */
	ans = malloc(ANSWER_MAX + 1);
	if (!ans) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	fd = call_connect(path, wait_ms, err, errlen);
	if (fd < 0 || call_send(fd, msg, n, path, err, errlen) < 0)
		goto out;
	alen = call_recv(fd, ans, ANSWER_MAX + 1, path, err, errlen);
	if (alen < 0)
		goto out;
	if (alen == 0) {
		snprintf(err, errlen, "the blkrep daemon (%s) closed the connection without answering",
			 path);
		goto out;
	}
	if (ctlparse_answer(ans, (size_t)alen, ok, &boff, &blen) < 0) {
		snprintf(err, errlen, "malformed answer from the blkrep daemon (%s)", path);
		goto out;
	}
	if (body) {
		memmove(ans, ans + boff, blen);
		ans[blen] = '\0';
		*body = ans;
		ans = NULL;
	}
	rc = 0;
out:
	if (fd >= 0)
		(void)close(fd);
	free(ans);
	return rc;
}

int control_run_path(char *buf, size_t len, const char *resource, const char *node,
		     const char *suffix)
{
	char *dot;

	if (control_path(buf, len, NULL, resource, node) < 0)
		return -1;
	dot = strrchr(buf, '.');
	if (!dot || (size_t)(dot + 1 - buf) + strlen(suffix) + 1 > len)
		return -1;
	strcpy(dot + 1, suffix);
	return 0;
}
