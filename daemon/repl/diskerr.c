/* The node's disk errors (see diskerr.h). */
#include "daemon/repl/diskerr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct diskerr {
	char text[256];	   /* for status, until repaired */
	uint64_t retry_ns; /* the reconnect after a replicated failure, or 0 */
	unsigned backoff_s;
	bool md_unsaved; /* the metadata could not record it yet */
};

struct diskerr *diskerr_new(void)
{
	return calloc(1, sizeof(struct diskerr));
}

void diskerr_free(struct diskerr *d)
{
	free(d);
}

const char *diskerr_text(const struct diskerr *d)
{
	return d->text;
}

bool diskerr_set(struct diskerr *d, const char *fmt, ...)
{
	bool first = !d->text[0];
	va_list ap;

	/* A FLUSH error never hides an earlier one that needs a resync: a
	 * good FLUSH clears only a FLUSH error (diskerr_is_flush()). */
	if (!first && !diskerr_is_flush(d) && strncmp(fmt, DISKERR_FLUSH, strlen(DISKERR_FLUSH)) == 0)
		return false;
	va_start(ap, fmt);
	(void)vsnprintf(d->text, sizeof(d->text), fmt, ap);
	va_end(ap);
	return first;
}

bool diskerr_is_flush(const struct diskerr *d)
{
	return strncmp(d->text, DISKERR_FLUSH, strlen(DISKERR_FLUSH)) == 0;
}

void diskerr_clear(struct diskerr *d)
{
	d->text[0] = '\0';
}

void diskerr_repaired(struct diskerr *d)
{
	d->text[0] = '\0';
	d->backoff_s = 0;
}

unsigned diskerr_failed(struct diskerr *d, uint64_t now_ns)
{
	unsigned b = d->backoff_s;

	d->backoff_s = !b ? 1 : 2 * b > DISKERR_RETRY_MAX_S ? DISKERR_RETRY_MAX_S : 2 * b;
	d->retry_ns = now_ns + (uint64_t)d->backoff_s * 1000000000U;
	return d->backoff_s;
}

bool diskerr_retry_due(struct diskerr *d, uint64_t now_ns)
{
	if (!d->retry_ns || now_ns < d->retry_ns)
		return false;
	d->retry_ns = 0;
	return true;
}

void diskerr_cancel_retry(struct diskerr *d)
{
	d->retry_ns = 0;
}

void diskerr_set_md_unsaved(struct diskerr *d, bool unsaved)
{
	d->md_unsaved = unsaved;
}

bool diskerr_md_unsaved(const struct diskerr *d)
{
	return d->md_unsaved;
}
