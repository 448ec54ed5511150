/* What an io_uring completion belongs to.  Every submission's user_data
 * points at a struct ioop embedded in its owner (a listener, a connection,
 * a request slot, the peer link); the loop calls its done callback with the
 * completion's result. */
#ifndef BLKREP_IOOP_H
#define BLKREP_IOOP_H

#include <stddef.h>

struct ioop;

/* res is the CQE result: >= 0, or -errno. */
typedef void ioop_done_fn(struct ioop *op, int res);

struct ioop {
	ioop_done_fn *done;
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
