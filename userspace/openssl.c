// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL 3: where bpf/openssl.bpf.c's probes go in a libssl.so.3. Nothing is
 * hard-coded: the call sites are found in this very file's machine code.
 */
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

static const char *const openssl_sonames[] = { "libssl.so.3", NULL };

/* libssl itself: it exports the SSL API and imports the X509 parser from libcrypto. */
static bool openssl_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "SSL_ctrl") && elf_func_vaddr(img, "SSL_set_fd") &&
	       elf_func_vaddr(img, "OPENSSL_init_ssl") && !elf_func_vaddr(img, "d2i_X509");
}

/* must match bpf/openssl.bpf.c */
#define OSSL_CK_RESUMPTION	(1ULL << 63)

/*
 * Where this build keeps s->hit (SSL_session_reused) and s->server
 * (SSL_is_server), for SSL_free to report resumed client sessions; 0 (no
 * report) if either accessor is not the plain load it is in OpenSSL 3.0/3.1.
 */
static uint64_t resumption_cookie(struct elf_image *img, const char *path)
{
	uint32_t hit, server;

	if (elf_accessor_offset(img, "SSL_session_reused", &hit) ||
	    elf_accessor_offset(img, "SSL_is_server", &server)) {
		log_warnx("%s: SSL_session_reused/SSL_is_server not understood: resumed sessions "
			  "are not reported (they are still covered by their full handshake's verdict)",
			  path);
		return 0;
	}
	return OSSL_CK_RESUMPTION | (uint64_t)server << 16 | hit;
}

static int openssl_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			  struct elf_image *img, char *err, size_t errlen)
{
	if (attach_call_sites(img, lib, "d2i_X509", skel->progs.ossl_cert, 1, err, errlen) < 0 ||
	    attach_call_sites(img, lib, "X509_STORE_CTX_set_ex_data", skel->progs.ossl_verify_ssl,
			      1, err, errlen) < 0 ||
	    attach_call_sites(img, lib, "X509_STORE_CTX_set_default", skel->progs.ossl_verify, 1,
			      err, errlen) < 0 ||
	    attach_entry(img, lib, "SSL_ctrl", skel->progs.ossl_ctrl, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_fd", skel->progs.ossl_set_fd, err, errlen) ||
	    attach_entry_cookie(img, lib, "SSL_free", skel->progs.ossl_free,
				resumption_cookie(img, lib->path), err, errlen))
		return -1;
	return 0;
}

const struct tls_library tls_openssl = {
	.name = "openssl",
	.sonames = openssl_sonames,
	.match = openssl_match,
	.attach = openssl_attach,
};
