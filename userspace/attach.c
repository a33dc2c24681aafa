// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "attach.h"

int attach_uprobe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
		  char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
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
