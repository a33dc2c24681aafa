// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Discovery (the daemon's half of bpf/discover.bpf.c): examine every file a
 * process maps, once, and attach what is a TLS library; hook every glibc
 * dynamic linker so that later loads are seen; tell the kernel when a
 * process's notes are handled, and continue it if it was stopped at the gate.
 *
 * Files are reached through /proc/PID/map_files/START-END, which names the
 * mapped inode itself in whatever mount namespace the process lives, even
 * when its path means nothing here (a container's /usr/lib) or the file was
 * replaced on disk since. That link follows whatever the process maps there
 * now, and the process may belong to anyone: it is opened once, checked to be
 * the (device, inode) the kernel listed, and everything after (the ELF
 * parsing, every uprobe) goes through that descriptor (fileid.h, attach.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "examine.h"
#include "fileid.h"
#include "libraries.h"
#include "log.h"
#include "stops.h"
#include "pinwarden.skel.h"

const char *const discover_ungated_names[PW_UNGATED_MAX] = {
	[PW_UNGATED_UNRESPONSIVE] = "daemon_unresponsive",
	[PW_UNGATED_BUSY] = "too_many_stopped",
	[PW_UNGATED_TERMINAL] = "terminal_job",
	[PW_UNGATED_TRACED] = "traced",
	[PW_UNGATED_FULL] = "stop_failed",
};

static bool known_stamp(struct daemon *d, uint64_t kdev, uint64_t ino, struct pw_file_stamp *s)
{
	struct pw_file_key k = { .dev = kdev, .ino = ino };

	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.known_files), &k, s) == 0;
}

static void known_add(struct daemon *d, const struct file_id *id)
{
	struct pw_file_key k = { .dev = fileid_kdev(id->dev), .ino = id->ino };
	struct pw_file_stamp s;

	fileid_stamp(id, &s);
	bpf_map_update_elem(bpf_map__fd(d->skel->maps.known_files), &k, &s, BPF_ANY);
}

/*
 * Examined, and unchanged since? A cheap look through the process's mapping
 * (its change time; the generation is the kernel's to compare): a wrong answer
 * only costs an examination, which opens the file and checks it again.
 */
static bool known_fresh(struct daemon *d, uint64_t kdev, uint64_t ino, const char *mf)
{
	struct pw_file_stamp s;
	struct statx st;

	if (!known_stamp(d, kdev, ino, &s))
		return false;
	/* what the kernel has in memory: never a request to an NFS server or a FUSE
	 * daemon (that may not answer) from the loop */
	return statx(AT_FDCWD, mf, AT_STATX_DONT_SYNC, STATX_INO | STATX_CTIME, &st) == 0 &&
	       ((uint64_t)st.stx_dev_major << 20 | st.stx_dev_minor) == kdev &&
	       st.stx_ino == ino && st.stx_ctime.tv_sec == s.ctime_sec &&
	       (st.stx_ctime.tv_nsec & PW_CTIME_NSEC_MASK) == s.ctime_nsec;
}

/* the process a /proc/PID/map_files/... path reaches a file through (0: none) */
static uint32_t mf_pid(const char *mf)
{
	unsigned pid;

	return sscanf(mf, "/proc/%u/map_files/", &pid) == 1 ? pid : 0;
}

/*
 * Examine the open file `fd` (it is `id`): a TLS library, a dynamic linker, or
 * neither, as `plan` says (an examination worker's), or as its bytes in
 * `image_fd` (a copy or itself) say, parsed here without a plan; the library
 * attached, or NULL.
 */
static const char *examine_fd(struct daemon *d, int fd, int image_fd, const struct file_id *id,
			      const char *path, const char *display, struct library_plan *plan)
{
	struct library_plan *own = NULL;
	struct attached_lib *lib = NULL;
	char err[512];
	int r = -1;

	if (!plan)
		plan = own = library_plan(d->skel, fd, image_fd, path);
	attach_set_failed_reset(&d->libs);
	if (plan)
		r = library_apply(&d->libs, plan, fd, id, path, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s: out of memory", path);
	if (r < 0) {
		struct uncovered_where at = { .dev = id->dev, .ino = id->ino, .pid = mf_pid(path) };

		events_library_uncovered(d, &at, d->libs.failed_library, d->libs.failed_version,
					 display, d->libs.failed_reason, err);
	} else if (r > 0) {
		lib = attach_set_find(&d->libs, id->dev, id->ino);
		if (lib)
			snprintf(lib->display, sizeof(lib->display), "%s", display);
		d->discovered++;
		log_info("attached %s (%s)", display, lib ? lib->library : "?");
	}
	library_plan_free(own);
	known_add(d, id);
	d->examined++;
	return lib ? lib->library : NULL;
}

/*
 * An attached file whose contents changed (rewritten in place): its probes sit
 * at offsets of the old code. Detach them, say so, and examine what it is now
 * (through `fd`, the same inode).
 */
static void library_changed(struct daemon *d, struct attached_lib *lib, int fd,
			    const struct file_id *now, struct library_plan *plan)
{
	char library[sizeof(lib->library)], display[sizeof(lib->display)];
	char path[sizeof(lib->path)];
	size_t probes = lib->nprobes;
	const char *again;

	memcpy(library, lib->library, sizeof(library));
	memcpy(display, lib->display, sizeof(display));
	memcpy(path, lib->path, sizeof(path));
	log_warnx("%s (%s) changed on disk: its %zu probes detached, examined again", display,
		  library, probes);
	attach_set_remove(&d->libs, lib);
	d->disc.changed++;
	again = examine_fd(d, fd, fd, now, path, display, plan);
	events_library_changed(d, library, display, now->dev, now->ino, probes, again);
}

/* files root may not read, remembered by (kdev, ino) so that each is reported
 * once: the kernel notes them at every mapping, since they cannot be examined */
#define DENIED_KEEP	4096

/*
 * A mapped file the daemon may not read (a FUSE mount without allow_other
 * refuses every user but its owner, root included): whether it holds a TLS
 * implementation cannot be known, so its process's handshakes with it are not
 * judged. Say so, once per file, with the process that maps it.
 */
static void report_denied(struct daemon *d, uint64_t kdev, uint64_t ino, const char *mf,
			  const char *display, const char *err)
{
	struct uncovered_where at = { fileid_udev(kdev), ino, mf_pid(mf) };
	char why[768];
	size_t i;

	for (i = 0; i < d->disc.ndenied; i++)
		if (d->disc.denied[i].dev == kdev && d->disc.denied[i].ino == ino)
			return;
	if (!d->disc.denied)
		d->disc.denied = calloc(DENIED_KEEP, sizeof(*d->disc.denied));
	if (d->disc.denied && d->disc.ndenied < DENIED_KEEP) {
		d->disc.denied[d->disc.ndenied].dev = kdev;
		d->disc.denied[d->disc.ndenied++].ino = ino;
	}
	snprintf(why, sizeof(why), "%s: root may not read it (a FUSE mount without allow_other?): "
		 "whether it holds a TLS implementation is unknown, and its handshakes are not "
		 "judged", err);
	events_library_uncovered(d, &at, NULL, NULL, display, UNCOVERED_UNREADABLE, why);
}

/* One mapped file, opened as `fd` (it is `id`, the (kdev, ino) the kernel
 * reported), its bytes in `image_fd`. */
static void examine_opened(struct daemon *d, int fd, int image_fd, const struct file_id *id,
			   const char *mf, const char *display, struct library_plan *plan)
{
	struct pw_file_stamp was, is;
	struct attached_lib *lib;

	fileid_stamp(id, &is);
	lib = attach_set_find(&d->libs, id->dev, id->ino);
	if (lib && !fileid_same_content(&lib->id, id)) {
		library_changed(d, lib, fd, id, plan);
	} else if (lib) {
		/* only its metadata changed (chmod, a new link): the probes stand */
		lib->id = *id;
		known_add(d, id);
	} else if (!known_stamp(d, fileid_kdev(id->dev), id->ino, &was) ||
		   memcmp(&was, &is, sizeof(is))) {
		examine_fd(d, fd, image_fd, id, mf, display, plan);
	}
}

/* Examine one mapped file once, on the loop (no workers): the one the kernel
 * reported as (kdev, ino). */
static void examine_here(struct daemon *d, const char *mf, uint64_t kdev, uint64_t ino,
			 const char *display)
{
	struct file_id id;
	char err[512];
	int fd;

	fd = fileid_open(mf, kdev, ino, &id, err, sizeof(err));
	if (fd == FILEID_DENIED) {
		report_denied(d, kdev, ino, mf, display, err);
		return;
	}
	if (fd == FILEID_OTHER) {
		/* mapped over since /proc/PID/maps was read: not what was reported */
		d->disc.remapped++;
		log_debug("discovery: %s", err);
		return;
	}
	if (fd < 0)
		return;
	examine_opened(d, fd, fd, &id, mf, display, NULL);
	close(fd);
}

/* ---- examination by the workers (examine.h) --------------------------------
 * A file goes to a worker once (d->disc.files, by tag); every record whose
 * process maps it waits for it (a waiter, with the files it waits for). When
 * a waiter has none left, its process's notes are done: the kernel is told and
 * the process continued, as when files were examined on the spot. */

static struct disc_file *file_find(struct daemon *d, uint64_t kdev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < d->disc.nfiles; i++)
		if (d->disc.files[i].kdev == kdev && d->disc.files[i].ino == ino)
			return &d->disc.files[i];
	return NULL;
}

static int waiter_add(struct disc_waiter *w, uint64_t kdev, uint64_t ino)
{
	struct disc_key *k;
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->keys[i].kdev == kdev && w->keys[i].ino == ino)
			return 0;
	k = realloc(w->keys, (w->n + 1) * sizeof(*k));
	if (!k)
		return -1;
	w->keys = k;
	w->keys[w->n].kdev = kdev;
	w->keys[w->n++].ino = ino;
	return 0;
}

/* Hand (kdev, ino) to a worker, or wait for the one that has it; 1 if w waits. */
static int examine_later(struct daemon *d, struct disc_waiter *w, const char *mf, uint64_t kdev,
			 uint64_t ino, const char *display)
{
	struct disc_file *f = file_find(d, kdev, ino), *nf;

	if (!f) {
		/* given up already, its worker still blocked in it: reported once */
		if (examine_busy_with(d->disc.pool, kdev, ino))
			return 0;
		nf = realloc(d->disc.files, (d->disc.nfiles + 1) * sizeof(*nf));
		if (!nf)
			return 0;
		d->disc.files = nf;
		f = &nf[d->disc.nfiles];
		memset(f, 0, sizeof(*f));
		f->tag = ++d->disc.next_tag;
		f->kdev = kdev;
		f->ino = ino;
		snprintf(f->mf, sizeof(f->mf), "%s", mf);
		f->display = strdup(display);
		if (!f->display || examine_submit(d->disc.pool, mf, kdev, ino, f->tag)) {
			free(f->display);
			return 0;
		}
		d->disc.nfiles++;
	}
	return w && !waiter_add(w, kdev, ino);
}

/* One file of a process, unless known: examined now (no workers), or handed to
 * the workers with `w` waiting for it. */
static int scan_one(struct daemon *d, struct disc_waiter *w, const char *mf, uint64_t kdev,
		    uint64_t ino, const char *name)
{
	char display[4096];

	/* cheap first: most mappings are files examined long ago */
	if (known_fresh(d, kdev, ino, mf))
		return 0;
	snprintf(display, sizeof(display), "%.4000s", name[0] ? name : mf);
	if (d->disc.pool)
		examine_later(d, w, mf, kdev, ino, display);
	else
		examine_here(d, mf, kdev, ino, display);
	return 1;
}

/*
 * Every executable file mapping of one process, and the file the kernel noted
 * (`note`, or NULL: a shared object whose first mapping may not be executable,
 * or not be in place yet), examined now (no workers), or handed to the
 * workers with `w` waiting for them.
 */
static int scan_process(struct daemon *d, pid_t pid, struct disc_waiter *w,
			const struct pw_discover_rec *note)
{
	char path[64], line[4096 + 256];
	bool noted = !note || !note->ino;
	int n = 0, pass;
	FILE *f;

	for (pass = 0; pass < 2 && (!pass || !noted); pass++) {
		snprintf(path, sizeof(path), "/proc/%d/maps", pid);
		f = fopen(path, "re");
		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f)) {
			char range[64], perms[8], devs[16], file[4096] = "", mf[128];
			unsigned long long ino, lo, hi;
			const char *name = file;
			unsigned maj, min;
			uint64_t kdev;
			bool is_note;

			if (sscanf(line, "%63s %7s %*s %15s %llu %4095[^\n]", range, perms, devs,
				   &ino, file) < 4 || !ino)
				continue;
			if (sscanf(devs, "%x:%x", &maj, &min) != 2)
				continue;
			kdev = (uint64_t)maj << 20 | min;
			is_note = note && note->dev == kdev && note->ino == ino;
			if (perms[2] != 'x' && !is_note)
				continue;
			if (is_note) {
				if (noted)
					continue;
				noted = true;
			} else if (pass) {
				continue;
			}
			/* map_files names carry no leading zeros, /proc/PID/maps pads to 8
			 * digits: a non-PIE executable at 0x400000 (node, Go) is "400000-..." */
			if (sscanf(range, "%llx-%llx", &lo, &hi) != 2)
				continue;
			snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", pid, lo, hi);
			while (*name == ' ')
				name++;
			n += scan_one(d, w, mf, kdev, ino, name);
		}
		fclose(f);
		if (noted || note->fd < 0)
			continue;
		/* not mapped yet (the kernel told us as it chose the address): through the
		 * descriptor, while it is open, checked to be the file noted; else the
		 * mapping is in place by now, and the second pass finds it */
		{
			char fdp[64], name[4096];
			struct statx st;
			ssize_t len;

			snprintf(fdp, sizeof(fdp), "/proc/%d/fd/%d", pid, note->fd);
			if (statx(AT_FDCWD, fdp, AT_STATX_DONT_SYNC, STATX_INO, &st) ||
			    ((uint64_t)st.stx_dev_major << 20 | st.stx_dev_minor) != note->dev ||
			    st.stx_ino != note->ino)
				continue;
			len = readlink(fdp, name, sizeof(name) - 1);
			name[len > 0 ? len : 0] = 0;
			noted = true;
			n += scan_one(d, w, fdp, note->dev, note->ino, name);
		}
	}
	if (!noted)
		d->disc.note_unfound++;
	return n;
}

/* ---- mappings no hook saw ------------------------------------------------ */

/* Reported once per file per daemon: the file was examined then (or is being). */
static bool unseen_reported(struct daemon *d, uint64_t kdev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < d->disc.nunseen; i++)
		if (d->disc.unseen[i].kdev == kdev && d->disc.unseen[i].ino == ino)
			return true;
	if (d->disc.nunseen < DISCOVER_UNSEEN_MAX) {
		d->disc.unseen[d->disc.nunseen].kdev = kdev;
		d->disc.unseen[d->disc.nunseen++].ino = ino;
	}
	return false;
}

/*
 * Every DISCOVER_UNSEEN_NS: the executable mappings of files the kernel does
 * not know as examined, in processes with no note pending (bpf/discover.bpf.c:
 * pw_vma_unseen). What no hook saw mapped (a shared object placed only at a
 * fixed address) ran unexamined until now: each such file is examined, and
 * reported once (discovery_timeout, reason unseen_mapping).
 */
void discover_sweep_unseen(struct daemon *d)
{
	uint64_t now = stops_now_ns();
	struct pw_unseen_rec recs[64];
	size_t i, handed = 0;
	ssize_t got;
	int fd;

	if (d->no_discover || !d->skel || !d->skel->bss->discover_on || now < d->disc.unseen_next_ns)
		return;
	d->disc.unseen_next_ns = now + DISCOVER_UNSEEN_NS;
	if (!d->disc.unseen_iter) {
		d->disc.unseen_iter = bpf_program__attach_iter(d->skel->progs.pw_vma_unseen, NULL);
		if (!d->disc.unseen_iter) {
			log_warnx("discovery: cannot walk every mapping (iter/task_vma): a shared "
				  "object mapped only at a fixed address is NOT found");
			d->disc.unseen_next_ns = UINT64_MAX;
			return;
		}
	}
	fd = bpf_iter_create(bpf_link__fd(d->disc.unseen_iter));
	if (fd < 0)
		return;
	while (handed < DISCOVER_UNSEEN_PER_SWEEP && (got = read(fd, recs, sizeof(recs))) > 0) {
		for (i = 0; i < (size_t)got / sizeof(recs[0]); i++) {
			const struct pw_unseen_rec *r = &recs[i];
			char mf[128], name[4096];
			ssize_t len;

			snprintf(mf, sizeof(mf), "/proc/%u/map_files/%llx-%llx", r->pid,
				 (unsigned long long)r->start, (unsigned long long)r->end);
			/* in the workers' hands already, or examined since the walk */
			if (file_find(d, r->dev, r->ino) ||
			    (d->disc.pool && examine_busy_with(d->disc.pool, r->dev, r->ino)) ||
			    known_fresh(d, r->dev, r->ino, mf))
				continue;
			len = readlink(mf, name, sizeof(name) - 1);
			name[len > 0 ? len : 0] = 0;
			if (!unseen_reported(d, r->dev, r->ino)) {
				d->disc.unseen_found++;
				log_warnx("discovery: pid %u (%.16s) maps %s, which no hook saw it map: "
					  "its handshakes so far were NOT judged; examined now", r->pid,
					  r->comm, name[0] ? name : mf);
				events_discovery_timeout(d, r->pid, r->comm, r->dev, r->ino,
							 "unseen_mapping", false, 0);
			}
			scan_one(d, NULL, mf, r->dev, r->ino, name);
			handed++;
		}
	}
	close(fd);
}

/* ---- libraries no process maps any more --------------------------------- */

struct lib_key {
	uint64_t kdev, ino;
	size_t idx;			/* in d->libs */
};

static int lib_key_cmp(const void *a, const void *b)
{
	const struct lib_key *x = a, *y = b;

	if (x->kdev != y->kdev)
		return x->kdev < y->kdev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * Mark in `mapped` every library of `keys` that some process maps (any mapping,
 * executable or not), from the kernel's own walk of every process's mappings
 * (bpf/discover.bpf.c: pw_vma_files), which no process can hide from. -1 when
 * the walk could not be made or read whole: then none may be taken for unmapped.
 */
static int mark_mapped(struct daemon *d, const struct lib_key *keys, size_t n, bool *mapped)
{
	struct pw_file_key recs[256];
	struct lib_key k, *hit;
	ssize_t got;
	int fd, rc = 0;
	size_t i;

	if (!d->disc.vma_iter) {
		d->disc.vma_iter = bpf_program__attach_iter(d->skel->progs.pw_vma_files, NULL);
		if (!d->disc.vma_iter) {
			d->disc.vma_iter = NULL;
			return -1;
		}
	}
	fd = bpf_iter_create(bpf_link__fd(d->disc.vma_iter));
	if (fd < 0)
		return -1;
	while ((got = read(fd, recs, sizeof(recs))) > 0) {
		if (got % sizeof(recs[0])) {
			rc = -1;
			break;
		}
		for (i = 0; i < (size_t)got / sizeof(recs[0]); i++) {
			k.kdev = recs[i].dev;
			k.ino = recs[i].ino;
			hit = bsearch(&k, keys, n, sizeof(*keys), lib_key_cmp);
			if (hit)
				mapped[hit - keys] = true;
		}
	}
	if (got < 0)
		rc = -1;
	close(fd);
	return rc;
}

static void known_forget(struct daemon *d, const struct attached_lib *lib)
{
	struct pw_file_key k = { .dev = fileid_kdev(lib->id.dev), .ino = lib->id.ino };

	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.known_files), &k);
}

void discover_sweep_unmapped(struct daemon *d)
{
	uint64_t now = stops_now_ns(), every;
	struct lib_key *keys;
	bool *mapped;
	size_t i, n = 0;

	if (d->no_discover || !d->disc.detach_after_ns || !d->skel || now < d->disc.sweep_next_ns)
		return;
	every = d->disc.detach_after_ns / 4;
	d->disc.sweep_next_ns = now + (every > 60000000000ULL ? 60000000000ULL : every);
	keys = calloc(d->libs.n + 1, sizeof(*keys));
	mapped = calloc(d->libs.n + 1, sizeof(*mapped));
	if (!keys || !mapped)
		goto out;
	/* only what was found through a process: never --attach's or the host's own */
	for (i = 0; i < d->libs.n; i++) {
		if (strncmp(d->libs.v[i].path, "/proc/", 6))
			continue;
		keys[n].kdev = fileid_kdev(d->libs.v[i].id.dev);
		keys[n].ino = d->libs.v[i].id.ino;
		keys[n++].idx = i;
	}
	qsort(keys, n, sizeof(*keys), lib_key_cmp);
	if (!n || mark_mapped(d, keys, n, mapped))
		goto out;
	for (i = 0; i < n; i++) {
		struct attached_lib *lib = &d->libs.v[keys[i].idx];

		if (mapped[i]) {
			lib->unmapped_since_ns = 0;
		} else if (!lib->unmapped_since_ns) {
			lib->unmapped_since_ns = now;
		} else if (now - lib->unmapped_since_ns >= d->disc.detach_after_ns) {
			/* from here the kernel reports a new mapping of it as a new file */
			known_forget(d, lib);
			lib->unmapped_since_ns = UINT64_MAX;	/* forgotten: detached below */
		}
	}
	/* a second look: a mapping made before the kernel forgot it is seen here,
	 * one made after is reported; a failed look keeps everything attached */
	memset(mapped, 0, n * sizeof(*mapped));
	if (mark_mapped(d, keys, n, mapped))
		memset(mapped, 1, n * sizeof(*mapped));
	for (i = 0; i < n; i++) {
		struct attached_lib *lib = &d->libs.v[keys[i].idx];

		if (lib->unmapped_since_ns == UINT64_MAX && mapped[i]) {
			lib->unmapped_since_ns = 0;	/* mapped meanwhile: known again, kept */
			known_add(d, &lib->id);
		}
	}
	/* from the last entry down: a removal moves the entries above it */
	for (i = d->libs.n; i-- > 0;) {
		struct attached_lib *lib = &d->libs.v[i];

		if (lib->unmapped_since_ns != UINT64_MAX)
			continue;
		log_info("%s (%s): no process maps it: its %zu probes detached", lib->display,
			 lib->library, lib->nprobes);
		events_library_detached(d, lib->library, lib->display, lib->id.dev, lib->id.ino,
					lib->nprobes);
		d->disc.detached++;
		attach_set_remove(&d->libs, lib);
	}
out:
	free(keys);
	free(mapped);
}

void discover_check_attached(struct daemon *d)
{
	struct file_id now;
	size_t i = 0;

	while (i < d->libs.n) {
		struct attached_lib *lib = &d->libs.v[i];
		int fd;

		if (lib->fd < 0 || fileid_of(lib->fd, &now) || fileid_same(&lib->id, &now)) {
			i++;
			continue;
		}
		if (fileid_same_content(&lib->id, &now)) {
			lib->id = now;
			if (d->skel)
				known_add(d, &now);
			i++;
			continue;
		}
		/* the entry goes (the next one moves to i): examined again from a copy */
		fd = fcntl(lib->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			i++;
			continue;
		}
		library_changed(d, lib, fd, &now, NULL);
		close(fd);
	}
}

static struct disc_waiter *waiter_new(struct daemon *d, pid_t pid, uint64_t start, uint64_t seq,
				      bool record)
{
	struct disc_waiter *w = calloc(1, sizeof(*w)), **nv;

	if (!w)
		return NULL;
	nv = realloc(d->disc.waiters, (d->disc.nwaiters + 1) * sizeof(*nv));
	if (!nv) {
		free(w);
		return NULL;
	}
	d->disc.waiters = nv;
	w->pid = pid;
	w->start = start;
	w->seq = seq;
	w->record = record;
	nv[d->disc.nwaiters++] = w;
	return w;
}

static int pending_done(struct daemon *d, __u32 pid, uint64_t start, uint64_t seq);
static void stop_continue(struct daemon *d, pid_t pid);

/*
 * Waiters with no file left: their processes' notes are done.
 */
static void waiters_settle(struct daemon *d)
{
	size_t i = 0;

	while (i < d->disc.nwaiters) {
		struct disc_waiter *w = d->disc.waiters[i];

		if (w->n) {
			i++;
			continue;
		}
		d->disc.waiters[i] = d->disc.waiters[--d->disc.nwaiters];
		if (w->record && pending_done(d, w->pid, w->start, w->seq))
			stop_continue(d, w->pid);
		free(w->keys);
		free(w);
	}
}

/* A worker is done with a file (or was given up): examine its copy, wake its waiters. */
static void on_examined(void *ctx, struct examine_result *r)
{
	struct daemon *d = ctx;
	struct disc_file *f = NULL;
	char *display = NULL, mf[128] = "";
	size_t i, k;

	for (i = 0; i < d->disc.nfiles; i++)
		if (d->disc.files[i].tag == r->tag) {
			f = &d->disc.files[i];
			break;
		}
	if (f) {
		display = f->display;
		memcpy(mf, f->mf, sizeof(mf));
		d->disc.files[i] = d->disc.files[--d->disc.nfiles];
	}
	if (r->status != EXAMINE_TIMEOUT && r->wall_ns > d->disc.examine_max_ns)
		d->disc.examine_max_ns = r->wall_ns;
	switch (r->status) {
	case 0:
		examine_opened(d, r->fd, r->copy_fd, &r->id, mf, display ? display : mf, r->plan);
		break;
	case FILEID_OTHER:
		/* mapped over since /proc/PID/maps was read: not what was reported */
		d->disc.remapped++;
		log_debug("discovery: %s", r->err);
		break;
	case FILEID_DENIED:
		report_denied(d, r->kdev, r->ino, mf, display ? display : mf, r->err);
		break;
	case EXAMINE_TIMEOUT:
		d->disc.examine_timeouts++;
		log_warnx("discovery: %s: NOT covered", r->err);
		events_library_uncovered(d, &(struct uncovered_where){ fileid_udev(r->kdev), r->ino,
								       mf_pid(mf) },
					 NULL, NULL, display ? display : mf, UNCOVERED_TIMEOUT,
					 r->err);
		break;
	default:
		log_debug("discovery: %s", r->err);
	}
	for (i = 0; i < d->disc.nwaiters; i++) {
		struct disc_waiter *w = d->disc.waiters[i];

		for (k = 0; k < w->n; k++) {
			if (w->keys[k].kdev != r->kdev || w->keys[k].ino != r->ino)
				continue;
			w->keys[k] = w->keys[--w->n];
			break;
		}
	}
	free(display);
}

int discover_collect(struct daemon *d)
{
	int n;

	if (!d->disc.pool)
		return 0;
	n = examine_collect(d->disc.pool, on_examined, d);
	waiters_settle(d);
	return n;
}

bool discover_busy(struct daemon *d)
{
	return d->disc.nwaiters || (d->disc.pool && examine_pending(d->disc.pool));
}

/* A worker parses what it read (library_plan: no kernel object is made there). */
static void *plan_in_worker(void *skel, int fd, int copy_fd, const char *path)
{
	return library_plan(skel, fd, copy_fd, path);
}

static void plan_free(void *plan)
{
	library_plan_free(plan);
}

int discover_examine_start(struct daemon *d)
{
	if (!d->disc.examine_timeout_ns)
		d->disc.examine_timeout_ns = EXAMINE_TIMEOUT_MS * 1000000ULL;
	d->disc.pool = examine_pool_new(d->disc.examine_timeout_ns, plan_in_worker, plan_free,
					d->skel);
	return d->disc.pool ? examine_pool_fd(d->disc.pool) : -1;
}

void discover_examine_stop(struct daemon *d)
{
	size_t i;

	examine_pool_stop(d->disc.pool);
	d->disc.pool = NULL;	/* freed, or kept for the workers that may still come back */
	bpf_link__destroy(d->disc.vma_iter);
	d->disc.vma_iter = NULL;
	bpf_link__destroy(d->disc.unseen_iter);
	d->disc.unseen_iter = NULL;
	for (i = 0; i < d->disc.nwaiters; i++) {
		free(d->disc.waiters[i]->keys);
		free(d->disc.waiters[i]);
	}
	free(d->disc.waiters);
	d->disc.waiters = NULL;
	d->disc.nwaiters = 0;
	for (i = 0; i < d->disc.nfiles; i++)
		free(d->disc.files[i].display);
	free(d->disc.files);
	free(d->disc.denied);
	d->disc.denied = NULL;
	d->disc.ndenied = 0;
	d->disc.files = NULL;
	d->disc.nfiles = 0;
}

int discover_process(struct daemon *d, pid_t pid)
{
	struct disc_waiter *w = d->disc.pool ? waiter_new(d, pid, 0, 0, false) : NULL;
	int n;

	n = scan_process(d, pid, w, NULL);
	waiters_settle(d);
	return n;
}

int discover_scan_all(struct daemon *d, void (*between)(struct daemon *d))
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int procs = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid() || pid == d->disc.wd_pid)
			continue;
		if (discover_process(d, (pid_t)pid) >= 0)
			procs++;
		if (between)
			between(d);
	}
	closedir(dir);
	return procs;
}

/* every note of `pid` up to `seq` is handled: tell the kernel; 1 if nothing is pending */
static int pending_done(struct daemon *d, __u32 pid, uint64_t start, uint64_t seq)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	struct pw_pending_clear_ctx ctx = { .tgid = pid };
	int fd = bpf_map__fd(d->skel->maps.pending_done);
	struct pw_pending_done done;

	if (seq) {
		/* records of one process can come out of order (threads): keep the highest */
		if (bpf_map_lookup_elem(fd, &pid, &done) || done.start != start || done.seq < seq) {
			done.start = start;
			done.seq = seq;
			bpf_map_update_elem(fd, &pid, &done, BPF_ANY);
		}
	}
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	if (bpf_prog_test_run_opts(bpf_program__fd(d->skel->progs.pw_pending_clear), &opts)) {
		if (!d->disc.clear_errors++)
			log_warn("discovery: cannot clear pending files of pid %u", pid);
		return 0;
	}
	return opts.retval == 1;
}

static void stop_continue(struct daemon *d, pid_t pid)
{
	struct pw_stop s;
	__u32 key = pid;
	int r;

	/* a process held for a reset goes on once its socket is destroyed (reset.c) */
	if (!bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.stops), &key, &s) &&
	    s.dev == PW_STOP_RESET)
		return;
	r = stop_release(bpf_map__fd(d->skel->maps.stops), &d->skel->bss->stopped_procs, pid,
			 stops_now_ns(), &s);
	if (r > 0) {
		discover_stop_ended(d, pid, &s, stops_now_ns(), NULL);
	} else if (r == 0) {
		size_t i;

		for (i = 0; i < d->disc.nretry; i++)
			if (d->disc.retry[i] == pid)
				return;
		/* full: the watchdog ends it at the bound */
		if (d->disc.nretry < DISCOVER_RETRY_MAX)
			d->disc.retry[d->disc.nretry++] = pid;
	}
}

void discover_retry(struct daemon *d)
{
	pid_t pids[DISCOVER_RETRY_MAX];
	size_t i, n = d->disc.nretry;

	memcpy(pids, d->disc.retry, n * sizeof(pids[0]));
	d->disc.nretry = 0;
	for (i = 0; i < n; i++)
		stop_continue(d, pids[i]);
}

void discover_stop_ended(struct daemon *d, pid_t pid, const struct pw_stop *s, uint64_t ended_ns,
			 const char *reason)
{
	uint64_t wait = ended_ns > s->stopped_ns ? ended_ns - s->stopped_ns : 0;

	d->disc.stops_seen++;
	d->disc.stop_sum_ns += wait;
	if (wait > d->disc.stop_max_ns)
		d->disc.stop_max_ns = wait;
	if (!reason) {
		d->disc.continued++;
		log_debug("discovery: pid %d continued after %.3f ms", pid, wait / 1e6);
		return;
	}
	log_debug("discovery: pid %d continued after %.3f ms (%s)", pid, wait / 1e6, reason);
	events_discovery_timeout(d, pid, s->comm, s->dev, s->ino, reason, true, wait);
}

int discover_on_record(void *ctx, void *data, size_t size)
{
	struct daemon *d = ctx;
	const struct pw_discover_rec *r = data;

	if (size < sizeof(*r)) {
		d->short_records++;
		return 0;
	}
	switch (r->type) {
	case PW_REC_EXEC:
	case PW_REC_LIB:
		d->discover_records++;
		log_debug("discovery: pid %u %s %llu:%llu", r->pid,
			  r->type == PW_REC_EXEC ? "exec of" : "mapped", (unsigned long long)r->dev,
			  (unsigned long long)r->ino);
		/* its mappings now, examined: the file noted and whatever came with it;
		 * by the workers, the process continued once they are done */
		if (d->disc.pool) {
			struct disc_waiter *w = waiter_new(d, r->pid, r->start, r->seq, true);

			if (w) {
				scan_process(d, (pid_t)r->pid, w, r);
				waiters_settle(d);
				break;
			}
		}
		scan_process(d, (pid_t)r->pid, NULL, r);
		if (pending_done(d, r->pid, r->start, r->seq))
			stop_continue(d, (pid_t)r->pid);
		break;
	case PW_REC_STOP:
		log_debug("discovery: pid %u stopped at the gate for %llu:%llu", r->pid,
			  (unsigned long long)r->dev, (unsigned long long)r->ino);
		/* handled already, while the kernel stopped it: continue it now; else its
		 * notes' records are on their way and continue it */
		if (pending_done(d, r->pid, r->start, 0))
			stop_continue(d, (pid_t)r->pid);
		break;
	case PW_REC_UNGATED:
		if (r->reason < PW_UNGATED_MAX && discover_ungated_names[r->reason]) {
			d->disc.ungated[r->reason]++;
			events_discovery_timeout(d, r->pid, r->comm, r->dev, r->ino,
						 discover_ungated_names[r->reason], false, 0);
		}
		break;
	default:
		d->short_records++;
	}
	return 0;
}

static void ended_at_exit(void *ctx, pid_t pid, const struct pw_stop *s)
{
	discover_stop_ended(ctx, pid, s, stops_now_ns(), NULL);
}

void discover_release_all(struct daemon *d)
{
	uint64_t deadline = stops_now_ns() + PW_STOP_SETTLE_NS + 10000000ULL;

	if (!d->skel || !d->skel->bss)
		return;
	/* a stop not visible yet lands within the settle time: wait for it */
	while (stops_release_all(bpf_map__fd(d->skel->maps.stops), &d->skel->bss->stopped_procs,
				 stops_now_ns(), ended_at_exit, d) &&
	       stops_now_ns() < deadline)
		usleep(1000);
}

static void ended_before_us(void *ctx, pid_t pid, const struct pw_stop *s)
{
	struct daemon *d = ctx;

	d->disc.leftovers++;
	log_warnx("discovery: pid %d (%.16s) was left stopped by an earlier daemon: continued",
		  pid, s->comm);
	discover_stop_ended(d, pid, s, stops_now_ns(), "previous_daemon");
}

void discover_adopt_leftovers(struct daemon *d)
{
	int fd = bpf_obj_get(PW_STOPS_PIN);

	if (fd < 0)
		return;
	/* stopped long ago by a daemon that is gone: no settle time to wait for */
	stops_release_all(fd, NULL, UINT64_MAX, ended_before_us, d);
	close(fd);
	unlink(PW_STOPS_PIN);
}

void discover_pin(struct daemon *d)
{
	int err;

	if (stops_pin_dir()) {
		log_warn("discovery: no bpffs to pin the stopped processes in (%s): a daemon "
			 "restarted after a crash cannot continue what this one left stopped",
			 PW_STOPS_PIN_DIR);
		return;
	}
	unlink(PW_STOPS_PIN);
	err = bpf_map__pin(d->skel->maps.stops, PW_STOPS_PIN);
	if (err)
		log_warnx("discovery: cannot pin %s: %s", PW_STOPS_PIN, strerror(-err));
	else
		d->disc.pinned = true;
}

void discover_unpin(struct daemon *d)
{
	if (d->disc.pinned && d->skel)
		bpf_map__unpin(d->skel->maps.stops, PW_STOPS_PIN);
	d->disc.pinned = false;
}

const char *discover_file_path(pid_t pid, uint64_t kdev, uint64_t ino, char *buf, size_t len)
{
	char path[64], line[4096 + 256];
	const char *found = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		char file[4096] = "";
		unsigned long long i;
		unsigned maj, min;
		const char *name = file;

		if (sscanf(line, "%*s %*s %*s %x:%x %llu %4095[^\n]", &maj, &min, &i, file) < 3 ||
		    i != ino || ((uint64_t)maj << 20 | min) != kdev)
			continue;
		while (*name == ' ')
			name++;
		if (*name) {
			snprintf(buf, len, "%s", name);
			found = buf;
		}
	}
	fclose(f);
	return found;
}
