// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * gtls: a GnuTLS server and a handshake benchmark client for the GnuTLS tests,
 * compiled at test time (cc gtls.c -lgnutls). Everything binds and connects to
 * 127.0.0.1 only.
 *
 *   gtls server --cert PEM --key PEM --port-file FILE [--client-ca PEM]
 *               [--record FILE] [--tls 1.2|1.3]
 *       serves one connection after another until SIGTERM (exit 0): handshake
 *       (requiring a client certificate issued by --client-ca if given), then,
 *       with --record, appends what the client sends first (an HTTP request:
 *       up to its empty line) to FILE and answers "ok\n"; without it, closes
 *       right after the handshake.
 *   gtls bench --port N --count N [--tls 1.2|1.3] [--sni NAME]
 *       N full handshakes one after another (no verification, new session
 *       each time), then prints "handshakes N median_us X mean_us Y".
 *   gtls handoff --port N --sni NAME --secret S [--tls 1.2|1.3] [--ca FILE]
 *       one handshake on the main thread (no verification), then another
 *       thread sends an HTTP request carrying S on that session and prints the
 *       reply: the hand-off of a connection between threads that event loops
 *       and thread pools do. With --ca, that other thread first verifies the
 *       peer's chain (gnutls_certificate_verify_peers3, name NAME) against
 *       FILE, and sends nothing unless it verified.
 *   gtls hold --port N --count N [--sni NAME] --ready FILE
 *       N handshakes (no verification), each session kept, never used and never
 *       deinitialized; writes "held N" to FILE, then waits until killed: a
 *       client whose chains wait for a verification that never comes.
 */
#define _GNU_SOURCE	/* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
	int i;

	for (i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

static const char *priority(const char *tls)
{
	if (!tls)
		return "NORMAL";
	if (!strcmp(tls, "1.2"))
		return "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	if (!strcmp(tls, "1.3"))
		return "NORMAL:-VERS-ALL:+VERS-TLS1.3";
	fprintf(stderr, "gtls: --tls must be 1.2 or 1.3\n");
	exit(2);
}

static void check(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "gtls: %s: %s\n", what, gnutls_strerror(ret));
		exit(1);
	}
}

static void on_term(int sig)
{
	_exit(0);
}

static int serve(int argc, char **argv)
{
	const char *cert = opt(argc, argv, "--cert", NULL), *key = opt(argc, argv, "--key", NULL);
	const char *port_file = opt(argc, argv, "--port-file", NULL);
	const char *client_ca = opt(argc, argv, "--client-ca", NULL);
	const char *record = opt(argc, argv, "--record", NULL);
	const char *prio = priority(opt(argc, argv, "--tls", NULL));
	gnutls_certificate_credentials_t cred;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int lfd, one = 1;
	FILE *f;

	if (!cert || !key || !port_file) {
		fprintf(stderr, "gtls server: --cert, --key and --port-file are required\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGPIPE, SIG_IGN);
	check(gnutls_certificate_allocate_credentials(&cred), "credentials");
	check(gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM), cert);
	if (client_ca)
		check(gnutls_certificate_set_x509_trust_file(cred, client_ca, GNUTLS_X509_FMT_PEM),
		      client_ca);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("gtls server: 127.0.0.1");
		return 1;
	}
	f = fopen(port_file, "w");
	if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f)) {
		perror(port_file);
		return 1;
	}
	fprintf(stderr, "gtls server: listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
	for (;;) {
		gnutls_session_t s;
		char buf[4096];
		int fd = accept(lfd, NULL, NULL), ret;
		ssize_t n, got = 0;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		check(gnutls_init(&s, GNUTLS_SERVER), "init");
		check(gnutls_priority_set_direct(s, prio, NULL), "priority");
		check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
		if (client_ca)
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		gnutls_transport_set_int(s, fd);
		gnutls_handshake_set_timeout(s, 10000);
		do {
			ret = gnutls_handshake(s);
		} while (ret < 0 && !gnutls_error_is_fatal(ret));
		if (ret < 0) {
			fprintf(stderr, "gtls server: handshake failed: %s\n", gnutls_strerror(ret));
		} else {
			char *desc = gnutls_session_get_desc(s);

			fprintf(stderr, "gtls server: %s\n", desc ? desc : "?");
			gnutls_free(desc);
			if (record) {
				/* the first record (the client's request), or an HTTP
				 * request up to its empty line */
				while (got < (ssize_t)sizeof(buf) &&
				       (n = gnutls_record_recv(s, buf + got, sizeof(buf) - got)) > 0) {
					got += n;
					if (got < 4 || memcmp(buf, "GET ", 4) || memmem(buf, got, "\r\n\r\n", 4))
						break;
				}
				f = fopen(record, "a");
				if (f) {
					fwrite(buf, 1, got, f);
					fclose(f);
				}
				gnutls_record_send(s, "ok\n", 3);
			}
			gnutls_bye(s, GNUTLS_SHUT_WR);
		}
		gnutls_deinit(s);
		close(fd);
	}
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * A client session on a new connection to 127.0.0.1:port, its handshake done
 * (no verification: the caller may verify after). Exits on failure.
 */
static gnutls_session_t client_session(int port, const char *prio,
				       gnutls_certificate_credentials_t cred, const char *sni,
				       const char *who)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ret;
	gnutls_session_t s;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "gtls %s: connect: %s\n", who, strerror(errno));
		exit(1);
	}
	check(gnutls_init(&s, GNUTLS_CLIENT), "init");
	check(gnutls_priority_set_direct(s, prio, NULL), "priority");
	check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
	check(gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni)), "sni");
	gnutls_transport_set_int(s, fd);
	do {
		ret = gnutls_handshake(s);
	} while (ret < 0 && !gnutls_error_is_fatal(ret));
	check(ret, "handshake");
	return s;
}

/* End a session of client_session() and close its connection. */
static void client_close(gnutls_session_t s)
{
	int fd = gnutls_transport_get_int(s);

	gnutls_deinit(s);
	close(fd);
}

static int bench(int argc, char **argv)
{
	int port = atoi(opt(argc, argv, "--port", "0")), count = atoi(opt(argc, argv, "--count", "100"));
	const char *prio = priority(opt(argc, argv, "--tls", NULL));
	const char *sni = opt(argc, argv, "--sni", "pin.test");
	gnutls_certificate_credentials_t cred;
	double *t, sum = 0;
	int i;

	if (port <= 0 || count <= 0) {
		fprintf(stderr, "gtls bench: --port and --count are required\n");
		return 2;
	}
	t = calloc(count, sizeof(*t));
	check(gnutls_certificate_allocate_credentials(&cred), "credentials");
	for (i = 0; i < count; i++) {
		double t0 = now_us();

		client_close(client_session(port, prio, cred, sni, "bench"));
		t[i] = now_us() - t0;
		sum += t[i];
	}
	qsort(t, count, sizeof(*t), cmp);
	printf("handshakes %d median_us %.1f mean_us %.1f\n", count, t[count / 2], sum / count);
	return 0;
}

struct handoff_job {
	gnutls_session_t s;
	const char *secret, *ca, *sni;
	int rc;
};

static void *handoff_thread(void *arg)
{
	struct handoff_job *job = arg;
	char req[512], buf[4096];
	ssize_t n;

	snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nX-Secret: %s\r\n\r\n", job->secret);
	if (job->ca) {
		unsigned status = 1;

		if (gnutls_certificate_verify_peers3(job->s, job->sni, &status) < 0 || status) {
			fprintf(stderr, "gtls handoff: the peer's chain did not verify (status 0x%x)\n",
				status);
			job->rc = 3;
			return NULL;
		}
	}
	if (gnutls_record_send(job->s, req, strlen(req)) < 0) {
		job->rc = 1;
		return NULL;
	}
	while ((n = gnutls_record_recv(job->s, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	job->rc = 0;
	return NULL;
}

static int handoff(int argc, char **argv)
{
	int port = atoi(opt(argc, argv, "--port", "0"));
	const char *prio = priority(opt(argc, argv, "--tls", NULL));
	const char *sni = opt(argc, argv, "--sni", "pin.test");
	struct handoff_job job = { .secret = opt(argc, argv, "--secret", "s"),
				   .ca = opt(argc, argv, "--ca", NULL), .rc = 1 };
	gnutls_certificate_credentials_t cred;
	pthread_t th;

	if (port <= 0) {
		fprintf(stderr, "gtls handoff: --port is required\n");
		return 2;
	}
	check(gnutls_certificate_allocate_credentials(&cred), "credentials");
	job.sni = sni;
	if (job.ca)
		check(gnutls_certificate_set_x509_trust_file(cred, job.ca, GNUTLS_X509_FMT_PEM),
		      "trust file");
	job.s = client_session(port, prio, cred, sni, "handoff");
	if (pthread_create(&th, NULL, handoff_thread, &job) || pthread_join(th, NULL))
		return 1;
	client_close(job.s);
	return job.rc;
}

static int hold(int argc, char **argv)
{
	int port = atoi(opt(argc, argv, "--port", "0")), count = atoi(opt(argc, argv, "--count", "0"));
	const char *sni = opt(argc, argv, "--sni", "hold.test");
	const char *ready = opt(argc, argv, "--ready", NULL);
	gnutls_certificate_credentials_t cred;
	struct rlimit rl;
	FILE *f;
	int i;

	if (port <= 0 || count <= 0 || !ready) {
		fprintf(stderr, "gtls hold: --port, --count and --ready are required\n");
		return 2;
	}
	/* a descriptor per session: the soft limit up to the hard one */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	check(gnutls_certificate_allocate_credentials(&cred), "credentials");
	for (i = 0; i < count; i++)
		client_session(port, "NORMAL", cred, sni, "hold");	/* kept, never used */
	f = fopen(ready, "w");
	if (!f || fprintf(f, "held %d\n", count) < 0 || fclose(f)) {
		perror("gtls hold: --ready");
		return 1;
	}
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	check(gnutls_global_init(), "global init");
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return serve(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return bench(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "handoff"))
		return handoff(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "hold"))
		return hold(argc, argv);
	fprintf(stderr, "usage: gtls server|bench|handoff|hold ... (see the top of gtls.c)\n");
	return 2;
}
