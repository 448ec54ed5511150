/* utils/secmem: pages of their own, usable, wiped and given back. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "utils/secmem.h"

Test(secmem, alloc_use_free)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = secmem_alloc(4096 + 1);

	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % page, 0, "not on a page of its own");
	for (size_t i = 0; i < 4097; i++)
		cr_assert_eq(p[i], 0);
	memset(p, 0xa5, 4097);
	secmem_free(p, 4097);
	secmem_free(NULL, 1);
	cr_assert_null(secmem_alloc(0));
}
