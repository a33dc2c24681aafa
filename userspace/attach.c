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

static int link_create_multi(int prog_fd, const char *path, const uint64_t *offs,
			     const uint64_t *cookies, uint32_t cnt, uint32_t flags, uint32_t pid)
{
	union bpf_attr attr;
	struct link_create_uprobe_multi *lc = (void *)&attr.link_create;

	_Static_assert(sizeof(*lc) <= sizeof(attr) - offsetof(union bpf_attr, link_create),
		       "link_create layout");
	memset(&attr, 0, sizeof(attr));
	lc->prog_fd = prog_fd;
	lc->attach_type = PW_TRACE_UPROBE_MULTI;
	lc->path = (uintptr_t)path;
	lc->offsets = (uintptr_t)offs;
	lc->cookies = (uintptr_t)cookies;
	lc->cnt = cnt;
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
	const uint64_t zero = 0;
	int prog, link, e;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "pw_probe_multi", "GPL", insns, 2, &opts);
	if (prog < 0)
		return 0;
	link = link_create_multi(prog, "/proc/self/exe", &zero, &zero, 1, 0, INT_MAX);
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

static int link_add(struct attached_lib *lib, struct attach_link l, char *err, size_t errlen)
{
	struct attach_link *nl = realloc(lib->links, (lib->nlinks + 1) * sizeof(*nl));

	if (!nl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lib->links = nl;
	lib->links[lib->nlinks++] = l;
	return 0;
}

static int attach_probe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			uint64_t cookie, bool retprobe, char *err, size_t errlen)
{
	struct attach_probe *np = realloc(lib->probes, (lib->nprobes + 1) * sizeof(*np));

	if (!np) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lib->probes = np;
	/* placed by attach_commit(), with the others of its program */
	np[lib->nprobes++] = (struct attach_probe){ prog, off, cookie, retprobe };
	return 0;
}

/* Without uprobe_multi links: a perf event uprobe for each probe not yet linked. */
static int links_make_perf(struct attached_lib *lib, char *err, size_t errlen)
{
	for (; lib->nlinked < lib->nprobes; lib->nlinked++) {
		const struct attach_probe *p = &lib->probes[lib->nlinked];
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = p->cookie, .retprobe = p->retprobe);
		struct bpf_link *bl;

		/* a perf event each: each probe takes descriptors */
		if (attach_fds_short(err, errlen, lib->path))
			return -1;
		/* never lib->path: another process may map something else there by now */
		bl = bpf_program__attach_uprobe_opts(p->prog, -1, lib->probe_path, p->off, &opts);
		if (!bl) {
			snprintf(err, errlen, "%s: %s %s at 0x%llx: %s", lib->path,
				 p->retprobe ? "uretprobe" : "uprobe", bpf_program__name(p->prog),
				 (unsigned long long)p->off, strerror(errno));
			return -1;
		}
		if (link_add(lib, (struct attach_link){ .bl = bl, .fd = -1, .first = lib->nlinked,
							 .n = 1 }, err, errlen)) {
			bpf_link__destroy(bl);
			return -1;
		}
	}
	return 0;
}

/*
 * The probes not yet linked, grouped by program and kind, each group where its
 * first probe was; one uprobe_multi link of each group.
 */
static int links_make(struct attached_lib *lib, char *err, size_t errlen)
{
	struct attach_probe *p = lib->probes + lib->nlinked, *grouped = NULL;
	size_t i, j, k, n = lib->nprobes - lib->nlinked;
	uint64_t *offs = NULL, *cookies = NULL;
	bool *taken = NULL;
	int rc = -1;

	if (!multi_links)
		return links_make_perf(lib, err, errlen);
	if (!n)
		return 0;
	grouped = malloc(n * sizeof(*grouped));
	offs = malloc(n * sizeof(*offs));
	cookies = malloc(n * sizeof(*cookies));
	taken = calloc(n, sizeof(*taken));
	if (!grouped || !offs || !cookies || !taken) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0, k = 0; i < n; i++) {
		if (taken[i])
			continue;
		for (j = i; j < n; j++)
			if (!taken[j] && p[j].prog == p[i].prog && p[j].retprobe == p[i].retprobe) {
				taken[j] = true;
				grouped[k++] = p[j];
			}
	}
	memcpy(p, grouped, n * sizeof(*p));
	for (i = 0; i < n; i++) {
		offs[i] = p[i].off;
		cookies[i] = p[i].cookie;
	}
	for (i = 0; i < n; i = j) {
		int fd;

		for (j = i + 1; j < n && p[j].prog == p[i].prog && p[j].retprobe == p[i].retprobe; j++)
			;
		if (attach_fds_short(err, errlen, lib->path))
			goto out;
		/* never lib->path: another process may map something else there by now */
		fd = link_create_multi(bpf_program__fd(p[i].prog), lib->probe_path, offs + i,
				       cookies + i, j - i,
				       p[i].retprobe ? PW_F_UPROBE_MULTI_RETURN : 0, 0);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s %s at %zu offsets (0x%llx first): %s", lib->path,
				 p[i].retprobe ? "uretprobe" : "uprobe", bpf_program__name(p[i].prog),
				 j - i, (unsigned long long)p[i].off, strerror(errno));
			goto out;
		}
		if (link_add(lib, (struct attach_link){ .fd = fd, .first = lib->nlinked + i,
							 .n = j - i }, err, errlen)) {
			close(fd);
			goto out;
		}
	}
	lib->nlinked = lib->nprobes;
	rc = 0;
out:
	free(grouped);
	free(offs);
	free(cookies);
	free(taken);
	return rc;
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
static int link_verify_multi(const struct attached_lib *lib, const struct attach_link *l,
			     char *err, size_t errlen)
{
	const struct attach_probe *p = lib->probes + l->first;
	struct link_info_uprobe_multi info;
	uint32_t len = sizeof(info);
	char name[PATH_MAX] = "", want[PATH_MAX] = "";
	uint64_t *offs = calloc(l->n, sizeof(*offs));
	size_t i;
	ssize_t n;
	int rc = 0;

	if (!offs)
		return 0;
	memset(&info, 0, sizeof(info));
	info.path = (uintptr_t)name;
	info.path_size = sizeof(name);
	info.offsets = (uintptr_t)offs;
	info.count = l->n;
	if (bpf_obj_get_info_by_fd(l->fd, &info, &len) || info.type != PW_LINK_TYPE_UPROBE_MULTI)
		goto out;
	n = readlink(lib->probe_path, want, sizeof(want) - 1);
	if (n < 0)
		goto out;
	want[n] = 0;
	rc = 1;
	if (info.count != l->n || strcmp(name, want) ||
	    !(info.flags & PW_F_UPROBE_MULTI_RETURN) != !p->retprobe)
		rc = -1;
	for (i = 0; i < l->n && rc > 0; i++)
		if (offs[i] != p[i].off)
			rc = -1;
	if (rc < 0)
		snprintf(err, errlen, "link %u: %u probes on %.256s (+0x%llx first), not %zu on "
			 "%s (+0x%llx first)", info.id, info.count, name, (unsigned long long)offs[0],
			 l->n, want, (unsigned long long)p->off);
out:
	free(offs);
	return rc;
}

/* 1 if the kernel says the link holds the probes asked for, 0 if it cannot say, -1 if not */
static int link_verify(const struct attached_lib *lib, const struct attach_link *l, char *err,
		       size_t errlen)
{
	const char *path = lib->probe_path;
	struct bpf_link *link = l->bl;
	uint64_t off = lib->probes[l->first].off;
	struct link_info_perf_uprobe info;
	uint32_t len = sizeof(info);
	char name[64] = "";

	if (!link)
		return link_verify_multi(lib, l, err, errlen);
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

static int attach_verify(const struct attached_lib *lib, char *err, size_t errlen)
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
		int r = link_verify(lib, &lib->links[i], err, errlen);

		if (r < 0)
			return -1;
		read_back += r ? lib->links[i].n : 0;
	}
	log_debug("%s: %zu of %zu probes (%zu links) read back from the kernel on %s", lib->path,
		  read_back, lib->nprobes, lib->nlinks, lib->probe_path);
	return 0;
}

int attach_commit(struct attached_lib *lib, char *err, size_t errlen)
{
	if (links_make(lib, err, errlen))
		return -1;
	return attach_verify(lib, err, errlen);
}

void attach_probes_move(struct attached_lib *to, struct attached_lib *from)
{
	free(to->probes);
	to->probes = from->probes;
	to->nprobes = from->nprobes;
	to->nlinked = 0;
	from->probes = NULL;
	from->nprobes = from->nlinked = 0;
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
#define CLOSERS 64	/* a thousand libraries: about 8,000 links to close */

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
	pthread_attr_t attr;
	size_t i, started = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);	/* a close() each: little stack */
	for (i = 0; i < CLOSERS && i < n; i++) {
		c[i] = (struct closer){ .fds = fds, .n = n, .start = i };
		if (n < 4 || pthread_create(&th[i], &attr, closer_run, &c[i]))
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
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
		free(libs[i].probes);
		libs[i].probes = NULL;
		libs[i].nprobes = libs[i].nlinked = 0;
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
	return attach_call_sites_cookie(img, lib, import, prog, required, 0, err, errlen);
}

int attach_call_sites_cookie(struct elf_image *img, struct attached_lib *lib, const char *import,
			     struct bpf_program *prog, int required, uint64_t cookie, char *err,
			     size_t errlen)
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
	if (attach_sites(img, lib, sites, n, prog, cookie, what, err, errlen))
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
