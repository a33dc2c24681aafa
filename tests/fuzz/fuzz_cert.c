// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: what the daemon does with a certificate's DER once the
 * kernel has sent it (userspace/certcache.c), on any bytes.
 *
 *  - cert_describe() writes members that make one valid JSON line (jansson,
 *    jsoncheck.h): subject and issuer strings, sans an array of strings,
 *    not_before/not_after a string or null; or, exactly when OpenSSL's d2i_X509
 *    refuses the bytes, a single "error" string;
 *  - certcache_add(), given the hashes the kernel computes for these bytes
 *    (include/: SipHash name, SHA-256 of the DER, the walker's SPKI hash), keeps
 *    the DER and its JSON, and flags a hash disagreement only when the input is
 *    not DER (dercheck.h): on a DER certificate the kernel and the daemon always
 *    agree;
 *  - cert_hashes() gives the SHA-256 of the DER that include/sha256.h gives.
 */
#include <openssl/x509.h>

#include "certcache.h"
#include "der.h"
#include "dercheck.h"
#include "json.h"
#include "jsoncheck.h"
#include "log.h"
#include "sha256.h"
#include "siphash.h"

static struct certcache *cc;
static unsigned long warnings;

/* certcache.c warns about every disagreement; here they are expected (BER input) */
void log_warnx(const char *fmt, ...)
{
	warnings++;
}

static const uint64_t key[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* a small cache: eviction runs too; no kernel map behind it */
	cc = certcache_new(8, -1, key);
	if (!cc)
		abort();
	return 0;
}

static void check_description(const uint8_t *der, size_t len, int parsed)
{
	struct json j;
	int rc;

	json_init(&j);
	json_obj_begin(&j, NULL);
	rc = cert_describe(&j, der, len);
	json_obj_end(&j);
	CHECK(!j.oom, "out of memory");
	CHECK(rc == (parsed ? 0 : -1), "cert_describe returned %d, d2i_X509 %s", rc,
	      parsed ? "parsed it" : "refused it");
	check_line_bytes(j.buf, j.len);
	jc_check_description(j.buf, j.len, parsed);
	json_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *der = malloc(size ? size : 1);	/* exact length: ASan sees overreads */
	uint8_t cert[PW_HASH_LEN], spki[PW_HASH_LEN];
	struct sha256_state st;
	struct pw_cert_rec rec = { .type = PW_REC_CERT };
	const struct cert_info *ci;
	struct der_cert dc;
	const unsigned char *q;
	X509 *x;
	int parsed, is_der = 0;

	if (!der)
		return 0;
	memcpy(der, data, size);
	q = der;
	x = d2i_X509(NULL, &q, (long)size);
	parsed = x != NULL;
	if (x && q == der + size)
		is_der = cert_is_der(x, der, size);
	X509_free(x);

	check_description(der, size, parsed);

	if (cert_hashes(der, size, cert, spki) >= 0) {
		uint8_t mine[PW_HASH_LEN];

		sha256_buf(&st, der, (__u32)size, mine);
		CHECK(!memcmp(mine, cert, PW_HASH_LEN), "cert_hashes: another SHA-256");
	}

	/* the record the kernel would send for these bytes */
	rec.der_len = rec.copied = (__u32)size;
	rec.id = siphash_buf(key[0], key[1], der, (__u32)size);
	sha256_buf(&st, der, (__u32)size, rec.cert_sha256);
	rec.flags = PW_CERT_ID | PW_CERT_HASHED;
	if (der_cert_parse(der, (__u32)size, &dc) == DER_OK) {
		sha256_buf(&st, der + dc.spki_off, dc.spki_len, rec.spki_sha256);
		rec.flags |= PW_CERT_SPKI_HASHED;
	} else {
		rec.flags |= PW_CERT_NO_SPKI;
	}
	certcache_add(cc, &rec, der, size);
	ci = certcache_get(cc, rec.id, (uint32_t)size);
	CHECK(ci, "the certificate just added is not in the cache");
	CHECK(ci->der_len == size && (!size || !memcmp(ci->der, der, size)), "kept DER differs");
	CHECK(ci->parsed == parsed, "parsed %d, d2i_X509 %d", ci->parsed, parsed);
	CHECK(ci->json && ci->json[0] != '{', "no JSON members kept");
	if (is_der)
		CHECK(!ci->disagree, "the kernel's hashes of a DER certificate disagree with OpenSSL's");
	free(der);
	return 0;
}
