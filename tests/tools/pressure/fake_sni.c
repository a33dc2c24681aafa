// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * fake_sni COUNT HOST READY_FILE: the cheapest way an unprivileged user can ask
 * the kernel to remember connection objects: SSL_ctrl(p, 55
 * (SSL_CTRL_SET_TLSEXT_HOSTNAME), 0, HOST) on COUNT made-up pointers p, as
 * fast as it can. pinwarden's uprobe fires at SSL_ctrl's entry, before libssl
 * touches p; libssl then faults on p (inaccessible memory: a PROT_NONE
 * reservation), and the SIGSEGV handler jumps back for the next one. Writes
 * "CALLS FAULTS MILLISECONDS" to READY_FILE, then stays alive (its entries
 * stay live) until it is killed. For tests/pressure.bats.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define STRIDE 64	/* bytes between two fake SSL objects */

static sigjmp_buf back;

static void on_segv(int sig)
{
	siglongjmp(back, 1);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_segv };
	volatile long i, faults = 0;
	char tmp[4096], *fake;
	double t0;
	long n;
	FILE *f;

	if (argc != 4 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: fake_sni COUNT HOST READY_FILE\n");
		return 1;
	}
	/* addresses no object lives at: every dereference faults */
	fake = mmap(NULL, (size_t)n * STRIDE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (fake == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	t0 = now_ms();
	for (i = 0; i < n; i++) {
		if (sigsetjmp(back, 1) == 0)
			SSL_ctrl((SSL *)(fake + i * STRIDE), SSL_CTRL_SET_TLSEXT_HOSTNAME,
				 TLSEXT_NAMETYPE_host_name, argv[2]);
		else
			faults++;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%ld %ld %.0f\n", (long)i, (long)faults, now_ms() - t0) < 0 || fclose(f) ||
	    rename(tmp, argv[3])) {
		perror(argv[3]);
		return 1;
	}
	for (;;)
		pause();
}
