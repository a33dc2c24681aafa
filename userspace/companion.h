/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The library a TLS library loads beside it (OpenSSL's and BoringSSL's libssl
 * and their libcrypto), read for the offsets the verdict needs. It is the file
 * of that name in the library's own directory, never the one a process chose
 * to map (LD_LIBRARY_PATH, or an mmap of its own): the process may belong to
 * anyone, and what is read from the companion applies to every process that
 * maps the library.
 */
#ifndef PW_COMPANION_H
#define PW_COMPANION_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Open `soname` beside the examined library `lib_fd` (reached as `lib_path`,
 * /proc/PID/map_files/... for a file of process PID): the directory is the one
 * that holds that very file (same device and inode), found in the daemon's root
 * or in the process's (/proc/PID/root); a symbolic link may not leave it; the
 * companion must be a regular file on the library's device and, beside a
 * library only root can change, one only root can change. An open descriptor,
 * or -1 with err.
 */
int companion_open(int lib_fd, const char *lib_path, const char *soname, char *err, size_t errlen);

/*
 * The same, or, when there is none beside it, the file of that name in the dynamic
 * linker's default directories (ldcache_default_dirs) of the library's root, resolved
 * inside that root: NSS's libssl3.so in an application's own directory (Firefox's, in
 * /usr/lib/firefox-esr) loads the system's libnspr4.so. Regular, and only root can
 * change it if only root can change the library; it may lie on another device.
 */
int companion_open_system(int lib_fd, const char *lib_path, const char *soname, char *err,
			  size_t errlen);

#endif /* PW_COMPANION_H */
