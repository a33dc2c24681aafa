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
#include "discovery.h"

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

/*
 * Why process t may not be held at `now` (enum pw_ungated), or 0: it may. (The
 * daemon and its watchdog, never held, are the callers' own test: discovery
 * does not report them.)
 */
static __always_inline int hold_refused(struct task_struct *t, __u64 now)
{
	if (BPF_CORE_READ(t, ptrace))
		return PW_UNGATED_TRACED;
	if (terminal_job(t))
		return PW_UNGATED_TERMINAL;
	if (!beats_fresh(now))
		return PW_UNGATED_UNRESPONSIVE;
	if (stopped_procs >= stops_max)
		return PW_UNGATED_BUSY;
	return 0;
}

/* hold_stop(): what came of it */
#define HOLD_SENT		0	/* recorded in `stops`, SIGSTOP sent */
#define HOLD_NOT_RECORDED	1	/* a stop of it is recorded already, or no room: nothing sent */
#define HOLD_FAILED		2	/* the signal failed: the record taken back */

/* hold_stop()'s `to`: who receives the SIGSTOP */
#define HOLD_PROCESS		0	/* the current process (any of its threads) */
#define HOLD_THREAD		1	/* the current thread: it stops before it runs on */

/*
 * Stop the current process (tgid), described by s (its comm is filled here):
 * recorded in `stops` first, so that no stop is ever unbounded, then
 * signalled; the record is taken back if the signal fails.
 */
static __always_inline int hold_stop(__u32 tgid, struct pw_stop *s, int to)
{
	long err;

	bpf_get_current_comm(s->comm, sizeof(s->comm));
	if (bpf_map_update_elem(&stops, &tgid, s, BPF_NOEXIST))
		return HOLD_NOT_RECORDED;
	__sync_fetch_and_add(&stopped_procs, 1);
	err = to == HOLD_THREAD ? bpf_send_signal_thread(SIGSTOP) : bpf_send_signal(SIGSTOP);
	if (!err)
		return HOLD_SENT;
	if (!bpf_map_delete_elem(&stops, &tgid))
		__sync_fetch_and_add(&stopped_procs, -1);
	return HOLD_FAILED;
}

#endif /* PW_HOLD_BPF_H */
