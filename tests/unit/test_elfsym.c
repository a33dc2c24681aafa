// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the ELF helpers that place probes in statically linked code
 * (userspace/elfsym.c: elf_func_vaddr_size, elf_read_vaddr, elf_section_range,
 * elf_direct_call_sites, elf_accessor_offset), on this very test program: its functions are known,
 * and its machine code is also in memory to compare with what was read from
 * the file. Every failed assertion prints one "file:line: FAIL ..." line; the
 * exit status is the number of failures (capped), 0 when all pass.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "elfsym.h"

/* A callee, a caller with two direct calls to it, and a function without any. */
__attribute__((noinline, used)) int pw_test_callee(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x * 3 + 1;
}

__attribute__((noinline, used)) int pw_test_caller(int x)
{
	int a = pw_test_callee(x);

	__asm__ volatile("" : "+r"(a));
	return a + pw_test_callee(x + 1) * 2;
}

__attribute__((noinline, used)) int pw_test_other(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 5;
}

/* Field accessors as OpenSSL 3.0 compiles SSL_session_reused and SSL_is_server. */
__asm__(".globl pw_test_get32\n.type pw_test_get32, @function\npw_test_get32:\n"
	"\tmov 0x4d0(%rdi), %eax\n\txor %edi, %edi\n\tret\n.size pw_test_get32, .-pw_test_get32\n"
	".globl pw_test_get8\n.type pw_test_get8, @function\npw_test_get8:\n"
	"\tendbr64\n\tmov 0x38(%rdi), %eax\n\tret\n.size pw_test_get8, .-pw_test_get8\n"
	".globl pw_test_getneg\n.type pw_test_getneg, @function\npw_test_getneg:\n"
	"\tmov -0x8(%rdi), %eax\n\tret\n.size pw_test_getneg, .-pw_test_getneg\n"
	".globl pw_test_getrsi\n.type pw_test_getrsi, @function\npw_test_getrsi:\n"
	"\tmov 0x38(%rsi), %eax\n\tret\n.size pw_test_getrsi, .-pw_test_getrsi\n");

int main(void)
{
	uint64_t sites[8], caller, callee, size = 0, text, text_size;
	uint8_t code[4096], b[5];
	char err[256];
	struct elf_image *img;
	int n, i;

	img = elf_image_open("/proc/self/exe", err, sizeof(err));
	ASSERT_TRUE(img);
	if (!img) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	caller = elf_func_vaddr_size(img, "pw_test_caller", &size);
	callee = elf_func_vaddr(img, "pw_test_callee");
	ASSERT_TRUE(caller && callee);
	ASSERT_EQ(caller, elf_func_vaddr(img, "pw_test_caller"));
	ASSERT_TRUE(size > 0 && size < sizeof(code));

	/* the bytes read from the file are the code that runs */
	ASSERT_EQ(elf_read_vaddr(img, caller, code, size), 0);
	ASSERT_TRUE(!memcmp(code, (const void *)pw_test_caller, size));
	ASSERT_EQ(elf_section_range(img, ".text", &text, &text_size), 0);
	ASSERT_TRUE(caller >= text && caller + size <= text + text_size);
	ASSERT_EQ(elf_read_vaddr(img, 0x7fffffff0000ULL, b, sizeof(b)), -1);
	ASSERT_EQ(elf_section_range(img, ".no-such-section", &text, &text_size), -1);

	/* both calls, each a call rel32 to the callee */
	n = elf_direct_call_sites(img, "pw_test_caller", "pw_test_callee", sites, 8);
	ASSERT_EQ(n, 2);
	for (i = 0; i < n && i < 8; i++) {
		int32_t rel;

		ASSERT_TRUE(sites[i] >= caller && sites[i] + 5 <= caller + size);
		ASSERT_EQ(elf_read_vaddr(img, sites[i], b, sizeof(b)), 0);
		ASSERT_EQ(b[0], 0xe8);
		memcpy(&rel, b + 1, 4);
		ASSERT_EQ(sites[i] + 5 + (int64_t)rel, callee);
	}
	/* at most `max` */
	ASSERT_EQ(elf_direct_call_sites(img, "pw_test_caller", "pw_test_callee", sites, 1), 1);
	/* none where there is none, and nothing for names the file does not define */
	ASSERT_EQ(elf_direct_call_sites(img, "pw_test_other", "pw_test_callee", sites, 8), 0);
	ASSERT_EQ(elf_direct_call_sites(img, "pw_no_such_function", "pw_test_callee", sites, 8), 0);
	ASSERT_EQ(elf_direct_call_sites(img, "pw_test_caller", "pw_no_such_function", sites, 8), 0);

	/* accessors: the offset they load, and nothing for any other code */
	{
		uint32_t off = 0;

		ASSERT_EQ(elf_accessor_offset(img, "pw_test_get32", &off), 0);
		ASSERT_EQ(off, 0x4d0);
		ASSERT_EQ(elf_accessor_offset(img, "pw_test_get8", &off), 0);
		ASSERT_EQ(off, 0x38);
		ASSERT_EQ(elf_accessor_offset(img, "pw_test_getneg", &off), -1);
		ASSERT_EQ(elf_accessor_offset(img, "pw_test_getrsi", &off), -1);
		ASSERT_EQ(elf_accessor_offset(img, "pw_test_caller", &off), -1);
		ASSERT_EQ(elf_accessor_offset(img, "pw_no_such_function", &off), -1);
	}
	elf_image_close(img);

	printf("test_elfsym: %d checks, %d failures (%d %d)\n", checks, failures, pw_test_caller(1),
	       pw_test_other(1));
	return failures > 100 ? 100 : failures;
}
