// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Output files a user cannot aim (safefile.h). Why no check of who may write
 * the directories: every step below holds a descriptor, so a directory's owner
 * can rename things around us but never make a write land elsewhere. What they
 * could plant (a symlink, a hard link to a file of root's, a FIFO, a file of
 * their own) is what is refused, on the descriptor, after the open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safefile.h"

#define SYMLINKS_MAX 8

/* Is what st describes a file the daemon may write? 0, or -1 with why. */
static int file_ok(const struct stat *st, const char *path, char *why, size_t whylen)
{
	if (S_ISLNK(st->st_mode)) {
		snprintf(why, whylen, "%s is a symbolic link: refused", path);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a regular file (a FIFO, a device, a socket or a "
			 "directory): refused", path);
		return -1;
	}
	if (st->st_nlink > 1) {
		snprintf(why, whylen, "%s has %ju hard links (another name could be any file): "
			 "refused", path, (uintmax_t)st->st_nlink);
		return -1;
	}
	if (st->st_uid != geteuid()) {
		snprintf(why, whylen, "%s is owned by uid %u, not by the daemon's uid %u: refused",
			 path, (unsigned)st->st_uid, (unsigned)geteuid());
		return -1;
	}
	return 0;
}

/*
 * A descriptor (O_PATH) of the directory that holds path's last component,
 * which is copied to name. Symlinks on the way are followed only when root
 * owns them: a user's would send the write wherever they like (/etc).
 */
static int dir_open(const char *path, bool mkdir_last, char *name, size_t namelen, char *why,
		    size_t whylen)
{
	char buf[PATH_MAX], *comp, *save = NULL, *slash;
	int fd, nfd, links = 0;

	if (!path[0] || strlen(path) >= sizeof(buf)) {
		snprintf(why, whylen, "%s: not a usable file name", path);
		return -1;
	}
	strcpy(buf, path);
	slash = strrchr(buf, '/');
	comp = slash ? slash + 1 : buf;
	if (!comp[0] || !strcmp(comp, ".") || !strcmp(comp, "..") ||
	    (size_t)snprintf(name, namelen, "%s", comp) >= namelen) {
		snprintf(why, whylen, "%s: names a directory, not a file", path);
		return -1;
	}
	if (slash)
		slash[1] = 0;
	else
		buf[0] = 0;
	fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		bool last = !*save || strspn(save, "/") == strlen(save);
		struct stat st;

		if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) && errno == ENOENT && last &&
		    mkdir_last) {
			if (mkdirat(fd, comp, 0700) && errno != EEXIST) {
				snprintf(why, whylen, "%s: cannot create its directory %s: %s", path, comp,
					 strerror(errno));
				goto fail;
			}
			if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW))
				goto fail_errno;
		} else if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW)) {
			goto fail_errno;
		}
		if (S_ISLNK(st.st_mode)) {
			if (st.st_uid != 0) {
				snprintf(why, whylen, "%s: %s on the way is a symbolic link owned by uid "
					 "%u, not root: refused", path, comp, (unsigned)st.st_uid);
				goto fail;
			}
			if (++links > SYMLINKS_MAX) {
				errno = ELOOP;
				goto fail_errno;
			}
			nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else {
			/* O_NOFOLLOW: had it become a symlink since, O_DIRECTORY fails */
			nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0)
			goto fail_errno;
		close(fd);
		fd = nfd;
	}
	return fd;
fail_errno:
	snprintf(why, whylen, "%s: %s: %s", path, comp, strerror(errno));
fail:
	close(fd);
	return -1;
}

/* What is at name now: 0 if nothing or a file the daemon may replace. */
static int target_ok(int dfd, const char *name, const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return file_ok(&st, path, why, whylen);
}

int safefile_append(const char *path, mode_t mode, char *why, size_t whylen)
{
	char name[NAME_MAX + 1];
	struct stat st;
	int dfd, fd;

	why[0] = 0;
	dfd = dir_open(path, false, name, sizeof(name), why, whylen);
	if (dfd < 0)
		return -1;
	/* what is there now, said plainly (protected_symlinks would say EACCES); then
	 * checked again on the descriptor, whatever was swapped in between */
	if (target_ok(dfd, name, path, why, whylen)) {
		close(dfd);
		return -1;
	}
	/* O_NONBLOCK: a FIFO planted there fails (ENXIO) or is refused below, never waited on */
	fd = openat(dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
			       O_CLOEXEC, mode);
	close(dfd);
	if (fd < 0) {
		if (errno == ELOOP)
			snprintf(why, whylen, "%s is a symbolic link: refused", path);
		else if (errno == ENXIO)
			snprintf(why, whylen, "%s is a FIFO or a device: refused", path);
		else
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || file_ok(&st, path, why, whylen) ||
	    fcntl(fd, F_SETFL, O_APPEND) /* blocking again: the writer thread may wait */) {
		if (!why[0])
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int safefile_check(const char *path, bool mkdir_last, char *why, size_t whylen)
{
	char name[NAME_MAX + 1];
	int dfd, rc;

	why[0] = 0;
	dfd = dir_open(path, mkdir_last, name, sizeof(name), why, whylen);
	if (dfd < 0)
		return -1;
	rc = target_ok(dfd, name, path, why, whylen);
	close(dfd);
	return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

int safefile_replace(const char *path, const void *buf, size_t len, mode_t mode, bool mkdir_last,
		     char *why, size_t whylen)
{
	char name[NAME_MAX + 1], tmp[NAME_MAX + 1];
	unsigned char rnd[6];
	int dfd, fd = -1, rc = -1;

	why[0] = 0;
	dfd = dir_open(path, mkdir_last, name, sizeof(name), why, whylen);
	if (dfd < 0)
		return -1;
	if (target_ok(dfd, name, path, why, whylen))
		goto out;
	/* a name nobody can guess and plant first; hidden, and no .prom suffix for the
	 * textfile collector to read half of */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd) ||
	    (size_t)snprintf(tmp, sizeof(tmp), ".%.200s.%02x%02x%02x%02x%02x%02x.tmp", name, rnd[0],
			     rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) >= sizeof(tmp)) {
		snprintf(why, whylen, "%s: no temporary name", path);
		goto out;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(why, whylen, "%s: cannot create a temporary file next to it: %s", path,
			 strerror(errno));
		goto out;
	}
	/* readable as asked whatever the umask (node_exporter reads metrics as another user) */
	if (fchmod(fd, mode) || write_all(fd, buf, len)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc || renameat(dfd, tmp, dfd, name)) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		unlinkat(dfd, tmp, 0);
		rc = -1;
	}
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(dfd, tmp, 0);
	}
	close(dfd);
	return rc;
}
