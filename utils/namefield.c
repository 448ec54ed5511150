/* Name fields.  See namefield.h. */
#include "namefield.h"

#include <string.h>

bool namefield_valid(const uint8_t *p, size_t size)
{
	size_t n = strnlen((const char *)p, size);

	if (n == 0 || n == size)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	for (size_t i = n; i < size; i++)
		if (p[i])
			return false;
	return true;
}
