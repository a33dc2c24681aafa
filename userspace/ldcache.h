/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Find a shared library the way the dynamic linker does: /etc/ld.so.cache first. */
#ifndef PW_LDCACHE_H
#define PW_LDCACHE_H

#include <stddef.h>

#define LDCACHE_MAX_HITS 8

/*
 * Every path /etc/ld.so.cache (under `root`, "" for the host) maps `soname` to
 * for this architecture, in the cache's order; if the cache has none, the
 * default directories. Paths are relative to `root`. Returns the number found.
 */
int ldcache_find(const char *root, const char *soname, char paths[][4096], int max);

/* The dynamic linker's default directories for this architecture, NULL-terminated. */
extern const char *const ldcache_default_dirs[];

#endif /* PW_LDCACHE_H */
