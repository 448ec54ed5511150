/* What an io_uring completion belongs to.  Every submission's user_data
 * points at a struct ioop embedded in its owner (a listener, a connection,
 * a request slot); the kind says which handler decodes it. */
#ifndef BLKREP_IOOP_H
#define BLKREP_IOOP_H

#include <stddef.h>
#include <stdint.h>

enum ioop_kind {
	IOOP_ACCEPT,
	IOOP_SIGNAL,
	IOOP_TIMER,
	IOOP_TICK,
	IOOP_CONN_FIRST,	/* kinds from here on belong to conn.c */
	IOOP_CONN_RECV = IOOP_CONN_FIRST,
	IOOP_CONN_SEND,
	IOOP_SLOT,
};

struct ioop {
	uint8_t kind;
};

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
