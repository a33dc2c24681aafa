// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * TLS implementations pinwarden does not judge, by content (uncovered.h).
 *
 * First the functions a file defines and exports: a shared library of another
 * stack (wolfSSL, Mbed TLS, rustls-ffi), a JVM (libjvm.so: its TLS is JSSE,
 * Java code in lib/modules), or a build of a covered family that family did not
 * recognise (OpenSSL 1.0, LibreSSL, an unknown GnuTLS or NSS). Then, for a
 * program with the stack linked in and its symbols stripped, the strings that
 * stack's own code prints: source paths in assertion and error messages, which
 * stripping keeps. Each needle is specific to the stack's sources, so a program
 * that merely mentions a name is not taken for one.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "uncovered.h"

/*
 * In order, symbols first: the first that matches names the file. `symbol`: a
 * function only that stack defines; else `needle`: a string in .rodata that
 * holds a '/' (all are source paths: one pass over the section's slashes finds
 * any of them).
 */
static const struct signature {
	const char *family;
	const char *symbol;
	const char *needle;
	const char *what;
} signatures[] = {
	{ "wolfssl", "wolfSSL_connect", NULL, "exports wolfSSL_connect" },
	{ "mbedtls", "mbedtls_ssl_handshake", NULL, "exports mbedtls_ssl_handshake" },
	{ "rustls", "rustls_client_connection_new", NULL,
	  "exports rustls_client_connection_new (rustls-ffi)" },
	{ "jsse", "JNI_CreateJavaVM", NULL, "a JVM (exports JNI_CreateJavaVM): its TLS is JSSE" },
	{ "gnutls", "gnutls_handshake", NULL,
	  "exports gnutls_handshake: a GnuTLS build pinwarden does not know" },
	{ "nss", "SSL_ImportFD", NULL, "exports SSL_ImportFD: an NSS build pinwarden does not know" },
	{ "openssl", "SSL_connect", NULL,
	  "exports SSL_connect: an OpenSSL-like build pinwarden does not know" },
	{ "boringssl", NULL, "third_party/boringssl/",
	  "BoringSSL linked in (its source paths), not exported" },
	{ "rustls", NULL, "/rustls-0.", "rustls linked in (its crate's source paths)" },
	{ "openssl", NULL, "ssl/statem/statem_clnt.c",
	  "OpenSSL linked in (its source paths), not exported" },
	{ "mbedtls", NULL, "mbedtls/library/ssl_", "Mbed TLS linked in (its source paths)" },
};

#define NSIGS (sizeof(signatures) / sizeof(signatures[0]))

/* Where each family says its version in its read-only data ("OpenSSL 1.0.2u ..."). */
static const struct {
	const char *family;
	const char *prefix;
	const char *rename;		/* the family it shows the file is, or NULL */
} version_prefix[] = {
	{ "openssl", "LibreSSL ", "libressl" },
	{ "openssl", "OpenSSL ", NULL },
	{ "mbedtls", "Mbed TLS ", NULL },
	{ "mbedtls", "mbed TLS ", NULL },
	{ "wolfssl", "wolfSSL ", NULL },
};

/* memmem over a section, charged to the file's budget (a pass is cheap: 1 unit per 64 bytes) */
static const char *section_find(struct elf_image *img, const uint8_t *sec, size_t size,
				const char *needle)
{
	if (elf_image_charge(img, size / 64 + 1))
		return NULL;
	return memmem(sec, size, needle, strlen(needle));
}

/*
 * The first signature whose needle is in sec, in one pass over its '/' bytes
 * (memchr), each compared with every needle placed on its own first '/': a
 * single cheap pass where a memmem per needle read a 20 MB .rodata four times.
 */
static const struct signature *needle_find(struct elf_image *img, const uint8_t *sec,
					   size_t size)
{
	const uint8_t *end = sec + size, *p = sec;
	size_t i;

	if (elf_image_charge(img, size / 64 + 1))
		return NULL;
	while ((p = memchr(p, '/', (size_t)(end - p)))) {
		for (i = 0; i < NSIGS; i++) {
			const char *n = signatures[i].needle;
			size_t k, len;

			if (!n)
				continue;
			k = (size_t)(strchr(n, '/') - n);
			len = strlen(n);
			if ((size_t)(p - sec) >= k && (size_t)(end - (p - k)) >= len &&
			    !memcmp(p - k, n, len))
				return &signatures[i];
		}
		p++;
	}
	return NULL;
}

/* "<prefix><version>" in .rodata (the first of 16 occurrences followed by a
 * digit): the version, printable, up to a NUL or a run of spaces */
static int find_version(struct elf_image *img, const uint8_t *sec, size_t size,
			const char *prefix, char *version, size_t vlen)
{
	const char *end = (const char *)sec + size, *p = (const char *)sec;
	size_t plen = strlen(prefix), n = 0;
	int tries;

	for (tries = 0; tries < 16 && p < end; tries++) {
		p = section_find(img, (const uint8_t *)p, (size_t)(end - p), prefix);
		if (!p)
			return -1;
		p += plen;
		/* a version starts with a digit: "OpenSSL " alone is a word in a message */
		if (p < end && isdigit((unsigned char)*p))
			break;
	}
	if (p >= end || !isdigit((unsigned char)*p))
		return -1;
	while (p + n < end && n + 1 < vlen && n < 48 && isprint((unsigned char)p[n]) &&
	       !(p[n] == ' ' && p + n + 1 < end && p[n + 1] == ' '))
		n++;
	memcpy(version, p, n);
	version[n] = 0;
	return 0;
}

const char *tls_unsupported(struct elf_image *img, char *version, size_t vlen, char *why,
			    size_t whylen)
{
	const struct signature *sig = NULL;
	const char *family;
	const uint8_t *ro;
	uint64_t addr;
	size_t size = 0, i;

	if (vlen)
		version[0] = 0;
	if (whylen)
		why[0] = 0;
	for (i = 0; i < NSIGS && !sig; i++)
		if (signatures[i].symbol && elf_func_vaddr(img, signatures[i].symbol))
			sig = &signatures[i];
	ro = elf_section(img, ".rodata", 0, &addr, &size);
	if (!sig && ro)
		sig = needle_find(img, ro, size);
	if (!sig || elf_image_budget_spent(img))
		return NULL;
	family = sig->family;
	snprintf(why, whylen, "%s", sig->what);
	for (i = 0; ro && i < sizeof(version_prefix) / sizeof(version_prefix[0]); i++) {
		if (strcmp(version_prefix[i].family, family) ||
		    find_version(img, ro, size, version_prefix[i].prefix, version, vlen))
			continue;
		if (version_prefix[i].rename)
			family = version_prefix[i].rename;
		break;
	}
	return elf_image_budget_spent(img) ? NULL : family;
}
