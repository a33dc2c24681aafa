// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* gnutls: not supported yet (issue #3). */
#include "libraries.h"

static bool gnutls_match(struct elf_image *img, const char *path)
{
	return false;
}

static int gnutls_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			 struct elf_image *img, char *err, size_t errlen)
{
	return -1;
}

const struct tls_library tls_gnutls = {
	.name = "gnutls",
	.match = gnutls_match,
	.attach = gnutls_attach,
};
