/* Memory for secrets.  See secmem.h. */
#include "utils/secmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "utils/log.h"

static size_t secmem_span(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

void *secmem_alloc(size_t n)
{
	size_t span;
	void *p;

	if (n == 0) {
		errno = EINVAL;
		return NULL;
	}
	span = secmem_span(n);
	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Locking is best effort: an unprivileged daemon under a small
	 * RLIMIT_MEMLOCK still runs, its secret merely swappable. */
	if (mlock(p, span) < 0)
		log_debug("secmem: cannot lock %zu bytes: %s", span, strerror(errno));
	if (madvise(p, span, MADV_DONTDUMP) < 0)
		log_debug("secmem: MADV_DONTDUMP: %s", strerror(errno));
	return p;
}

void secmem_free(void *p, size_t n)
{
	size_t span;

	if (!p)
		return;
	span = secmem_span(n);
	explicit_bzero(p, span);
	(void)munlock(p, span);
	(void)munmap(p, span);
}
