// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * OpenSSL (libssl 1.1.1 and 3.x): where bpf/openssl.bpf.c's probes go. Nothing
 * is hard-coded: the call sites are found in this very file's machine code,
 * and the layout of the X509 verification state in the machine code of the
 * libcrypto it loads (include/openssl.h says what the probes receive).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "companion.h"
#include "libraries.h"
#include "log.h"
#include "openssl.h"
#include "pinwarden.skel.h"

#define SITES_MAX 32

static const char *const openssl_sonames[] = { "libssl.so.3", NULL };

/* libssl itself: it exports the SSL API and imports the X509 parser from libcrypto. */
static bool openssl_match(struct elf_image *img, const char *path)
{
	return elf_func_vaddr(img, "SSL_ctrl") && elf_func_vaddr(img, "SSL_set_fd") &&
	       elf_func_vaddr(img, "OPENSSL_init_ssl") && !elf_func_vaddr(img, "d2i_X509");
}

/*
 * Where this build keeps s->server (SSL_is_server is the plain load it is in
 * OpenSSL 1.1.1 to 3.1), or -1: the side of a verification, and of a session
 * to report resumed. It must fit the cookies' 16 bits.
 */
static int64_t server_offset(struct elf_image *img)
{
	uint32_t server;

	if (elf_accessor_offset(img, "SSL_is_server", &server) || server > 0xffff)
		return -1;
	return server;
}

/*
 * Where this build keeps s->hit (SSL_session_reused) and s->server, for
 * SSL_free to report resumed client sessions; 0 (no report) if either is not
 * known.
 */
static uint64_t resumption_cookie(struct elf_image *img, const char *path, int64_t server)
{
	uint32_t hit;

	if (server < 0 || elf_accessor_offset(img, "SSL_session_reused", &hit) || hit > 0xffff) {
		log_warnx("%s: SSL_session_reused/SSL_is_server not understood: resumed sessions "
			  "are not reported (they are still covered by their full handshake's verdict)",
			  path);
		return 0;
	}
	return OSSL_CK_RESUMPTION | (uint64_t)server << 16 | hit;
}

/* The stack's count: an int in OpenSSL (OPENSSL_sk_num), a size_t in BoringSSL (sk_num). */
static int stack_num_offset(struct elf_image *crypto, uint32_t *off)
{
	static const char *const names[] = { "OPENSSL_sk_num", "sk_num" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (elf_field_offset(crypto, names[i], ELF_LOAD32, off) == 0 ||
		    elf_field_offset(crypto, names[i], ELF_LOAD64, off) == 0)
			return 0;
	return -1;
}

uint64_t openssl_verify_cookie(struct elf_image *crypto, const char *where, bool by_key)
{
	struct ossl_x509_layout l = { .by_key = by_key };
	uint32_t modified, ptr;
	uint64_t ck;

	if (elf_field_offset(crypto, "X509_STORE_CTX_get_error", ELF_LOAD32, &l.ctx_error) ||
	    elf_field_offset(crypto, "X509_STORE_CTX_get0_chain", ELF_LOAD64, &l.ctx_chain) ||
	    elf_field_offset(crypto, "X509_STORE_CTX_get0_cert", ELF_LOAD64, &l.ctx_cert) ||
	    stack_num_offset(crypto, &l.sk_num) ||
	    (elf_field_offset(crypto, "OPENSSL_sk_value", ELF_LOAD64, &l.sk_data) &&
	     elf_field_offset(crypto, "sk_value", ELF_LOAD64, &l.sk_data))) {
		log_warnx("%s: the X509_STORE_CTX accessors are not understood: only leaf pins count "
			  "for this OpenSSL", where);
		return 0;
	}
	/* i2d_re_X509_tbs() marks x->cert_info.enc modified (BoringSSL: through the
	 * pointer to cert_info): the ASN1_ENCODING (enc, len, modified) ends there */
	if (elf_field_offset(crypto, "i2d_re_X509_tbs", ELF_STORE_IMM, &modified) == 0 &&
	    modified >= 16) {
		l.x509_tbs_enc = modified - 16;
	} else if (elf_field_offset_indirect(crypto, "i2d_re_X509_tbs", &ptr, &modified) == 0 &&
		   ptr == 0 && modified >= 16) {
		l.x509_tbs_enc = modified - 16;
		l.tbs_indirect = 1;
	} else
		log_warnx("%s: where an X509 keeps its tbsCertificate is not understood: validated "
			  "certificates the peer did not send (trust anchors) cannot satisfy a pin",
			  where);
	ck = ossl_vck_encode(&l);
	if (!ck)
		log_warnx("%s: X509_STORE_CTX offsets out of range: only leaf pins count", where);
	return ck;
}

/* The verdict cookie from the libcrypto beside this libssl; 0 if it cannot be read. */
uint64_t libssl_verify_cookie(struct elf_image *img, const struct attached_lib *lib, bool by_key)
{
	const char *path = lib->path;
	char soname[256], err[512];
	struct elf_image *crypto;
	uint64_t ck;
	int fd;

	if (elf_needed(img, "libcrypto", soname, sizeof(soname))) {
		log_warnx("%s: it loads no libcrypto: only leaf pins count", path);
		return 0;
	}
	/* the library's own file (the image may be a copy of its bytes) */
	fd = companion_open(lib->fd, path, soname, err, sizeof(err));
	if (fd < 0) {
		log_warnx("%s: only leaf pins count", err);
		return 0;
	}
	crypto = elf_image_open_fd(fd, soname, err, sizeof(err));
	if (!crypto) {
		log_warnx("%s: %s: only leaf pins count", path, err);
		close(fd);
		return 0;
	}
	ck = openssl_verify_cookie(crypto, soname, by_key);
	elf_image_close(crypto);
	close(fd);
	return ck;
}

/*
 * The calls of X509_STORE_CTX_get_error() in the function that calls
 * X509_STORE_CTX_set_default() (ssl_verify_cert_chain): where the result of
 * X509_verify_cert() is read. How many, or -1.
 */
int x509_verified_sites(struct elf_image *img, uint64_t *sites, int max)
{
	uint64_t sd[SITES_MAX], ge[SITES_MAX], start, end;
	int nsd, nge, i, j, n = 0;

	nsd = elf_import_call_sites(img, "X509_STORE_CTX_set_default", sd, SITES_MAX);
	nge = elf_import_call_sites(img, "X509_STORE_CTX_get_error", ge, SITES_MAX);
	if (nsd <= 0 || nge <= 0)
		return -1;
	for (i = 0; i < nsd; i++) {
		if (elf_func_range(img, sd[i], &start, &end))
			return -1;
		for (j = 0; j < nge && n < max; j++)
			if (ge[j] >= start && ge[j] < end)
				sites[n++] = ge[j];
	}
	return n;
}

static int openssl_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			  struct elf_image *img, char *err, size_t errlen)
{
	uint64_t vck = libssl_verify_cookie(img, lib, false), sites[SITES_MAX], sck = 0;
	int64_t server = server_offset(img);
	int nv = 0;

	if (vck) {
		nv = x509_verified_sites(img, sites, SITES_MAX);
		if (nv <= 0) {
			log_warnx("%s: no X509_STORE_CTX_get_error call beside X509_STORE_CTX_set_default: "
				  "only leaf pins count", lib->path);
			vck = 0;
		}
	}
	/* with the verdict after verification, its start is marked at the call that hands
	 * the SSL* over when this build's s->server is known (OSSL_SCK_BEGIN: one probe),
	 * else at set_default (cookie 1; 0: the verdict is taken there) */
	if (vck && server >= 0)
		sck = OSSL_SCK_BEGIN | (uint64_t)server;
	if (attach_call_sites(img, lib, "d2i_X509", skel->progs.ossl_cert, 1, err, errlen) < 0 ||
	    attach_call_sites_cookie(img, lib, "X509_STORE_CTX_set_ex_data",
				     skel->progs.ossl_verify_ssl, 1, sck, err, errlen) < 0 ||
	    (!sck && attach_call_sites_cookie(img, lib, "X509_STORE_CTX_set_default",
					      skel->progs.ossl_verify, 1, vck != 0, err, errlen) < 0))
		return -1;
	if (vck && attach_sites(img, lib, sites, nv, skel->progs.ossl_verified, vck,
				"call to X509_STORE_CTX_get_error", err, errlen))
		return -1;
	if (attach_entry(img, lib, "SSL_ctrl", skel->progs.ossl_ctrl, err, errlen) ||
	    attach_entry(img, lib, "SSL_set_fd", skel->progs.ossl_set_fd, err, errlen) ||
	    attach_entry_cookie(img, lib, "SSL_free", skel->progs.ossl_free,
				resumption_cookie(img, lib->path, server), err, errlen))
		return -1;
	return 0;
}

const struct tls_library tls_openssl = {
	.name = "openssl",
	.sonames = openssl_sonames,
	.match = openssl_match,
	.attach = openssl_attach,
};
