// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ldcache.h"
#include "libraries.h"
#include "log.h"

const struct tls_library *const tls_libraries[] = {
	&tls_openssl, &tls_boringssl, &tls_gnutls, &tls_nss, &tls_go, &tls_node, NULL,
};

int library_attach_fd(struct pinwarden_bpf *skel, struct attach_set *set, int fd, const char *path,
		      char *err, size_t errlen)
{
	const struct tls_library *const *t;
	struct attached_lib *lib;
	struct elf_image *img;
	struct file_id id;
	int rc = 0;

	if (fileid_of(fd, &id)) {
		snprintf(err, errlen, "%s: cannot stat", path);
		return -1;
	}
	if (attach_set_find(set, id.dev, id.ino))
		return 0;
	img = elf_image_open_fd(fd, path, err, errlen);
	if (!img)
		return -1;
	for (t = tls_libraries; *t; t++) {
		if (!(*t)->match(img, path))
			continue;
		lib = attach_set_add(set, (*t)->name, fd, path, err, errlen);
		if (!lib) {
			rc = -1;
			break;
		}
		if ((*t)->attach(skel, lib, img, err, errlen) || attach_verify(lib, err, errlen)) {
			attach_set_remove(set, lib);
			rc = -1;
			break;
		}
		log_debug("%s: %s, %zu probes through %s", path, (*t)->name, lib->nlinks,
			  lib->probe_path);
		rc = 1;
		break;
	}
	elf_image_close(img);
	return rc;
}

int library_attach_file(struct pinwarden_bpf *skel, struct attach_set *set, const char *path,
			char *err, size_t errlen)
{
	struct file_id id;
	int fd, rc;

	fd = fileid_open(path, FILEID_ANY, 0, &id, err, errlen);
	if (fd < 0)
		return -1;
	rc = library_attach_fd(skel, set, fd, path, err, errlen);
	close(fd);
	return rc;
}

int libraries_attach_host(struct pinwarden_bpf *skel, struct attach_set *set)
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

				if (r < 0)
					log_warnx("%s NOT covered: %s", (*t)->name, err);
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
