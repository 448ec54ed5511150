/* The NBD server: listening sockets, client connections, the bounded
 * buffer pool and its wait queue, on a loop it is given.  See server.h.
 *
 * Buffer waiters are woken, and replies sent, once per batch of
 * completions (loop hooks), so that returning a buffer never re-enters a
 * connection from inside another one. */
#include "server.h"

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "nbd/conn.h"
#include "utils/ioop.h"
#include "utils/loop.h"
#include "nbd/store.h"
#include "nbd/wire.h"
#include "utils/bufpool.h"
#include "utils/clock.h"
#include "utils/log.h"

#define MAX_CONNS	SERVER_CONNS_MAX
#define STOP_GRACE_S	10	/* then connections still busy are dropped */

struct listener {
	struct ioop op;
	struct server *srv;
	int fd;
	bool is_unix;	/* clients' credentials checked */
};

/* Refused clients, logged at most once a second, or at once for another
 * uid than the last: a local flood cannot fill the log. */
struct refusals {
	uint64_t last_ms;
	uid_t last_uid;
	unsigned quiet;		/* refused since the last line */
};

struct waiter {
	struct conn *c;
	size_t len;
	size_t bypassed;	/* bytes of smaller requests served first */
};

/* A waiter passed over by this many pools' worth of smaller requests is
 * served next, whatever its size: its wait is bounded, yet a few clients
 * stalled on big requests cannot make small ones wait for them. */
#define MAX_BYPASS_POOLS	4

struct server {
	struct conn_host host;	/* what its connections are given */
	struct loop *loop;
	struct store *st;
	struct bufpool *pool;
	struct nbd_hs_export exp;
	struct conn *parked[MAX_CONNS];	/* waiting for the replicator */
	int nparked;
	bool unpark;
	struct listener lis[LISTEN_MAX];
	int nlis;
	const char *unix_paths[LISTEN_MAX];
	int nunix;
	struct ioop timer_op;
	struct __kernel_timespec grace;
	struct ioop tick_op;
	struct __kernel_timespec tick;
	unsigned ops;		/* accepts and timers in flight */
	bool stopping;
	struct conn *conns[MAX_CONNS];
	bool accepted[MAX_CONNS];	/* conns[i] came from a listener */
	int nconns, naccepted;
	uid_t unix_uid;
	struct refusals refused;
	struct conn *flushq[MAX_CONNS];	/* each connection at most once */
	int nflush;
	struct waiter waitq[MAX_CONNS];	/* FIFO; a connection waits once */
	unsigned wq_len;
	bool wake;
};

static struct io_uring_sqe *server_sqe(struct server *s, struct ioop *op)
{
	return loop_sqe(s->loop, op);
}

static void server_cancel(struct server *s, struct ioop *op)
{
	io_uring_prep_cancel(server_sqe(s, NULL), op, 0);
}

/* --- connections the replicator made wait --- */

/* The replicator answered REPL_BUSY to c's request (nbd/repl.h). */
static void server_park(void *arg, struct conn *c)
{
	struct server *s = arg;

	s->parked[s->nparked++] = c;
}

bool server_parked(const struct server *s)
{
	return s->nparked > 0;
}

void server_repl_wake(struct server *s)
{
	s->unpark = s->nparked > 0;
}

/* A loop hook: parked connections try again, in order. */
static void server_unpark(void *arg)
{
	struct server *s = arg;
	int n = s->nparked;
	struct conn *retry[MAX_CONNS];

	if (!s->unpark)
		return;
	s->unpark = false;
	memcpy(retry, s->parked, (size_t)n * sizeof(retry[0]));
	s->nparked = 0;
	for (int i = 0; i < n; i++)
		conn_repl_retry(retry[i]);
}

/* --- the buffer pool and its waiters; end-of-batch sends --- */

static void *server_get_buffer(void *arg, struct conn *c, size_t len)
{
	struct server *s = arg;
	void *buf = s->wq_len ? NULL : bufpool_get(s->pool, len);

	if (!buf) {
		s->waitq[s->wq_len++] = (struct waiter){ c, len, 0 };
		s->wake = s->wq_len > 1;	/* it may fit before the others */
	}
	return buf;
}

static void server_put_buffer(void *arg, void *buf)
{
	struct server *s = arg;

	bufpool_put(s->pool, buf);
	s->wake = s->wq_len > 0;
}

static void server_forget(void *arg, struct conn *c)
{
	struct server *s = arg;
	unsigned j = 0;

	for (unsigned i = 0; i < s->wq_len; i++)
		if (s->waitq[i].c != c)
			s->waitq[j++] = s->waitq[i];
	s->wq_len = j;
	for (int i = 0; i < s->nflush; i++)
		if (s->flushq[i] == c)
			s->flushq[i] = NULL;
	for (int i = 0; i < s->nparked; i++)
		if (s->parked[i] == c)
			s->parked[i--] = s->parked[--s->nparked];
	for (int i = 0; i < s->nconns; i++) {
		if (s->conns[i] == c) {
			s->naccepted -= s->accepted[i];
			s->conns[i] = s->conns[--s->nconns];
			s->accepted[i] = s->accepted[s->nconns];
			break;
		}
	}
	if (s->stopping && !s->nconns)
		server_cancel(s, &s->timer_op);	/* the grace period */
}

static void server_flush_later(void *arg, struct conn *c)
{
	struct server *s = arg;

	s->flushq[s->nflush++] = c;
}

static void server_flush(void *arg)
{
	struct server *s = arg;

	for (int i = 0; i < s->nflush; i++)
		if (s->flushq[i])
			conn_flush(s->flushq[i]);
	s->nflush = 0;
}

/* The smallest request first, oldest among equals: a client asking for a
 * few KiB is not held behind 32 MiB writes whose payload may never come. */
static unsigned server_pick_waiter(const struct server *s)
{
	unsigned best = 0;

	if (s->waitq[0].bypassed >= MAX_BYPASS_POOLS * bufpool_max(s->pool))
		return 0;
	for (unsigned i = 1; i < s->wq_len; i++)
		if (s->waitq[i].len < s->waitq[best].len)
			best = i;
	return best;
}

/* Serves waiting connections while the pool can.  If the pick does not
 * fit, nothing larger does either (buddy blocks). */
static void server_wake_waiters(void *arg)
{
	struct server *s = arg;

	while (s->wake && s->wq_len) {
		unsigned i = server_pick_waiter(s);
		struct waiter w = s->waitq[i];
		void *buf = bufpool_get(s->pool, w.len);

		if (!buf)
			break;
		for (unsigned j = 0; j < i; j++)
			s->waitq[j].bypassed += w.len;
		memmove(s->waitq + i, s->waitq + i + 1, (--s->wq_len - i) * sizeof(s->waitq[0]));
		conn_resume(w.c, buf);
	}
	s->wake = false;
}

/* --- listeners, ticks, stopping --- */

static void server_on_accept(struct ioop *op, int res);

static void server_arm_accept(struct server *s, struct listener *l)
{
	struct io_uring_sqe *sqe = server_sqe(s, &l->op);

	s->ops++;
	io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
}

static void server_refuse(struct server *s, int fd, uid_t uid, const char *why)
{
	struct refusals *r = &s->refused;
	uint64_t now = clock_now_ms();

	close(fd);
	if (uid == r->last_uid && now - r->last_ms < 1000) {
		r->quiet++;
		return;
	}
	if (r->quiet)
		log_warn("refusing a client: %s (%u earlier refusals not logged)", why, r->quiet);
	else
		log_warn("refusing a client: %s", why);
	*r = (struct refusals){ .last_ms = now, .last_uid = uid };
}

/* Whether the client on fd may have a connection; closes it if not. */
static bool server_admit(struct server *s, const struct listener *l, int fd)
{
	char why[96];
	uid_t uid = (uid_t)-1;

	if (s->naccepted >= SERVER_ACCEPT_MAX) {
		snprintf(why, sizeof(why), "%d clients connected already", s->naccepted);
		server_refuse(s, fd, (uid_t)-1, why);
		return false;
	}
	if (!l->is_unix)
		return true;
	if (listen_peer_uid(fd, &uid) < 0) {
		snprintf(why, sizeof(why), "SO_PEERCRED: %s", strerror(errno));
		server_refuse(s, fd, (uid_t)-1, why);
		return false;
	}
	if (listen_uid_allowed(uid, geteuid(), s->unix_uid))
		return true;
	snprintf(why, sizeof(why), "uid %u may not use this export (only root, uid %u and nbd-user)",
		 (unsigned)uid, (unsigned)geteuid());
	server_refuse(s, fd, uid, why);
	return false;
}

static void server_add(struct server *s, struct conn *c, bool accepted)
{
	s->accepted[s->nconns] = accepted;
	s->conns[s->nconns++] = c;
	s->naccepted += accepted;
}

static void server_on_accept(struct ioop *op, int res)
{
	struct listener *l = container_of(op, struct listener, op);
	struct server *s = l->srv;
	struct conn *c;

	s->ops--;
	if (s->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0)
		log_warn("accept: %s", strerror(-res));
	else if (server_admit(s, l, res) && (c = conn_new(&s->host, res)))
		server_add(s, c, true);
	server_arm_accept(s, l);
}

int server_adopt(struct server *s, int fd, uint16_t tflags)
{
	struct conn *c;

	if (s->stopping || s->nconns == MAX_CONNS) {
		close(fd);
		return -1;
	}
	c = conn_new_tx(&s->host, fd, tflags);
	if (!c)
		return -1;
	server_add(s, c, false);
	return 0;
}

static void server_arm_tick(struct server *s)
{
	struct io_uring_sqe *sqe = server_sqe(s, &s->tick_op);

	s->ops++;
	s->tick.tv_sec = 1;
	io_uring_prep_timeout(sqe, &s->tick, 0, 0);
}

/* Drops clients that sit on buffers others wait for (see conn_tick). */
static void server_on_tick(struct ioop *op, int res)
{
	struct server *s = container_of(op, struct server, tick_op);
	bool contended = s->wq_len > 0;

	(void)res;
	s->ops--;
	if (s->stopping)
		return;	/* cancelled, or about to be */
	for (int i = s->nconns - 1; i >= 0; i--)
		if (i < s->nconns)
			conn_tick(s->conns[i], contended);
	server_arm_tick(s);
}

static void server_stop_conns(struct server *s, bool hard)
{
	/* Backwards: a connection that finishes at once swaps the last one
	 * into its place, and the last one was already told. */
	for (int i = s->nconns - 1; i >= 0; i--)
		if (i < s->nconns)
			conn_stop(s->conns[i], hard);
}

static void server_on_grace(struct ioop *op, int res)
{
	struct server *s = container_of(op, struct server, timer_op);

	s->ops--;
	if (res == -ECANCELED)
		return;
	if (s->nconns)
		log_warn("%d connection(s) still busy after %d s: dropping them", s->nconns,
			 STOP_GRACE_S);
	server_stop_conns(s, true);
}

void server_stop(struct server *s, bool hard)
{
	struct io_uring_sqe *sqe;

	if (s->stopping) {
		if (hard)
			server_stop_conns(s, true);
		return;
	}
	s->stopping = true;
	log_info("stopping: finishing %d connection(s)", s->nconns);
	for (int i = 0; i < s->nlis; i++)
		server_cancel(s, &s->lis[i].op);
	server_cancel(s, &s->tick_op);
	s->grace.tv_sec = STOP_GRACE_S;
	sqe = server_sqe(s, &s->timer_op);
	io_uring_prep_timeout(sqe, &s->grace, 0, 0);
	s->ops++;
	server_stop_conns(s, hard);
	if (!s->nconns)
		server_cancel(s, &s->timer_op);
}

bool server_done(const struct server *s)
{
	return s->stopping && s->nconns == 0 && s->ops == 0;
}

/* --- set-up --- */

static int server_listen(struct server *s, const struct server_opts *o)
{
	int fds[LISTEN_MAX], n;
	char err[512];

	if (o->no_listen)
		return 0;
	n = listen_activated(fds, LISTEN_MAX, err, sizeof(err));
	if (n < 0)
		goto fail;
	if (n == 0) {
		for (int i = 0; i < (o->nlisten ? o->nlisten : 1); i++) {
			const char *a = o->nlisten ? o->listen[i] : LISTEN_DEFAULT;

			fds[n] = listen_on(a, s->unix_uid, err, sizeof(err));
			if (fds[n] < 0)
				goto fail;
			n++;
			if (strncmp(a, "unix:", 5) == 0)
				s->unix_paths[s->nunix++] = a + 5;
			log_info("listening on %s", a);
		}
	} else {
		log_info("serving %d socket(s) from socket activation", n);
	}
	for (int i = 0; i < n; i++) {
		s->lis[i].op.done = server_on_accept;
		s->lis[i].srv = s;
		s->lis[i].fd = fds[i];
		s->lis[i].is_unix = listen_is_unix(fds[i]);
	}
	s->nlis = n;
	return 0;
fail:
	log_err("%s", err);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return -1;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	loop_remove_hook(s->loop, server_wake_waiters, s);
	loop_remove_hook(s->loop, server_unpark, s);
	loop_remove_hook(s->loop, server_flush, s);
	for (int i = 0; i < s->nlis; i++)
		close(s->lis[i].fd);
	/* None after a clean stop; a crashed node's (node_abandon()). */
	for (int i = 0; i < s->nconns; i++)
		conn_abandon(s->conns[i]);
	for (int i = 0; i < s->nunix; i++)
		(void)unlink(s->unix_paths[i]);
	bufpool_free(s->pool);
	store_close(s->st);
	free(s);
}

static int server_setup(struct server *s, const struct server_opts *o)
{
	struct store_opts so = {
		.read_only = o->read_only,
		.direct = o->direct,
		.size_limit = o->size_limit,
	};
	char err[512];

	if (server_listen(s, o) < 0)
		return -1;
	s->st = store_open(o->path, &so, err, sizeof(err));
	if (!s->st) {
		log_err("%s", err);
		return -1;
	}
	s->pool = bufpool_new(o->pool_bytes);
	if (!s->pool || bufpool_max(s->pool) < NBD_MAX_PAYLOAD) {
		log_err("cannot allocate a %zu MiB buffer pool", o->pool_bytes >> 20);
		return -1;
	}
	s->exp = (struct nbd_hs_export){
		.name = o->name,
		.description = o->description,
		.size = store_size(s->st),
		.read_only = o->read_only,
		.min_block = 1,	/* unaligned requests use the buffered fd */
		.pref_block = 4096,
		.max_block = NBD_MAX_PAYLOAD,
	};
	s->host = (struct conn_host){
		.loop = s->loop,
		.st = s->st,
		.exp = &s->exp,
		.arg = s,
		.get_buffer = server_get_buffer,
		.put_buffer = server_put_buffer,
		.repl = o->repl,
		.repl_arg = o->repl_arg,
		.park = server_park,
		.flush_later = server_flush_later,
		.gone = server_forget,
	};
	return 0;
}

struct server *server_new(struct loop *loop, const struct server_opts *o)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s) {
		log_err("out of memory");
		return NULL;
	}
	s->loop = loop;
	s->unix_uid = o->unix_uid ? o->unix_uid : (uid_t)-1;
	s->refused.last_uid = (uid_t)-1;
	s->timer_op.done = server_on_grace;
	s->tick_op.done = server_on_tick;
	if (server_setup(s, o) < 0) {
		server_free(s);
		return NULL;
	}
	log_info("serving %s (%llu bytes%s%s)", o->path,
		 (unsigned long long)store_size(s->st), o->read_only ? ", read-only" : "",
		 store_align(s->st) > 1 ? ", O_DIRECT" : "");
	loop_add_hook(loop, server_wake_waiters, s);
	loop_add_hook(loop, server_unpark, s);
	loop_add_hook(loop, server_flush, s);
	for (int i = 0; i < s->nlis; i++)
		server_arm_accept(s, &s->lis[i]);
	server_arm_tick(s);
	return s;
}

/* --- `blkrep serve`: a server alone on its loop until a signal --- */

struct serve_run {
	struct server *srv;
	struct ioop sig_op;
	int sigfd;
	struct signalfd_siginfo si;
};

static void serve_arm_signal(struct serve_run *r)
{
	struct io_uring_sqe *sqe = loop_sqe(r->srv->loop, &r->sig_op);

	io_uring_prep_read(sqe, r->sigfd, &r->si, sizeof(r->si), 0);
}

/* First signal: finish what is in flight.  Second: drop everything. */
static void serve_on_signal(struct ioop *op, int res)
{
	struct serve_run *r = container_of(op, struct serve_run, sig_op);

	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		log_err("signalfd: %s", strerror(-res));
		server_stop(r->srv, false);
		return;
	}
	if (res > 0 && r->srv->stopping)
		log_info("second signal: dropping the remaining connections");
	if (res > 0)
		server_stop(r->srv, r->srv->stopping);
	serve_arm_signal(r);
}

static int serve_signals(struct serve_run *r)
{
	r->sigfd = loop_stop_signalfd();
	if (r->sigfd < 0)
		return -1;
	r->sig_op.done = serve_on_signal;
	return 0;
}

static bool serve_keep_going(void *arg)
{
	return !server_done(((struct serve_run *)arg)->srv);
}

int server_run(const struct server_opts *o)
{
	struct serve_run r = { .sigfd = -1 };
	struct loop *loop = NULL;
	int rc = 1;

	if (serve_signals(&r) < 0 || !(loop = loop_new()) || !(r.srv = server_new(loop, o)))
		goto out;
	serve_arm_signal(&r);
	if (loop_run(loop, serve_keep_going, &r) == 0)
		rc = 0;
	log_info("stopped");
out:
	server_free(r.srv);
	loop_free(loop);
	if (r.sigfd >= 0)
		close(r.sigfd);
	return rc;
}
