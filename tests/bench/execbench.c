// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * execbench: what starting a program costs, for make bench.
 *   execbench fresh DIR N   runs DIR/x.0 ... DIR/x.N-1 once each (distinct files, each
 *                           a copy of execbench: a first exec for discovery)
 *   execbench known FILE N  runs FILE N times
 *   execbench sleep MS      sleeps (a run long enough for discovery to examine FILE)
 *   execbench               exits 0 at once: the program the other modes run
 * Each run is posix_spawn + waitpid, timed on CLOCK_MONOTONIC. Prints
 * "runs=N p50_us=.. p99_us=.. mean_us=.. max_us=..".
 */
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* nanoseconds on CLOCK_MONOTONIC */
static uint64_t mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static int by_duration(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* one spawn and wait of path, in ns */
static uint64_t run_once(const char *path)
{
	char *argv[] = { (char *)path, NULL };
	uint64_t t0 = mono();
	int status;
	pid_t pid;

	if (posix_spawn(&pid, path, NULL, NULL, argv, environ)) {
		perror(path);
		exit(1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "execbench: %s failed (status 0x%x)\n", path, status);
		exit(1);
	}
	return mono() - t0;
}

int main(int argc, char **argv)
{
	uint64_t *t, sum = 0;
	char path[4096];
	int i, n;

	if (argc == 1)
		return 0;
	if (argc == 3 && !strcmp(argv[1], "sleep")) {
		usleep(atoi(argv[2]) * 1000);
		return 0;
	}
	if (argc != 4 || (strcmp(argv[1], "fresh") && strcmp(argv[1], "known")) ||
	    (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: execbench fresh DIR N | known FILE N | sleep MS\n");
		return 2;
	}
	t = calloc(n, sizeof(*t));
	if (!t)
		return 1;
	for (i = 0; i < n; i++) {
		if (!strcmp(argv[1], "fresh"))
			snprintf(path, sizeof(path), "%s/x.%d", argv[2], i);
		else
			snprintf(path, sizeof(path), "%s", argv[2]);
		t[i] = run_once(path);
		sum += t[i];
	}
	qsort(t, n, sizeof(*t), by_duration);
	printf("runs=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f\n", n, t[n / 2] / 1e3,
	       t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3, (double)sum / n / 1e3,
	       t[n - 1] / 1e3);
	free(t);
	return 0;
}
