// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL linked statically into an executable that keeps its internal
 * symbols: node (v18/v20 export the whole of OpenSSL for native addons). The
 * very programs of bpf/openssl.bpf.c apply, so events say "library":"openssl";
 * only the places differ: direct calls inside the named TLS functions instead
 * of calls through the PLT.
 *   tls_process_server_certificate -> d2i_X509   each server certificate
 *   tls_process_client_certificate -> d2i_X509   each client certificate (mTLS)
 *   ssl_verify_cert_chain -> X509_STORE_CTX_set_ex_data   the SSL*
 *   ssl_verify_cert_chain -> X509_STORE_CTX_set_default   verification starts
 *   ssl_verify_cert_chain -> X509_STORE_CTX_get_error     the verdict, on the chain
 *                                  OpenSSL validated (offsets from the same binary)
 *   SSL_ctrl (SNI), SSL_set_fd (unused by node: its BIOs are memory), SSL_free
 * Only those functions' bytes are read and disassembled: attaching to a 100 MB
 * node costs its symbol table, not its code.
 */
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "libraries.h"
#include "log.h"
#include "pinwarden.skel.h"

#define SITES_MAX 8

/* An executable (or library) that defines OpenSSL's TLS state machine itself. */
static bool node_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "tls_process_server_certificate") &&
	       elf_func_vaddr(img, "ssl_verify_cert_chain") && elf_func_vaddr(img, "d2i_X509") &&
	       elf_func_vaddr(img, "SSL_ctrl");
}

/* Probe every direct call from `caller` to `callee`; fewer than `required` is an error. */
static int attach_direct(struct elf_image *img, struct attached_lib *lib, const char *caller,
			 const char *callee, struct bpf_program *prog, uint64_t cookie, int required,
			 char *err, size_t errlen)
{
	uint64_t sites[SITES_MAX];
	char what[160];
	int n;

	n = elf_direct_call_sites(img, caller, callee, sites, SITES_MAX);
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read %s", lib->path, caller);
		return -1;
	}
	if (n < required) {
		snprintf(err, errlen, "%s: no call from %s to %s found; not an OpenSSL build this "
			 "version of pinwarden knows", lib->path, caller, callee);
		return -1;
	}
	snprintf(what, sizeof(what), "%s -> %s", caller, callee);
	if (attach_sites(img, lib, sites, n, prog, cookie, what, err, errlen))
		return -1;
	return n;
}

static int node_attach(struct pinwarden_bpf *skel, struct attached_lib *lib, struct elf_image *img,
		       char *err, size_t errlen)
{
	/* OpenSSL is linked into the program: its libcrypto is the same file */
	uint64_t vck = openssl_verify_cookie(img, lib->path, false), sites[SITES_MAX];

	if (vck && elf_direct_call_sites(img, "ssl_verify_cert_chain", "X509_STORE_CTX_get_error",
					 sites, SITES_MAX) <= 0) {
		log_warnx("%s: no call from ssl_verify_cert_chain to X509_STORE_CTX_get_error: pins "
			  "count on the leaf only", lib->path);
		vck = 0;
	}
	if (attach_direct(img, lib, "tls_process_server_certificate", "d2i_X509",
			  skel->progs.ossl_cert, 0, 1, err, errlen) < 0 ||
	    attach_direct(img, lib, "tls_process_client_certificate", "d2i_X509",
			  skel->progs.ossl_cert, 0, 0, err, errlen) < 0 ||
	    attach_direct(img, lib, "ssl_verify_cert_chain", "X509_STORE_CTX_set_ex_data",
			  skel->progs.ossl_verify_ssl, 0, 1, err, errlen) < 0 ||
	    attach_direct(img, lib, "ssl_verify_cert_chain", "X509_STORE_CTX_set_default",
			  skel->progs.ossl_verify, vck != 0, 1, err, errlen) < 0 ||
	    (vck && attach_direct(img, lib, "ssl_verify_cert_chain", "X509_STORE_CTX_get_error",
				  skel->progs.ossl_verified, vck, 1, err, errlen) < 0) ||
	    attach_entry(img, lib, "SSL_ctrl", skel->progs.ossl_ctrl, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_fd", skel->progs.ossl_set_fd, err, errlen) ||
	    attach_entry(img, lib, "SSL_free", skel->progs.ossl_free, err, errlen))
		return -1;
	return 0;
}

const struct tls_library tls_node = {
	.name = "node",
	.match = node_match,
	.attach = node_attach,
};
