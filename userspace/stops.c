// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Continuing processes stopped at discovery's gate: see stops.h. Shared by the
 * daemon (userspace/discover.c) and its watchdog (userspace/watchdog.c), which
 * may race for the same stop: deleting the map entry is the claim, so that
 * exactly one of them continues it and decrements the kernel's count.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "proc.h"
#include "stops.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#define SIGSTOP_BIT (1ULL << (SIGSTOP - 1))

uint64_t stops_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int proc_started_at(pid_t pid, uint64_t start)
{
	long hz = sysconf(_SC_CLK_TCK);
	struct proc_stat st;

	if (hz <= 0 || proc_stat_read(pid, &st))
		return 0;
	return st.start_ticks == start / (1000000000ULL / (uint64_t)hz);
}

/* Has the SIGSTOP the kernel sent reached the process (stopped, or pending)? */
static int stop_landed(pid_t pid)
{
	unsigned long long mask;
	struct proc_stat st;
	char path[64], line[256];
	FILE *f;
	int landed = 0;

	if (proc_stat_read(pid, &st))
		return 1;	/* gone: nothing will land any more */
	if (st.state == 'T' || st.state == 't')
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 1;
	while (!landed && fgets(line, sizeof(line), f))
		if ((sscanf(line, "ShdPnd: %llx", &mask) == 1 || sscanf(line, "SigPnd: %llx", &mask) == 1) &&
		    (mask & SIGSTOP_BIT))
			landed = 1;
	fclose(f);
	return landed;
}

int stop_release(int fd, volatile __u64 *stopped, pid_t pid, uint64_t now, struct pw_stop *out)
{
	__u32 key = pid;
	struct pw_stop s;
	int pidfd;

	if (bpf_map_lookup_elem(fd, &key, &s))
		return -1;
	if (now - s.stopped_ns < PW_STOP_SETTLE_NS && !stop_landed(pid))
		return 0;
	/* the claim: whoever deletes it continues it */
	if (bpf_map_lookup_and_delete_elem(fd, &key, &s))
		return -1;
	if (stopped)
		__atomic_fetch_sub(stopped, 1, __ATOMIC_RELAXED);
	/* a pidfd names this process for good; /proc then tells whether it is the one
	 * that was stopped and not a later holder of its pid */
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0) {
		if (proc_started_at(pid, s.start))
			syscall(SYS_pidfd_send_signal, pidfd, SIGCONT, NULL, 0);
		close(pidfd);
	}
	if (out)
		*out = s;
	return 1;
}

int stops_release_all(int fd, volatile __u64 *stopped, uint64_t now,
		      void (*cb)(void *ctx, pid_t pid, const struct pw_stop *s), void *ctx)
{
	__u32 keys[PW_STOPS_MAX], key;
	struct pw_stop s;
	int n = 0, i, left = 0;

	/* keys first: entries are deleted as we go */
	while (n < PW_STOPS_MAX && !bpf_map_get_next_key(fd, n ? &keys[n - 1] : NULL, &key))
		keys[n++] = key;
	for (i = 0; i < n; i++) {
		int r = stop_release(fd, stopped, keys[i], now, &s);

		if (r > 0 && cb)
			cb(ctx, keys[i], &s);
		else if (r == 0)
			left++;
	}
	return left;
}

int stops_pin_dir(void)
{
	struct statfs sfs;

	if (statfs("/sys/fs/bpf", &sfs))
		return -1;
	if ((unsigned long)sfs.f_type != BPF_FS_MAGIC &&
	    mount("bpf", "/sys/fs/bpf", "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return -1;
	if (mkdir(PW_STOPS_PIN_DIR, 0700) && errno != EEXIST)
		return -1;
	return 0;
}
