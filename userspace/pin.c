// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `pinwarden pin FILE...` and `pinwarden pin HOST:PORT [--sni NAME]`: print the
 * pins of certificates, ready to paste into a policy.
 */
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "certcache.h"
#include "daemon.h"
#include "json.h"

static void print_name(const char *label, const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len, i;

	X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
	len = BIO_get_mem_data(b, &p);
	printf("#   %-9s ", label);
	/* a name is attacker-controlled: print it on one line, controls escaped */
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('\n');
	BIO_free(b);
}

static int print_cert(X509 *x, const char *where, int idx)
{
	unsigned char *der = NULL;
	uint8_t cert[PW_HASH_LEN], spki[PW_HASH_LEN];
	char pin[64], hex[65];
	int len = i2d_X509(x, &der);
	const ASN1_TIME *na = X509_get0_notAfter(x);
	BIO *b;

	if (len <= 0 || cert_hashes(der, len, cert, spki)) {
		OPENSSL_free(der);
		fprintf(stderr, "pinwarden: %s: certificate %d cannot be hashed\n", where, idx);
		return -1;
	}
	OPENSSL_free(der);
	pin_format(spki, pin);
	hex_format(cert, hex);
	printf("# %s [%d]\n", where, idx);
	print_name("subject:", X509_get_subject_name(x));
	print_name("issuer:", X509_get_issuer_name(x));
	b = BIO_new_fp(stdout, BIO_NOCLOSE);
	printf("#   not_after: ");
	ASN1_TIME_print(b, na);
	BIO_free(b);
	printf("\n- %s\n- cert-sha256/%s\n", pin, hex);
	return 0;
}

static int pin_file(const char *path)
{
	BIO *b = BIO_new_file(path, "rb");
	X509 *x;
	int n = 0, rc = 0;

	if (!b) {
		fprintf(stderr, "pinwarden: %s: cannot open\n", path);
		return -1;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		rc |= print_cert(x, path, n++);
		X509_free(x);
	}
	ERR_clear_error();
	if (!n) {
		/* not PEM: a single DER certificate */
		BIO_reset(b);
		x = d2i_X509_bio(b, NULL);
		if (x) {
			rc |= print_cert(x, path, n++);
			X509_free(x);
		}
	}
	BIO_free(b);
	if (!n) {
		fprintf(stderr, "pinwarden: %s: no certificate (PEM or DER) found\n", path);
		return -1;
	}
	return rc;
}

/* Split HOST:PORT or [V6]:PORT. */
static int split_hostport(const char *arg, char *host, size_t hl, char *port, size_t pl)
{
	const char *c;

	if (arg[0] == '[') {
		const char *e = strchr(arg, ']');

		if (!e || e[1] != ':')
			return -1;
		snprintf(host, hl, "%.*s", (int)(e - arg - 1), arg + 1);
		snprintf(port, pl, "%s", e + 2);
		return 0;
	}
	c = strrchr(arg, ':');
	if (!c || c == arg || !c[1])
		return -1;
	snprintf(host, hl, "%.*s", (int)(c - arg), arg);
	snprintf(port, pl, "%s", c + 1);
	return 0;
}

static int pin_live(const char *arg, const char *sni)
{
	char host[256], port[16], where[300];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;
	struct timeval tv = { .tv_sec = 10 };
	unsigned char tmp[16];
	STACK_OF(X509) *chain;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1, rc = -1, i;

	if (split_hostport(arg, host, sizeof(host), port, sizeof(port))) {
		fprintf(stderr, "pinwarden: %s: expected HOST:PORT\n", arg);
		return -1;
	}
	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "pinwarden: %s: cannot resolve\n", host);
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		fprintf(stderr, "pinwarden: %s: cannot connect\n", arg);
		return -1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	ssl = ctx ? SSL_new(ctx) : NULL;
	if (!ssl)
		goto out;
	/* we want to see whatever chain is served, trusted or not */
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if (!sni && inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
		sni = host;
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		fprintf(stderr, "pinwarden: %s: TLS handshake failed: %s\n", arg,
			ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	chain = SSL_get_peer_cert_chain(ssl);
	snprintf(where, sizeof(where), "%s%s%s", arg, sni ? " sni=" : "", sni ? sni : "");
	rc = 0;
	for (i = 0; chain && i < sk_X509_num(chain); i++)
		rc |= print_cert(sk_X509_value(chain, i), where, i);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

int cmd_pin(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sni", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sni = NULL;
	int c, i, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': sni = optarg; break;
		case 'h':
			printf("usage: pinwarden pin FILE...\n       pinwarden pin HOST:PORT [--sni NAME]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "usage: pinwarden pin FILE...\n       pinwarden pin HOST:PORT [--sni NAME]\n");
		return 2;
	}
	for (i = optind; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0)
			rc |= pin_file(argv[i]);
		else if (strchr(argv[i], ':'))
			rc |= pin_live(argv[i], sni);
		else {
			fprintf(stderr, "pinwarden: %s: no such file, and not HOST:PORT\n", argv[i]);
			rc = -1;
		}
	}
	return rc ? 1 : 0;
}
