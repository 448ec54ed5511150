/* The NBD server's event loop.  See server.h.
 *
 * One thread, one ring: submit and wait once, drain a batch of completions,
 * dispatch each on the kind of its ioop, then wake connections waiting for
 * buffers.  Waking is deferred to the end of the batch so that returning a
 * buffer never re-enters a connection from inside another one. */
#include "server.h"

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon/conn.h"
#include "daemon/ioop.h"
#include "daemon/store.h"
#include "nbd/wire.h"
#include "utils/bufpool.h"
#include "utils/log.h"

#define MAX_CONNS	128
#define RING_ENTRIES	256
#define CQ_ENTRIES	4096
#define STOP_GRACE_S	10	/* then connections still busy are dropped */

struct listener {
	struct ioop op;
	int fd;
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
	struct io_uring ring;
	bool ring_ready;
	struct store *st;
	struct bufpool *pool;
	struct nbd_hs_export exp;
	struct listener lis[LISTEN_MAX];
	int nlis;
	const char *unix_paths[LISTEN_MAX];
	int nunix;
	struct ioop sig_op;
	int sigfd;
	struct signalfd_siginfo si;
	struct ioop timer_op;
	struct __kernel_timespec grace;
	struct ioop tick_op;
	struct __kernel_timespec tick;
	bool stopping;
	struct conn *conns[MAX_CONNS];
	int nconns;
	struct conn *flushq[MAX_CONNS];	/* each connection at most once */
	int nflush;
	struct waiter waitq[MAX_CONNS];	/* FIFO; a connection waits once */
	unsigned wq_len;
	bool wake;
};

/* --- for conn.c --- */

struct io_uring_sqe *server_sqe(struct server *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	while (!sqe) {
		(void)io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	return sqe;
}

struct store *server_store(struct server *s)
{
	return s->st;
}

const struct nbd_hs_export *server_export(const struct server *s)
{
	return &s->exp;
}

void *server_get_buffer(struct server *s, struct conn *c, size_t len)
{
	void *buf = s->wq_len ? NULL : bufpool_get(s->pool, len);

	if (!buf) {
		s->waitq[s->wq_len++] = (struct waiter){ c, len, 0 };
		s->wake = s->wq_len > 1;	/* it may fit before the others */
	}
	return buf;
}

void server_put_buffer(struct server *s, void *buf)
{
	bufpool_put(s->pool, buf);
	s->wake = s->wq_len > 0;
}

void server_forget(struct server *s, struct conn *c)
{
	unsigned j = 0;

	for (unsigned i = 0; i < s->wq_len; i++)
		if (s->waitq[i].c != c)
			s->waitq[j++] = s->waitq[i];
	s->wq_len = j;
	for (int i = 0; i < s->nflush; i++)
		if (s->flushq[i] == c)
			s->flushq[i] = NULL;
	for (int i = 0; i < s->nconns; i++) {
		if (s->conns[i] == c) {
			s->conns[i] = s->conns[--s->nconns];
			break;
		}
	}
}

void server_flush_later(struct server *s, struct conn *c)
{
	s->flushq[s->nflush++] = c;
}

static void server_flush(struct server *s)
{
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
static void server_wake_waiters(struct server *s)
{
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

/* --- listeners, signals, stopping --- */

static void server_arm_accept(struct server *s, struct listener *l)
{
	struct io_uring_sqe *sqe = server_sqe(s);

	io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &l->op);
}

static void server_on_accept(struct server *s, struct listener *l, int res)
{
	struct conn *c;

	if (s->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		log_warn("accept: %s", strerror(-res));
	} else if (s->nconns == MAX_CONNS) {
		log_warn("refusing a client: %d connections already", MAX_CONNS);
		close(res);
	} else if ((c = conn_new(s, res))) {
		s->conns[s->nconns++] = c;
	}
	server_arm_accept(s, l);
}

static void server_arm_signal(struct server *s)
{
	struct io_uring_sqe *sqe = server_sqe(s);

	io_uring_prep_read(sqe, s->sigfd, &s->si, sizeof(s->si), 0);
	io_uring_sqe_set_data(sqe, &s->sig_op);
}

static void server_arm_tick(struct server *s)
{
	struct io_uring_sqe *sqe = server_sqe(s);

	s->tick.tv_sec = 1;
	io_uring_prep_timeout(sqe, &s->tick, 0, 0);
	io_uring_sqe_set_data(sqe, &s->tick_op);
}

/* Drops clients that sit on buffers others wait for (see conn_tick). */
static void server_on_tick(struct server *s)
{
	bool contended = s->wq_len > 0;

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

static void server_begin_stop(struct server *s)
{
	struct io_uring_sqe *sqe;

	s->stopping = true;
	log_info("stopping: finishing %d connection(s)", s->nconns);
	for (int i = 0; i < s->nlis; i++) {
		sqe = server_sqe(s);
		io_uring_prep_cancel(sqe, &s->lis[i].op, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	s->grace.tv_sec = STOP_GRACE_S;
	sqe = server_sqe(s);
	io_uring_prep_timeout(sqe, &s->grace, 0, 0);
	io_uring_sqe_set_data(sqe, &s->timer_op);
	server_stop_conns(s, false);
}

static void server_on_signal(struct server *s, int res)
{
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		log_err("signalfd: %s", strerror(-res));
		server_begin_stop(s);
		return;
	}
	if (res > 0 && s->stopping) {
		log_info("second signal: dropping the remaining connections");
		server_stop_conns(s, true);
	} else if (res > 0) {
		server_begin_stop(s);
	}
	server_arm_signal(s);
}

static void server_dispatch(struct server *s, struct io_uring_cqe *cqe)
{
	struct ioop *op = io_uring_cqe_get_data(cqe);

	if (!op)
		return;	/* a cancel request */
	switch (op->kind) {
	case IOOP_ACCEPT:
		server_on_accept(s, container_of(op, struct listener, op), cqe->res);
		break;
	case IOOP_SIGNAL:
		server_on_signal(s, cqe->res);
		break;
	case IOOP_TICK:
		server_on_tick(s);
		break;
	case IOOP_TIMER:
		if (s->nconns)
			log_warn("%d connection(s) still busy after %d s: dropping them",
				 s->nconns, STOP_GRACE_S);
		server_stop_conns(s, true);
		break;
	default:
		conn_complete(op, cqe->res);
		break;
	}
}

static int server_loop(struct server *s)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int rc;

	while (!s->stopping || s->nconns) {
		rc = io_uring_submit_and_wait(&s->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			log_err("io_uring_submit_and_wait: %s", strerror(-rc));
			return -1;
		}
		n = 0;
		io_uring_for_each_cqe(&s->ring, head, cqe) {
			server_dispatch(s, cqe);
			n++;
		}
		io_uring_cq_advance(&s->ring, n);
		server_wake_waiters(s);
		server_flush(s);
	}
	return 0;
}

/* --- set-up --- */

/* Fails clearly on a kernel too old for the data path, rather than with
 * EINVAL on the first request. */
static int server_probe(struct server *s)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
		{ IORING_OP_READ, "READ" }, { IORING_OP_WRITE, "WRITE" },
		{ IORING_OP_RECV, "RECV" }, { IORING_OP_SENDMSG, "SENDMSG" },
		{ IORING_OP_FSYNC, "FSYNC" }, { IORING_OP_FALLOCATE, "FALLOCATE" },
		{ IORING_OP_ACCEPT, "ACCEPT" }, { IORING_OP_FADVISE, "FADVISE" },
		{ IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" }, { IORING_OP_TIMEOUT, "TIMEOUT" },
	};
	struct io_uring_probe *p = io_uring_get_probe_ring(&s->ring);
	int rc = 0;

	if (!p) {
		log_err("io_uring: cannot probe supported operations");
		return -1;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!io_uring_opcode_supported(p, need[i].op)) {
			log_err("io_uring: this kernel lacks IORING_OP_%s (need Linux 5.6+)",
				need[i].name);
			rc = -1;
		}
	}
	io_uring_free_probe(p);
	return rc;
}

/* Newer kernels run completions cheaper with these flags; 6.1 has them
 * all, older ones fall back step by step. */
static int server_ring_init(struct server *s)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = {
			.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
			.cq_entries = CQ_ENTRIES,
		};

		rc = io_uring_queue_init_params(RING_ENTRIES, &s->ring, &p);
		if (rc == 0) {
			s->ring_ready = true;
			return server_probe(s);
		}
	}
	log_err("io_uring_queue_init: %s", strerror(-rc));
	return -1;
}

static int server_signals(struct server *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (s->sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		log_err("signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	s->sig_op.kind = IOOP_SIGNAL;
	s->timer_op.kind = IOOP_TIMER;
	s->tick_op.kind = IOOP_TICK;
	return 0;
}

static int server_listen(struct server *s, const struct server_opts *o)
{
	int fds[LISTEN_MAX], n;
	char err[512];

	n = listen_activated(fds, LISTEN_MAX, err, sizeof(err));
	if (n < 0)
		goto fail;
	if (n == 0) {
		for (int i = 0; i < (o->nlisten ? o->nlisten : 1); i++) {
			const char *a = o->nlisten ? o->listen[i] : LISTEN_DEFAULT;

			fds[n] = listen_on(a, err, sizeof(err));
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
		s->lis[i].op.kind = IOOP_ACCEPT;
		s->lis[i].fd = fds[i];
	}
	s->nlis = n;
	return 0;
fail:
	log_err("%s", err);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return -1;
}

static void server_free(struct server *s)
{
	if (s->ring_ready)
		io_uring_queue_exit(&s->ring);
	for (int i = 0; i < s->nlis; i++)
		close(s->lis[i].fd);
	for (int i = 0; i < s->nunix; i++)
		(void)unlink(s->unix_paths[i]);
	if (s->sigfd >= 0)
		close(s->sigfd);
	bufpool_free(s->pool);
	store_close(s->st);
	free(s);
}

static int server_setup(struct server *s, const struct server_opts *o)
{
	struct store_opts so = { .read_only = o->read_only, .direct = o->direct };
	char err[512];

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
	if (server_signals(s) < 0 || server_listen(s, o) < 0 || server_ring_init(s) < 0)
		return -1;
	return 0;
}

int server_run(const struct server_opts *o)
{
	struct server *s = calloc(1, sizeof(*s));
	int rc = 1;

	if (!s) {
		log_err("out of memory");
		return 1;
	}
	s->sigfd = -1;
	if (server_setup(s, o) < 0)
		goto out;
	log_info("serving %s (%llu bytes%s%s)", o->path,
		 (unsigned long long)store_size(s->st), o->read_only ? ", read-only" : "",
		 store_align(s->st) > 1 ? ", O_DIRECT" : "");
	for (int i = 0; i < s->nlis; i++)
		server_arm_accept(s, &s->lis[i]);
	server_arm_signal(s);
	server_arm_tick(s);
	if (server_loop(s) == 0)
		rc = 0;
	log_info("stopped");
out:
	server_free(s);
	return rc;
}
