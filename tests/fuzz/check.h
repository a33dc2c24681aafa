/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* CHECK(cond, fmt, ...): what every fuzz target asserts with; abort() is what
 * libFuzzer reports as a crash and keeps the input of. */
#ifndef PW_FUZZ_CHECK_H
#define PW_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);       \
			fprintf(stderr, __VA_ARGS__);                                    \
			fputc('\n', stderr);                                             \
			abort();                                                         \
		}                                                                        \
	} while (0)

#endif /* PW_FUZZ_CHECK_H */
