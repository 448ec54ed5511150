/* Memory for secrets: whole pages, locked (never swapped, where
 * RLIMIT_MEMLOCK allows) and left out of core dumps; wiped when freed. */
#ifndef BLKREP_UTILS_SECMEM_H
#define BLKREP_UTILS_SECMEM_H

#include <stddef.h>

/* n zeroed bytes, or NULL when out of memory. */
void *secmem_alloc(size_t n);
/* Wipes and frees what secmem_alloc(n) gave; NULL is fine. */
void secmem_free(void *p, size_t n);

#endif
