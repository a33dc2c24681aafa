/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A file the daemon examines, opened once: every later step (ELF parsing, each
 * uprobe) goes through that descriptor, never through a path another process
 * can change (a /proc/PID/map_files link follows whatever the process maps
 * there now). A file is told by device, inode and change stamp, so that a
 * rewritten file or a new file on a reused inode number is not taken for the
 * one examined.
 */
#ifndef PW_FILEID_H
#define PW_FILEID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "discovery.h"

struct file_id {
	uint64_t dev, ino;		/* st_dev (userspace encoding), st_ino */
	int64_t ctime_sec, mtime_sec;
	uint32_t ctime_nsec, mtime_nsec;
	uint64_t size;
	uint32_t gen;			/* i_generation, if has_gen */
	bool has_gen;
};

#define FILEID_ANY	UINT64_MAX	/* fileid_open: no (device, inode) expected */
#define FILEID_OTHER	(-2)		/* fileid_open: not the file expected */
#define FILEID_DENIED	(-4)		/* fileid_open: root may not read it (EACCES, EPERM:
					 * a FUSE mount without allow_other) */

/*
 * Open `path` for reading, once: a regular file, and (unless kdev is FILEID_ANY)
 * the one the kernel reported as (kdev, ino), checked on an O_PATH descriptor
 * before anything is opened for reading (no device's open is ever run). The
 * descriptor (O_RDONLY | O_CLOEXEC | O_NOCTTY), with *id; -1 with err, or
 * FILEID_OTHER if the path names another file now.
 */
int fileid_open(const char *path, uint64_t kdev, uint64_t ino, struct file_id *id, char *err,
		size_t errlen);

/* What an open file is now: 0, or -1. */
int fileid_of(int fd, struct file_id *id);

/* The same file with the same contents (device, inode, generation, size, mtime)? */
bool fileid_same_content(const struct file_id *a, const struct file_id *b);

/* ... and not even its metadata changed (ctime)? */
bool fileid_same(const struct file_id *a, const struct file_id *b);

/* The kernel's encoding of a device number (s_dev: major << 20 | minor). */
uint64_t fileid_kdev(uint64_t dev);
/* the other way: the kernel's dev_t as st_dev spells it */
uint64_t fileid_udev(uint64_t kdev);

/* What known_files keeps of it (bpf/discover.bpf.c compares it with the inode). */
void fileid_stamp(const struct file_id *id, struct pw_file_stamp *s);

#endif /* PW_FILEID_H */
