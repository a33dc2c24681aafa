/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* action: reset, the daemon's half (see bpf/reset.bpf.c). */
#ifndef PW_RESET_H
#define PW_RESET_H

#include <stdbool.h>

#include "pinwarden.h"

struct daemon;
struct pw_policy;

/* Does the policy enforce with reset anywhere? */
bool policy_uses_reset(const struct pw_policy *p);

/* Does the policy have side: server rules (keyed by the local port)? */
bool policy_has_server_rules(const struct pw_policy *p);

/* Attach (or detach) the egress filter. 0 or -1 (logged). */
int reset_enable(struct daemon *d, bool on);

/*
 * Attach (or detach) the read tracker (a tp_btf/sys_enter program, about
 * 0.1 µs per read-type syscall host-wide): the socket of a connection whose
 * library names none (memory BIOs: node, custom BIOs) is the one its thread
 * last read from. Needed by reset and by server rules; a failure is logged.
 */
void read_track_enable(struct daemon *d, bool on);

/* A verdict reset this connection: destroy the socket, then forget the mark. */
void reset_destroy(struct daemon *d, const struct pw_chain_rec *r);

/* Forget marks older than a few seconds (their destroy failed or the socket is gone). */
void reset_sweep(struct daemon *d);

/* SOCK_DESTROY one TCP connection (addresses mapped for IPv4); 0 or -errno. */
int sock_destroy_tcp(const struct pw_conn_key *k);

#endif /* PW_RESET_H */
