/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The probes the daemon has placed, one entry per library file (device, inode). */
#ifndef PW_ATTACH_H
#define PW_ATTACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_link;
struct bpf_program;
struct pinwarden_bpf;

struct attached_lib {
	char library[16];		/* "openssl", ... */
	char path[4096];		/* as opened by the daemon (may be under /proc/PID/) */
	char display[4160];		/* as the process named it, for people */
	uint64_t dev, ino;
	struct bpf_link **links;
	size_t nlinks;
};

struct attach_set {
	struct attached_lib *v;
	size_t n;
	/* the last file that could not be attached: its family and why (enum uncovered_reason) */
	const char *failed_library;
	unsigned failed_reason;
};

/* Uprobe `prog` at file offset `off` of lib->path; the link is kept in lib. */
int attach_uprobe(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
		  char *err, size_t errlen);

/* The same, with a value the program reads with bpf_get_attach_cookie() (e.g. which
 * build of a library this probe sits in). */
int attach_uprobe_cookie(struct attached_lib *lib, struct bpf_program *prog, uint64_t off,
			 uint64_t cookie, char *err, size_t errlen);

/* Is the file (dev, ino) already attached? */
struct attached_lib *attach_set_find(struct attach_set *set, uint64_t dev, uint64_t ino);

/* Add an entry for path (stat'ed here); NULL with err on failure. */
struct attached_lib *attach_set_add(struct attach_set *set, const char *library, const char *path,
				    char *err, size_t errlen);

/* Is this path attached (compared by device and inode)? */
struct attached_lib *attach_set_find_path(struct attach_set *set, const char *path);

/* Detach and forget one library (its links are destroyed). */
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

/* Probe a function by name, at a cheap point of its entry (elf_probe_point). */
int attach_entry(struct elf_image *img, struct attached_lib *lib, const char *func,
		 struct bpf_program *prog, char *err, size_t errlen);

/* The same, with an attach cookie. */
int attach_entry_cookie(struct elf_image *img, struct attached_lib *lib, const char *func,
			struct bpf_program *prog, uint64_t cookie, char *err, size_t errlen);

#endif /* PW_ATTACH_H */
