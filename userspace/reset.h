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

/* Attach (or detach) the egress filter and the read tracker. 0 or -1 (logged). */
int reset_enable(struct daemon *d, bool on);

/* A verdict reset this connection: destroy the socket, then forget the mark. */
void reset_destroy(struct daemon *d, const struct pw_chain_rec *r);

/* Forget marks older than a few seconds (their destroy failed or the socket is gone). */
void reset_sweep(struct daemon *d);

/* SOCK_DESTROY one TCP connection (addresses mapped for IPv4); 0 or -errno. */
int sock_destroy_tcp(const struct pw_conn_key *k);

#endif /* PW_RESET_H */
