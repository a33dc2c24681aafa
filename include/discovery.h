/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Discovery's contract between the kernel side (bpf/discover.bpf.c), the
 * daemon (userspace/discover.c) and its watchdog (userspace/watchdog.c):
 * the files a process waits for, the processes stopped at the gate, and the
 * records of the discovery ring buffer.
 *
 * A process that maps a file the daemon has not examined runs on; its entry
 * in `pending` (by tgid) says so. It is stopped only at the gate, a TCP
 * receive (the earliest a peer's certificate can arrive), and only while the
 * daemon and its watchdog are alive; every stop is written to `stops` before
 * the signal is sent, and the watchdog continues any stop older than the bound.
 */
#ifndef PW_DISCOVERY_H
#define PW_DISCOVERY_H

#include "pinwarden.h"

#define PW_PENDING_DEAD	(1ULL << 63)	/* pw_pending.state: the entry is being deleted */
#define PW_STOPS_MAX	1024		/* entries of the stops map */
#define PW_BEAT_MAX_NS	100000000ULL	/* heartbeats older than this: nobody stops anyone */

/* why a process went past the gate with files not examined (PW_REC_UNGATED) */
enum pw_ungated {
	PW_UNGATED_UNRESPONSIVE = 1,	/* the daemon or its watchdog has not beaten lately */
	PW_UNGATED_BUSY = 2,		/* too many processes stopped already */
	PW_UNGATED_TERMINAL = 3,	/* a job of an interactive shell: it would see the stop */
	PW_UNGATED_TRACED = 4,		/* under a debugger: it would see the stop */
	PW_UNGATED_FULL = 5,		/* no room to record the stop, or the signal failed */
	PW_UNGATED_MAX,
};

/* pending (key: tgid): the process mapped files the daemon has not examined */
struct pw_pending {
	__u64 start;		/* the process's start time (boot ns): the same process */
	__u64 state;		/* highest note sequence number; | PW_PENDING_DEAD */
	__u64 noted_ns;		/* first note (CLOCK_MONOTONIC) */
	__u64 dev;		/* the first file noted, for reports */
	__u64 ino;
	__u32 reported;		/* a pass of the gate unexamined was reported */
	__u32 pad;
};
_Static_assert(sizeof(struct pw_pending) == 48, "pw_pending layout");

/* pending_done (key: tgid), written by the daemon only: every note up to `seq`
 * of this process has been handled (its mappings examined after the note) */
struct pw_pending_done {
	__u64 start;
	__u64 seq;
};

/* stops (key: tgid): a process stopped at the gate, recorded before SIGSTOP */
/* pw_stop.dev of a process held by a reset verdict until its socket is destroyed
 * (userspace/reset.c continues it; the watchdog, at the bound) */
#define PW_STOP_RESET	(~0ULL)

struct pw_stop {
	__u64 start;		/* start time (boot ns): pid reuse is seen */
	__u64 stopped_ns;	/* CLOCK_MONOTONIC */
	__u64 dev;		/* the first file it waits for; PW_STOP_RESET: a reset's hold */
	__u64 ino;
	char comm[PW_COMM_LEN];
};
_Static_assert(sizeof(struct pw_stop) == 48, "pw_stop layout");

/* one record of the discovery ring buffer */
struct pw_discover_rec {
	__u32 type;		/* PW_REC_EXEC, _LIB, _STOP, _UNGATED */
	__u32 pid;		/* tgid */
	__u64 dev;		/* the file; 0, 0: several, examine every mapping */
	__u64 ino;
	__u64 start;		/* the process's start time (boot ns) */
	__u64 seq;		/* EXEC, LIB: the note's sequence number */
	__u64 ts_ns;		/* CLOCK_MONOTONIC */
	__u32 reason;		/* UNGATED: enum pw_ungated */
	__s32 fd;		/* LIB: the descriptor it was mapped from, or -1 */
	char comm[PW_COMM_LEN];
};
_Static_assert(sizeof(struct pw_discover_rec) == 72, "pw_discover_rec layout");

/* one record of the pw_vma_unseen iterator: an executable mapping of a file the
 * kernel does not know as examined, in a process with no note pending */
struct pw_unseen_rec {
	__u32 pid;		/* tgid */
	__u32 pad;
	__u64 start, end;	/* the mapping */
	__u64 dev, ino;
	char comm[PW_COMM_LEN];
};
_Static_assert(sizeof(struct pw_unseen_rec) == 56, "pw_unseen_rec layout");

/* context of the pw_pending_clear program (run by the daemon, BPF_PROG_TEST_RUN) */
struct pw_pending_clear_ctx {
	__u32 tgid;
	__u32 pad;
};

/*
 * What a file of known_files was when the daemon examined it: its change time
 * and, where the filesystem tells it (FS_IOC_GETVERSION), its generation. A file
 * whose inode now says otherwise (rewritten, chmod'ed, or a new file on a reused
 * inode number) is examined again. ctime_nsec as stat(2) gives it (the kernel
 * keeps a flag in its bit 31: masked before comparing).
 */
#define PW_STAMP_GEN		1U	/* gen is the file's i_generation */
#define PW_CTIME_NSEC_MASK	0x7fffffffU

struct pw_file_stamp {
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 gen;
	__u32 flags;		/* PW_STAMP_* */
	__u32 pad;
};
_Static_assert(sizeof(struct pw_file_stamp) == 24, "pw_file_stamp layout");

#endif /* PW_DISCOVERY_H */
