// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ldcache.h"
#include "libraries.h"
#include "log.h"
#include "uncovered.h"

const struct tls_library *const tls_libraries[] = {
	&tls_openssl, &tls_boringssl, &tls_gnutls, &tls_nss, &tls_go, &tls_node, NULL,
};

const char *const uncovered_reason_names[UNCOVERED_MAX] = {
	[UNCOVERED_FILE_LIMIT] = "file_limit",
	[UNCOVERED_TABLE_FULL] = "table_full",
	[UNCOVERED_BUDGET] = "budget",
	[UNCOVERED_FAILED] = "attach_failed",
	[UNCOVERED_TIMEOUT] = "timeout",
	[UNCOVERED_UNSUPPORTED] = "unsupported",
	[UNCOVERED_UNREADABLE] = "unreadable",
};

/* tls_libraries' names, then the stacks only recognised (uncovered.c), then anything else */
const char *const uncovered_library_names[UNCOVERED_LIBS] = {
	"openssl", "boringssl", "gnutls", "nss", "go", "node",
	"libressl", "wolfssl", "mbedtls", "rustls", "jsse", "unknown",
};

unsigned library_index(const char *name)
{
	unsigned i;

	for (i = 0; name && i < UNCOVERED_LIBS - 1; i++)
		if (!strcmp(uncovered_library_names[i], name))
			return i;
	return UNCOVERED_LIBS - 1;
}

/* The errors say what failed; the reason is what an operator can act on. */
unsigned uncovered_reason_of(const char *err)
{
	/* strerror(ENFILE) ("... in system") starts with strerror(EMFILE) */
	if (strstr(err, strerror(EMFILE)))
		return UNCOVERED_FILE_LIMIT;
	if (strstr(err, "table is full"))
		return UNCOVERED_TABLE_FULL;
	return UNCOVERED_FAILED;
}

int library_attach_fd(struct pinwarden_bpf *skel, struct attach_set *set, int fd, const char *path,
		      char *err, size_t errlen)
{
	struct file_id id;

	attach_set_failed_reset(set);
	if (fileid_of(fd, &id)) {
		snprintf(err, errlen, "%.400s: cannot stat", path);
		return -1;
	}
	return library_attach_image(skel, set, fd, fd, &id, path, err, errlen);
}

struct library_plan *library_plan(struct pinwarden_bpf *skel, int fd, int image_fd,
				  const char *path)
{
	struct library_plan *p = calloc(1, sizeof(*p));
	const struct tls_library *const *t;
	struct elf_image *img;

	if (!p)
		return NULL;
	p->failed_reason = UNCOVERED_FAILED;
	img = elf_image_open_fd(image_fd, path, p->err, sizeof(p->err));
	if (!img) {
		/* not an x86-64 ELF file: no TLS library of ours */
		p->rc = errno == ENOEXEC ? 0 : -1;
		p->failed_reason = errno == EFBIG ? UNCOVERED_BUDGET : uncovered_reason_of(p->err);
		return p;
	}
	for (t = tls_libraries; *t && !p->t; t++) {
		if (!(*t)->match(img, path))
			continue;
		p->t = *t;
		p->lib = calloc(1, sizeof(*p->lib));
		if (!p->lib) {
			snprintf(p->err, sizeof(p->err), "out of memory");
			p->rc = -1;
			break;
		}
		snprintf(p->lib->library, sizeof(p->lib->library), "%s", (*t)->name);
		snprintf(p->lib->path, sizeof(p->lib->path), "%s", path);
		snprintf(p->lib->display, sizeof(p->lib->display), "%s", path);
		p->lib->fd = fd;	/* its companions are found beside it (companion.h) */
		p->rc = (*t)->attach(skel, p->lib, img, p->err, sizeof(p->err)) ? -1 : 1;
		if (p->rc < 0)
			p->failed_reason = uncovered_reason_of(p->err);
	}
	/* no family of ours: another TLS implementation, reported as such? */
	if (!p->t && p->rc == 0) {
		char why[128];

		p->unsupported = tls_unsupported(img, p->version, sizeof(p->version), why,
						 sizeof(why));
		if (p->unsupported) {
			/* the path is the event's own field: a /proc/PID/map_files name here */
			snprintf(p->err, sizeof(p->err), "%s%s%s: %s; pinwarden does not judge it",
				 p->unsupported, p->version[0] ? " " : "", p->version, why);
			p->failed_reason = UNCOVERED_UNSUPPORTED;
			p->rc = -1;
		}
	}
	/* a budget spent, anywhere: whatever was decided was decided on part of the file */
	if (elf_image_budget_spent(img)) {
		snprintf(p->err, sizeof(p->err), "%s: %s", path, elf_image_budget_spent(img));
		p->failed_reason = UNCOVERED_BUDGET;
		p->rc = -1;
	}
	elf_image_close(img);
	return p;
}

void library_plan_free(struct library_plan *p)
{
	if (!p)
		return;
	if (p->lib)
		free(p->lib->probes);
	free(p->lib);
	free(p);
}

int library_apply(struct attach_set *set, struct library_plan *p, int fd,
		  const struct file_id *id, const char *path, char *err, size_t errlen)
{
	struct attached_lib *lib;

	set->failed_library = p->t ? p->t->name : p->unsupported;
	snprintf(set->failed_version, sizeof(set->failed_version), "%s", p->version);
	set->failed_reason = p->failed_reason;
	if (attach_set_find(set, id->dev, id->ino))
		return 0;
	if (p->rc <= 0) {
		snprintf(err, errlen, "%s", p->err);
		return p->rc;
	}
	if (attach_fds_short(err, errlen, path))
		goto failed;
	lib = attach_set_add(set, p->t->name, fd, path, err, errlen);
	if (!lib)
		goto failed;
	attach_probes_move(lib, p->lib);
	if (attach_commit(lib, err, errlen)) {
		attach_set_remove(set, lib);
		goto failed;
	}
	log_debug("%s: %s, %zu probes in %zu links through %s", path, p->t->name, lib->nprobes,
		  lib->nlinks, lib->probe_path);
	return 1;
failed:
	set->failed_reason = uncovered_reason_of(err);
	return -1;
}

int library_attach_image(struct pinwarden_bpf *skel, struct attach_set *set, int fd,
			 int image_fd, const struct file_id *id, const char *path, char *err,
			 size_t errlen)
{
	struct library_plan *p;
	int rc;

	attach_set_failed_reset(set);
	if (attach_set_find(set, id->dev, id->ino))
		return 0;
	p = library_plan(skel, fd, image_fd, path);
	if (!p) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	rc = library_apply(set, p, fd, id, path, err, errlen);
	library_plan_free(p);
	return rc;
}

int library_attach_file(struct pinwarden_bpf *skel, struct attach_set *set, const char *path,
			char *err, size_t errlen)
{
	struct file_id id;
	int fd, rc;

	attach_set_failed_reset(set);
	fd = fileid_open(path, FILEID_ANY, 0, &id, err, errlen);
	if (fd < 0)
		return -1;
	rc = library_attach_fd(skel, set, fd, path, err, errlen);
	close(fd);
	return rc;
}

int libraries_attach_host(struct pinwarden_bpf *skel, struct attach_set *set,
			  void (*uncovered)(void *ctx, const char *path, const char *err),
			  void *ctx)
{
	const struct tls_library *const *t;
	const char *const *so;
	char paths[LDCACHE_MAX_HITS][4096], err[512];
	int n, i, ok = 0;

	for (t = tls_libraries; *t; t++) {
		for (so = (*t)->sonames; so && *so; so++) {
			n = ldcache_find("", *so, paths, LDCACHE_MAX_HITS);
			for (i = 0; i < n; i++) {
				int r = library_attach_file(skel, set, paths[i], err, sizeof(err));

				if (r < 0) {
					if (!set->failed_library)
						set->failed_library = (*t)->name;
					uncovered(ctx, paths[i], err);
				}
				else if (r == 0 && !attach_set_find_path(set, paths[i]))
					log_warnx("%s: not recognised as %s: NOT covered", paths[i],
						  (*t)->name);
				else
					ok++;
			}
		}
	}
	return ok;
}
