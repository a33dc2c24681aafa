// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the ELF helpers that place probes in statically linked code
 * (userspace/elfsym.c: elf_func_vaddr_size, elf_object_vaddr, elf_read_vaddr, elf_section_range,
 * elf_direct_call_sites, elf_accessor_offset, elf_field_offset, elf_needed), on this very test
 * program: its functions are known,
 * and its machine code is also in memory to compare with what was read from
 * the file. Every failed assertion prints one "file:line: FAIL ..." line; the
 * exit status is the number of failures (capped), 0 when all pass.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

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

/* A data object (STT_OBJECT) with file bytes, for elf_object_vaddr. */
__attribute__((used)) const char pw_test_object[] = "pinwarden elfsym object";

/* Field accessors as OpenSSL 3.0 compiles SSL_session_reused and SSL_is_server. */
__asm__(".globl pw_test_get32\n.type pw_test_get32, @function\npw_test_get32:\n"
	"\tmov 0x4d0(%rdi), %eax\n\txor %edi, %edi\n\tret\n.size pw_test_get32, .-pw_test_get32\n"
	".globl pw_test_get8\n.type pw_test_get8, @function\npw_test_get8:\n"
	"\tendbr64\n\tmov 0x38(%rdi), %eax\n\tret\n.size pw_test_get8, .-pw_test_get8\n"
	".globl pw_test_getneg\n.type pw_test_getneg, @function\npw_test_getneg:\n"
	"\tmov -0x8(%rdi), %eax\n\tret\n.size pw_test_getneg, .-pw_test_getneg\n"
	".globl pw_test_getrsi\n.type pw_test_getrsi, @function\npw_test_getrsi:\n"
	"\tmov 0x38(%rsi), %eax\n\tret\n.size pw_test_getrsi, .-pw_test_getrsi\n");

/* First fields as OpenSSL 3.0's libcrypto compiles OPENSSL_sk_num, OPENSSL_sk_value,
 * X509_STORE_CTX_get0_chain and i2d_re_X509_tbs; and shapes that must be refused. */
__asm__(".globl pw_test_sknum\n.type pw_test_sknum, @function\npw_test_sknum:\n"
	"\ttest %rdi, %rdi\n\tje 1f\n\tmov (%rdi), %eax\n\txor %edi, %edi\n\tret\n"
	"1:\tmov $0xffffffff, %eax\n\tret\n.size pw_test_sknum, .-pw_test_sknum\n"
	".globl pw_test_skvalue\n.type pw_test_skvalue, @function\npw_test_skvalue:\n"
	"\ttest %rdi, %rdi\n\tje 1f\n\ttest %esi, %esi\n\tjs 1f\n\tcmp %esi, (%rdi)\n"
	"\tjle 1f\n\tmov 0x8(%rdi), %rax\n\tmovslq %esi, %rsi\n\tmov (%rax,%rsi,8), %rax\n"
	"\tret\n1:\txor %eax, %eax\n\tret\n.size pw_test_skvalue, .-pw_test_skvalue\n"
	".globl pw_test_get64\n.type pw_test_get64, @function\npw_test_get64:\n"
	"\tendbr64\n\tmov 0x98(%rdi), %rax\n\txor %edi, %edi\n\tret\n"
	".size pw_test_get64, .-pw_test_get64\n"
	".globl pw_test_setmod\n.type pw_test_setmod, @function\npw_test_setmod:\n"
	"\tmovl $0x1, 0x80(%rdi)\n\tjmp pw_test_other\n.size pw_test_setmod, .-pw_test_setmod\n"
	".globl pw_test_moved\n.type pw_test_moved, @function\npw_test_moved:\n"
	"\tmov %rsi, %rdi\n\tmov 0x8(%rdi), %rax\n\tret\n"
	".size pw_test_moved, .-pw_test_moved\n"
	".globl pw_test_setind\n.type pw_test_setind, @function\npw_test_setind:\n"
	"\tmov (%rdi), %rax\n\tmovl $0x1, 0x60(%rax)\n\tmov (%rdi), %rdi\n\tjmp pw_test_other\n"
	".size pw_test_setind, .-pw_test_setind\n"
	".globl pw_test_callfirst\n.type pw_test_callfirst, @function\npw_test_callfirst:\n"
	"\tcall pw_test_other\n\tmov 0x8(%rdi), %rax\n\tret\n"
	".size pw_test_callfirst, .-pw_test_callfirst\n");

int main(void)
{
	uint64_t sites[8], caller, callee, size = 0, text, text_size, obj;
	uint8_t code[4096], b[5], objbuf[sizeof(pw_test_object)];
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

	/* functions and data objects are looked up apart */
	obj = elf_object_vaddr(img, "pw_test_object");
	ASSERT_TRUE(obj != 0);
	ASSERT_EQ(elf_read_vaddr(img, obj, objbuf, sizeof(pw_test_object)), 0);
	ASSERT_TRUE(!memcmp(objbuf, pw_test_object, sizeof(pw_test_object)));
	ASSERT_EQ(elf_object_vaddr(img, "pw_test_caller"), 0);
	ASSERT_EQ(elf_func_vaddr(img, "pw_test_object"), 0);
	ASSERT_EQ(elf_func_vaddr(img, "pw_test_no_such_function"), 0);

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

		/* first fields, past NULL and bounds checks */
		off = 1;
		ASSERT_EQ(elf_field_offset(img, "pw_test_sknum", ELF_LOAD32, &off), 0);
		ASSERT_EQ(off, 0);
		ASSERT_EQ(elf_field_offset(img, "pw_test_skvalue", ELF_LOAD64, &off), 0);
		ASSERT_EQ(off, 8);
		ASSERT_EQ(elf_field_offset(img, "pw_test_get64", ELF_LOAD64, &off), 0);
		ASSERT_EQ(off, 0x98);
		ASSERT_EQ(elf_field_offset(img, "pw_test_get32", ELF_LOAD32, &off), 0);
		ASSERT_EQ(off, 0x4d0);
		ASSERT_EQ(elf_field_offset(img, "pw_test_setmod", ELF_STORE_IMM, &off), 0);
		ASSERT_EQ(off, 0x80);
		/* the wrong width, the wrong base, %rdi changed first, a call first: refused */
		ASSERT_EQ(elf_field_offset(img, "pw_test_get32", ELF_LOAD64, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_get64", ELF_LOAD32, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_getrsi", ELF_LOAD32, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_getneg", ELF_LOAD32, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_moved", ELF_LOAD64, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_callfirst", ELF_LOAD64, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_test_sknum", ELF_STORE_IMM, &off), -1);
		ASSERT_EQ(elf_field_offset(img, "pw_no_such_function", ELF_LOAD32, &off), -1);

		/* one pointer away, as BoringSSL's i2d_re_X509_tbs: x->cert_info->enc.modified */
		{
			uint32_t ptr = 9;

			ASSERT_EQ(elf_field_offset_indirect(img, "pw_test_setind", &ptr, &off), 0);
			ASSERT_EQ(ptr, 0);
			ASSERT_EQ(off, 0x60);
			ASSERT_EQ(elf_field_offset(img, "pw_test_setind", ELF_STORE_IMM, &off), -1);
			ASSERT_EQ(elf_field_offset_indirect(img, "pw_test_setmod", &ptr, &off), -1);
			ASSERT_EQ(elf_field_offset_indirect(img, "pw_test_get64", &ptr, &off), -1);
		}
	}
	elf_image_close(img);

	/* the libcrypto this test links: its X509_STORE_CTX accessors agree with the
	 * objects OpenSSL itself builds, and libssl names it as a DT_NEEDED entry */
	{
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		X509_STORE *store = X509_STORE_new();
		STACK_OF(X509) *sk = sk_X509_new_null();
		X509 *x = X509_new();
		char path[4096] = "", soname[256];
		uint32_t err_off = 0, chain_off = 0, cert_off = 0, num_off = 9, data_off = 0, mod = 0;
		FILE *maps = fopen("/proc/self/maps", "re");
		char line[4096 + 256];

		while (maps && fgets(line, sizeof(line), maps)) {
			char *p = strchr(line, '/');

			if (p && strstr(p, "/libcrypto.so")) {
				p[strcspn(p, "\n")] = 0;
				snprintf(path, sizeof(path), "%s", p);
				break;
			}
		}
		if (maps)
			fclose(maps);
		ASSERT_TRUE(path[0]);
		img = elf_image_open(path, err, sizeof(err));
		ASSERT_TRUE(img);
		if (img && ctx && store && sk && x) {
			ASSERT_EQ(elf_field_offset(img, "X509_STORE_CTX_get_error", ELF_LOAD32, &err_off), 0);
			ASSERT_EQ(elf_field_offset(img, "X509_STORE_CTX_get0_chain", ELF_LOAD64, &chain_off), 0);
			ASSERT_EQ(elf_field_offset(img, "X509_STORE_CTX_get0_cert", ELF_LOAD64, &cert_off), 0);
			ASSERT_EQ(elf_field_offset(img, "OPENSSL_sk_num", ELF_LOAD32, &num_off), 0);
			ASSERT_EQ(elf_field_offset(img, "OPENSSL_sk_value", ELF_LOAD64, &data_off), 0);
			ASSERT_EQ(elf_field_offset(img, "i2d_re_X509_tbs", ELF_STORE_IMM, &mod), 0);
			ASSERT_EQ(X509_STORE_CTX_init(ctx, store, x, sk), 1);
			X509_STORE_CTX_set_error(ctx, 0x5a5a);
			ASSERT_EQ(*(int *)((char *)ctx + err_off), 0x5a5a);
			ASSERT_TRUE(*(X509 **)((char *)ctx + cert_off) == x);
			ASSERT_EQ(sk_X509_push(sk, x), 1);
			ASSERT_EQ(*(int *)((char *)sk + num_off), 1);
			ASSERT_TRUE((*(X509 ***)((char *)sk + data_off))[0] == x);
			/* i2d_re_X509_tbs sets the flag the offset names */
			*(int *)((char *)x + mod) = 0;
			(void)i2d_re_X509_tbs(x, NULL);	/* an empty X509 may not encode: the flag is set first */
			ASSERT_EQ(*(int *)((char *)x + mod), 1);
			/* a certificate parsed from DER keeps its tbsCertificate there */
			{
				unsigned char *der = NULL, *tbs = NULL;
				const unsigned char *pp;
				X509 *y;
				int dlen, tlen;
				EVP_PKEY *k = EVP_EC_gen("P-256");
				X509 *c = X509_new();

				X509_set_version(c, 2);
				X509_set_pubkey(c, k);
				X509_gmtime_adj(X509_getm_notBefore(c), 0);
				X509_gmtime_adj(X509_getm_notAfter(c), 3600);
				X509_sign(c, k, EVP_sha256());
				dlen = i2d_X509(c, &der);
				pp = der;
				y = d2i_X509(NULL, &pp, dlen);
				ASSERT_TRUE(y);
				tlen = i2d_re_X509_tbs(y, &tbs);
				if (y && tlen > 0) {
					const unsigned char *enc = *(unsigned char **)((char *)y + mod - 16);
					long len = *(long *)((char *)y + mod - 8);

					/* i2d_re_X509_tbs re-encoded it; re-parse for the cached form */
					X509_free(y);
					pp = der;
					y = d2i_X509(NULL, &pp, dlen);
					enc = *(unsigned char **)((char *)y + mod - 16);
					len = *(long *)((char *)y + mod - 8);
					ASSERT_EQ(len, tlen);
					ASSERT_TRUE(enc && !memcmp(enc, tbs, tlen));
					ASSERT_EQ(*(int *)((char *)y + mod), 0);
				}
				OPENSSL_free(der);
				OPENSSL_free(tbs);
				X509_free(y);
				X509_free(c);
				EVP_PKEY_free(k);
			}
			elf_image_close(img);
		}
		/* BoringSSL's libcrypto (android-libboringssl), when there: the same fields */
		img = elf_image_open("/usr/lib/x86_64-linux-gnu/android/libcrypto.so.0", err, sizeof(err));
		if (img) {
			uint32_t ptr = 9, v = 0;

			ASSERT_EQ(elf_field_offset(img, "X509_STORE_CTX_get_error", ELF_LOAD32, &v), 0);
			ASSERT_EQ(elf_field_offset(img, "X509_STORE_CTX_get0_chain", ELF_LOAD64, &v), 0);
			ASSERT_EQ(elf_field_offset(img, "sk_num", ELF_LOAD64, &v), 0);
			ASSERT_EQ(v, 0);
			ASSERT_EQ(elf_field_offset(img, "sk_value", ELF_LOAD64, &v), 0);
			ASSERT_EQ(v, 8);
			ASSERT_EQ(elf_field_offset_indirect(img, "i2d_re_X509_tbs", &ptr, &v), 0);
			ASSERT_EQ(ptr, 0);
			ASSERT_TRUE(v >= 16);
			elf_image_close(img);
		}
		/* libssl names its libcrypto */
		img = elf_image_open("/usr/lib/x86_64-linux-gnu/libssl.so.3", err, sizeof(err));
		ASSERT_TRUE(img);
		if (img) {
			ASSERT_EQ(elf_needed(img, "libcrypto", soname, sizeof(soname)), 0);
			ASSERT_STREQ(soname, "libcrypto.so.3");
			ASSERT_EQ(elf_needed(img, "libnosuch", soname, sizeof(soname)), -1);
			elf_image_close(img);
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
		sk_X509_free(sk);
		X509_free(x);
	}

	printf("test_elfsym: %d checks, %d failures (%d %d)\n", checks, failures, pw_test_caller(1),
	       pw_test_other(1));
	return failures > 100 ? 100 : failures;
}
