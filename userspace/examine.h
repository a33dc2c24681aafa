/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Examination's file reading, apart from the daemon's loop: a small pool of
 * worker threads opens each file a process maps (fileid_open: the inode the
 * kernel reported, or nothing), copies its bytes into memory (a memfd) and
 * parses that copy (the pool's plan callback: library_plan()); the loop
 * attaches what was planned through the descriptor opened, so that no read of
 * a file on a hung NFS or FUSE mount, or of a slow hostile one, and no parse of
 * a hostile file, ever runs on the loop. A read that takes longer than the bound is given up:
 * its worker is abandoned (a thread blocked in the kernel cannot be killed),
 * a fresh one takes its place, and the file is reported uncovered (timeout).
 */
#ifndef PW_EXAMINE_H
#define PW_EXAMINE_H

#include <stdbool.h>
#include <stdint.h>

#include "fileid.h"

#define EXAMINE_WORKERS		4	/* files read at once */
#define EXAMINE_STUCK_MAX	16	/* abandoned workers kept before no fresh one is started */
#define EXAMINE_TIMEOUT_MS	2000	/* run --examine-timeout: the bound on one file */

struct examine_pool;

/* What a worker made of one file. */
struct examine_result {
	uint64_t tag;			/* the caller's, from examine_submit */
	uint64_t kdev, ino;		/* as the kernel reported them */
	int status;			/* 0, -1 (err), FILEID_OTHER, FILEID_DENIED, or
					 * EXAMINE_TIMEOUT */
	int fd;				/* the file, opened once (status 0): the caller's to close */
	int copy_fd;			/* a memfd with its bytes (status 0): the caller's to close */
	struct file_id id;
	uint64_t wall_ns;		/* how long the worker took */
	void *plan;			/* the plan callback's result (status 0), or NULL: the
					 * caller's if it sets this NULL, else freed after */
	char err[512];
};

#define EXAMINE_TIMEOUT		(-3)

struct examine_stats {
	uint64_t submitted, done, timeouts, refused;
	unsigned workers, stuck, stuck_max;	/* live, abandoned and still blocked, most at once */
	uint64_t stuck_returned;		/* abandoned workers that came back (their result dropped) */
};

/* Run by a worker on each file it read (open as fd, its bytes in copy_fd). */
typedef void *(*examine_plan_fn)(void *ctx, int fd, int copy_fd, const char *path);

/*
 * A pool of EXAMINE_WORKERS threads, each file bounded by bound_ns of wall time
 * (reading and planning). `plan` (or NULL) and `plan_free` as above; a plan of
 * a worker abandoned past its bound is freed by that worker if it comes back.
 */
struct examine_pool *examine_pool_new(uint64_t bound_ns, examine_plan_fn plan,
				      void (*plan_free)(void *plan), void *plan_ctx);

/* Wakes (readable) when results wait: for the loop's epoll. */
int examine_pool_fd(const struct examine_pool *p);

/* Hand `path` (a /proc/PID/map_files link naming (kdev, ino)) to a worker. */
int examine_submit(struct examine_pool *p, const char *path, uint64_t kdev, uint64_t ino,
		   uint64_t tag);

/* Is (kdev, ino) with a worker now (queued, read, or abandoned in it)? */
bool examine_busy_with(struct examine_pool *p, uint64_t kdev, uint64_t ino);

/* Results ready (and files past their bound, given up): each passed to `fn`, once.
 * Returns how many. */
int examine_collect(struct examine_pool *p, void (*fn)(void *ctx, struct examine_result *r),
		    void *ctx);

/* Files queued or being read (abandoned ones not counted). */
unsigned examine_pending(struct examine_pool *p);

void examine_stats(struct examine_pool *p, struct examine_stats *s);

/* Stop the workers (waiting a second at most for the ones reading); the pool is
 * freed unless a worker is still blocked, abandoned or not: the process's exit
 * takes it then. */
void examine_pool_stop(struct examine_pool *p);

#endif /* PW_EXAMINE_H */
