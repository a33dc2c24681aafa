/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* `run --metrics FILE`: the daemon's counters in the Prometheus text format. */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include <stdio.h>

#include <stdbool.h>

#include "pinwarden.h"

struct daemon;

/* The kernel's counters (enum pw_counter): the one table of their names, for
 * the metrics and the status file. */
struct kernel_counter {
	const char *name;
	const char *help;	/* NULL: a pinwarden_kernel_failures_total reason */
	bool failure;		/* a pinwarden_kernel_failures_total reason */
	bool own_family;	/* written in a family of its own (lost_records_total) */
};

extern const struct kernel_counter kernel_counters[PW_CNT_MAX];

/* Write every metric family of `d` to `f` (Prometheus text exposition 0.0.4). */
void metrics_format(const struct daemon *d, FILE *f);

/*
 * Replace d->metrics_path with the current metrics: written to a fresh temporary
 * file in the same directory, then renamed over it, so that a reader (the
 * node_exporter textfile collector) sees the old file or the new one, never half.
 */
void metrics_write(struct daemon *d);

#endif /* PW_METRICS_H */
