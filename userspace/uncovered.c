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

struct by_symbol {
	const char *family;
	const char *symbol;		/* a function only that stack defines */
	const char *what;
};

/* In order: the first that matches names the file. */
static const struct by_symbol by_symbol[] = {
	{ "wolfssl", "wolfSSL_connect", "exports wolfSSL_connect" },
	{ "mbedtls", "mbedtls_ssl_handshake", "exports mbedtls_ssl_handshake" },
	{ "rustls", "rustls_client_connection_new", "exports rustls_client_connection_new (rustls-ffi)" },
	{ "jsse", "JNI_CreateJavaVM", "a JVM (exports JNI_CreateJavaVM): its TLS is JSSE" },
	{ "gnutls", "gnutls_handshake", "exports gnutls_handshake: a GnuTLS build pinwarden does not know" },
	{ "nss", "SSL_ImportFD", "exports SSL_ImportFD: an NSS build pinwarden does not know" },
	{ "openssl", "SSL_connect", "exports SSL_connect: an OpenSSL-like build pinwarden does not know" },
};

struct by_string {
	const char *family;
	const char *needle;		/* in .rodata */
	const char *what;
};

static const struct by_string by_string[] = {
	{ "boringssl", "third_party/boringssl/", "BoringSSL linked in (its source paths), not exported" },
	{ "rustls", "/rustls-0.", "rustls linked in (its crate's source paths)" },
	{ "openssl", "ssl/statem/statem_clnt.c", "OpenSSL linked in (its source paths), not exported" },
	{ "mbedtls", "mbedtls/library/ssl_", "Mbed TLS linked in (its source paths)" },
};

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
	const char *family = NULL;
	const uint8_t *ro;
	uint64_t addr;
	size_t size = 0, i;

	if (vlen)
		version[0] = 0;
	if (whylen)
		why[0] = 0;
	for (i = 0; i < sizeof(by_symbol) / sizeof(by_symbol[0]) && !family; i++) {
		if (elf_func_vaddr(img, by_symbol[i].symbol)) {
			family = by_symbol[i].family;
			snprintf(why, whylen, "%s", by_symbol[i].what);
		}
	}
	ro = elf_section(img, ".rodata", 0, &addr, &size);
	for (i = 0; i < sizeof(by_string) / sizeof(by_string[0]) && !family && ro; i++) {
		if (section_find(img, ro, size, by_string[i].needle)) {
			family = by_string[i].family;
			snprintf(why, whylen, "%s", by_string[i].what);
		}
	}
	if (!family || !ro || elf_image_budget_spent(img))
		return elf_image_budget_spent(img) ? NULL : family;
	for (i = 0; i < sizeof(version_prefix) / sizeof(version_prefix[0]); i++) {
		if (strcmp(version_prefix[i].family, family) ||
		    find_version(img, ro, size, version_prefix[i].prefix, version, vlen))
			continue;
		if (version_prefix[i].rename)
			family = version_prefix[i].rename;
		break;
	}
	return elf_image_budget_spent(img) ? NULL : family;
}
