// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery (the daemon's half of bpf/discover.bpf.c): examine every file a
 * process maps, once, and attach what is a TLS library; hook every glibc
 * dynamic linker so that later loads are seen; continue the processes the
 * kernel stopped for us.
 *
 * Files are reached through /proc/PID/map_files/START-END, which names the
 * mapped inode itself in whatever mount namespace the process lives, even
 * when its path means nothing here (a container's /usr/lib) or the file was
 * replaced on disk since.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "discover.h"
#include "elfsym.h"
#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

static uint64_t kdev(dev_t d)
{
	return (uint64_t)major(d) << 20 | minor(d);
}

static bool known(struct daemon *d, uint64_t dev, uint64_t ino)
{
	struct pw_file_key k = { .dev = dev, .ino = ino };
	__u8 v;

	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.known_files), &k, &v) == 0;
}

static void known_add(struct daemon *d, uint64_t dev, uint64_t ino)
{
	struct pw_file_key k = { .dev = dev, .ino = ino };
	__u8 one = 1;

	bpf_map_update_elem(bpf_map__fd(d->skel->maps.known_files), &k, &one, BPF_ANY);
}

/* A glibc dynamic linker: hook its r_brk so that objects it maps later are seen. */
static int ldso_hook(struct daemon *d, struct elf_image *img, const char *path,
		     const char *display)
{
	uint64_t brk = elf_func_vaddr(img, "_dl_debug_state");
	uint64_t rdebug = elf_object_vaddr(img, "_r_debug");
	struct attached_lib *lib;
	char err[512];
	int64_t off;

	if (!brk || !rdebug)
		return 0;
	off = elf_vaddr_to_offset(img, brk);
	if (off < 0)
		return 0;
	lib = attach_set_add(&d->libs, "ld.so", path, err, sizeof(err));
	if (!lib) {
		log_warnx("discovery: %s", err);
		return -1;
	}
	snprintf(lib->display, sizeof(lib->display), "%s", display);
	/* the cookie: from the probed instruction to _r_debug */
	if (attach_uprobe_cookie(lib, d->skel->progs.pw_ldso_brk, off, rdebug - brk, err,
				 sizeof(err))) {
		log_warnx("discovery: NOT watching the libraries %s loads: %s", display, err);
		attached_lib_detach(lib);
		d->libs.n--;
		return -1;
	}
	log_debug("discovery: watching %s (r_brk at 0x%llx)", display, (unsigned long long)off);
	return 1;
}

/* Examine one mapped file once: a TLS library, a dynamic linker, or neither. */
static void examine(struct daemon *d, const char *path, const char *display)
{
	struct attached_lib *lib;
	struct elf_image *img;
	struct stat st;
	char err[512];
	int r;

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return;
	if (known(d, kdev(st.st_dev), st.st_ino))
		return;
	r = library_attach_file(d->skel, &d->libs, path, err, sizeof(err));
	if (r < 0) {
		log_warnx("%s: TLS library NOT covered: %s", display, err);
	} else if (r > 0) {
		lib = attach_set_find(&d->libs, st.st_dev, st.st_ino);
		if (lib)
			snprintf(lib->display, sizeof(lib->display), "%s", display);
		d->discovered++;
		log_info("attached %s (%s)", display, lib ? lib->library : "?");
	} else {
		img = elf_image_open(path, err, sizeof(err));
		if (img) {
			ldso_hook(d, img, path, display);
			elf_image_close(img);
		}
	}
	known_add(d, kdev(st.st_dev), st.st_ino);
	d->examined++;
}

/* Every executable file mapping of one process. */
int discover_process(struct daemon *d, pid_t pid)
{
	char path[64], line[4096 + 256];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char range[64], perms[8], devs[16], file[4096] = "";
		unsigned long long ino;
		unsigned maj, min;

		if (sscanf(line, "%63s %7s %*s %15s %llu %4095[^\n]", range, perms, devs, &ino,
			   file) < 4 || !ino || perms[2] != 'x')
			continue;
		if (sscanf(devs, "%x:%x", &maj, &min) != 2)
			continue;
		/* cheap first: most mappings are files examined long ago */
		if (known(d, (uint64_t)maj << 20 | min, ino))
			continue;
		{
			char mf[128], display[4096];
			const char *name = file;
			unsigned long long lo, hi;

			while (*name == ' ')
				name++;
			/* map_files names carry no leading zeros, /proc/PID/maps pads to 8
			 * digits: a non-PIE executable at 0x400000 (node, Go) is "400000-..." */
			if (sscanf(range, "%llx-%llx", &lo, &hi) != 2)
				continue;
			snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", pid, lo, hi);
			snprintf(display, sizeof(display), "%.4000s", name[0] ? name : mf);
			examine(d, mf, display);
			n++;
		}
	}
	fclose(f);
	return n;
}

int discover_scan_all(struct daemon *d)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int procs = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (discover_process(d, (pid_t)pid) >= 0)
			procs++;
	}
	closedir(dir);
	return procs;
}

void discover_on_record(struct daemon *d, const struct pw_discover_rec *r)
{
	d->discover_records++;
	log_debug("discovery: pid %u stopped on %s %llu:%llu", r->pid,
		  r->type == PW_REC_EXEC ? "exec of" : "a new object,", (unsigned long long)r->dev,
		  (unsigned long long)r->ino);
	discover_process(d, (pid_t)r->pid);
	/* whatever happened, do not stop this process again for the same file */
	if (r->dev || r->ino)
		known_add(d, r->dev, r->ino);
	if (kill((pid_t)r->pid, SIGCONT) && errno != ESRCH)
		log_warn("cannot continue pid %u", r->pid);
}
