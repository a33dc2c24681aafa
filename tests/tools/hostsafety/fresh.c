// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A small program the host-safety tests copy to new files (a new inode each, so
 * that discovery has never examined it) and run:
 *   fresh                 exit 0 at once
 *   fresh tcp PORT        connect to 127.0.0.1:PORT, receive (discovery's gate), exit 0
 *   fresh tls PORT [SNI]  a TLS handshake with 127.0.0.1:PORT (libssl), send "fresh",
 *                         read the reply, exit 0
 * Any failure exits 1 with a message on stderr.
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

static int dial(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("fresh: connect");
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	char buf[256];
	SSL_CTX *ctx;
	SSL *ssl;
	int s;

	if (argc < 2)
		return 0;
	if (argc >= 3 && !strcmp(argv[1], "tcp")) {
		s = dial(argv[2]);
		if (read(s, buf, sizeof(buf)) <= 0) {
			perror("fresh: read");
			return 1;
		}
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "tls")) {
		char *sni = argc >= 4 ? argv[3] : "pin.test";

		s = dial(argv[2]);
		ctx = SSL_CTX_new(TLS_client_method());
		ssl = ctx ? SSL_new(ctx) : NULL;
		if (!ssl || !SSL_set_fd(ssl, s) ||
		    !SSL_set_tlsext_host_name(ssl, sni) ||
		    SSL_connect(ssl) != 1 || SSL_write(ssl, "fresh\n", 6) != 6 ||
		    SSL_read(ssl, buf, sizeof(buf)) <= 0) {
			fprintf(stderr, "fresh: TLS failed\n");
			ERR_print_errors_fp(stderr);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: fresh [tcp PORT | tls PORT [SNI]]\n");
	return 2;
}
