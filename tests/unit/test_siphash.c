// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* include/siphash.h against OpenSSL's SipHash-2-4 (EVP_MAC "SIPHASH"), every length 0..1100. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "siphash.h"

static int failures;

static __u64 openssl_siphash(const unsigned char key[16], const unsigned char *p, size_t n)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	unsigned int size = 8;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};
	unsigned char out[8];
	size_t outl = 0;
	__u64 v = 0;
	int i;

	if (!ctx || !EVP_MAC_init(ctx, key, 16, params) || !EVP_MAC_update(ctx, p, n) ||
	    !EVP_MAC_final(ctx, out, &outl, sizeof(out)) || outl != 8) {
		fprintf(stderr, "OpenSSL SipHash failed\n");
		exit(2);
	}
	for (i = 7; i >= 0; i--)
		v = v << 8 | out[i];
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return v;
}

int main(void)
{
	unsigned char key[16], buf[1100];
	__u64 k0 = 0, k1 = 0;
	size_t n;
	int i;

	RAND_bytes(key, sizeof(key));
	RAND_bytes(buf, sizeof(buf));
	for (i = 7; i >= 0; i--) {
		k0 = k0 << 8 | key[i];
		k1 = k1 << 8 | key[8 + i];
	}
	for (n = 0; n <= sizeof(buf); n++) {
		/* an exact-length copy: AddressSanitizer sees any read past the end */
		unsigned char *p = malloc(n ? n : 1);
		__u64 mine, theirs;

		memcpy(p, buf, n);
		mine = siphash_buf(k0, k1, p, n);
		theirs = openssl_siphash(key, p, n);
		if (mine != theirs) {
			fprintf(stderr, "length %zu: %016llx, OpenSSL %016llx\n", n,
				(unsigned long long)mine, (unsigned long long)theirs);
			failures++;
		}
		free(p);
	}
	printf("test_siphash: %zu lengths, %d failures\n", sizeof(buf) + 1, failures);
	return failures != 0;
}
