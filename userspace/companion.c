// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "companion.h"
#include "ldcache.h"

/* The first mapping of a file named `soname` in process `pid`, as a map_files path. */
static int mapped_path(int pid, const char *soname, char *out, size_t len)
{
	char path[64], line[4096 + 256];
	int rc = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (rc && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, ino;
		char file[4096] = "", *base;

		if (sscanf(line, "%llx-%llx %*s %*s %*s %llu %4095[^\n]", &lo, &hi, &ino, file) < 4 ||
		    !ino || file[0] != '/')
			continue;
		base = strrchr(file, '/') + 1;
		if (strcmp(base, soname))
			continue;
		/* map_files names carry no leading zeros */
		if ((size_t)snprintf(out, len, "/proc/%d/map_files/%llx-%llx", pid, lo, hi) < len)
			rc = 0;
	}
	fclose(f);
	return rc;
}

int companion_path(const char *lib_path, const char *soname, char *out, size_t len)
{
	char hits[LDCACHE_MAX_HITS][4096];
	const char *slash;
	int pid;

	if (sscanf(lib_path, "/proc/%d/map_files/", &pid) == 1)
		return mapped_path(pid, soname, out, len);
	slash = strrchr(lib_path, '/');
	if (slash && (size_t)snprintf(out, len, "%.*s/%s", (int)(slash - lib_path), lib_path, soname) < len &&
	    access(out, R_OK) == 0)
		return 0;
	if (ldcache_find("", soname, hits, LDCACHE_MAX_HITS) > 0 &&
	    (size_t)snprintf(out, len, "%s", hits[0]) < len)
		return 0;
	return -1;
}
