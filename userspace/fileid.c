// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileid.h"

uint64_t fileid_kdev(uint64_t dev)
{
	return (uint64_t)major(dev) << 20 | minor(dev);
}

uint64_t fileid_udev(uint64_t kdev)
{
	return makedev(kdev >> 20, kdev & ((1u << 20) - 1));
}

int fileid_of(int fd, struct file_id *id)
{
	struct stat st;
	int gen;

	if (fstat(fd, &st))
		return -1;
	memset(id, 0, sizeof(*id));
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->ctime_sec = st.st_ctim.tv_sec;
	id->ctime_nsec = st.st_ctim.tv_nsec;
	id->mtime_sec = st.st_mtim.tv_sec;
	id->mtime_nsec = st.st_mtim.tv_nsec;
	id->size = st.st_size;
	/* ext4, btrfs, xfs tell it; others (tmpfs, overlayfs) say ENOTTY */
	if (ioctl(fd, FS_IOC_GETVERSION, &gen) == 0) {
		id->gen = (uint32_t)gen;
		id->has_gen = true;
	}
	return 0;
}

/* a file root may not read (a FUSE file system's own refusal) is not an error
 * like the others: it is a file whose contents cannot be known */
static int denied(int e)
{
	return e == EACCES || e == EPERM ? FILEID_DENIED : -1;
}

int fileid_open(const char *path, uint64_t kdev, uint64_t ino, struct file_id *id, char *err,
		size_t errlen)
{
	char self[32];
	struct stat st;
	int pfd, fd;

	/* O_PATH opens nothing (no FIFO waits, no device's open runs): look first */
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return denied(errno);
	}
	if (fstat(pfd, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(pfd);
		return denied(errno);
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(pfd);
		return kdev == FILEID_ANY ? -1 : FILEID_OTHER;
	}
	if (kdev != FILEID_ANY && (fileid_kdev(st.st_dev) != kdev || st.st_ino != ino)) {
		snprintf(err, errlen, "%s: now %llu:%llu, not the file %llu:%llu reported", path,
			 (unsigned long long)fileid_kdev(st.st_dev), (unsigned long long)st.st_ino,
			 (unsigned long long)kdev, (unsigned long long)ino);
		close(pfd);
		return FILEID_OTHER;
	}
	/* the same inode, for reading: through our own descriptor, not the path again */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	close(pfd);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return denied(errno);
	}
	if (fileid_of(fd, id) || id->dev != st.st_dev || id->ino != st.st_ino) {
		snprintf(err, errlen, "%s: changed while opened", path);
		close(fd);
		return -1;
	}
	return fd;
}

bool fileid_same_content(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->has_gen == b->has_gen &&
	       a->gen == b->gen && a->size == b->size && a->mtime_sec == b->mtime_sec &&
	       a->mtime_nsec == b->mtime_nsec;
}

bool fileid_same(const struct file_id *a, const struct file_id *b)
{
	return fileid_same_content(a, b) && a->ctime_sec == b->ctime_sec &&
	       a->ctime_nsec == b->ctime_nsec;
}

void fileid_stamp(const struct file_id *id, struct pw_file_stamp *s)
{
	memset(s, 0, sizeof(*s));
	s->ctime_sec = id->ctime_sec;
	s->ctime_nsec = id->ctime_nsec & PW_CTIME_NSEC_MASK;
	s->gen = id->gen;
	s->flags = id->has_gen ? PW_STAMP_GEN : 0;
}
