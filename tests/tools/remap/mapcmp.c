// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mapcmp FILE: map FILE whole (private, executable: where the kernel writes the
 * breakpoints of every uprobe on its inode) and compare the mapping with the
 * file's bytes read(2). Prints how many bytes differ and, with -v, their file
 * offsets (decimal), one a line. Exit 0, or 2 on error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int verbose = argc > 2 && !strcmp(argv[1], "-v");
	const char *path = argv[argc - 1];
	unsigned char *m, *b;
	size_t i, diff = 0;
	struct stat st;
	ssize_t got = 0, n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (argc < 2 || fd < 0 || fstat(fd, &st) || !st.st_size) {
		perror("mapcmp");
		return 2;
	}
	m = mmap(NULL, st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	b = malloc(st.st_size);
	if (m == MAP_FAILED || !b)
		return 2;
	while (got < st.st_size && (n = pread(fd, b + got, st.st_size - got, got)) > 0)
		got += n;
	if (got != st.st_size)
		return 2;
	for (i = 0; i < (size_t)st.st_size; i++)
		if (m[i] != b[i]) {
			diff++;
			if (verbose)
				printf("%zu\n", i);
		}
	if (!verbose)
		printf("%zu\n", diff);
	return 0;
}
