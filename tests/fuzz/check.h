/* Shared by the fuzz harnesses: a failed invariant is a crash, so libFuzzer
 * keeps the input. */
#ifndef BLKREP_FUZZ_CHECK_H
#define BLKREP_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
				__LINE__, #cond);                                 \
			abort();                                                  \
		}                                                                 \
	} while (0)

#endif
