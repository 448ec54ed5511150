/* Blocking work in a thread, its result back on the loop.  See offload.h. */
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <liburing.h>

#include "utils/ioop.h"
#include "utils/loop.h"
#include "utils/log.h"

struct offload {
	struct loop *loop;
	int efd;
	struct ioop op;
	uint64_t tick;		/* what the eventfd read lands in */
	pthread_t thread;
	bool busy;
	int rc;
	int (*work)(void *arg);
	void (*done)(void *arg, int rc);
	void *arg;
};

static void offload_done(struct ioop *op, int res)
{
	struct offload *o = container_of(op, struct offload, op);

	(void)res;
	pthread_join(o->thread, NULL);
	o->busy = false;
	o->done(o->arg, o->rc);
}

static void *offload_thread(void *p)
{
	struct offload *o = p;
	uint64_t one = 1;

	o->rc = o->work(o->arg);
	if (write(o->efd, &one, sizeof(one)) != sizeof(one))
		log_err("offload: eventfd: %s", strerror(errno));
	return NULL;
}

struct offload *offload_new(struct loop *loop)
{
	struct offload *o = calloc(1, sizeof(*o));

	if (!o || (o->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		log_err("offload: %s", strerror(errno));
		free(o);
		return NULL;
	}
	o->loop = loop;
	o->op.done = offload_done;
	return o;
}

void offload_free(struct offload *o)
{
	if (!o)
		return;
	if (o->busy)
		pthread_join(o->thread, NULL);
	close(o->efd);
	free(o);
}

int offload_run(struct offload *o, int (*work)(void *arg), void (*done)(void *arg, int rc),
		void *arg)
{
	if (o->busy)
		return -1;
	o->work = work;
	o->done = done;
	o->arg = arg;
	if (pthread_create(&o->thread, NULL, offload_thread, o) != 0) {
		log_err("offload: cannot start a thread");
		return -1;
	}
	/* Armed after the thread started: an early write just waits in the
	 * eventfd's counter. */
	io_uring_prep_read(loop_sqe(o->loop, &o->op), o->efd, &o->tick, sizeof(o->tick), 0);
	o->busy = true;
	return 0;
}

bool offload_busy(const struct offload *o)
{
	return o->busy;
}
