/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Finding the TLS libraries processes map: see discover.c and bpf/discover.bpf.c. */
#ifndef PW_DISCOVER_H
#define PW_DISCOVER_H

#include <sys/types.h>

#include "pinwarden.h"

struct daemon;

/* Examine every executable mapping of every process (at start). */
int discover_scan_all(struct daemon *d);

/* Examine one process's mappings; returns how many files were new, -1 if it is gone. */
int discover_process(struct daemon *d, pid_t pid);

/* The kernel stopped a process on a new file: examine it, attach, continue it. */
void discover_on_record(struct daemon *d, const struct pw_discover_rec *r);

#endif /* PW_DISCOVER_H */
