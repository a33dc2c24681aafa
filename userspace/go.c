// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* go: not supported yet (issue #3). */
#include "libraries.h"

static bool go_match(struct elf_image *img, const char *path)
{
	return false;
}

static int go_attach(struct pinwarden_bpf *skel, struct attached_lib *lib,
			 struct elf_image *img, char *err, size_t errlen)
{
	return -1;
}

const struct tls_library tls_go = {
	.name = "go",
	.match = go_match,
	.attach = go_attach,
};
