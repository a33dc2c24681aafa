/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The files the daemon (root) writes where an operator says: --log, --status,
 * --metrics, learn --output. None of them is ever written through something
 * another user planted: a symlink, a hard link, a FIFO or device, or a file of
 * theirs. The path is walked one component at a time, following only symlinks
 * root owns (/var/run -> /run); the file is opened with O_NOFOLLOW and
 * O_NONBLOCK, then checked on its descriptor (fstat), or written fresh (a
 * temporary created with O_EXCL next to it, then renamed over it) through the
 * directory descriptor the walk ended on.
 */
#ifndef PW_SAFEFILE_H
#define PW_SAFEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Open `path` for appending (created with `mode` if absent). An fd, or -1 with why. */
int safefile_append(const char *path, mode_t mode, char *why, size_t whylen);

/*
 * Could `path` be replaced by safefile_replace? Checks the walk and whatever is
 * there now (absent, or a regular file of ours with one link). With mkdir_last,
 * the file's directory is created (0700) if it is missing. 0, or -1 with why.
 */
int safefile_check(const char *path, bool mkdir_last, char *why, size_t whylen);

/* Replace `path` with `len` bytes of `buf`, atomically, mode `mode`. 0, or -1 with why. */
int safefile_replace(const char *path, const void *buf, size_t len, mode_t mode, bool mkdir_last,
		     char *why, size_t whylen);

#endif /* PW_SAFEFILE_H */
