/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Holding a process for the daemon (SIGSTOP), shared by discovery's gates and
 * by the reset verdict. Every hold is recorded in `stops` before the signal is
 * sent, is made only while the daemon and its watchdog both beat, and is
 * continued by the watchdog at the bound whatever becomes of the daemon.
 */
#ifndef PW_HOLD_BPF_H
#define PW_HOLD_BPF_H

#include "maps.bpf.h"

#ifndef SIGSTOP
#define SIGSTOP		19
#endif
#ifndef SIGCONT
#define SIGCONT		18
#endif

static __always_inline __u64 proc_start(struct task_struct *t)
{
	return BPF_CORE_READ(t, group_leader, start_boottime);
}

/*
 * A job of an interactive shell: the process has a controlling terminal, sits
 * in a process group of its own (job control), and its parent is the
 * session's leader (the shell) or a child of it (sudo, which suspends itself
 * when its command stops). Its shell would report a stop ("Stopped", status
 * 147) and take the terminal back.
 */
static __always_inline int terminal_job(struct task_struct *t)
{
	struct task_struct *parent = BPF_CORE_READ(t, real_parent);
	struct pid *sid = BPF_CORE_READ(t, signal, pids[PIDTYPE_SID]);

	if (!BPF_CORE_READ(t, signal, tty) || BPF_CORE_READ(t, signal, pids[PIDTYPE_PGID]) == sid)
		return 0;
	if (BPF_CORE_READ(parent, group_leader, thread_pid) == sid)
		return 1;
	parent = BPF_CORE_READ(parent, real_parent);
	return BPF_CORE_READ(parent, group_leader, thread_pid) == sid;
}

static __always_inline int beats_fresh(__u64 now)
{
	__u64 d = daemon_beat_ns, w = watchdog_beat_ns;

	return d && w && now - d <= PW_BEAT_MAX_NS && now - w <= PW_BEAT_MAX_NS;
}

#endif /* PW_HOLD_BPF_H */
