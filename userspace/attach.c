// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
 * Probes take descriptors (one each; two as perf events) until the open files
 * limit: stop attaching while FD_RESERVE are left, so that the daemon can still
 * write its status and metrics, read /proc and say what it left out. Descriptors
 * are handed out lowest first: the lowest free one tells how many are in use, or
 * more (holes).
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

/*
 * uprobe_multi links, made with the bpf() syscall: the installed libbpf (1.1)
 * and uapi header predate them (kernel 6.6). The ABI is stable; these are its
 * numbers and the link_create member's layout.
 */
#define PW_TRACE_UPROBE_MULTI		48	/* enum bpf_attach_type */
#define PW_LINK_TYPE_UPROBE_MULTI	12	/* enum bpf_link_type */
#define PW_F_UPROBE_MULTI_RETURN	1

struct link_create_uprobe_multi {
	uint32_t prog_fd, target_fd, attach_type, flags;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t cnt, multi_flags, pid;
};

struct link_info_uprobe_multi {
	uint32_t type, id, prog_id, pad;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t path_size, count, flags, pid;
};

static int multi_links = 0;	/* attach_multi_setup() found them */

static int link_create_multi(int prog_fd, const char *path, uint64_t off, uint64_t cookie,
			     uint32_t flags, uint32_t pid)
{
	union bpf_attr attr;
	struct link_create_uprobe_multi *lc = (void *)&attr.link_create;

	_Static_assert(sizeof(*lc) <= sizeof(attr) - offsetof(union bpf_attr, link_create),
		       "link_create layout");
	memset(&attr, 0, sizeof(attr));
	lc->prog_fd = prog_fd;
	lc->attach_type = PW_TRACE_UPROBE_MULTI;
	lc->path = (uintptr_t)path;
	lc->offsets = (uintptr_t)&off;
	lc->cookies = (uintptr_t)&cookie;
	lc->cnt = 1;
	lc->multi_flags = flags;
	lc->pid = pid;
	return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}

/*
 * Does the kernel make uprobe_multi links? Asked without placing a probe: a
 * link for a process that cannot exist fails with ESRCH once the attach type
 * is known, and with EINVAL where it is not.
 */
static int multi_supported(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = PW_TRACE_UPROBE_MULTI);
	int prog, link, e;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "pw_probe_multi", "GPL", insns, 2, &opts);
	if (prog < 0)
		return 0;
	link = link_create_multi(prog, "/proc/self/exe", 0, 0, 0, INT_MAX);
	e = errno;
	if (link >= 0)
		close(link);
	close(prog);
	return link < 0 && e == ESRCH;
}

int attach_multi_setup(struct bpf_object *obj)
{
	struct bpf_program *prog;

	multi_links = multi_supported();
	if (!multi_links) {
		log_warnx("this kernel has no uprobe_multi links: perf event uprobes are used, "
			  "and stopping the daemon takes about 0.1 s per probe");
		return 0;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);

		if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE &&
		    (!strncmp(sec, "uprobe", 6) || !strncmp(sec, "uretprobe", 9)))
			bpf_program__set_expected_attach_type(prog, PW_TRACE_UPROBE_MULTI);
	}
	return 1;
}

static int attach_probe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			uint64_t cookie, bool retprobe, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = retprobe);
	struct attach_link l = { .fd = -1, .off = off, .retprobe = retprobe }, *nl;

	/* each probe, not only each library: one library's probes may be many */
	if (attach_fds_short(err, errlen, lib->path))
		return -1;
	nl = realloc(lib->links, (lib->nlinks + 1) * sizeof(*nl));
	if (!nl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lib->links = nl;
	/* never lib->path: another process may map something else there by now */
	if (multi_links)
		l.fd = link_create_multi(bpf_program__fd(prog), lib->probe_path, off, cookie,
					 retprobe ? PW_F_UPROBE_MULTI_RETURN : 0, 0);
	else
		l.bl = bpf_program__attach_uprobe_opts(prog, -1, lib->probe_path, off, &opts);
	if (multi_links ? l.fd < 0 : !l.bl) {
		snprintf(err, errlen, "%s: %s %s at 0x%llx: %s", lib->path,
			 retprobe ? "uretprobe" : "uprobe", bpf_program__name(prog),
			 (unsigned long long)off, strerror(errno));
		return -1;
	}
	lib->links[lib->nlinks++] = l;
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

/* The same for a uprobe_multi link: the kernel names its file by its path from our root. */
static int link_verify_multi(const struct attach_link *l, const char *path, char *err,
			     size_t errlen)
{
	struct link_info_uprobe_multi info;
	uint32_t len = sizeof(info);
	char name[PATH_MAX] = "", want[PATH_MAX] = "";
	uint64_t off = 0;
	ssize_t n;

	memset(&info, 0, sizeof(info));
	info.path = (uintptr_t)name;
	info.path_size = sizeof(name);
	info.offsets = (uintptr_t)&off;
	info.count = 1;
	if (bpf_obj_get_info_by_fd(l->fd, &info, &len) || info.type != PW_LINK_TYPE_UPROBE_MULTI)
		return 0;
	n = readlink(path, want, sizeof(want) - 1);
	if (n < 0)
		return 0;
	want[n] = 0;
	if (info.count != 1 || off != l->off || strcmp(name, want) ||
	    !(info.flags & PW_F_UPROBE_MULTI_RETURN) != !l->retprobe) {
		snprintf(err, errlen, "link %u: a probe on %.256s+0x%llx, not on %s+0x%llx", info.id,
			 name, (unsigned long long)off, want, (unsigned long long)l->off);
		return -1;
	}
	return 1;
}

/* 1 if the kernel says the link is a uprobe on `path` at `off`, 0 if it cannot say, -1 if not */
static int link_verify(const struct attach_link *l, const char *path, char *err, size_t errlen)
{
	struct bpf_link *link = l->bl;
	uint64_t off = l->off;
	struct link_info_perf_uprobe info;
	uint32_t len = sizeof(info);
	char name[64] = "";

	if (!link)
		return link_verify_multi(l, path, err, errlen);
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
		int r = link_verify(&lib->links[i], lib->probe_path, err, errlen);

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

/*
 * Close uprobe_multi links from several threads: each close waits for a grace
 * period, and closes that wait together share one.
 */
#define CLOSERS 8

struct closer {
	const int *fds;
	size_t n, start;
};

static void *closer_run(void *arg)
{
	struct closer *c = arg;
	size_t i;

	for (i = c->start; i < c->n; i += CLOSERS)
		close(c->fds[i]);
	return NULL;
}

static void close_parallel(const int *fds, size_t n)
{
	struct closer c[CLOSERS];
	pthread_t th[CLOSERS];
	size_t i, started = 0;

	for (i = 0; i < CLOSERS && i < n; i++) {
		c[i] = (struct closer){ .fds = fds, .n = n, .start = i };
		if (n < 4 || pthread_create(&th[i], NULL, closer_run, &c[i]))
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	/* what no thread took (few links, or no thread to be had): here */
	for (i = started; i < CLOSERS && i < n; i++) {
		c[i] = (struct closer){ .fds = fds, .n = n, .start = i };
		closer_run(&c[i]);
	}
}

/* Destroy the links of libs[0..n): the perf event ones one by one, the others in parallel. */
static void links_destroy(struct attached_lib *libs, size_t n)
{
	size_t i, j, nfds = 0, total = 0;
	int *fds;

	for (i = 0; i < n; i++)
		total += libs[i].nlinks;
	fds = total ? malloc(total * sizeof(*fds)) : NULL;
	for (i = 0; i < n; i++) {
		for (j = 0; j < libs[i].nlinks; j++) {
			struct attach_link *l = &libs[i].links[j];

			if (l->bl)
				bpf_link__destroy(l->bl);
			else if (fds)
				fds[nfds++] = l->fd;
			else
				close(l->fd);
		}
		free(libs[i].links);
		libs[i].links = NULL;
		libs[i].nlinks = 0;
	}
	if (fds)
		close_parallel(fds, nfds);
	free(fds);
}

void attached_lib_detach(struct attached_lib *lib)
{
	links_destroy(lib, 1);
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

	/* every library's links at once: their closes share grace periods */
	links_destroy(set->v, set->n);
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
