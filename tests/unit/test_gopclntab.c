// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the .gopclntab reader (userspace/gopclntab.c), through
 * gopclntab.h only: function tables in the three layouts it knows (Go
 * 1.16/1.17, 1.18/1.19, 1.20+) built here byte by byte, then every
 * truncation and 200,000 random corruptions of them, under ASan and UBSan.
 * The daemon reads the table of every Go executable on the host as root:
 * whatever the file says, the reader must stay inside it.
 * The exit status is the number of failures (capped), 0 when all pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gopclntab.h"

#define TEXT 0x401000ULL

static const char *const names[] = {
	"runtime.main",
	"crypto/tls.hostnameInSNI",
	"crypto/tls.(*Conn).verifyServerCertificate",
	"crypto/tls.(*Conn).processCertsFromClient",
	"main.main",
};
#define NFUNC (sizeof(names) / sizeof(names[0]))

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Function i starts at TEXT + 0x100 * i; the table ends at TEXT + 0x100 * NFUNC. */
static size_t build(uint8_t *buf, size_t cap, uint32_t magic)
{
	int go116 = magic == GOPCLNTAB_GO116;
	size_t hdr = go116 ? 64 : 72, off = hdr, names_off, names_end, pcln, ftab_ent, func_size;
	uint32_t nameoff[NFUNC];
	size_t i;

	memset(buf, 0, cap);
	put32(buf, magic);
	buf[6] = 1;	/* minLC */
	buf[7] = 8;	/* ptrSize */
	put64(buf + 8, NFUNC);
	names_off = off;
	for (i = 0; i < NFUNC; i++) {
		nameoff[i] = (uint32_t)(off - names_off);
		memcpy(buf + off, names[i], strlen(names[i]) + 1);
		off += strlen(names[i]) + 1;
	}
	names_end = off;
	off += 16;	/* a cutab */
	pcln = (off + 7) & ~7UL;
	if (go116) {
		put64(buf + 24, names_off);
		put64(buf + 32, names_end);
		put64(buf + 56, pcln);
		ftab_ent = 16;
		func_size = 16;
	} else {
		put64(buf + 24, TEXT);
		put64(buf + 32, names_off);
		put64(buf + 40, names_end);
		put64(buf + 64, pcln);
		ftab_ent = 8;
		func_size = 8;
	}
	for (i = 0; i <= NFUNC; i++) {
		uint8_t *ft = buf + pcln + i * ftab_ent;
		size_t funcoff = (NFUNC + 1) * ftab_ent + i * func_size;

		if (go116) {
			put64(ft, TEXT + 0x100 * i);
			put64(ft + 8, funcoff);
		} else {
			put32(ft, 0x100 * i);
			put32(ft + 4, funcoff);
		}
		if (i == NFUNC)
			break;
		if (go116) {
			put64(buf + pcln + funcoff, TEXT + 0x100 * i);
			put32(buf + pcln + funcoff + 8, nameoff[i]);
		} else {
			put32(buf + pcln + funcoff, 0x100 * i);
			put32(buf + pcln + funcoff + 4, nameoff[i]);
		}
	}
	return pcln + (NFUNC + 1) * ftab_ent + NFUNC * func_size;
}

static void test_layout(uint32_t magic)
{
	uint8_t buf[4096];
	size_t size = build(buf, sizeof(buf), magic), i;
	struct gopclntab t;
	uint64_t entry = 0, end = 0;
	char err[128];

	ASSERT_EQ(gopclntab__open(&t, buf, size, 0, err, sizeof(err)), 0);
	for (i = 0; i < NFUNC; i++) {
		ASSERT_TRUE(gopclntab__has_name(&t, names[i]));
		ASSERT_EQ(gopclntab__find(&t, names[i], &entry, &end), 0);
		ASSERT_EQ(entry, TEXT + 0x100 * i);
		ASSERT_EQ(end, TEXT + 0x100 * (i + 1));
	}
	/* prefixes, suffixes and strangers are not names */
	ASSERT_TRUE(!gopclntab__has_name(&t, "crypto/tls.hostname"));
	ASSERT_TRUE(!gopclntab__has_name(&t, "tls.hostnameInSNI"));
	ASSERT_TRUE(!gopclntab__has_name(&t, "main.other"));
	ASSERT_EQ(gopclntab__find(&t, "tls.hostnameInSNI", &entry, &end), -1);
	ASSERT_EQ(gopclntab__find(&t, "main.mai", &entry, &end), -1);

	/* 1.18+: a text start of 0 (a PIE build) falls back to .text's address */
	if (magic != GOPCLNTAB_GO116) {
		put64(buf + 24, 0);
		ASSERT_EQ(gopclntab__open(&t, buf, size, 0x7000, err, sizeof(err)), 0);
		ASSERT_EQ(gopclntab__find(&t, "main.main", &entry, &end), 0);
		ASSERT_EQ(entry, 0x7000 + 0x100 * (NFUNC - 1));
	}
}

/* Whatever the bytes say, stay inside them: ASan stops the test otherwise. */
static void test_hostile(uint32_t magic)
{
	uint8_t good[4096], *buf;
	size_t size = build(good, sizeof(good), magic), n, k;
	struct gopclntab t;
	uint64_t entry, end;
	char err[128];
	int opened = 0, found = 0;

	for (n = 0; n <= size; n++) {
		/* an exact-size heap copy: ASan sees any read past it */
		buf = malloc(n ? n : 1);
		memcpy(buf, good, n);
		if (gopclntab__open(&t, buf, n, TEXT, err, sizeof(err)) == 0) {
			opened++;
			gopclntab__has_name(&t, "main.main");
			if (gopclntab__find(&t, "main.main", &entry, &end) == 0)
				found++;
		}
		free(buf);
	}
	/* a truncated table opens only once its function table is whole */
	ASSERT_TRUE(opened > 0 && opened < (int)size);
	srand(magic);
	for (k = 0; k < 200000 / 3; k++) {
		int flips = 1 + rand() % 4, f;

		buf = malloc(size);
		memcpy(buf, good, size);
		for (f = 0; f < flips; f++) {
			size_t at = (size_t)rand() % size;

			/* offsets and counts are where corruption hurts: hit the header often */
			if (rand() % 2)
				at = (size_t)rand() % 72 % size;
			buf[at] = (uint8_t)rand();
		}
		if (gopclntab__open(&t, buf, size, TEXT, err, sizeof(err)) == 0) {
			gopclntab__has_name(&t, "crypto/tls.hostnameInSNI");
			gopclntab__find(&t, "crypto/tls.hostnameInSNI", &entry, &end);
			gopclntab__find(&t, "no such function", &entry, &end);
		}
		free(buf);
	}
	checks++;
}

int main(void)
{
	static const uint32_t magics[] = { GOPCLNTAB_GO116, GOPCLNTAB_GO118, GOPCLNTAB_GO120 };
	struct gopclntab t;
	uint8_t old[64] = { 0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8 };
	char err[128];
	size_t i;

	for (i = 0; i < 3; i++) {
		test_layout(magics[i]);
		test_hostile(magics[i]);
	}
	/* Go 1.2-1.15 (arguments on the stack) and non-tables are refused, with a reason */
	ASSERT_EQ(gopclntab__open(&t, old, sizeof(old), 0, err, sizeof(err)), -1);
	ASSERT_TRUE(strstr(err, "1.15") != NULL);
	ASSERT_EQ(gopclntab__open(&t, (const uint8_t *)"\x7f" "ELF", 4, 0, err, sizeof(err)), -1);
	ASSERT_EQ(gopclntab__open(&t, NULL, 0, 0, err, sizeof(err)), -1);
	printf("test_gopclntab: %d checks, %d failed\n", checks, failures);
	return failures > 100 ? 100 : failures;
}
