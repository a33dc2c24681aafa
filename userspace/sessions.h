/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The daemon's half of the kernel's session table (bpf/session.bpf.h). */
#ifndef PW_SESSIONS_H
#define PW_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pinwarden.h"

struct daemon;
struct uid_count;

#define SESSIONS_SEEN 1024

struct proc_seen {
	uint32_t tgid;
	uint64_t start;			/* 0: gone */
	uint64_t pass;			/* 1 + the pass it was read in */
};

/* Where a sweep of a table of parked chains goes on from. */
struct parked_cursor {
	struct pw_ssl_key key;		/* the last key looked at */
	bool valid;			/* false: start over */
};

struct sessions {
	struct pw_ssl_key token;	/* where the pass goes on (batch lookup) */
	bool started;
	struct proc_seen seen[SESSIONS_SEEN];	/* processes read this pass, by tgid */
	struct uid_count *uids;		/* entries per uid in this pass */
	size_t nuids, cap;
	uint64_t swept, passes, errors, lost_cleared;
	struct parked_cursor parked[2];	/* parked_chains, go_pending */
};

/* One slice of the pass over the session table: run every tick. */
void sessions_sweep(struct daemon *d, struct sessions *s);

/*
 * Chains parked until their library's verification (parked_chains: NSS's
 * deferred authentication, GnuTLS's; go_pending): drop those whose process is gone or is another one
 * now (started after the chain's last certificate). Nothing would judge them,
 * and a later process with the same pid must not find them.
 */
void parked_sweep(struct daemon *d, struct sessions *s);

void sessions_free(struct sessions *s);

#endif /* PW_SESSIONS_H */
