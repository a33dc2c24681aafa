// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL 3: where bpf/openssl.bpf.c's probes go in a libssl.so.3. Nothing is
 * hard-coded: the call sites are found in this very file's machine code.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "attach.h"
#include "elfsym.h"
#include "ldcache.h"
#include "log.h"
#include "pinwarden.skel.h"

#define MAX_SITES 32

/* Probe every call of `import` inside the library with `prog`. */
static int attach_call_sites(struct elf_image *img, struct attached_lib *lib, const char *import,
			     struct bpf_program *prog, int required, char *err, size_t errlen)
{
	uint64_t sites[MAX_SITES];
	int n, i;

	n = elf_import_call_sites(img, import, sites, MAX_SITES);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot disassemble", lib->path);
		return -1;
	}
	if (n < required) {
		snprintf(err, errlen, "%s: no call to %s found; not an OpenSSL 3 libssl this "
			 "version of pinwarden knows", lib->path, import);
		return -1;
	}
	for (i = 0; i < n; i++) {
		int64_t off = elf_vaddr_to_offset(img, sites[i]);

		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i]);
			return -1;
		}
		if (attach_uprobe(lib, prog, off, err, errlen))
			return -1;
		log_debug("%s: %s at 0x%llx (call to %s)", lib->path, bpf_program__name(prog),
			  (unsigned long long)off, import);
	}
	return n;
}

static int attach_entry(struct elf_image *img, struct attached_lib *lib, const char *func,
			struct bpf_program *prog, char *err, size_t errlen)
{
	uint64_t v = elf_func_vaddr(img, func);
	int64_t off;

	if (!v) {
		snprintf(err, errlen, "%s: %s not found", lib->path, func);
		return -1;
	}
	off = elf_vaddr_to_offset(img, elf_probe_point(img, v));
	if (off < 0) {
		snprintf(err, errlen, "%s: %s is outside the file", lib->path, func);
		return -1;
	}
	log_debug("%s: %s at 0x%llx (%s)", lib->path, bpf_program__name(prog),
		  (unsigned long long)off, func);
	return attach_uprobe(lib, prog, off, err, errlen);
}

int openssl_attach_file(struct pinwarden_bpf *skel, struct attach_set *set, const char *path,
			char *err, size_t errlen)
{
	struct attached_lib *lib;
	struct elf_image *img;
	struct stat st;
	int rc = -1;

	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: cannot stat", path);
		return -1;
	}
	if (attach_set_find(set, st.st_dev, st.st_ino))
		return 0;
	img = elf_image_open(path, err, errlen);
	if (!img)
		return -1;
	lib = attach_set_add(set, "openssl", path, err, errlen);
	if (!lib)
		goto out;
	if (attach_call_sites(img, lib, "d2i_X509", skel->progs.ossl_cert, 1, err, errlen) < 0 ||
	    attach_call_sites(img, lib, "X509_STORE_CTX_set_ex_data", skel->progs.ossl_verify_ssl,
			      1, err, errlen) < 0 ||
	    attach_call_sites(img, lib, "X509_STORE_CTX_set_default", skel->progs.ossl_verify, 1,
			      err, errlen) < 0 ||
	    attach_entry(img, lib, "SSL_ctrl", skel->progs.ossl_ctrl, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_fd", skel->progs.ossl_set_fd, err, errlen) ||
	    attach_entry(img, lib, "SSL_free", skel->progs.ossl_free, err, errlen)) {
		attached_lib_detach(lib);
		set->n--;
		goto out;
	}
	log_debug("%s: %zu probes", path, lib->nlinks);
	rc = 0;
out:
	elf_image_close(img);
	return rc;
}

int openssl_attach_host(struct pinwarden_bpf *skel, struct attach_set *set)
{
	char paths[LDCACHE_MAX_HITS][4096], err[512];
	int n, i, ok = 0;

	n = ldcache_find("", "libssl.so.3", paths, LDCACHE_MAX_HITS);
	if (n == 0) {
		log_warnx("no libssl.so.3 in /etc/ld.so.cache or the default directories: "
			  "OpenSSL 3 is not covered");
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (openssl_attach_file(skel, set, paths[i], err, sizeof(err))) {
			log_warnx("OpenSSL NOT covered: %s", err);
			continue;
		}
		ok++;
	}
	return ok;
}
