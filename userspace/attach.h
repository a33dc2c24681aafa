/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The probes the daemon has placed, one entry per library file (device, inode). */
#ifndef PW_ATTACH_H
#define PW_ATTACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fileid.h"

struct bpf_link;
struct bpf_object;
struct bpf_program;
struct pinwarden_bpf;

/* One probe asked for: a program at an offset of the library's file. */
struct attach_probe {
	struct bpf_program *prog;
	uint64_t off, cookie;
	int retprobe;
};

/*
 * The links that hold the probes. Where the kernel has uprobe_multi links, one
 * per program (and entry or return) of a library, with all its offsets
 * (probes[first, first + n)); else a perf event link per probe (bl, n = 1).
 */
struct attach_link {
	struct bpf_link *bl;		/* perf event link, or NULL */
	int fd;				/* uprobe_multi link, or -1 */
	size_t first, n;
};

/*
 * Before the object is loaded: where the kernel has uprobe_multi links (6.6),
 * load its uprobe programs for them. A uprobe_multi link is released in one
 * grace period, and several in parallel share it; a perf event uprobe waits
 * for its own, serially (about 100 ms each: a daemon with 60 probes took 6 s
 * to stop). Returns whether they are used.
 */
int attach_multi_setup(struct bpf_object *obj);

struct attached_lib {
	char library[16];		/* "openssl", ... */
	char path[4096];		/* as opened by the daemon (may be under /proc/PID/) */
	char display[4160];		/* as the process named it, for people */
	char probe_path[32];		/* "/proc/self/fd/N": what the kernel resolves to fd */
	int fd;				/* the examined file, open while it is attached */
	struct file_id id;		/* what it was when examined */
	uint64_t dev, ino;
	struct attach_probe *probes;	/* those made into links come first */
	size_t nprobes, nlinked;
	struct attach_link *links;
	size_t nlinks;
	uint64_t unmapped_since_ns;	/* no process mapped it at the last look since (0: mapped) */
};

struct attach_set {
	struct attached_lib *v;
	size_t n;
	/* the last file that could not be attached: its family and why (enum uncovered_reason) */
	const char *failed_library;
	unsigned failed_reason;
	char failed_version[64];	/* UNCOVERED_UNSUPPORTED: the version the file says, or "" */
};

/* Would one more probe eat into the descriptors the daemon keeps for its own
 * files? Then true, with err saying so (strerror(EMFILE) in it). */
bool attach_fds_short(char *err, size_t errlen, const char *path);

/*
 * Uprobe `prog` at file offset `off` of lib's file: asked for, and placed by
 * attach_commit() (through lib->probe_path). Nothing here touches the kernel:
 * the probes of a library may be planned apart from the daemon's loop, on an
 * attached_lib of no set (see library_plan()).
 */
int attach_uprobe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
		  char *err, size_t errlen);

/* The same, with a value the program reads with bpf_get_attach_cookie() (e.g. which
 * build of a library this probe sits in). */
int attach_uprobe_cookie(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			 uint64_t cookie, char *err, size_t errlen);

/* Is the file (dev, ino) already attached? */
struct attached_lib *attach_set_find(struct attach_set *set, uint64_t dev, uint64_t ino);

/*
 * Add an entry for the open file `fd` (a copy of the descriptor is kept, and
 * every probe goes through it); `path` names it in logs. NULL with err.
 */
struct attached_lib *attach_set_add(struct attach_set *set, const char *library, int fd,
				    const char *path, char *err, size_t errlen);

/* Detach one library, close its file and forget it (entries after it move down). */
void attach_set_remove(struct attach_set *set, struct attached_lib *lib);

/*
 * Place the probes asked for since the last commit: one uprobe_multi link per
 * program and kind (entry or return), in the order each was first asked for.
 * Then verify: the file is still what was examined (same contents), its probe
 * path still resolves to it, and every link is one the kernel made on that
 * path at the offsets asked for. 0, or -1 with err.
 */
int attach_commit(struct attached_lib *lib, char *err, size_t errlen);

/* The probes asked for on `from` (not linked) become `to`'s, to commit. */
void attach_probes_move(struct attached_lib *to, struct attached_lib *from);

/* Is this path attached (compared by device and inode)? */
struct attached_lib *attach_set_find_path(struct attach_set *set, const char *path);

/* Destroy one library's links (its entry and file stay). */
void attached_lib_detach(struct attached_lib *lib);

void attach_set_destroy(struct attach_set *set);

/* Probe each of `sites` (virtual addresses of lib->path) with `prog` and `cookie`;
 * `what` names them in the debug log. 0, or -1 with err. */
struct elf_image;
int attach_sites(struct elf_image *img, struct attached_lib *lib, const uint64_t *sites, int n,
		 struct bpf_program *prog, uint64_t cookie, const char *what, char *err, size_t errlen);

/* Probe every call of the imported function `import` in lib->path with `prog`;
 * returns how many, or -1 with err (fewer than `required` is an error). */
int attach_call_sites(struct elf_image *img, struct attached_lib *lib, const char *import,
		      struct bpf_program *prog, int required, char *err, size_t errlen);
/* The same, each with `cookie`. */
int attach_call_sites_cookie(struct elf_image *img, struct attached_lib *lib, const char *import,
			     struct bpf_program *prog, int required, uint64_t cookie, char *err,
			     size_t errlen);

/* Probe a function by name, at a cheap point of its entry (elf_probe_point). */
int attach_entry(struct elf_image *img, struct attached_lib *lib, const char *func,
		 struct bpf_program *prog, char *err, size_t errlen);

/* The same, with an attach cookie. */
int attach_entry_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen);

/* Probe the returns of a function by name (a uretprobe at its first instruction). */
int attach_return_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			 struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen);

#endif /* PW_ATTACH_H */
