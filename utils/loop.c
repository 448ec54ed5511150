/* The io_uring event loop.  See loop.h. */
#include "loop.h"

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>

#include "utils/hooks.h"
#include "utils/log.h"

#define RING_ENTRIES	256
#define CQ_ENTRIES	4096

struct loop {
	struct io_uring ring;
	struct hooks hooks;
};

/* Fails clearly on a kernel too old for the data path, rather than with
 * EINVAL on the first request. */
static int loop_probe(struct loop *l)
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
		{ IORING_OP_CONNECT, "CONNECT" },
	};
	struct io_uring_probe *p = io_uring_get_probe_ring(&l->ring);
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
struct loop *loop_new(void)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct loop *l = calloc(1, sizeof(*l));
	int rc = -ENOMEM;

	for (size_t i = 0; l && i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = {
			.flags = flag_sets[i] | IORING_SETUP_CQSIZE,
			.cq_entries = CQ_ENTRIES,
		};

		rc = io_uring_queue_init_params(RING_ENTRIES, &l->ring, &p);
		if (rc == 0) {
			if (loop_probe(l) == 0)
				return l;
			io_uring_queue_exit(&l->ring);
			free(l);
			return NULL;
		}
	}
	log_err("io_uring_queue_init: %s", strerror(-rc));
	free(l);
	return NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	io_uring_queue_exit(&l->ring);
	free(l);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct ioop *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	while (!sqe) {
		(void)io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

void loop_add_hook(struct loop *l, void (*fn)(void *arg), void *arg)
{
	if (hooks_add(&l->hooks, fn, arg) < 0)
		log_err("loop: more than %d hooks", HOOKS_MAX);
}

void loop_remove_hook(struct loop *l, void (*fn)(void *arg), void *arg)
{
	hooks_remove(&l->hooks, fn, arg);
}

int loop_run(struct loop *l, bool (*keep_going)(void *arg), void *arg)
{
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int rc;

	while (keep_going(arg)) {
		rc = io_uring_submit_and_wait(&l->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			log_err("io_uring_submit_and_wait: %s", strerror(-rc));
			return -1;
		}
		n = 0;
		io_uring_for_each_cqe(&l->ring, head, cqe) {
			struct ioop *op = io_uring_cqe_get_data(cqe);

			if (op)
				op->done(op, cqe->res);
			n++;
		}
		io_uring_cq_advance(&l->ring, n);
		hooks_run(&l->hooks);
	}
	return 0;
}

int loop_stop_signalfd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || (fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		log_err("signalfd: %s", strerror(errno));
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return fd;
}
