// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ctxstart: what every TLS client pays at process start, and nothing else.
 * Create a default client SSL_CTX and load the system CA bundle, then exit.
 * On Debian SSL_CTX_set_default_verify_paths already reads the bundle
 * (/usr/lib/ssl/cert.pem links to it); the explicit load is done only when
 * it did not, so the bundle is parsed exactly once either way.
 *
 *   ctxstart [-v] [BUNDLE]     -v prints how many certificates were loaded
 */
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define BUNDLE "/etc/ssl/certs/ca-certificates.crt"

int main(int argc, char **argv)
{
	const char *bundle = BUNDLE;
	int verbose = 0, i, n;
	X509_STORE *store;
	SSL_CTX *ctx;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else
			bundle = argv[i];
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_default_verify_paths(ctx)) {
		fprintf(stderr, "ctxstart: cannot create a default SSL context\n");
		return 1;
	}
	store = SSL_CTX_get_cert_store(ctx);
	n = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
	if (n < 1) {
		if (!X509_STORE_load_file(store, bundle)) {
			fprintf(stderr, "ctxstart: cannot load %s\n", bundle);
			return 1;
		}
		n = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
	}
	if (n < 1) {
		fprintf(stderr, "ctxstart: no CA certificate loaded\n");
		return 1;
	}
	if (verbose)
		printf("certificates=%d\n", n);
	SSL_CTX_free(ctx);
	return 0;
}
