/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Processes stopped at discovery's gate (the kernel's `stops` map, see
 * include/discovery.h): continuing them, by the daemon once their files are
 * examined, by the watchdog past the bound, by a later daemon after a crash.
 */
#ifndef PW_STOPS_H
#define PW_STOPS_H

#include <stdint.h>
#include <sys/types.h>

#include "discovery.h"

#define PW_STOPS_PIN_DIR	"/sys/fs/bpf/pinwarden"
#define PW_STOPS_PIN		PW_STOPS_PIN_DIR "/stops"
#define PW_STOP_SETTLE_NS	50000000ULL	/* a SIGSTOP not visible after this was lost */

/* who continued a stop past its examination, and why (watchdog -> daemon) */
enum pw_cont_why {
	PW_CONT_BOUND = 1,	/* the watchdog: stopped longer than the bound */
	PW_CONT_DAEMON_GONE = 2,/* the watchdog: the daemon ended */
	PW_CONT_LEFTOVER = 3,	/* a daemon at start: left by an earlier one */
};

/* one continued stop, as the watchdog tells the daemon (a pipe; < PIPE_BUF) */
struct pw_expired {
	uint32_t pid;
	uint32_t why;		/* enum pw_cont_why */
	uint64_t start;
	uint64_t stopped_ns;	/* CLOCK_MONOTONIC */
	uint64_t continued_ns;
	uint64_t dev;		/* kernel encoding */
	uint64_t ino;
	char comm[16];
};

uint64_t stops_now_ns(void);	/* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */

/* Does /proc say process `pid` started at `start` (boot ns)? */
int proc_started_at(pid_t pid, uint64_t start);

/*
 * Continue the stop of `pid` recorded in the map `fd`, if it is still there:
 * claim it (delete it from the map: one claimer wins), decrement *stopped
 * (the kernel's count), send SIGCONT through a pidfd if the pid is still that
 * process. A stop younger than PW_STOP_SETTLE_NS whose SIGSTOP is not visible
 * yet is left for a later call (the kernel sends it a moment after recording
 * it; a SIGCONT before it would be undone by it). Returns 1 continued (*out
 * set), 0 not yet, -1 no such stop.
 */
int stop_release(int fd, volatile __u64 *stopped, pid_t pid, uint64_t now,
		 struct pw_stop *out);

/* Continue every stop in the map; `cb` (may be NULL) is told of each. Returns
 * how many stops are left (not landed yet). */
int stops_release_all(int fd, volatile __u64 *stopped, uint64_t now,
		      void (*cb)(void *ctx, pid_t pid, const struct pw_stop *s), void *ctx);

/* A mounted bpffs to pin under: PW_STOPS_PIN_DIR, mounting /sys/fs/bpf if it is
 * not one yet. 0, or -1 with errno. */
int stops_pin_dir(void);

#endif /* PW_STOPS_H */
