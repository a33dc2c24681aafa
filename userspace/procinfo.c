// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procinfo.h"

#define CG_CACHE 1024
#define FILEID_KERNFS 0xfe

struct cg_entry {
	uint64_t id;
	char *path;
};

static struct cg_entry cg_cache[CG_CACHE];
static char cg_mnt[4096];
static int cg_mnt_fd = -2;

const char *cgroup2_mount(void)
{
	FILE *f;
	char line[8192];

	if (cg_mnt_fd != -2)
		return cg_mnt_fd >= 0 ? cg_mnt : NULL;
	cg_mnt_fd = -1;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096], *sep = strstr(line, " - ");

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		snprintf(cg_mnt, sizeof(cg_mnt), "%s", mnt);
		cg_mnt_fd = open(cg_mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		break;
	}
	fclose(f);
	return cg_mnt_fd >= 0 ? cg_mnt : NULL;
}

const char *cgroup_path(uint64_t id)
{
	struct cg_entry *e = &cg_cache[id % CG_CACHE];
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	char link[64], buf[4096];
	size_t ml;
	ssize_t n;
	int fd;

	if (!id)
		return NULL;
	if (e->id == id && e->path)
		return e->path;
	if (!cgroup2_mount())
		return NULL;
	/* cgroupfs (kernfs) takes the cgroup id as a file handle */
	h.fh.handle_bytes = sizeof(uint64_t);
	h.fh.handle_type = FILEID_KERNFS;
	h.id = id;
	fd = open_by_handle_at(cg_mnt_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	ml = strlen(cg_mnt);
	free(e->path);
	e->id = id;
	if (!strncmp(buf, cg_mnt, ml) && (buf[ml] == '/' || !buf[ml]))
		e->path = strdup(buf[ml] ? buf + ml : "/");
	else
		e->path = strdup(buf);
	return e->path;
}

uint64_t cgroup_id_of(const char *path)
{
	char full[8192];
	struct stat st;

	if (!cgroup2_mount() || path[0] != '/')
		return 0;
	snprintf(full, sizeof(full), "%s%s", cg_mnt, path);
	if (stat(full, &st) || !S_ISDIR(st.st_mode))
		return 0;
	return st.st_ino;
}

int container_id_from_cgroup(const char *path, char out[65])
{
	const char *p, *best = NULL;
	size_t run = 0;

	if (!path)
		return -1;
	/* the last run of exactly 64 hex digits wins (the innermost container) */
	for (p = path;; p++) {
		if (*p && isxdigit((unsigned char)*p) && !isupper((unsigned char)*p)) {
			run++;
			continue;
		}
		if (run == 64)
			best = p - 64;
		run = 0;
		if (!*p)
			break;
	}
	if (!best)
		return -1;
	memcpy(out, best, 64);
	out[64] = 0;
	return 0;
}
