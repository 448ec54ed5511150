/* The event loop on the simulation.  See simloop.h and utils/loop.h. */
#include "simloop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "utils/loop.h"
#include "simfd.h"
#include "simrt.h"
#include "utils/hooks.h"
#include "utils/log.h"

#define SQ_ENTRIES	64

/* An operation in flight: simfd's part, and whose it is. */
struct inflight {
	struct simop op;	/* first: simfd hands it back */
	struct ioop *ioop;
	struct loop *l;
	struct inflight *prev, *next;
};

struct loop {
	int node;
	struct hooks hooks;
	struct io_uring_sqe sq[SQ_ENTRIES];
	unsigned nsq;
	struct inflight *inflight;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l) {
		log_err("out of memory");
		return NULL;
	}
	l->node = sim_current();
	return l;
}

/* The loop goes with its node: nothing of it may complete any more. */
void loop_free(struct loop *l)
{
	if (!l)
		return;
	sim_kill(l->node);
	simfd_forget_node(l->node);
	while (l->inflight) {
		struct inflight *f = l->inflight;

		l->inflight = f->next;
		free(f);
	}
	free(l);
}

static void on_done(struct simop *op, int res)
{
	struct inflight *f = (struct inflight *)op;
	struct loop *l = f->l;
	struct ioop *io = f->ioop;

	if (f->prev)
		f->prev->next = f->next;
	else
		l->inflight = f->next;
	if (f->next)
		f->next->prev = f->prev;
	free(f);
	if (io)
		io->done(io, res);
	hooks_run(&l->hooks);
	simloop_submit(l);
}

static void submit_one(struct loop *l, const struct io_uring_sqe *sqe)
{
	struct inflight *f;

	if (sqe->opcode == IORING_OP_ASYNC_CANCEL) {
		int rc = simfd_op_cancel(l->node, sqe->addr);

		if (!sqe->user_data)
			return;
		(void)rc; /* a cancel's own completion: nobody here asks for one */
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->op = (struct simop){
		.node = l->node,
		.opcode = sqe->opcode,
		.fd = sqe->fd,
		.addr = sqe->addr,
		.addr2 = sqe->addr2,
		.len = sqe->len,
		.off = sqe->off,
		.op_flags = sqe->rw_flags,
		.user_data = sqe->user_data,
		.done = on_done,
	};
	f->ioop = (struct ioop *)(uintptr_t)sqe->user_data;
	f->l = l;
	f->next = l->inflight;
	if (l->inflight)
		l->inflight->prev = f;
	l->inflight = f;
	if (sqe->opcode == IORING_OP_ASYNC_CANCEL)
		f->op.opcode = IORING_OP_NOP;
	simfd_op_start(&f->op);
}

void simloop_submit(struct loop *l)
{
	/* Entries queued while these start (none today) wait for the next. */
	unsigned n = l->nsq;
	struct io_uring_sqe batch[SQ_ENTRIES];

	memcpy(batch, l->sq, n * sizeof(batch[0]));
	l->nsq = 0;
	for (unsigned i = 0; i < n; i++)
		submit_one(l, &batch[i]);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct ioop *op)
{
	struct io_uring_sqe *sqe;

	if (l->nsq == SQ_ENTRIES)
		simloop_submit(l);
	sqe = &l->sq[l->nsq++];
	memset(sqe, 0, sizeof(*sqe));
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

/* The simulator drives every loop from its own scheduler. */
int loop_run(struct loop *l, bool (*keep_going)(void *arg), void *arg)
{
	(void)l;
	(void)keep_going;
	(void)arg;
	log_err("loop_run: not in the simulator");
	return -1;
}

/* The daemon's SIGINT/SIGTERM descriptor: a simulated signalfd (nothing
 * ever arrives on it).  The signals stay unblocked, so that a timeout or
 * Ctrl-C still stops the simulator itself. */
int loop_stop_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	return signalfd(-1, &set, SFD_CLOEXEC);
}
