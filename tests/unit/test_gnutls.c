// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of what userspace/gnutls.c reads out of a libgnutls build at
 * attach time, without the kernel: the session layout from the exported
 * accessors, the call sites in the verify-callback runner, and the unwind
 * table reader (elf_func_range) they rely on. It includes gnutls.c itself to
 * reach its static functions.
 *
 *   test_gnutls [LIBGNUTLS...]   default: the libgnutls.so.30 of ld.so.cache
 *
 * Another build can be checked by naming its file (e.g. one unpacked from
 * another distribution's package). No libgnutls on the host: skipped, exit 0.
 */
#include "../../userspace/gnutls.c"

#include <stdlib.h>

#include "ldcache.h"
#include "check.h"

/* The unwind table agrees with the symbol table on where exported functions start. */
static void check_func_ranges(struct elf_image *img)
{
	static const char *const funcs[] = {
		"gnutls_handshake", "gnutls_deinit", "gnutls_certificate_get_peers",
		"gnutls_auth_get_type", "gnutls_server_name_set", "gnutls_kx_get",
	};
	size_t i;

	for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		uint64_t v = elf_func_vaddr(img, funcs[i]), start = 0, end = 0, s2 = 0, e2 = 0;

		ASSERT_TRUE(v != 0);
		ASSERT_TRUE(elf_func_range(img, v, &start, &end) == 0);
		if (start != v)
			FAIL("%s at %#llx, its unwind entry starts at %#llx", funcs[i],
			     (unsigned long long)v, (unsigned long long)start);
		ASSERT_TRUE(end > start && end - start < (1 << 20));
		/* any address inside maps to the same function */
		ASSERT_TRUE(elf_func_range(img, end - 1, &s2, &e2) == 0 && s2 == start && e2 == end);
	}
	/* before the first function: nothing */
	{
		uint64_t s, e;

		ASSERT_TRUE(elf_func_range(img, 0, &s, &e) == -1);
	}
}

static void check_library(const char *path)
{
	struct pw_gnutls_layout l = {};
	struct site sites[MAX_SITES];
	struct elf_image *img;
	uint64_t kx, kx_start = 0, kx_end = 0;
	char err[256];
	int n, i, servers = 0, clients = 0;

	img = elf_image_open(path, err, sizeof(err));
	if (!img) {
		FAIL("%s", err);
		return;
	}
	ASSERT_TRUE(gnutls_match(img, path));
	check_func_ranges(img);
	ASSERT_TRUE(layout_entity(img, &l) == 0);
	ASSERT_TRUE(layout_transport(img, &l) == 0);
	ASSERT_TRUE(layout_peers(img, &l) == 0);
	printf("%s: entity %#x, auth_info %#x, auth_info_type %#x, transport %#x, "
	       "peers %#x, npeers %#x\n", path, l.entity, l.auth_info, l.auth_info_type,
	       l.transport, l.peers, l.npeers);
	/* the fields are distinct, the pointers 8-aligned */
	ASSERT_TRUE(l.auth_info != l.auth_info_type && l.peers != l.npeers);
	ASSERT_TRUE(l.auth_info % 8 == 0 && l.transport % 8 == 0 && l.peers % 8 == 0);
	ASSERT_TRUE(l.entity != l.auth_info && l.entity != l.transport);

	n = runner_sites(img, sites, MAX_SITES);
	ASSERT_TRUE(n >= 2);
	kx = elf_func_vaddr(img, "gnutls_kx_get");
	ASSERT_TRUE(kx && elf_func_range(img, kx, &kx_start, &kx_end) == 0);
	for (i = 0; i < n; i++) {
		uint8_t op;

		printf("  call to gnutls_auth_%s_get_type at %#llx in the function at %#llx\n",
		       sites[i].server ? "server" : "client", (unsigned long long)sites[i].at,
		       (unsigned long long)sites[i].func);
		servers += sites[i].server;
		clients += !sites[i].server;
		/* a call instruction (e8 rel32, or ff 15 through the GOT) */
		ASSERT_TRUE(elf_read_vaddr(img, sites[i].at, &op, 1) == 0 && (op == 0xe8 || op == 0xff));
		ASSERT_TRUE(sites[i].func == sites[0].func || n > 2);
		/* gnutls_kx_get calls gnutls_auth_client_get_type too: never probed */
		ASSERT_TRUE(sites[i].at < kx_start || sites[i].at >= kx_end);
	}
	ASSERT_TRUE(servers >= 1 && clients >= 1);
	elf_image_close(img);
}

int main(int argc, char **argv)
{
	char paths[LDCACHE_MAX_HITS][4096];
	int i, n;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			check_library(argv[i]);
	} else {
		n = ldcache_find("", "libgnutls.so.30", paths, LDCACHE_MAX_HITS);
		if (n <= 0) {
			printf("test_gnutls: no libgnutls.so.30 on this host: skipped\n");
			return 0;
		}
		for (i = 0; i < n; i++)
			check_library(paths[i]);
	}
	printf("test_gnutls: %d checks, %d failed\n", checks, failures);
	return failures > 100 ? 100 : failures;
}
