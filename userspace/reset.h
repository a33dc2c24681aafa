/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * action: reset, the daemon's half (see bpf/reset.bpf.c), and what it does
 * for a verdict whose kill failed: the connections the kernel marked
 * (reset_conns) are destroyed in their own network namespace, their
 * processes continued, or killed from userspace.
 */
#ifndef PW_RESET_H
#define PW_RESET_H

#include <stdbool.h>
#include <stdint.h>

#include "pinwarden.h"
#include "proc.h"

struct daemon;
struct pw_policy;

/* What the daemon did about the connection (and process) of one verdict. */
struct reset_outcome {
	uint64_t ts_boot_ns;	/* the verdict's, with tid: which chain record it answers */
	uint32_t tid;
	uint32_t netns;		/* inode of the connection's network namespace */
	bool marked;		/* the kernel marked the connection (else it is unknown) */
	bool held;		/* its process was stopped for the daemon */
	bool continued;		/* ... and continued once the socket was destroyed */
	bool late;		/* acted on before its chain record came (or without it) */
	int destroy;		/* SOCK_DESTROY: 0, -ENOENT (already closed), -errno */
	int kill;		/* enum proc_kill */
};

/* Does the policy enforce with reset anywhere? */
bool policy_uses_reset(const struct pw_policy *p);

/* Does the policy have side: server rules (keyed by the local port)? */
bool policy_has_server_rules(const struct pw_policy *p);

/* Attach (or detach, after acting on every mark) the egress filter. 0 or -1 (logged). */
int reset_enable(struct daemon *d, bool on);

/*
 * Attach (or detach) the read tracker (a tp_btf/sys_enter program, about
 * 0.1 µs per read-type syscall host-wide): the socket of a connection whose
 * library names none (memory BIOs: node, custom BIOs) is the one its thread
 * last read from. Needed by reset and by server rules; a failure is logged.
 */
void read_track_enable(struct daemon *d, bool on);

/*
 * A verdict reset a connection, or failed to kill its process: destroy the
 * connection's socket, continue or kill the process (checking its start time
 * against pid reuse), and say what was done in *o.
 */
void reset_act(struct daemon *d, const struct pw_chain_rec *r, struct reset_outcome *o);

/* Every tick: act on marks whose chain record never came, retry failed destroys. */
void reset_sweep(struct daemon *d);

/* Act on every mark now but one whose stop is being sent (the daemon stops, or the
 * egress filter goes). */
void reset_flush(struct daemon *d);

#endif /* PW_RESET_H */
