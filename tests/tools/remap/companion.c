// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * companion LIB COMPANION TRIGGER SECONDS: map LIB and COMPANION executable (as a
 * process choosing its own libcrypto beside a root-owned libssl would, through
 * LD_LIBRARY_PATH or by hand), dlopen TRIGGER so that the daemon's loader hook
 * looks at this process, print "mapped", and stay SECONDS.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int map_exec(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) ||
	    mmap(NULL, st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
		perror(path);
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: companion LIB COMPANION TRIGGER SECONDS\n");
		return 2;
	}
	if (map_exec(argv[1]) || map_exec(argv[2]))
		return 1;
	if (!dlopen(argv[3], RTLD_NOW)) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	printf("mapped\n");
	fflush(stdout);
	sleep(atoi(argv[4]));
	return 0;
}
