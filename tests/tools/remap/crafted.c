// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Not OpenSSL, but it looks like a libssl to discovery: it defines SSL_ctrl,
 * SSL_set_fd, OPENSSL_init_ssl and SSL_free and calls libcrypto's d2i_X509 and
 * X509_STORE_CTX functions. An unprivileged user can build it: each of its
 * probes goes where this file says, in whatever file the daemon probes.
 */
#include <openssl/x509_vfy.h>

long SSL_ctrl(void *s, int cmd, long larg, void *parg) { return cmd + larg + (parg != s); }
int SSL_set_fd(void *s, int fd) { return fd + (s != 0); }
int OPENSSL_init_ssl(unsigned long long opts, const void *settings) { return opts != 0 && settings; }
void SSL_free(void *s) { (void)s; }
int crafted(const unsigned char **p, long n, X509_STORE_CTX *ctx)
{
	X509 *x = d2i_X509(0, p, n);

	X509_STORE_CTX_set_ex_data(ctx, 0, x);
	return X509_STORE_CTX_set_default(ctx, "ssl_server") + 1;
}
