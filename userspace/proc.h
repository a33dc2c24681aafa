/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Signals to a process that a verdict named by its pid, checked against pid
 * reuse: the pid must still name the process that started at the time the
 * kernel read (or, when it is unknown, one started no later than the verdict).
 */
#ifndef PW_PROC_H
#define PW_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* What a kill came to (pinwarden_userspace_kills_total{result}). */
enum proc_kill {
	PROC_KILL_NONE = -1,	/* not tried */
	PROC_KILL_KILLED = 0,	/* SIGKILL sent, the process is gone */
	PROC_KILL_GONE,		/* it had exited already */
	PROC_KILL_REUSED,	/* its pid names a process started later: left alone */
	PROC_KILL_SURVIVED,	/* still there after SIGKILL (the host's init ignores it) */
	PROC_KILL_ERROR,	/* pidfd_open or pidfd_send_signal failed */
	PROC_KILL_MAX,
};

#define PROC_KILL_NAMES { "killed", "gone", "pid-reused", "survived", "error" }

const char *proc_kill_name(int kill);	/* "killed", ...; "none" */

/* What pinwarden reads of /proc/PID/stat. */
struct proc_stat {
	char state;			/* field 3: R, S, D, T (stopped), t, Z, X, ... */
	unsigned long flags;		/* field 9: the kernel's PF_* flags */
	unsigned long long start_ticks;	/* field 22: start time, clock ticks since boot */
};

/*
 * Parse a /proc/PID/stat line. The command (field 2) may hold spaces and ')':
 * the fields are counted from its last ')'. 0, or -1 if the line is not one
 * (cut short before the start time's end included).
 */
int proc_stat_parse(const char *line, struct proc_stat *st);

/* Read /proc/PID/stat and parse it: 0, or -1 (gone, or unreadable). */
int proc_stat_read(pid_t pid, struct proc_stat *st);

/* When process `pid` started, in boot ns rounded down to a clock tick (as
 * /proc/PID/stat gives it); 0 if it cannot be read. */
uint64_t proc_start_ns(pid_t pid);

/* Its real uid, from /proc/PID/status; (uint32_t)-1 if it cannot be read. */
uint32_t proc_uid(pid_t pid);

/*
 * A pidfd for the process `pid` that a verdict saw: the one that started at
 * start_ns (boot ns, as the kernel has it), or when that is unknown (0), one
 * that started no later than verdict_ns (a reused pid names a later process).
 * The pidfd is opened before the check, so the process checked is the one it
 * names. -ESRCH (gone), -ESTALE (reused), -errno.
 */
int proc_pidfd(pid_t pid, uint64_t start_ns, uint64_t verdict_ns);

/*
 * SIGKILL process `pid` and wait (100 ms at most) until it is gone, if it is
 * the process that started at start_ns (boot ns; 0: unknown, then any process
 * started no later than verdict_ns): enum proc_kill.
 */
int proc_kill(pid_t pid, uint64_t start_ns, uint64_t verdict_ns);

/* Send `sig` to process `pid` if it started at start_ns: 0, -ESRCH (gone), -ESTALE
 * (its pid names a process started later), -errno. */
int proc_signal(pid_t pid, uint64_t start_ns, int sig);

#endif /* PW_PROC_H */
