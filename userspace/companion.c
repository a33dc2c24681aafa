// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "companion.h"

static int openat2_fd(int dirfd, const char *path, int flags, __u64 resolve)
{
	struct open_how how = { .flags = (__u64)(flags | O_CLOEXEC), .resolve = resolve };

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* Only root can change it: owned by root, writable by no one else. */
static bool root_only(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/*
 * The directory `dir` under `root` (resolved as if `root` were /), if it holds
 * the library itself (`base`, the same device and inode as `lib`): an O_PATH
 * descriptor, or -1.
 */
static int library_dir(const char *root, const char *dir, const char *base, const struct stat *lib)
{
	struct stat st;
	int rfd, dfd;

	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -1;
	dfd = openat2_fd(rfd, dir, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	close(rfd);
	if (dfd < 0)
		return -1;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != lib->st_dev ||
	    st.st_ino != lib->st_ino) {
		close(dfd);
		return -1;
	}
	return dfd;
}

int companion_open(int lib_fd, const char *lib_path, const char *soname, char *err, size_t errlen)
{
	char self[64], name[4096], dirbuf[4096], basebuf[4096], root[64];
	const char *roots[2] = { "/", NULL }, *dir, *base;
	struct stat lib, st;
	ssize_t n;
	int pid, i, dfd = -1, fd;

	if (!soname[0] || strchr(soname, '/')) {
		snprintf(err, errlen, "a companion named '%s' is not a file name", soname);
		return -1;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", lib_fd);
	n = readlink(self, name, sizeof(name) - 1);
	if (fstat(lib_fd, &lib) || n <= 0 || name[0] != '/') {
		snprintf(err, errlen, "%s: its own path cannot be read", lib_path);
		return -1;
	}
	name[n] = 0;
	if (lib.st_nlink == 0) {
		snprintf(err, errlen, "%s: deleted: its directory is gone", lib_path);
		return -1;
	}
	/* the path the kernel gives is the file's own: in our root, or, for a file of
	 * another mount namespace, in that process's root */
	if (sscanf(lib_path, "/proc/%d/map_files/", &pid) == 1) {
		snprintf(root, sizeof(root), "/proc/%d/root", pid);
		roots[1] = root;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", name);
	snprintf(basebuf, sizeof(basebuf), "%s", name);
	/* once: dirname() and basename() may write into their buffers (a second dirname()
	 * of the first one's result went one directory up, so a library whose path in its
	 * process's root also exists in ours never found its companions) */
	dir = dirname(dirbuf);
	base = basename(basebuf);
	for (i = 0; i < 2 && roots[i] && dfd < 0; i++)
		dfd = library_dir(roots[i], dir, base, &lib);
	if (dfd < 0) {
		snprintf(err, errlen, "%s: the directory that holds it cannot be opened", name);
		return -1;
	}
	/* beside it, never elsewhere: a symbolic link may only stay in the directory */
	fd = openat2_fd(dfd, soname, O_RDONLY | O_NOCTTY | O_NONBLOCK,
			RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
	close(dfd);
	if (fd < 0) {
		snprintf(err, errlen, "%s: no %s beside it: %s", name, soname, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_dev != lib.st_dev ||
	    (root_only(&lib) && !root_only(&st))) {
		snprintf(err, errlen, "%s: the %s beside it is not a regular file on its device "
			 "that only root can change, as the library is", name, soname);
		close(fd);
		return -1;
	}
	return fd;
}
