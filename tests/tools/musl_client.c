// SPDX-License-Identifier: BSD-2-Clause
/*
 * A TLS client linked with musl and a libssl built for it
 * (tests/tools/musl-openssl.sh): connect to 127.0.0.1:PORT, handshake with
 * SNI NAME (verifying against CAFILE when given, else not at all), send one
 * request, print the first line of the reply. Exit 0 when a reply came, 1 on
 * a TLS or socket error.
 *
 *   client NAME PORT [CAFILE]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char req[256], buf[256];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n;

	if (argc < 3) {
		fprintf(stderr, "usage: client NAME PORT [CAFILE]\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto tls_error;
	if (argc > 3) {
		if (!SSL_CTX_load_verify_locations(ctx, argv[3], NULL))
			goto tls_error;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		return 1;
	}
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_tlsext_host_name(ssl, argv[1]) || !SSL_set1_host(ssl, argv[1]) ||
	    !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
		goto tls_error;
	snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: %s\r\nX-Secret: musl\r\n\r\n", argv[1]);
	if (SSL_write(ssl, req, strlen(req)) <= 0)
		goto tls_error;
	n = SSL_read(ssl, buf, sizeof(buf) - 1);
	if (n <= 0)
		goto tls_error;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	printf("%s\n", buf);
	return 0;
tls_error:
	ERR_print_errors_fp(stderr);
	return 1;
}
