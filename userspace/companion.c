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
#include "ldcache.h"

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

/*
 * The directory that holds the library `lib_fd` (an O_PATH descriptor) and the root
 * it was found in (an O_PATH descriptor in *rootfd); its stat in *lib, its own path
 * in name. -1 with err.
 */
static int library_home(int lib_fd, const char *lib_path, struct stat *lib, int *rootfd,
			char name[4096], char *err, size_t errlen)
{
	char self[64], dirbuf[4096], basebuf[4096], root[64];
	const char *roots[2] = { "/", NULL }, *dir, *base;
	ssize_t n;
	int pid, i, dfd = -1;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", lib_fd);
	n = readlink(self, name, 4095);
	if (fstat(lib_fd, lib) || n <= 0 || name[0] != '/') {
		snprintf(err, errlen, "%s: its own path cannot be read", lib_path);
		return -1;
	}
	name[n] = 0;
	if (lib->st_nlink == 0) {
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
	for (i = 0; i < 2 && roots[i] && dfd < 0; i++) {
		dfd = library_dir(roots[i], dir, base, lib);
		if (dfd >= 0 && rootfd) {
			*rootfd = open(roots[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (*rootfd < 0) {
				close(dfd);
				dfd = -1;
			}
		}
	}
	if (dfd < 0)
		snprintf(err, errlen, "%s: the directory that holds it cannot be opened", name);
	return dfd;
}

/* `fd`, opened as the companion `what` of the library `lib`, if it may be one; else -1. */
static int companion_check(int fd, const struct stat *lib, bool same_dev, const char *what,
			   char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (same_dev && st.st_dev != lib->st_dev) ||
	    (root_only(lib) && !root_only(&st))) {
		snprintf(err, errlen, "%s is not a regular file%s that only root can change, as "
			 "the library is", what, same_dev ? " on its device" : "");
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

int companion_open(int lib_fd, const char *lib_path, const char *soname, char *err, size_t errlen)
{
	char what[4200], name[4096];
	struct stat lib;
	int dfd, fd;

	if (!soname[0] || strchr(soname, '/')) {
		snprintf(err, errlen, "a companion named '%s' is not a file name", soname);
		return -1;
	}
	dfd = library_home(lib_fd, lib_path, &lib, NULL, name, err, errlen);
	if (dfd < 0)
		return -1;
	/* beside it, never elsewhere: a symbolic link may only stay in the directory */
	fd = openat2_fd(dfd, soname, O_RDONLY | O_NOCTTY | O_NONBLOCK,
			RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
	close(dfd);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: no %s beside it: %s", name, soname, strerror(e));
		errno = e;	/* ENOENT: companion_open_system looks elsewhere */
		return -1;
	}
	snprintf(what, sizeof(what), "%s: the %s beside it", name, soname);
	return companion_check(fd, &lib, true, what, err, errlen);
}

int companion_open_system(int lib_fd, const char *lib_path, const char *soname, char *err,
			  size_t errlen)
{
	const char *const *dir;
	char path[4096], what[4200], name[4096];
	struct stat lib;
	int dfd, rfd = -1, fd = -1;

	if (!soname[0] || strchr(soname, '/')) {
		snprintf(err, errlen, "a companion named '%s' is not a file name", soname);
		return -1;
	}
	/* beside it if there is one, even one refused */
	errno = 0;
	fd = companion_open(lib_fd, lib_path, soname, err, errlen);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	dfd = library_home(lib_fd, lib_path, &lib, &rfd, name, err, errlen);
	if (dfd < 0)
		return -1;
	close(dfd);
	/* the dynamic linker's own directories, in the library's root, never outside it */
	for (dir = ldcache_default_dirs; *dir && fd < 0; dir++) {
		snprintf(path, sizeof(path), "%s/%s", *dir + 1, soname);
		fd = openat2_fd(rfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK,
				RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	}
	close(rfd);
	if (fd < 0) {
		snprintf(err, errlen, "%s: no %s beside it nor in the system's library directories",
			 name, soname);
		return -1;
	}
	snprintf(what, sizeof(what), "%s: the system's %s", name, soname);
	return companion_check(fd, &lib, false, what, err, errlen);
}
