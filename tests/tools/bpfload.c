// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Load pinwarden's BPF programs into this kernel and unload them, attaching
 * nothing: the verifier's verdict, and its instruction count for each program
 * (-v: its log on failure). Safe to run beside a daemon or a test suite.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pinwarden.skel.h"

static int verbose;

static int print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Load only the program named `only` (all of them with NULL). 0, or -1. */
static int load(const char *only, int print_all)
{
	struct pinwarden_bpf *skel = pinwarden_bpf__open();
	struct bpf_program *prog;
	int err;

	if (!skel) {
		fprintf(stderr, "bpfload: cannot open the BPF object\n");
		return -1;
	}
	bpf_object__for_each_program(prog, skel->obj)
		if (only && strcmp(bpf_program__name(prog), only))
			bpf_program__set_autoload(prog, false);
	err = pinwarden_bpf__load(skel);
	if (err) {
		printf("%-24s FAILED: %s\n", only ? only : "(all)", strerror(-err));
		pinwarden_bpf__destroy(skel);
		return -1;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (bpf_program__fd(prog) < 0 || (only && strcmp(bpf_program__name(prog), only)))
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0 && print_all)
			printf("%-24s %6u insns, %7u verified\n", bpf_program__name(prog),
			       info.xlated_prog_len / 8, info.verified_insns);
	}
	pinwarden_bpf__destroy(skel);
	return 0;
}

/* Every program on its own (one failing says which), then all together. */
int main(int argc, char **argv)
{
	struct pinwarden_bpf *skel;
	struct bpf_program *prog;
	int failed = 0;

	verbose = argc > 1 && !strcmp(argv[1], "-v") ? 2 : 0;
	libbpf_set_print(print);
	skel = pinwarden_bpf__open();
	if (!skel) {
		fprintf(stderr, "bpfload: cannot open the BPF object\n");
		return 1;
	}
	bpf_object__for_each_program(prog, skel->obj)
		failed |= load(bpf_program__name(prog), 1) != 0;
	pinwarden_bpf__destroy(skel);
	if (!failed && load(NULL, 0))
		failed = 1;
	return failed;
}
