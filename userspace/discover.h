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

/* The daemon's side of discovery (struct daemon's `disc`). */
struct discover_state {
	uint64_t timeout_ns;		/* run --discover-timeout: the bound on every stop */
	bool new_ldso;			/* a dynamic linker was hooked by this examination */
	pid_t retry[DISCOVER_RETRY_MAX];/* stops to continue whose SIGSTOP had not landed yet */
	size_t nretry;
	uint64_t notes, stops_seen, continued, stop_max_ns, stop_sum_ns;
	uint64_t timeouts;		/* stops the watchdog ended at the bound */
	uint64_t leftovers;		/* stops an earlier daemon left, continued at start */
	uint64_t ungated[PW_UNGATED_MAX];/* processes past the gate unexamined, by reason */
	uint64_t clear_errors;
	uint64_t remapped;		/* mappings that named another file when opened: refused */
	uint64_t changed;		/* attached files rewritten: detached, examined again */
	bool pinned;			/* the stops map is pinned (PW_STOPS_PIN) */
	pid_t wd_pid;			/* the watchdog (userspace/watchdog.c) */
	int wd_fd;			/* its reports (struct pw_expired), read end */
	uint64_t wd_started_ns, wd_restarts;
};

/* Examine every executable mapping of every process (at start); `between` runs
 * after each process, so that the daemon answers the kernel meanwhile. */
int discover_scan_all(struct daemon *d, void (*between)(struct daemon *d));

/* Examine one process's mappings; returns how many files were new, -1 if it is gone. */
int discover_process(struct daemon *d, pid_t pid);

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
