/* Memory for secrets.  See secmem.h. */
#include "utils/secmem.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t pages(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

void *secmem_alloc(size_t n)
{
	size_t len = pages(n ? n : 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_DONTDUMP);
	(void)mlock(p, len); /* best effort: RLIMIT_MEMLOCK may forbid it */
	return p;
}

void secmem_free(void *p, size_t n)
{
	size_t len = pages(n ? n : 1);

	if (!p)
		return;
	explicit_bzero(p, len);
	(void)munlock(p, len);
	(void)munmap(p, len);
}
