// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A TLS client linked against BoringSSL (Debian's android-libboringssl), for the
 * tests; compiled at test time (tests/boringssl.bats). The same interface as
 * tests/tools/tls_client.py: connect to 127.0.0.1:PORT with SNI HOST, complete
 * the handshake, send the secret at once, print the reply.
 *
 *   client --host NAME --port N [--cafile FILE | --insecure | --custom-verify]
 *          [--tls 1.2|1.3] [--secret S] [--connections N] [--cert FILE --key FILE]
 *          [--no-sni] [--no-fd] [--target NAME@PORT]... [--handshake-only] [-v]
 *
 * --insecure: SSL_VERIFY_NONE (the X509 layer still runs, its result ignored).
 * --custom-verify: SSL_CTX_set_custom_verify with a callback that accepts any
 *   chain: the X509 layer never runs, as in applications that verify with
 *   their own code.
 * --no-fd: the socket through a BIO pair the client pumps itself (no SSL_set_fd).
 * --target NAME@PORT (repeatable): instead of --host/--port, one connection to each
 *   target, all at once in this one thread (non-blocking sockets and poll(), as an
 *   event-loop application); each reply line is prefixed with "NAME@PORT: ". A
 *   connection that fails says so on its line ("NAME@PORT: failed: ...") and the
 *   others go on; the exit status is then 1.
 *
 * --handshake-only: close (close_notify) right after the handshake, send nothing
 *   (for the benchmark's server, which answers nothing).
 *
 * Exit status: 0 on success, 1 on a TLS or connection error (with a message on
 * stderr saying which), 2 on a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/is_boringssl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TARGETS_MAX 16

struct args {
	const char *host, *cafile, *secret, *cert, *key;
	int port, insecure, custom_verify, tls, connections, no_sni, no_fd, verbose, hs_only;
	const char *target_name[TARGETS_MAX];
	int target_port[TARGETS_MAX], ntargets;
};

static void fail(const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "bssl_client: %s: %s\n", what, buf);
	} else {
		fprintf(stderr, "bssl_client: %s%s%s\n", what, errno ? ": " : "",
			errno ? strerror(errno) : "");
	}
	exit(1);
}

static enum ssl_verify_result_t accept_any(SSL *ssl, uint8_t *out_alert)
{
	/* an application's own verification would look at the chain here */
	(void)out_alert;
	return SSL_get0_peer_certificates(ssl) ? ssl_verify_ok : ssl_verify_invalid;
}

static SSL_CTX *make_context(const struct args *a)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	uint16_t v = a->tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;

	if (!ctx)
		fail("SSL_CTX_new");
	if (a->tls && (!SSL_CTX_set_min_proto_version(ctx, v) ||
		       !SSL_CTX_set_max_proto_version(ctx, v)))
		fail("cannot set the TLS version");
	if (a->custom_verify) {
		SSL_CTX_set_custom_verify(ctx, SSL_VERIFY_PEER, accept_any);
	} else if (a->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (a->cafile ? !SSL_CTX_load_verify_locations(ctx, a->cafile, NULL) :
				!SSL_CTX_set_default_verify_paths(ctx))
			fail("cannot load the CA certificates");
	}
	if (a->cert && (!SSL_CTX_use_certificate_chain_file(ctx, a->cert) ||
			!SSL_CTX_use_PrivateKey_file(ctx, a->key, SSL_FILETYPE_PEM)))
		fail("cannot load the client certificate");
	return ctx;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		fail("cannot connect to 127.0.0.1");
	return fd;
}

/* --no-fd: move bytes between the BIO pair and the socket until `done` says so */
static int pump(int fd, BIO *net, int want_read)
{
	char buf[16384];
	size_t n;
	ssize_t r;

	while ((n = BIO_ctrl_pending(net)) > 0) {
		int got = BIO_read(net, buf, n > sizeof(buf) ? sizeof(buf) : n);

		if (got <= 0 || write(fd, buf, got) != got)
			return -1;
	}
	if (!want_read)
		return 0;
	r = read(fd, buf, BIO_ctrl_get_write_guarantee(net) < sizeof(buf) ?
			      BIO_ctrl_get_write_guarantee(net) : sizeof(buf));
	if (r <= 0)
		return -1;
	return BIO_write(net, buf, r) == r ? 0 : -1;
}

static int io(SSL *ssl, int fd, BIO *net, int r)
{
	int e = SSL_get_error(ssl, r);

	if (!net || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE))
		return -1;
	return pump(fd, net, e == SSL_ERROR_WANT_READ);
}

static SSL *new_ssl(const struct args *a, SSL_CTX *ctx, const char *name)
{
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		fail("SSL_new");
	if (!a->no_sni && !SSL_set_tlsext_host_name(ssl, name))
		fail("SSL_set_tlsext_host_name");
	if (!a->insecure && !a->custom_verify &&
	    !X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), name, strlen(name)))
		fail("cannot set the name to verify");
	return ssl;
}

static void connect_once(const struct args *a, SSL_CTX *ctx)
{
	int fd = tcp_connect(a->port), r, len = 0;
	BIO *net = NULL, *internal = NULL;
	char reply[4096];
	SSL *ssl = new_ssl(a, ctx, a->host);
	if (a->no_fd) {
		if (!BIO_new_bio_pair(&internal, 0, &net, 0))
			fail("BIO_new_bio_pair");
		SSL_set_bio(ssl, internal, internal);
	} else if (!SSL_set_fd(ssl, fd)) {
		fail("SSL_set_fd");
	}
	SSL_set_connect_state(ssl);
	while ((r = SSL_do_handshake(ssl)) != 1)
		if (io(ssl, fd, net, r))
			fail("TLS handshake failed");
	if (a->verbose)
		fprintf(stderr, "bssl_client: %s %s\n", SSL_get_version(ssl),
			SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
	if (a->hs_only)
		goto out;
	while ((r = SSL_write(ssl, a->secret, strlen(a->secret))) <= 0)
		if (io(ssl, fd, net, r))
			fail("cannot send the secret");
	if (net && pump(fd, net, 0))
		fail("cannot send the secret");
	/* both replies of tls_server.py end with "ok\n"; anything else: read to EOF */
	while (len < (int)sizeof(reply) - 1 &&
	       !(len >= 3 && !memcmp(reply + len - 3, "ok\n", 3))) {
		r = SSL_read(ssl, reply + len, sizeof(reply) - 1 - len);
		if (r > 0) {
			len += r;
			continue;
		}
		if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN || io(ssl, fd, net, r))
			break;
	}
	fwrite(reply, 1, len, stdout);
	fflush(stdout);
out:
	SSL_shutdown(ssl);
	if (net)
		pump(fd, net, 0);
	SSL_free(ssl);
	BIO_free(net);
	close(fd);
}

/* --target: every connection at once, driven by one poll() loop */
struct conn {
	SSL *ssl;
	int fd, state;			/* 0 handshake, 1 send, 2 receive, 3 done, 4 failed */
	short events;
	int len;
	char reply[4096];
};

static void conn_step(const struct args *a, struct conn *c, int i)
{
	char why[256];
	unsigned long err;
	int r = 1, e;

	c->events = 0;
	while (c->state < 3) {
		if (c->state == 0)
			r = SSL_do_handshake(c->ssl);
		else if (c->state == 1)
			r = SSL_write(c->ssl, a->secret, strlen(a->secret));
		else
			r = SSL_read(c->ssl, c->reply + c->len, sizeof(c->reply) - 1 - c->len);
		if (r > 0) {
			if (c->state == 2) {
				c->len += r;
				if (c->len < (int)sizeof(c->reply) - 1 &&
				    !(c->len >= 3 && !memcmp(c->reply + c->len - 3, "ok\n", 3)))
					continue;
			}
			c->state++;
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			c->events = POLLIN;
			return;
		}
		if (e == SSL_ERROR_WANT_WRITE) {
			c->events = POLLOUT;
			return;
		}
		if (c->state == 2 && e == SSL_ERROR_ZERO_RETURN) {
			c->state = 3;
			break;
		}
		err = ERR_get_error();
		if (err)
			ERR_error_string_n(err, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", errno ? strerror(errno) : "closed");
		printf("%s@%d: failed: %s: %s\n", a->target_name[i], a->target_port[i],
		       c->state ? "after the handshake" : "in the handshake", why);
		fflush(stdout);
		c->state = 4;
		return;
	}
	printf("%s@%d: %.*s", a->target_name[i], a->target_port[i], c->len, c->reply);
	fflush(stdout);
}

static int connect_all(const struct args *a, SSL_CTX *ctx)
{
	struct conn c[TARGETS_MAX] = {};
	struct pollfd pfd[TARGETS_MAX];
	int i, n, left, failed = 0;

	for (i = 0; i < a->ntargets; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(a->target_port[i]) };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c[i].fd < 0 ||
		    (connect(c[i].fd, (struct sockaddr *)&sin, sizeof(sin)) && errno != EINPROGRESS))
			fail("cannot connect to 127.0.0.1");
		c[i].ssl = new_ssl(a, ctx, a->target_name[i]);
		if (!SSL_set_fd(c[i].ssl, c[i].fd))
			fail("SSL_set_fd");
		SSL_set_connect_state(c[i].ssl);
		c[i].events = POLLOUT;
	}
	for (;;) {
		for (i = 0, left = 0; i < a->ntargets; i++) {
			pfd[i].fd = c[i].state < 3 ? c[i].fd : -1;
			pfd[i].events = c[i].events;
			left += c[i].state < 3;
		}
		if (!left)
			break;
		n = poll(pfd, a->ntargets, 10000);
		if (n <= 0)
			fail("no progress within 10 s");
		for (i = 0; i < a->ntargets; i++)
			if (c[i].state < 3 && pfd[i].revents) {
				errno = 0;
				conn_step(a, &c[i], i);
			}
	}
	for (i = 0; i < a->ntargets; i++) {
		failed |= c[i].state == 4;
		SSL_free(c[i].ssl);
		close(c[i].fd);
	}
	return failed;
}

static void usage(void)
{
	fprintf(stderr, "usage: bssl_client --host NAME --port N [--cafile FILE | --insecure | "
			"--custom-verify] [--tls 1.2|1.3] [--secret S] [--connections N] "
			"[--cert FILE --key FILE] [--no-sni] [--no-fd] [--target NAME@PORT]... "
			"[--handshake-only] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "cafile", required_argument, NULL, 'C' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "custom-verify", no_argument, NULL, 'V' },
		{ "tls", required_argument, NULL, 't' },
		{ "secret", required_argument, NULL, 's' },
		{ "connections", required_argument, NULL, 'n' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'K' },
		{ "no-sni", no_argument, NULL, 'S' },
		{ "no-fd", no_argument, NULL, 'F' },
		{ "handshake-only", no_argument, NULL, 'H' },
		{ "target", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct args a = { .secret = "SECRET", .connections = 1 };
	SSL_CTX *ctx;
	char *at;
	int c, i;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'h': a.host = optarg; break;
		case 'p': a.port = atoi(optarg); break;
		case 'C': a.cafile = optarg; break;
		case 'k': a.insecure = 1; break;
		case 'V': a.custom_verify = 1; break;
		case 't':
			if (strcmp(optarg, "1.2") && strcmp(optarg, "1.3"))
				usage();
			a.tls = optarg[2] == '2' ? 12 : 13;
			break;
		case 's': a.secret = optarg; break;
		case 'n': a.connections = atoi(optarg); break;
		case 'c': a.cert = optarg; break;
		case 'K': a.key = optarg; break;
		case 'S': a.no_sni = 1; break;
		case 'F': a.no_fd = 1; break;
		case 'H': a.hs_only = 1; break;
		case 'T':
			at = strrchr(optarg, '@');
			if (!at || a.ntargets == TARGETS_MAX)
				usage();
			*at = 0;
			a.target_name[a.ntargets] = optarg;
			a.target_port[a.ntargets++] = atoi(at + 1);
			break;
		case 'v': a.verbose = 1; break;
		default: usage();
		}
	}
	if (a.ntargets && !a.host) {
		a.host = a.target_name[0];	/* for the checks below */
		a.port = a.target_port[0];
	}
	if (optind != argc || !a.host || a.port <= 0 || a.port > 65535 || a.connections < 1 ||
	    (a.ntargets && a.no_fd) ||
	    (a.cafile && (a.insecure || a.custom_verify)) || (!a.cert != !a.key))
		usage();
	ctx = make_context(&a);
	if (a.ntargets && connect_all(&a, ctx))
		return 1;
	for (i = 0; !a.ntargets && i < a.connections; i++)
		connect_once(&a, ctx);
	SSL_CTX_free(ctx);
	return 0;
}
