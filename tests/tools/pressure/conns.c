// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * conns: many concurrent TLS connections over loopback, kept open, through the
 * real libssl on both sides, for tests/pressure.bats (a busy server must not
 * push pinwarden's per-connection table into failing anyone).
 *
 *   conns server PORT_FILE NPORTS CHAIN_PEM KEY_PEM STATUS_FILE
 *   conns client PORTS COUNT HOST INFLIGHT full|resume STATUS_FILE
 *
 * The server listens on NPORTS ephemeral ports of 127.0.0.1 (written to
 * PORT_FILE, comma-separated: one port has room for only ~28,000 connections
 * from one address) and completes every TLS handshake, one event loop, every
 * connection kept until its client closes it. The client opens COUNT
 * connections to the ports in turn, at most INFLIGHT handshakes at a time,
 * each with the SNI HOST and verification off, and keeps them: with "full",
 * each one a full TLS 1.3 handshake (X25519, ECDSA: public-key operations on
 * both sides each time); with "resume", TLS 1.2, the first one a full
 * handshake and every later one resuming its session (no public-key
 * operation: many more connections per second). Both raise RLIMIT_NOFILE to
 * its hard limit and rewrite STATUS_FILE when their counts change:
 * "established N failed F closed C resumed R ms T" (the client: T the
 * milliseconds since its start, frozen when the last handshake ended).
 * Both run until they are killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_PORTS 64

struct conn {
	int fd;
	int listener;		/* a listening socket: no SSL */
	int done;		/* handshake complete */
	SSL *ssl;
};

static unsigned long established, failed, closed, resumed;
static int epfd;

static void die(const char *what)
{
	fprintf(stderr, "conns: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void write_status(const char *path, double ms)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f ||
	    fprintf(f, "established %lu failed %lu closed %lu resumed %lu ms %.0f\n", established,
		    failed, closed, resumed, ms) < 0 ||
	    fclose(f) || rename(tmp, path))
		die(path);
}

static void watch(struct conn *c, int op, unsigned events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(epfd, op, c->fd, &ev))
		die("epoll_ctl");
}

static void conn_close(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

/* Drive c's handshake; once it is done, only its end is awaited. 1: just finished. */
static int drive(struct conn *c)
{
	int r, err;

	if (c->done) {
		char b[256];

		/* nothing is sent on these connections: readable means closed (or an error) */
		r = SSL_read(c->ssl, b, sizeof(b));
		err = SSL_get_error(c->ssl, r);
		if (r <= 0 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			established--;
			closed++;
			conn_close(c);
		}
		ERR_clear_error();
		return 0;
	}
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->done = 1;
		established++;
		resumed += SSL_session_reused(c->ssl);
		watch(c, EPOLL_CTL_MOD, EPOLLIN);
		return 1;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		watch(c, EPOLL_CTL_MOD, EPOLLIN);
	} else if (err == SSL_ERROR_WANT_WRITE) {
		watch(c, EPOLL_CTL_MOD, EPOLLOUT);
	} else {
		failed++;
		ERR_clear_error();
		conn_close(c);
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn)) server(int argc, char **argv)
{
	static struct epoll_event evs[256];
	unsigned long last = ~0ul;
	char tmp[4096];
	int nports, i, one = 1;
	SSL_CTX *ctx;
	FILE *f;

	if (argc != 7)
		die("usage: conns server PORT_FILE NPORTS CHAIN_PEM KEY_PEM STATUS_FILE");
	nports = atoi(argv[3]);
	if (nports < 1 || nports > MAX_PORTS)
		die("bad NPORTS");
	raise_nofile();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1)
		die("cannot load the certificate and key");
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	epfd = epoll_create1(0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
	f = fopen(tmp, "w");
	if (epfd < 0 || !f)
		die("setup");
	for (i = 0; i < nports; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t slen = sizeof(sin);
		struct conn *l = calloc(1, sizeof(*l));

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		l->listener = 1;
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)) ||
		    listen(l->fd, 4096) || getsockname(l->fd, (struct sockaddr *)&sin, &slen))
			die("listen on 127.0.0.1");
		watch(l, EPOLL_CTL_ADD, EPOLLIN);
		fprintf(f, "%s%u", i ? "," : "", ntohs(sin.sin_port));
	}
	if (fprintf(f, "\n") < 0 || fclose(f) || rename(tmp, argv[2]))
		die(argv[2]);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, 200);

		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c->listener) {
				drive(c);
				continue;
			}
			for (;;) {
				int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK);
				struct conn *k;

				if (fd < 0) {
					if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
						failed++;	/* EMFILE and the like: visible in the status */
					break;
				}
				k = calloc(1, sizeof(*k));
				k->fd = fd;
				k->ssl = SSL_new(ctx);
				if (!k->ssl || !SSL_set_fd(k->ssl, fd))
					die("SSL_new");
				SSL_set_accept_state(k->ssl);
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				watch(k, EPOLL_CTL_ADD, EPOLLIN);
			}
		}
		if (established + failed + closed != last) {
			last = established + failed + closed;
			write_status(argv[6], 0);
		}
	}
}

/* Open one more connection to port; its handshake starts when the socket connects. */
static void client_open(SSL_CTX *ctx, unsigned short port, const char *host, SSL_SESSION *sess)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!c || (c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) && errno != EINPROGRESS) {
		failed++;
		close(c->fd);
		free(c);
		return;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_tlsext_host_name(c->ssl, host) || !SSL_set_fd(c->ssl, c->fd) ||
	    (sess && !SSL_set_session(c->ssl, sess)))
		die("SSL_new");
	SSL_set_connect_state(c->ssl);
	watch(c, EPOLL_CTL_ADD, EPOLLOUT);
}

static void __attribute__((noreturn)) client(int argc, char **argv)
{
	static struct epoll_event evs[256];
	unsigned short ports[MAX_PORTS];
	unsigned long count, inflight, opened = 0, last = ~0ul;
	double t0 = now_ms(), end = 0;
	SSL_SESSION *sess = NULL;
	int nports = 0, resume;
	char *p, *save;
	SSL_CTX *ctx;

	if (argc != 8)
		die("usage: conns client PORTS COUNT HOST INFLIGHT full|resume STATUS_FILE");
	resume = !strcmp(argv[6], "resume");
	for (p = strtok_r(argv[2], ",", &save); p && nports < MAX_PORTS;
	     p = strtok_r(NULL, ",", &save))
		ports[nports++] = atoi(p);
	count = strtoul(argv[3], NULL, 10);
	inflight = strtoul(argv[5], NULL, 10);
	if (!nports || !count || !inflight)
		die("bad PORTS, COUNT or INFLIGHT");
	raise_nofile();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || (epfd = epoll_create1(0)) < 0)
		die("setup");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (resume)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	else
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int n, i;

		/* resume: the first connection alone, until its session can be resumed */
		while (opened < count && opened - established - failed - closed < inflight &&
		       (!resume || sess || !opened)) {
			client_open(ctx, ports[opened % nports], argv[4], sess);
			opened++;
		}
		n = epoll_wait(epfd, evs, 256, 200);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (drive(c) == 1 && resume && !sess && !(sess = SSL_get1_session(c->ssl)))
				die("no session to resume");
		}
		if (!end && established + failed + closed >= count)
			end = now_ms();
		if (established + failed + closed != last) {
			last = established + failed + closed;
			write_status(argv[7], (end ? end : now_ms()) - t0);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "server"))
		server(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "client"))
		client(argc, argv);
	fprintf(stderr, "usage: conns server ... | conns client ...\n");
	return 1;
}
