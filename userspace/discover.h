/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Finding the TLS libraries processes map: see discover.c and bpf/discover.bpf.c. */
#ifndef PW_DISCOVER_H
#define PW_DISCOVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "discovery.h"

struct daemon;

#define DISCOVER_RETRY_MAX	64
#define DISCOVER_UNSEEN_NS	(10 * 1000000000ULL)	/* the look for mappings no hook saw */
#define DISCOVER_UNSEEN_PER_SWEEP 256			/* files handed per look */
#define DISCOVER_UNSEEN_MAX	1024			/* files reported, remembered */

struct examine_pool;

/* A record's process, waiting for the files the workers have (discover.c). */
struct disc_key {
	uint64_t kdev, ino;
};

struct disc_waiter {
	pid_t pid;
	bool record;			/* from a record: the kernel is told when done */
	uint64_t start, seq;
	struct disc_key *keys;		/* the files it waits for */
	size_t n;
};

/* A file with a worker. */
struct disc_file {
	uint64_t tag, kdev, ino;
	char mf[128];			/* /proc/PID/map_files/... it was reached by */
	char *display;			/* the name the process maps it by */
};

/* The daemon's side of discovery (struct daemon's `disc`). */
/* run --detach-unmapped: seconds a library found through a process may stay unmapped */
#define PW_DETACH_UNMAPPED_S	600

struct discover_state {
	struct examine_pool *pool;	/* examination's workers (examine.h), or NULL */
	uint64_t examine_timeout_ns;	/* run --examine-timeout: the bound on one file */
	struct disc_waiter **waiters;
	size_t nwaiters;
	struct disc_file *files;
	size_t nfiles;
	uint64_t next_tag;
	uint64_t examine_timeouts;	/* files given up past the bound: uncovered (timeout) */
	uint64_t examine_max_ns;	/* longest a worker took with a file it finished */
	uint64_t timeout_ns;		/* run --discover-timeout: the bound on every stop */
	pid_t retry[DISCOVER_RETRY_MAX];/* stops to continue whose SIGSTOP had not landed yet */
	size_t nretry;
	uint64_t notes, stops_seen, continued, stop_max_ns, stop_sum_ns;
	uint64_t timeouts;		/* stops the watchdog ended at the bound */
	uint64_t leftovers;		/* stops an earlier daemon left, continued at start */
	uint64_t ungated[PW_UNGATED_MAX];/* processes past the gate unexamined, by reason */
	uint64_t clear_errors;
	uint64_t remapped;		/* mappings that named another file when opened: refused */
	uint64_t note_unfound;		/* noted files neither mapped nor open when looked for */
	uint64_t changed;		/* attached files rewritten: detached, examined again */
	struct pw_file_key *denied;	/* files root may not read, reported once each */
	size_t ndenied;
	uint64_t detach_after_ns;	/* run --detach-unmapped: a library no process maps for
					 * that long is detached (0: never) */
	uint64_t sweep_next_ns;		/* the next look for unmapped libraries */
	uint64_t detached;		/* libraries detached that way */
	struct bpf_link *vma_iter;	/* the kernel's walk of every mapping (pw_vma_files) */
	struct bpf_link *unseen_iter;	/* its walk of unknown executable mappings (pw_vma_unseen) */
	uint64_t unseen_next_ns;	/* the next look for them */
	uint64_t unseen_found;		/* files found that way: their mappings ran unexamined */
	struct disc_key unseen[DISCOVER_UNSEEN_MAX];	/* those reported */
	size_t nunseen;
	bool pinned;			/* the stops map is pinned (PW_STOPS_PIN) */
	pid_t wd_pid;			/* the watchdog (userspace/watchdog.c) */
	int wd_fd;			/* its reports (struct pw_expired), read end */
	uint64_t wd_started_ns, wd_restarts;
};

/*
 * Libraries found through a process that no process has mapped for
 * --detach-unmapped: forget them in the kernel, look once more, and detach
 * those still unmapped (a library_detached event each): their descriptors and
 * probes go. A later mapping is reported by the kernel as a new file, examined
 * and attached again before it is used, as any new file.
 */
void discover_sweep_unmapped(struct daemon *d);

/* Every 10 s: executable mappings of files no hook saw mapped, examined and reported. */
void discover_sweep_unseen(struct daemon *d);

/* Examine every executable mapping of every process (at start); `between` runs
 * after each process, so that the daemon answers the kernel meanwhile. */
int discover_scan_all(struct daemon *d, void (*between)(struct daemon *d));

/* Examine one process's mappings; returns how many files were new, -1 if it is gone. */
int discover_process(struct daemon *d, pid_t pid);

/* Start examination's workers: the descriptor that wakes the loop when they have
 * results, or -1 (files are then examined on the loop). */
int discover_examine_start(struct daemon *d);
void discover_examine_stop(struct daemon *d);

/* Take the workers' results (and give up files past their bound): attach what
 * they read, continue the processes whose files are all done. */
int discover_collect(struct daemon *d);

/* Files still with the workers, or processes waiting for them? */
bool discover_busy(struct daemon *d);

/* Every attached file still what was examined? One whose contents changed
 * (rewritten in place) is detached, reported and examined again (each tick). */
void discover_check_attached(struct daemon *d);

/* A record of the discovery ring buffer (ring_buffer callback). */
int discover_on_record(void *ctx, void *data, size_t size);

/* Continue the stops whose SIGSTOP had not landed when their files were done. */
void discover_retry(struct daemon *d);

/* A stop ended (by the daemon, its watchdog, or at start): account for it and,
 * past the bound, report it (discovery_timeout). */
void discover_stop_ended(struct daemon *d, pid_t pid, const struct pw_stop *s, uint64_t ended_ns,
			 const char *reason);

/* Continue every recorded stop (shutdown). */
void discover_release_all(struct daemon *d);

/* Continue the stops an earlier daemon left in the pinned map, then unpin it. */
void discover_adopt_leftovers(struct daemon *d);

/* Pin this daemon's stops map (mounting a bpffs on /sys/fs/bpf if none is). */
void discover_pin(struct daemon *d);
void discover_unpin(struct daemon *d);

/* The path a process names the file (dev, ino) by, or the daemon's own, into buf; NULL. */
const char *discover_file_path(pid_t pid, uint64_t kdev, uint64_t ino, char *buf, size_t len);

extern const char *const discover_ungated_names[PW_UNGATED_MAX];

#endif /* PW_DISCOVER_H */
