// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tls_unsupported() on this host's real files: the TLS stacks pinwarden does not
 * judge (wolfSSL, Mbed TLS, a JVM) are named, with a version where the file says
 * it; libraries of covered families are named too when asked (the daemon asks
 * only of files no family matched); plain libraries and programs that merely
 * use TLS through a shared library are not. Then programs compiled here with a
 * stack's source paths in their strings, as stripped static builds keep them.
 */
#include <glob.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "uncovered.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"

static const char *family_of(const char *path, char *version, size_t vlen)
{
	char err[256], why[128];
	struct elf_image *img = elf_image_open(path, err, sizeof(err));
	const char *f;

	if (!img) {
		fprintf(stderr, "  %s: %s\n", path, err);
		return "(unreadable)";
	}
	f = tls_unsupported(img, version, vlen, why, sizeof(why));
	printf("  %-60s %s%s%s%s%s\n", path, f ? f : "-", version[0] ? " " : "", version,
	       why[0] ? ": " : "", why);
	elf_image_close(img);
	return f;
}

static void expect(const char *path, const char *family, const char *version_prefix)
{
	char version[64] = "";
	const char *f = family_of(path, version, sizeof(version));

	if (!family) {
		ASSERT_TRUE(f == NULL);
		return;
	}
	ASSERT_STREQ(f, family);
	if (version_prefix)
		ASSERT_TRUE(!strncmp(version, version_prefix, strlen(version_prefix)));
}

/* A program whose read-only data holds `text`, built here (cc), stripped. */
static int build(const char *dir, const char *name, const char *text, char *out, size_t len)
{
	char src[256], cmd[1024];
	FILE *f;

	snprintf(src, sizeof(src), "%s/%s.c", dir, name);
	snprintf(out, len, "%s/%s", dir, name);
	f = fopen(src, "w");
	if (!f)
		return -1;
	fprintf(f, "#include <stdio.h>\nconst char *s = \"%s\";\n"
		   "int main(int c, char **v) { if (c > 5) puts(s); return 0; }\n", text);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -O2 -s -o %s %s", out, src);
	return system(cmd);
}

int main(void)
{
	char dir[] = "/tmp/pw-uncovered-XXXXXX", prog[256];
	glob_t g;

	/* stacks pinwarden does not judge (tools/deps.d/coverage.txt installs them) */
	expect(LIBDIR "libwolfssl.so.35", "wolfssl", NULL);
	expect(LIBDIR "libmbedtls.so.14", "mbedtls", NULL);
	if (glob("/usr/lib/jvm/*/lib/server/libjvm.so", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			expect(g.gl_pathv[i], "jsse", NULL);
		globfree(&g);
	} else {
		ASSERT_TRUE(!"a JVM's libjvm.so (openjdk-17-jre-headless)");
	}
	/* covered families, when asked: by what they export, OpenSSL with its version */
	expect(LIBDIR "libssl.so.3", "openssl", NULL);
	expect(LIBDIR "libgnutls.so.30", "gnutls", NULL);
	expect(LIBDIR "libssl3.so", "nss", NULL);
	/* no TLS stack of their own */
	expect(LIBDIR "libc.so.6", NULL, NULL);
	expect(LIBDIR "libcrypto.so.3", NULL, NULL);
	expect(LIBDIR "libcurl.so.4", NULL, NULL);
	expect("/usr/bin/curl", NULL, NULL);
	expect("/usr/bin/openssl", NULL, NULL);

	/* linked in and stripped: known by the stack's own source paths */
	if (!mkdtemp(dir))
		return 2;
	if (build(dir, "bssl", "../../third_party/boringssl/src/ssl/handshake_client.cc", prog,
		  sizeof(prog)) == 0)
		expect(prog, "boringssl", NULL);
	else
		ASSERT_TRUE(!"cc");
	if (build(dir, "rust", "/root/.cargo/registry/src/index/rustls-0.23.5/src/conn.rs", prog,
		  sizeof(prog)) == 0)
		expect(prog, "rustls", NULL);
	if (build(dir, "ossl", "ssl/statem/statem_clnt.c\\0OpenSSL 1.1.1w  11 Sep 2023", prog,
		  sizeof(prog)) == 0)
		expect(prog, "openssl", "1.1.1w");
	if (build(dir, "lssl", "ssl/statem/statem_clnt.c\\0LibreSSL 3.8.2", prog,
		  sizeof(prog)) == 0)
		expect(prog, "libressl", "3.8.2");
	/* a program that only names a stack is none */
	if (build(dir, "names", "built against OpenSSL 3.0.2 and BoringSSL", prog,
		  sizeof(prog)) == 0)
		expect(prog, NULL, NULL);
	system("rm -rf /tmp/pw-uncovered-*");

	printf("test_uncovered: %d checks, %d failed\n", checks, failures);
	return failures || !checks ? 1 : 0;
}
