/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The files the loop replaces every second (metrics, status), written by a
 * thread of their own: a disk that stalls holds that thread, never the loop.
 */
#ifndef PW_SNAPWRITER_H
#define PW_SNAPWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { SNAP_METRICS, SNAP_STATUS, SNAP_FILES };

struct snapwriter;

/* NULL when no thread could be made: the caller writes on its own. */
struct snapwriter *snapwriter_start(void);

/*
 * Have `buf` (malloc'd: taken, freed by the writer) written to `path` as
 * safefile_replace() writes (mode, mkdir_last). The newest content of a slot
 * wins: one not written yet is dropped for it. `path` must outlive the writer.
 */
void snapwriter_put(struct snapwriter *w, unsigned slot, const char *path, char *buf, size_t len,
		    mode_t mode, bool mkdir_last);

/* Write what is pending, end the thread, free it all (NULL: nothing). */
void snapwriter_stop(struct snapwriter *w);

#endif
