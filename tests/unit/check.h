/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The unit tests' checks, in the style of the kernel selftests' ASSERT_*: a failed
 * check says where and why and the test goes on; main() reports the count. */
#ifndef PW_TEST_CHECK_H
#define PW_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int failures, checks;

#define FAIL(fmt, ...)                                                                  \
	do {                                                                            \
		fprintf(stderr, "%s:%d: FAIL " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__); \
		failures++;                                                             \
	} while (0)

#define ASSERT_TRUE(c)                                                                  \
	do {                                                                            \
		checks++;                                                               \
		if (!(c))                                                               \
			FAIL("%s", #c);                                                 \
	} while (0)

#define ASSERT_EQ(a, b)                                                                 \
	do {                                                                            \
		long long a_ = (long long)(a), b_ = (long long)(b);                     \
		checks++;                                                               \
		if (a_ != b_)                                                           \
			FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                 \
	} while (0)

#define ASSERT_STREQ(a, b)                                                              \
	do {                                                                            \
		const char *a_ = (a), *b_ = (b);                                        \
		checks++;                                                               \
		if (!a_ || !b_ || strcmp(a_, b_))                                       \
			FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",  \
			     b_ ? b_ : "(null)");                                       \
	} while (0)

#define ASSERT_NULL(a) ASSERT_TRUE((a) == NULL)

/* main()'s last words: 0 when every check passed. */
static inline int checks_report(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d of %d checks failed\n", name, failures, checks);
		return 1;
	}
	printf("%s: all %d checks passed\n", name, checks);
	return 0;
}

#endif /* PW_TEST_CHECK_H */
