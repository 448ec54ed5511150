/* Memory for secrets (the resource's key, TLS keys): whole pages of their
 * own, locked so that they are not swapped out (when RLIMIT_MEMLOCK allows:
 * a failure to lock is only a debug line) and left out of core dumps
 * (MADV_DONTDUMP); wiped before they are given back.  Never on a hot path. */
#ifndef BLKREP_SECMEM_H
#define BLKREP_SECMEM_H

#include <stddef.h>

/* n zeroed bytes (n > 0) on pages of their own, or NULL (errno set). */
void *secmem_alloc(size_t n);

/* Wipes and unmaps p, which secmem_alloc(n) returned; NULL is ignored. */
void secmem_free(void *p, size_t n);

#endif
