// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * pwbench: the timed parts of `make bench`, in C with OpenSSL, so that what is
 * measured is TLS and not an interpreter.
 *
 *   pwbench server --cert CHAIN --key KEY [--port N] [--workers N] [--bulk BYTES]
 *	TLS 1.3 server on 127.0.0.1, no session tickets, no session cache: every
 *	handshake is a full one. Prints "port=N" once it listens; SIGTERM stops it
 *	and its workers. With --bulk it sends BYTES after each handshake. Then
 *	"pids=P,W1,W2,..." (itself and its workers, whose CPU time run.sh reads).
 *   pwbench hs --port N --ca ROOT [--sni NAME] [--procs N] [--seconds S] [--rate R]
 *	full TLS 1.3 handshakes in a loop from N processes for S seconds (at most
 *	R per second in all when --rate is given); verifies the chain and the name,
 *	refuses any resumed session. Prints one line of key=value results,
 *	cpu_ns the CPU time (user + system) of the client processes over the
 *	measured window (CLOCK_PROCESS_CPUTIME_ID: their set-up and exit excluded).
 *   pwbench bulk --port N --ca ROOT [--sni NAME]
 *	one connection; reads until the server closes; prints bytes and MB/s.
 *   pwbench spawn --count N -- PROGRAM [ARGS...]
 *	runs PROGRAM N times, one after the other; prints the wall and CPU time
 *	per start. Any failed start fails the run.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_PROCS 256
#define BULK_CHUNK (64 * 1024)

extern char **environ;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time of this process, all its threads, in ns (the scheduler's, not ticks) */
static uint64_t cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "pwbench: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---------------------------------------------------------------- server */

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

static void serve_one(SSL_CTX *ctx, int fd, long long bulk)
{
	static char buf[BULK_CHUNK];
	SSL *ssl = SSL_new(ctx);

	nodelay(fd);
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1)
		goto out;
	if (bulk > 0) {
		long long left = bulk;

		memset(buf, 'x', sizeof(buf));
		while (left > 0) {
			int n = left < (long long)sizeof(buf) ? (int)left : (int)sizeof(buf);

			if (SSL_write(ssl, buf, n) != n)
				goto out;
			left -= n;
		}
		SSL_shutdown(ssl);
	} else {
		/* wait for the client's close_notify, then answer it */
		while (SSL_read(ssl, buf, sizeof(buf)) > 0)
			;
		SSL_shutdown(ssl);
	}
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

static int cmd_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
		{ "port", required_argument, NULL, 'p' }, { "workers", required_argument, NULL, 'w' },
		{ "bulk", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 },
	};
	const char *cert = NULL, *key = NULL;
	int port = 0, workers = 4, c, lfd, one = 1, i;
	long long bulk = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	pid_t kids[MAX_PROCS];
	struct sigaction act = { .sa_handler = on_term };
	SSL_CTX *ctx;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'w': workers = atoi(optarg); break;
		case 'b': bulk = atoll(optarg); break;
		default: return 2;
		}
	}
	if (!cert || !key || workers < 1 || workers > MAX_PROCS) {
		fprintf(stderr, "pwbench server: --cert and --key are required; 1..%d workers\n",
			MAX_PROCS);
		return 2;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		die("cannot set up the server's TLS context");
	/* no tickets, no cache: a client could never resume */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen)) {
		perror("pwbench server: bind/listen");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	for (i = 0; i < workers; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			pid_t parent = getppid();

			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(0);
			while (!stop) {
				int fd = accept(lfd, NULL, NULL);

				if (fd < 0) {
					if (errno == EINTR || errno == ECONNABORTED)
						continue;
					_exit(1);
				}
				serve_one(ctx, fd, bulk);
			}
			_exit(0);
		}
	}
	printf("port=%d\npids=%d", ntohs(sa.sin_port), (int)getpid());
	for (i = 0; i < workers; i++)
		printf(",%d", (int)kids[i]);
	printf("\n");
	fflush(stdout);
	while (!stop)
		pause();
	for (i = 0; i < workers; i++)
		kill(kids[i], SIGTERM);
	for (i = 0; i < workers; i++)
		waitpid(kids[i], NULL, 0);
	close(lfd);
	SSL_CTX_free(ctx);
	return 0;
}

/* ---------------------------------------------------------------- clients */

struct client_opts {
	int port;
	const char *ca, *sni;
};

static SSL_CTX *client_ctx(const struct client_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
		die("cannot set up the client's TLS context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	nodelay(fd);
	return fd;
}

/* One connection and its handshake; the SSL is returned to the caller on success. */
static SSL *tls_open(SSL_CTX *ctx, const struct client_opts *o, int *fdp, const char **why)
{
	int fd = tcp_connect(o->port);
	SSL *ssl;

	*fdp = fd;
	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, o->sni) ||
	    !SSL_set1_host(ssl, o->sni)) {
		*why = "SSL_new";
		goto fail;
	}
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);

		*why = v != X509_V_OK ? X509_verify_cert_error_string(v) : "handshake failed";
		goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	close(fd);
	*fdp = -1;
	return NULL;
}

struct hs_result {
	uint64_t ok, errors, resumed, cpu_ns;
	double t_end;
	char why[96];
};

static void hs_worker(SSL_CTX *ctx, const struct client_opts *o, double t0, double seconds,
		      double rate, struct hs_result *r)
{
	double deadline = t0 + seconds, next = t0;
	uint64_t cpu0 = cpu_now_ns();
	char buf[256];

	while (now() < deadline) {
		const char *why = NULL;
		int fd;
		SSL *ssl;

		if (rate > 0) {
			double t = now();

			if (next > t) {
				struct timespec ts = { (time_t)(next - t),
						       (long)((next - t - (time_t)(next - t)) * 1e9) };

				nanosleep(&ts, NULL);
				if (now() >= deadline)
					break;
			}
			next += 1.0 / rate;
		}
		ssl = tls_open(ctx, o, &fd, &why);
		if (!ssl) {
			if (!r->errors++)
				snprintf(r->why, sizeof(r->why), "%s", why);
			ERR_clear_error();
			continue;
		}
		if (SSL_session_reused(ssl))
			r->resumed++;
		else
			r->ok++;
		SSL_shutdown(ssl);
		while (SSL_read(ssl, buf, sizeof(buf)) > 0)
			;
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
	}
	r->t_end = now();
	r->cpu_ns = cpu_now_ns() - cpu0;
}

static int cmd_hs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "ca", required_argument, NULL, 'c' },
		{ "sni", required_argument, NULL, 's' }, { "procs", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' }, { "rate", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_opts o = { .sni = "pin.test" };
	struct hs_result sum = {}, r;
	int procs = 1, c, i, fds[2], failed = 0;
	double seconds = 5, rate = 0, t0, t_end = 0;
	pid_t kids[MAX_PROCS];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'c': o.ca = optarg; break;
		case 's': o.sni = optarg; break;
		case 'n': procs = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'r': rate = atof(optarg); break;
		default: return 2;
		}
	}
	if (!o.port || !o.ca || procs < 1 || procs > MAX_PROCS || seconds <= 0) {
		fprintf(stderr, "pwbench hs: --port and --ca are required; 1..%d procs\n",
			MAX_PROCS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe(fds))
		die("pipe");
	/* start together, a little later than now, so every process is forked by then */
	t0 = now() + 0.05 + 0.002 * procs;
	for (i = 0; i < procs; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			struct hs_result mine = {};
			SSL_CTX *ctx;
			double wait;

			close(fds[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			ctx = client_ctx(&o);
			wait = t0 - now();
			if (wait > 0)
				usleep((useconds_t)(wait * 1e6));
			hs_worker(ctx, &o, t0, seconds, rate > 0 ? rate / procs : 0, &mine);
			SSL_CTX_free(ctx);
			if (write(fds[1], &mine, sizeof(mine)) != sizeof(mine))
				_exit(1);
			_exit(0);
		}
	}
	close(fds[1]);
	for (i = 0; i < procs; i++) {
		if (read(fds[0], &r, sizeof(r)) != sizeof(r)) {
			failed++;
			continue;
		}
		sum.ok += r.ok;
		sum.errors += r.errors;
		sum.resumed += r.resumed;
		sum.cpu_ns += r.cpu_ns;
		if (r.t_end > t_end)
			t_end = r.t_end;
		if (r.errors && !sum.why[0])
			memcpy(sum.why, r.why, sizeof(sum.why));
	}
	for (i = 0; i < procs; i++)
		waitpid(kids[i], NULL, 0);
	if (failed) {
		fprintf(stderr, "pwbench hs: %d of %d client processes died\n", failed, procs);
		return 1;
	}
	printf("handshakes=%llu errors=%llu resumed=%llu procs=%d seconds=%.3f rate=%.1f "
	       "cpu_ns=%llu\n",
	       (unsigned long long)sum.ok, (unsigned long long)sum.errors,
	       (unsigned long long)sum.resumed, procs, t_end - t0, sum.ok / (t_end - t0),
	       (unsigned long long)sum.cpu_ns);
	if (sum.errors)
		fprintf(stderr, "pwbench hs: %llu handshakes failed, the first: %s\n",
			(unsigned long long)sum.errors, sum.why);
	return sum.ok ? 0 : 1;
}

static int cmd_bulk(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "ca", required_argument, NULL, 'c' },
		{ "sni", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 },
	};
	struct client_opts o = { .sni = "pin.test" };
	static char buf[BULK_CHUNK];
	const char *why = NULL;
	long long total = 0;
	double t0, t1;
	int c, fd, n;
	SSL_CTX *ctx;
	SSL *ssl;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'c': o.ca = optarg; break;
		case 's': o.sni = optarg; break;
		default: return 2;
		}
	}
	if (!o.port || !o.ca) {
		fprintf(stderr, "pwbench bulk: --port and --ca are required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ctx = client_ctx(&o);
	ssl = tls_open(ctx, &o, &fd, &why);
	if (!ssl) {
		fprintf(stderr, "pwbench bulk: %s\n", why);
		return 1;
	}
	t0 = now();
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		total += n;
	t1 = now();
	if (SSL_get_error(ssl, n) != SSL_ERROR_ZERO_RETURN) {
		fprintf(stderr, "pwbench bulk: the transfer ended without close_notify after %lld "
			"bytes\n", total);
		return 1;
	}
	printf("bytes=%lld seconds=%.3f mbps=%.1f\n", total, t1 - t0, total / (t1 - t0) / 1e6);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return 0;
}

/* ---------------------------------------------------------------- spawn */

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static int cmd_spawn(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	struct rusage ru0, ru1;
	int count = 100, c, i;
	double t0, t1, cpu;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': count = atoi(optarg); break;
		default: return 2;
		}
	}
	if (optind >= argc || count < 1) {
		fprintf(stderr, "pwbench spawn: usage: --count N -- PROGRAM [ARGS...]\n");
		return 2;
	}
	getrusage(RUSAGE_CHILDREN, &ru0);
	t0 = now();
	for (i = 0; i < count; i++) {
		pid_t pid;
		int st;

		if (posix_spawn(&pid, argv[optind], NULL, NULL, argv + optind, environ)) {
			perror("pwbench spawn");
			return 1;
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "pwbench spawn: %s failed (start %d)\n", argv[optind], i);
			return 1;
		}
	}
	t1 = now();
	getrusage(RUSAGE_CHILDREN, &ru1);
	cpu = tv_s(ru1.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_utime) - tv_s(ru0.ru_stime);
	printf("starts=%d seconds=%.3f wall_us=%.1f cpu_us=%.1f\n", count, t1 - t0,
	       (t1 - t0) / count * 1e6, cpu / count * 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pwbench server|hs|bulk|spawn [options]\n");
		return 2;
	}
	if (!strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1);
	if (!strcmp(argv[1], "hs"))
		return cmd_hs(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bulk"))
		return cmd_bulk(argc - 1, argv + 1);
	if (!strcmp(argv[1], "spawn"))
		return cmd_spawn(argc - 1, argv + 1);
	fprintf(stderr, "pwbench: unknown command '%s'\n", argv[1]);
	return 2;
}
