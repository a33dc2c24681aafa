// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attach.h"
#include "elfsym.h"
#include "log.h"

int attach_uprobe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
		  char *err, size_t errlen)
{
	return attach_uprobe_cookie(lib, prog, off, 0, err, errlen);
}

/*
 * Probes take descriptors (two each) until the open files limit: stop attaching
 * while FD_RESERVE are left, so that the daemon can still write its status and
 * metrics, read /proc and say what it left out. Descriptors are handed out lowest
 * first: the lowest free one tells how many are in use, or more (holes).
 */
#define FD_RESERVE 64

bool attach_fds_short(char *err, size_t errlen, const char *path)
{
	struct rlimit rl;
	int fd = open("/", O_PATH | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return false;
	if (fd >= 0 && (rlim_t)fd + FD_RESERVE < rl.rlim_cur)
		return false;
	snprintf(err, errlen, "%s: attaching would leave fewer than %d of the daemon's %llu "
		 "descriptors for its own files: %s", path, FD_RESERVE,
		 (unsigned long long)rl.rlim_cur, strerror(EMFILE));
	return true;
}

static int attach_probe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			uint64_t cookie, bool retprobe, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = retprobe);
	struct bpf_link *link, **nl;
	uint64_t *no;

	/* each probe, not only each library: one library's probes may be many */
	if (attach_fds_short(err, errlen, lib->path))
		return -1;
	/* never lib->path: another process may map something else there by now */
	link = bpf_program__attach_uprobe_opts(prog, -1, lib->probe_path, off, &opts);
	if (!link) {
		snprintf(err, errlen, "%s: %s %s at 0x%llx: %s", lib->path,
			 retprobe ? "uretprobe" : "uprobe", bpf_program__name(prog),
			 (unsigned long long)off, strerror(errno));
		return -1;
	}
	nl = realloc(lib->links, (lib->nlinks + 1) * sizeof(*nl));
	if (nl)
		lib->links = nl;
	no = nl ? realloc(lib->offs, (lib->nlinks + 1) * sizeof(*no)) : NULL;
	if (!no) {
		bpf_link__destroy(link);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lib->offs = no;
	lib->offs[lib->nlinks] = off;
	lib->links[lib->nlinks++] = link;
	return 0;
}

int attach_uprobe_cookie(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			 uint64_t cookie, char *err, size_t errlen)
{
	return attach_probe(lib, prog, off, cookie, false, err, errlen);
}

/*
 * struct bpf_link_info of a perf event link as kernels since 6.6 fill it (the
 * installed uapi header is older; the ABI is stable): a uprobe's file name as
 * it was given to perf_event_open, and its offset.
 */
#define LINK_PERF_EVENT_UPROBE	1	/* enum bpf_perf_event_type */
#define LINK_PERF_EVENT_URETPROBE 2

struct link_info_perf_uprobe {
	uint32_t type, id, prog_id, pad;
	uint32_t perf_type, pad2;
	uint64_t file_name;
	uint32_t name_len, offset;
	uint64_t cookie, ref_ctr_offset;
};

/* 1 if the kernel says the link is a uprobe on `path` at `off`, 0 if it cannot say, -1 if not */
static int link_verify(struct bpf_link *link, const char *path, uint64_t off, char *err,
		       size_t errlen)
{
	struct link_info_perf_uprobe info;
	uint32_t len = sizeof(info);
	char name[64] = "";

	memset(&info, 0, sizeof(info));
	info.file_name = (uintptr_t)name;
	info.name_len = sizeof(name);
	if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return 0;	/* a perf event fd of an older kernel: nothing to read back */
	if (info.type != BPF_LINK_TYPE_PERF_EVENT || len < sizeof(info) || !info.file_name)
		return 0;
	if ((info.perf_type != LINK_PERF_EVENT_UPROBE && info.perf_type != LINK_PERF_EVENT_URETPROBE) ||
	    strncmp(name, path, sizeof(name)) ||
	    info.offset != off) {
		snprintf(err, errlen, "link %u: a probe on %.64s+0x%x, not on %s+0x%llx", info.id,
			 name, info.offset, path, (unsigned long long)off);
		return -1;
	}
	return 1;
}

int attach_verify(const struct attached_lib *lib, char *err, size_t errlen)
{
	struct file_id now;
	size_t i, read_back = 0;
	struct stat st;

	if (fileid_of(lib->fd, &now) || !fileid_same_content(&lib->id, &now)) {
		snprintf(err, errlen, "%s: changed while it was examined and attached", lib->path);
		return -1;
	}
	if (stat(lib->probe_path, &st) || st.st_dev != now.dev || st.st_ino != now.ino) {
		snprintf(err, errlen, "%s: %s does not name it", lib->path, lib->probe_path);
		return -1;
	}
	for (i = 0; i < lib->nlinks; i++) {
		int r = link_verify(lib->links[i], lib->probe_path, lib->offs[i], err, errlen);

		if (r < 0)
			return -1;
		read_back += r;
	}
	log_debug("%s: %zu of %zu probes read back from the kernel on %s", lib->path, read_back,
		  lib->nlinks, lib->probe_path);
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

struct attached_lib *attach_set_add(struct attach_set *set, const char *library, int fd,
				    const char *path, char *err, size_t errlen)
{
	struct attached_lib *nv, *lib;
	struct file_id id;
	int own;

	if (fileid_of(fd, &id)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	nv = realloc(set->v, (set->n + 1) * sizeof(*nv));
	if (!nv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	set->v = nv;
	/* a descriptor of its own: the caller's goes once the examination is over */
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	lib = &set->v[set->n++];
	memset(lib, 0, sizeof(*lib));
	snprintf(lib->library, sizeof(lib->library), "%s", library);
	snprintf(lib->path, sizeof(lib->path), "%s", path);
	snprintf(lib->display, sizeof(lib->display), "%s", path);
	snprintf(lib->probe_path, sizeof(lib->probe_path), "/proc/self/fd/%d", own);
	lib->fd = own;
	lib->id = id;
	lib->dev = id.dev;
	lib->ino = id.ino;
	return lib;
}

void attached_lib_detach(struct attached_lib *lib)
{
	size_t i;

	for (i = 0; i < lib->nlinks; i++)
		bpf_link__destroy(lib->links[i]);
	free(lib->links);
	free(lib->offs);
	lib->links = NULL;
	lib->offs = NULL;
	lib->nlinks = 0;
}

static void lib_release(struct attached_lib *lib)
{
	attached_lib_detach(lib);
	/* after the links: a probe path names this descriptor until they are gone */
	if (lib->fd >= 0)
		close(lib->fd);
	lib->fd = -1;
}

void attach_set_remove(struct attach_set *set, struct attached_lib *lib)
{
	size_t i = lib - set->v;

	lib_release(lib);
	memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*lib));
	set->n--;
}

void attach_set_destroy(struct attach_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		lib_release(&set->v[i]);
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

/*
 * Probe `func` at its entry (retprobe false: at a cheap point of it,
 * elf_probe_point) or at its returns (retprobe true: its first instruction,
 * where the stack holds the return address).
 */
static int attach_func(struct elf_image *img, struct attached_lib *lib, const char *func,
		       struct bpf_program *prog, uint64_t cookie, bool retprobe, char *err,
		       size_t errlen)
{
	uint64_t v = elf_func_vaddr(img, func);
	int64_t off;

	if (!v) {
		snprintf(err, errlen, "%s: %s not found", lib->path, func);
		return -1;
	}
	off = elf_vaddr_to_offset(img, retprobe ? v : elf_probe_point(img, v));
	if (off < 0) {
		snprintf(err, errlen, "%s: %s is outside the file", lib->path, func);
		return -1;
	}
	log_debug("%s: %s at 0x%llx (%s%s)", lib->path, bpf_program__name(prog),
		  (unsigned long long)off, retprobe ? "the returns of " : "", func);
	return attach_probe(lib, prog, off, cookie, retprobe, err, errlen);
}

int attach_entry_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen)
{
	return attach_func(img, lib, func, prog, cookie, false, err, errlen);
}

int attach_return_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			 struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen)
{
	return attach_func(img, lib, func, prog, cookie, true, err, errlen);
}
