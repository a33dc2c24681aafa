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
 *   ssl_verify_cert_chain -> X509_STORE_CTX_set_default   the verdict
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
			 const char *callee, struct bpf_program *prog, int required, char *err,
			 size_t errlen)
{
	uint64_t sites[SITES_MAX];
	int n, i;

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
	for (i = 0; i < n; i++) {
		int64_t off = elf_vaddr_to_offset(img, sites[i]);

		if (off < 0) {
			snprintf(err, errlen, "%s: call site 0x%llx is outside the file", lib->path,
				 (unsigned long long)sites[i]);
			return -1;
		}
		if (attach_uprobe(lib, prog, off, err, errlen))
			return -1;
		log_debug("%s: %s at 0x%llx (%s -> %s)", lib->path, bpf_program__name(prog),
			  (unsigned long long)off, caller, callee);
	}
	return n;
}

static int node_attach(struct pinwarden_bpf *skel, struct attached_lib *lib, struct elf_image *img,
		       char *err, size_t errlen)
{
	if (attach_direct(img, lib, "tls_process_server_certificate", "d2i_X509",
			  skel->progs.ossl_cert, 1, err, errlen) < 0 ||
	    attach_direct(img, lib, "tls_process_client_certificate", "d2i_X509",
			  skel->progs.ossl_cert, 0, err, errlen) < 0 ||
	    attach_direct(img, lib, "ssl_verify_cert_chain", "X509_STORE_CTX_set_ex_data",
			  skel->progs.ossl_verify_ssl, 1, err, errlen) < 0 ||
	    attach_direct(img, lib, "ssl_verify_cert_chain", "X509_STORE_CTX_set_default",
			  skel->progs.ossl_verify, 1, err, errlen) < 0 ||
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
