/* The byte FIFO.  See fifo.h.
 *
 * Held bytes are [head, tail) when not wrapped; after a wrap they are
 * [head, wrap_end) followed by [0, tail). */
#include "fifo.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct fifo {
	uint8_t *base;
	size_t size;
	size_t head, tail;
	size_t wrap_end;	/* 0: not wrapped */
	size_t used;
};

struct fifo *fifo_new(size_t size)
{
	struct fifo *f = size ? calloc(1, sizeof(*f)) : NULL;

	if (!f)
		return NULL;
	f->base = malloc(size);
	if (!f->base) {
		free(f);
		return NULL;
	}
	f->size = size;
	return f;
}

void fifo_free(struct fifo *f)
{
	if (!f)
		return;
	free(f->base);
	free(f);
}

void fifo_reset(struct fifo *f)
{
	f->head = f->tail = f->wrap_end = f->used = 0;
}

void *fifo_alloc(struct fifo *f, size_t len)
{
	size_t at;

	if (len == 0 || len > f->size)
		return NULL;
	if (f->used == 0)
		fifo_reset(f);
	if (f->wrap_end) {		/* free space is [tail, head) */
		if (f->head - f->tail < len)
			return NULL;
		at = f->tail;
	} else if (f->size - f->tail >= len) {
		at = f->tail;
	} else if (f->head >= len) {	/* wrap: [0, head) is free */
		f->wrap_end = f->tail;
		at = 0;
	} else {
		return NULL;
	}
	f->tail = at + len;
	f->used += len;
	return f->base + at;
}

int fifo_release(struct fifo *f, const void *p, size_t len)
{
	if (!len || len > f->used || (const uint8_t *)p != f->base + f->head)
		return -1;
	f->head += len;
	f->used -= len;
	if (f->wrap_end && f->head == f->wrap_end) {
		f->head = 0;
		f->wrap_end = 0;
	}
	if (f->used == 0)
		fifo_reset(f);
	return 0;
}

int fifo_unalloc(struct fifo *f, const void *p, size_t len)
{
	size_t at = (size_t)((const uint8_t *)p - f->base);

	if (!len || len > f->used || at + len != f->tail)
		return -1;
	f->tail = at;
	f->used -= len;
	if (f->wrap_end && f->tail == 0) {
		f->tail = f->wrap_end;
		f->wrap_end = 0;
	}
	if (f->used == 0)
		fifo_reset(f);
	return 0;
}

size_t fifo_used(const struct fifo *f)
{
	return f->used;
}

size_t fifo_room(const struct fifo *f)
{
	return f->size - f->used - (f->wrap_end ? f->size - f->wrap_end : 0);
}
