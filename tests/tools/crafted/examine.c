// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * What examining files costs the daemon, without a daemon: each FILE goes
 * through library_attach_file as discovery hands it over (the BPF object is
 * opened, not loaded: nothing is attached). One line per file: CPU and wall
 * milliseconds, the result and why; then the peak memory (VmHWM).
 * Built against build/libpw.a: see tests/selfsafety.bats.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

static double ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct pinwarden_bpf *skel = pinwarden_bpf__open();
	struct attach_set set = {};
	char err[512], line[256];
	FILE *f;
	int i;

	if (!skel)
		return 2;
	log_init("examine", 0);
	for (i = 1; i < argc; i++) {
		double c0 = ms(CLOCK_PROCESS_CPUTIME_ID), w0 = ms(CLOCK_MONOTONIC);
		int r;

		err[0] = 0;
		r = library_attach_file(skel, &set, argv[i], err, sizeof(err));
		printf("%s cpu_ms=%.0f wall_ms=%.0f rc=%d reason=%s error=%s\n", argv[i],
		       ms(CLOCK_PROCESS_CPUTIME_ID) - c0, ms(CLOCK_MONOTONIC) - w0, r,
		       r < 0 ? uncovered_reason_names[set.failed_reason] : "-", err[0] ? err : "-");
		fflush(stdout);
	}
	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			printf("%s", line);
	if (f)
		fclose(f);
	attach_set_destroy(&set);
	pinwarden_bpf__destroy(skel);
	return 0;
}
