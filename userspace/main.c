// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* pinwarden: host-wide X.509 certificate pinning with eBPF. */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "policy.h"
#include "watchdog.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pinwarden COMMAND [ARGS]\n"
		"  run [--policy FILE] [--log FILE] [--metrics FILE] [--status FILE] [-v]\n"
		"                        the daemon (default policy: audit every TLS chain)\n"
		"  status [--json]       what the running daemon has attached, its counters\n"
		"  learn [--duration SECS] [--output FILE]\n"
		"                        watch, then write a draft policy of what was seen\n"
		"  check [--strict] FILE validate a policy; exit 2 on errors\n"
		"  pin FILE...           pins of the certificates in PEM/DER files\n"
		"  pin HOST:PORT [--sni NAME]\n"
		"                        pins of the chain a live server presents\n"
		"  version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pin"))
		return cmd_pin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "learn"))
		return cmd_learn(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "watchdog"))	/* started by `run`, not for people */
		return cmd_watchdog(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("pinwarden %s\n", PW_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "pinwarden: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
