// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of what userspace/nss.c reads out of a libssl3.so build at attach
 * time, without the kernel: the sslSocket layout from small exported functions,
 * NSPR's socket field from the libnspr4.so it loads, the call of the application's
 * auth callback, and the sslSocket's register at the probed calls. It includes
 * nss.c itself to reach its static functions.
 *
 *   test_nss [LIBSSL3...]   default: the libssl3.so of ld.so.cache, Firefox ESR's
 *                           own (/usr/lib/firefox-esr), and those of the container
 *                           tests' Debian roots ($PW_TEST_CACHE/rootfs/<suite>)
 *
 * The builds differ in compiler and NSS version (Debian 11's 3.61, 12's 3.87 and
 * 13's 3.110 by GCC; Firefox 153 ESR's 3.125 by clang, which writes `asServer ? 2 :
 * 1` without a branch and tests an extension before calling ssl3_AuthCertificate),
 * the layout not: NSS's sslimpl.h puts fd first, sec.peerCert at 0xd0, url at
 * 0x148, authCertificate at 0x170 and handshaking at 0x2b4 in every release from
 * 3.61 to 3.124; each build's machine code must say so by itself.
 */
#include "../../userspace/nss.c"

#include <glob.h>
#include <stdlib.h>

#include "ldcache.h"
#include "check.h"

static void check_libnss3(const char *libssl3);

static void check_library(const char *path)
{
	struct nss_layout lay = { .role = NSS_OFF_UNKNOWN, .osfd = NSS_OFF_UNKNOWN };
	uint64_t fs = 0, fs2 = 0, pqg[MAX_SITES], site = 0;
	struct attached_lib *lib;
	enum nss_reg reg = NSS_REG_NONE;
	struct elf_image *img;
	uint32_t auth = 0;
	struct code c;
	char err[256];
	int n, i, with_reg = 0;
	uint8_t op;

	img = elf_image_open(path, err, sizeof(err));
	if (!img) {
		FAIL("%s", err);
		return;
	}
	ASSERT_TRUE(nss_is_libssl3(img));
	ASSERT_TRUE(code_open(&c, img) == 0);
	ASSERT_TRUE(load_after_first_call(&c, "SSL_PeerCertificate", &fs, &lay.peer_cert) == 0);
	ASSERT_TRUE(load_after_first_call(&c, "SSL_RevealURL", &fs2, &lay.url) == 0);
	/* both reach the sslSocket through ssl_FindSocket */
	ASSERT_TRUE(fs != 0);
	ASSERT_EQ(fs, fs2);
	ASSERT_TRUE(fd_offset(&c, fs, &lay.fd) == 0);
	ASSERT_TRUE(role_offset(&c, &lay.role) == 0);
	ASSERT_TRUE(auth_hook_offset(&c, &auth) == 0);
	n = elf_import_call_sites(img, "SECKEY_UpdateCertPQG", pqg, MAX_SITES);
	ASSERT_TRUE(n >= 2);	/* TLS 1.2's ssl3_CompleteHandleCertificate, TLS 1.3's */
	ASSERT_TRUE(auth_call_site(&c, pqg, n, auth, &site, &reg) == 0);
	/* libnspr4's, beside it or the system's */
	lib = calloc(1, sizeof(*lib));
	ASSERT_TRUE(lib != NULL);
	if (lib) {
		snprintf(lib->path, sizeof(lib->path), "%s", path);
		lib->fd = elf_image_fd(img);
		ASSERT_TRUE(osfd_offset(lib, &lay.osfd) == 0);
		free(lib);
	}
	printf("%s: sslSocket fd %#x peerCert %#x url %#x handshaking %#x authCertificate %#x, "
	       "called at %#llx (sslSocket in register %d); NSPR osfd %#x\n", path, lay.fd,
	       lay.peer_cert, lay.url, lay.role, auth, (unsigned long long)site, reg, lay.osfd);
	/* sslSocket.fd is its first member; the pointers are 8-aligned, the enum 4 */
	ASSERT_EQ(lay.fd, 0);
	ASSERT_EQ(lay.peer_cert % 8, 0);
	ASSERT_EQ(lay.url % 8, 0);
	ASSERT_EQ(auth % 8, 0);
	ASSERT_EQ(lay.role % 4, 0);
	ASSERT_TRUE(lay.peer_cert != lay.url);
	ASSERT_TRUE(lay.peer_cert != auth);
	ASSERT_TRUE(lay.url != auth);
	ASSERT_TRUE(lay.role != NSS_OFF_UNKNOWN);
	/* PRFilePrivate.md.osfd: an int past PRFilePrivate's state, flags and next */
	ASSERT_TRUE(lay.osfd >= 16 && lay.osfd < 4096 && lay.osfd % 4 == 0);
	/* the probe goes on the instruction after an indirect call, with a preserved register */
	ASSERT_TRUE(elf_read_vaddr(img, site, &op, 1) == 0);
	ASSERT_TRUE(op == 0xff || op == 0x41);	/* call *disp(%reg), REX.B for r12-r15 */
	ASSERT_TRUE(reg != NSS_REG_NONE);
	for (i = 0; i < n; i++) {
		enum nss_reg r = site_register(&c, pqg[i], lay.peer_cert);

		printf("  SECKEY_UpdateCertPQG(ss->sec.peerCert) at %#llx: sslSocket in register %d\n",
		       (unsigned long long)pqg[i], r);
		with_reg += r != NSS_REG_NONE;
	}
	/* GCC's and clang's `mov 0xd0(%reg), %rax; mov %rax, %rdi` alike */
	ASSERT_EQ(with_reg, n);
	code_close(&c);
	elf_image_close(img);
	check_libnss3(path);
}

/*
 * The libnss3.so beside it: libpkix's PKIX_PL_Cert_VerifySignature, a function
 * that extracts a key (SECKEY_ExtractPublicKey) and verifies a signature with it
 * (CERT_VerifySignedDataWithPublicKey), is found; the exported
 * CERT_VerifySignedData (cert_VerifyCertChainOld's, extracting with
 * CERT_ExtractPublicKey) is not among them.
 */
static void check_libnss3(const char *libssl3)
{
	char path[4096], err[256];
	struct nss_pkix_site ps[MAX_SITES];
	struct elf_image *img;
	uint64_t vsd, start = 0, end = 0;
	struct code c;
	const char *slash = strrchr(libssl3, '/');
	int n, i;

	if (!slash)
		return;
	snprintf(path, sizeof(path), "%.*s/libnss3.so", (int)(slash - libssl3), libssl3);
	if (access(path, R_OK))
		return;
	img = elf_image_open(path, err, sizeof(err));
	ASSERT_TRUE(img != NULL);
	if (!img)
		return;
	ASSERT_EQ(code_open(&c, img), 0);
	n = nss_pkix_sites(&c, ps, MAX_SITES);
	vsd = elf_func_vaddr(img, "CERT_VerifySignedData");
	if (vsd)
		elf_func_range(img, vsd, &start, &end);
	printf("%s: %d libpkix-shaped signature checks\n", path, n);
	ASSERT_TRUE(n >= 1);
	for (i = 0; i < n; i++) {
		printf("  CERT_VerifySignedDataWithPublicKey at %#llx, %d SECKEY_ExtractPublicKey before\n",
		       (unsigned long long)ps[i].sig, ps[i].nkeys);
		ASSERT_TRUE(ps[i].nkeys >= 1 && ps[i].keys[0] < ps[i].sig);
		ASSERT_TRUE(!vsd || ps[i].sig < start || ps[i].sig >= end);
	}
	code_close(&c);
	elf_image_close(img);
}

int main(int argc, char **argv)
{
	char paths[LDCACHE_MAX_HITS][4096], pattern[4200];
	const char *cache = getenv("PW_TEST_CACHE");
	glob_t g = { 0 };
	size_t k;
	int i, n;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			check_library(argv[i]);
		return checks_report("test_nss");
	}
	n = ldcache_find("", "libssl3.so", paths, LDCACHE_MAX_HITS);
	for (i = 0; i < n; i++)
		check_library(paths[i]);
	if (!access("/usr/lib/firefox-esr/libssl3.so", R_OK))
		check_library("/usr/lib/firefox-esr/libssl3.so");
	else
		printf("test_nss: no firefox-esr: its NSS not checked\n");
	snprintf(pattern, sizeof(pattern), "%s/rootfs/*/usr/lib/x86_64-linux-gnu/libssl3.so",
		 cache ? cache : "/var/cache/pinwarden-tests");
	if (!glob(pattern, 0, NULL, &g))
		for (k = 0; k < g.gl_pathc; k++)
			check_library(g.gl_pathv[k]);
	globfree(&g);
	if (!checks) {
		printf("test_nss: no libssl3.so on this host: skipped\n");
		return 0;
	}
	return checks_report("test_nss");
}
