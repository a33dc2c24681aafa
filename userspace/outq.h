/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The event log's writer: lines are queued in memory (bounded) and written by a
 * thread of their own, so that a log that does not drain (a pipe nobody reads,
 * a full disk, a hung file system) never holds the daemon's loop. A line that
 * does not fit is dropped whole and counted.
 */
#ifndef PW_OUTQ_H
#define PW_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct outq;

struct outq_stats {
	uint64_t dropped;	/* lines dropped: the queue was full */
	uint64_t write_errors;	/* lines (or parts) write(2) refused */
	size_t queued;		/* bytes waiting */
};

/* A writer for fd (kept open by the caller) with room for `cap` bytes; NULL on error. */
struct outq *outq_new(int fd, size_t cap, const char *name);

/* Queue one line (its newline included); 0, or -1 if it was dropped. */
int outq_push(struct outq *q, const char *line, size_t len);

void outq_stats(struct outq *q, struct outq_stats *st);

/* Wait up to timeout_ms for the queue to be written, then stop the writer and free. */
void outq_free(struct outq *q, int timeout_ms);

#endif /* PW_OUTQ_H */
