// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ld.so.cache reader (glibc's "glibc-ld.so.cache1.1" format, alone or after
 * the old "ld.so-1.7.0" table). Layout from glibc's sysdeps/generic/dl-cache.h.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ldcache.h"
#include "log.h"

#define CACHE_OLD_MAGIC "ld.so-1.7.0"
#define CACHE_NEW_MAGIC "glibc-ld.so.cache1.1"

#define FLAG_TYPE_MASK		0x00ff
#define FLAG_ELF_LIBC6		0x0003
#define FLAG_REQUIRED_MASK	0xff00
#if defined(__x86_64__)
#define FLAG_ARCH		0x0300	/* FLAG_X8664_LIB64 */
#elif defined(__aarch64__)
#define FLAG_ARCH		0x0a00	/* FLAG_AARCH64_LIB64 */
#else
#error "ld.so.cache flags for this architecture are not known"
#endif

struct cache_new_hdr {
	char magic[20];		/* "glibc-ld.so.cache" "1.1" */
	uint32_t nlibs;
	uint32_t len_strings;
	uint8_t flags;
	uint8_t pad[3];
	uint32_t extension_offset;
	uint32_t unused[3];
};

struct cache_new_entry {
	int32_t flags;
	uint32_t key, value;	/* string offsets from the start of the file */
	uint32_t osversion;
	uint64_t hwcap;
};

struct cache_old_entry {
	int32_t flags;
	uint32_t key, value;
};

static const char *str_at(const char *base, size_t size, uint32_t off)
{
	if (off >= size || !memchr(base + off, 0, size - off))
		return NULL;
	return base + off;
}

static int add_hit(char paths[][4096], int n, int max, const char *p)
{
	int i;

	if (n >= max)
		return n;
	for (i = 0; i < n; i++)
		if (!strcmp(paths[i], p))
			return n;
	snprintf(paths[n], 4096, "%s", p);
	return n + 1;
}

static int cache_scan(const char *map, size_t size, const char *soname, char paths[][4096], int max)
{
	const struct cache_new_hdr *h;
	size_t off = 0, i;
	int n = 0;

	if (size >= sizeof(CACHE_OLD_MAGIC) - 1 + 4 &&
	    !memcmp(map, CACHE_OLD_MAGIC, sizeof(CACHE_OLD_MAGIC) - 1)) {
		uint32_t nold;

		memcpy(&nold, map + 12, 4);
		off = 16 + (size_t)nold * sizeof(struct cache_old_entry);
		off = (off + 7) & ~(size_t)7;
	}
	if (off + sizeof(*h) > size || memcmp(map + off, CACHE_NEW_MAGIC, sizeof(CACHE_NEW_MAGIC) - 1))
		return -1;
	h = (const struct cache_new_hdr *)(map + off);
	if (h->nlibs > (size - off - sizeof(*h)) / sizeof(struct cache_new_entry))
		return -1;
	for (i = 0; i < h->nlibs; i++) {
		const struct cache_new_entry *e = (const struct cache_new_entry *)(map + off + sizeof(*h)) + i;
		const char *key, *val;

		if ((e->flags & FLAG_TYPE_MASK) != FLAG_ELF_LIBC6 ||
		    (e->flags & FLAG_REQUIRED_MASK) != FLAG_ARCH)
			continue;
		key = str_at(map, size, e->key);
		val = str_at(map, size, e->value);
		if (key && val && !strcmp(key, soname))
			n = add_hit(paths, n, max, val);
	}
	return n;
}

const char *const ldcache_default_dirs[] = {
#if defined(__x86_64__)
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
#elif defined(__aarch64__)
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
#endif
	"/lib64", "/usr/lib64", "/lib", "/usr/lib", NULL,
};

int ldcache_find(const char *root, const char *soname, char paths[][4096], int max)
{
	const char *const *dir;
	char file[4096];
	struct stat st;
	int fd, n = 0;

	snprintf(file, sizeof(file), "%s/etc/ld.so.cache", root);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && st.st_size > 0) {
			void *map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

			if (map != MAP_FAILED) {
				n = cache_scan(map, st.st_size, soname, paths, max);
				if (n < 0) {
					log_warnx("%s: not a glibc ld.so.cache; trying the default directories", file);
					n = 0;
				}
				munmap(map, st.st_size);
			}
		}
		close(fd);
	}
	if (n > 0)
		return n;
	/* no cache (or not listed): the dynamic linker's trusted directories */
	for (dir = ldcache_default_dirs; *dir; dir++) {
		char p[4096];

		snprintf(p, sizeof(p), "%s%s/%s", root, *dir, soname);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			snprintf(p, sizeof(p), "%s/%s", *dir, soname);
			n = add_hit(paths, n, max, p);
		}
	}
	return n;
}
