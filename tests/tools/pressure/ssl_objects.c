// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ssl_objects COUNT HOST READY_FILE: COUNT live SSL objects in one process,
 * each with the SNI HOST, made through the real libssl (SSL_CTX_new, then
 * SSL_new + SSL_set_tlsext_host_name each), for tests/pressure.bats: what an
 * unprivileged user can put into the kernel's per-connection table. Writes
 * "COUNT MILLISECONDS" to READY_FILE once they all exist, then keeps them
 * until it is killed. Exit 1 with a message if libssl refuses one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* "text" into path, atomically: a reader never sees half of it */
static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) || rename(tmp, path)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	char line[64];
	double t0 = now_ms();
	SSL_CTX *ctx;
	SSL **objs;
	long n, i;

	if (argc != 4 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: ssl_objects COUNT HOST READY_FILE\n");
		return 1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	objs = calloc(n, sizeof(*objs));
	if (!ctx || !objs) {
		fprintf(stderr, "ssl_objects: no SSL_CTX\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		objs[i] = SSL_new(ctx);
		if (!objs[i] || !SSL_set_tlsext_host_name(objs[i], argv[2])) {
			fprintf(stderr, "ssl_objects: SSL object %ld refused\n", i);
			return 1;
		}
	}
	snprintf(line, sizeof(line), "%ld %.0f\n", n, now_ms() - t0);
	write_file(argv[3], line);
	for (;;)
		pause();
}
