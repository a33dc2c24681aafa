// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "attach.h"
#include "elfsym.h"
#include "log.h"

int attach_uprobe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
		  char *err, size_t errlen)
{
	return attach_uprobe_cookie(lib, prog, off, 0, err, errlen);
}

int attach_uprobe_cookie(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			 uint64_t cookie, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie);
	struct bpf_link *link, **nl;

	link = bpf_program__attach_uprobe_opts(prog, -1, lib->path, off, &opts);
	if (!link) {
		snprintf(err, errlen, "%s: uprobe %s at 0x%llx: %s", lib->path,
			 bpf_program__name(prog), (unsigned long long)off, strerror(errno));
		return -1;
	}
	nl = realloc(lib->links, (lib->nlinks + 1) * sizeof(*nl));
	if (!nl) {
		bpf_link__destroy(link);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lib->links = nl;
	lib->links[lib->nlinks++] = link;
	return 0;
}

struct attached_lib *attach_set_find(struct attach_set *set, uint64_t dev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (set->v[i].dev == dev && set->v[i].ino == ino)
			return &set->v[i];
	return NULL;
}

struct attached_lib *attach_set_find_path(struct attach_set *set, const char *path)
{
	struct stat st;

	return stat(path, &st) ? NULL : attach_set_find(set, st.st_dev, st.st_ino);
}

struct attached_lib *attach_set_add(struct attach_set *set, const char *library, const char *path,
				    char *err, size_t errlen)
{
	struct attached_lib *nv, *lib;
	struct stat st;

	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return NULL;
	}
	nv = realloc(set->v, (set->n + 1) * sizeof(*nv));
	if (!nv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	set->v = nv;
	lib = &set->v[set->n++];
	memset(lib, 0, sizeof(*lib));
	snprintf(lib->library, sizeof(lib->library), "%s", library);
	snprintf(lib->path, sizeof(lib->path), "%s", path);
	snprintf(lib->display, sizeof(lib->display), "%s", path);
	lib->dev = st.st_dev;
	lib->ino = st.st_ino;
	return lib;
}

void attached_lib_detach(struct attached_lib *lib)
{
	size_t i;

	for (i = 0; i < lib->nlinks; i++)
		bpf_link__destroy(lib->links[i]);
	free(lib->links);
	lib->links = NULL;
	lib->nlinks = 0;
}

void attach_set_destroy(struct attach_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		attached_lib_detach(&set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

#define MAX_SITES 32

int attach_sites(struct elf_image *img, struct attached_lib *lib, const uint64_t *sites, int n,
		 struct bpf_program *prog, uint64_t cookie, const char *what, char *err, size_t errlen)
{
	int i;

	for (i = 0; i < n; i++) {
		int64_t off = elf_vaddr_to_offset(img, sites[i]);

		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i]);
			return -1;
		}
		if (attach_uprobe_cookie(lib, prog, off, cookie, err, errlen))
			return -1;
		log_debug("%s: %s at 0x%llx (%s)", lib->path, bpf_program__name(prog),
			  (unsigned long long)off, what);
	}
	return 0;
}

int attach_call_sites(struct elf_image *img, struct attached_lib *lib, const char *import,
		      struct bpf_program *prog, int required, char *err, size_t errlen)
{
	uint64_t sites[MAX_SITES];
	char what[128];
	int n;

	n = elf_import_call_sites(img, import, sites, MAX_SITES);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot disassemble", lib->path);
		return -1;
	}
	if (n < required) {
		snprintf(err, errlen, "%s: no call to %s found; not a %s build this version of "
			 "pinwarden knows", lib->path, import, lib->library);
		return -1;
	}
	snprintf(what, sizeof(what), "call to %s", import);
	if (attach_sites(img, lib, sites, n, prog, 0, what, err, errlen))
		return -1;
	return n;
}

int attach_entry(struct elf_image *img, struct attached_lib *lib, const char *func,
		 struct bpf_program *prog, char *err, size_t errlen)
{
	return attach_entry_cookie(img, lib, func, prog, 0, err, errlen);
}

int attach_entry_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen)
{
	uint64_t v = elf_func_vaddr(img, func);
	int64_t off;

	if (!v) {
		snprintf(err, errlen, "%s: %s not found", lib->path, func);
		return -1;
	}
	off = elf_vaddr_to_offset(img, elf_probe_point(img, v));
	if (off < 0) {
		snprintf(err, errlen, "%s: %s is outside the file", lib->path, func);
		return -1;
	}
	log_debug("%s: %s at 0x%llx (%s)", lib->path, bpf_program__name(prog),
		  (unsigned long long)off, func);
	return attach_uprobe_cookie(lib, prog, off, cookie, err, errlen);
}
