/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The library a TLS library loads beside it (OpenSSL's libssl and its
 * libcrypto, NSS's libssl3 and libnspr4), found the way that process found
 * it: for a file reached as /proc/PID/map_files/..., the same process's
 * mapping of that soname; for a host path, the same directory, then
 * /etc/ld.so.cache.
 */
#ifndef PW_COMPANION_H
#define PW_COMPANION_H

#include <stddef.h>

/* A path to open for `soname`, the companion of the library at `lib_path`: 0, or -1. */
int companion_path(const char *lib_path, const char *soname, char *out, size_t len);

#endif /* PW_COMPANION_H */
