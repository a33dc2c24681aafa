// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * userspace/examine.c: what a worker hands back is the file the kernel reported
 * and its bytes, whole: a 9 MiB file of random bytes (more than two chunks)
 * copied exactly, through a descriptor that is that inode; a path that names
 * another file, or something not a regular file, refused as FILEID_OTHER; a
 * file that is gone, an error. (A file that never answers needs a file system
 * that does not: tests/examine.bats.)
 */
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "examine.h"

struct got {
	int n;
	struct examine_result r[8];
};

static void keep(void *ctx, struct examine_result *r)
{
	struct got *g = ctx;

	g->r[g->n] = *r;
	/* the descriptors are the caller's: kept open in the copy */
	r->fd = r->copy_fd = -1;
	g->n++;
}

static void collect(struct examine_pool *p, struct got *g, int want)
{
	struct pollfd pfd = { .fd = examine_pool_fd(p), .events = POLLIN };
	int tries;

	for (tries = 0; g->n < want && tries < 500; tries++) {
		poll(&pfd, 1, 10);
		examine_collect(p, keep, g);
	}
}

static struct examine_result *by_tag(struct got *g, uint64_t tag)
{
	int i;

	for (i = 0; i < g->n; i++)
		if (g->r[i].tag == tag)
			return &g->r[i];
	return NULL;
}

static uint64_t kdev_of(const struct stat *st)
{
	return fileid_kdev(st->st_dev);
}

int main(void)
{
	char dir[] = "/tmp/pw-examine-XXXXXX", big[64], data[64], other[64], fifo[64], gone[64];
	size_t len = 9u << 20, i;
	struct examine_stats s;
	struct examine_result *r;
	struct examine_pool *p;
	struct stat st, st2, st3;
	struct got g = {};
	unsigned char *want, *have;
	int fd;

	if (!mkdtemp(dir))
		return 2;
	snprintf(big, sizeof(big), "%s/big", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(gone, sizeof(gone), "%s/gone", dir);
	want = malloc(len);
	have = malloc(len);
	if (!want || !have)
		return 2;
	srandom(7);
	for (i = 0; i < len; i++)
		want[i] = random();
	/* an ELF file is copied whole; anything else only up to its magic */
	memcpy(want, ELFMAG, SELFMAG);
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, want, len) != (ssize_t)len)
		return 2;
	close(fd);
	fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	close(fd);
	snprintf(data, sizeof(data), "%s/data", dir);
	fd = open(data, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, want + SELFMAG, 1 << 20) != 1 << 20)
		return 2;
	close(fd);
	if (mkfifo(fifo, 0600) || stat(big, &st) || stat(other, &st2) || stat(data, &st3))
		return 2;

	p = examine_pool_new(5000000000ULL, NULL, NULL, NULL);
	ASSERT_TRUE(p != NULL);
	if (!p)
		return 1;
	ASSERT_EQ(examine_submit(p, big, kdev_of(&st), st.st_ino, 1), 0);
	/* the path names `other` now, not the inode reported */
	ASSERT_EQ(examine_submit(p, other, kdev_of(&st), st.st_ino, 2), 0);
	ASSERT_EQ(examine_submit(p, fifo, kdev_of(&st), st.st_ino, 3), 0);
	ASSERT_EQ(examine_submit(p, gone, kdev_of(&st), st.st_ino, 4), 0);
	ASSERT_EQ(examine_submit(p, data, kdev_of(&st3), st3.st_ino, 5), 0);
	collect(p, &g, 5);
	ASSERT_EQ(g.n, 5);

	r = by_tag(&g, 1);
	ASSERT_TRUE(r != NULL);
	if (r) {
		ASSERT_EQ(r->status, 0);
		ASSERT_EQ(r->id.ino, st.st_ino);
		ASSERT_EQ(r->id.size, len);
		ASSERT_EQ(r->kdev, kdev_of(&st));
		ASSERT_TRUE(r->fd >= 0 && r->copy_fd >= 0);
		if (r->fd >= 0 && r->copy_fd >= 0) {
			struct stat a, b;

			ASSERT_EQ(fstat(r->fd, &a), 0);
			ASSERT_EQ(a.st_ino, st.st_ino);
			/* the copy is a file of its own, with the same bytes */
			ASSERT_EQ(fstat(r->copy_fd, &b), 0);
			ASSERT_TRUE(b.st_ino != st.st_ino || b.st_dev != st.st_dev);
			ASSERT_EQ(b.st_size, len);
			ASSERT_EQ(pread(r->copy_fd, have, len, 0), len);
			ASSERT_EQ(memcmp(have, want, len), 0);
			close(r->fd);
			close(r->copy_fd);
		}
	}
	r = by_tag(&g, 2);
	ASSERT_TRUE(r && r->status == FILEID_OTHER && r->fd < 0 && r->copy_fd < 0);
	r = by_tag(&g, 3);
	ASSERT_TRUE(r && r->status == FILEID_OTHER);
	r = by_tag(&g, 4);
	ASSERT_TRUE(r && r->status == -1 && strstr(r->err, "No such file"));
	/* a data file mapped like a library (1 MiB, no ELF magic): its first
	 * bytes are copied, which say it is not ELF, and no more */
	r = by_tag(&g, 5);
	ASSERT_TRUE(r != NULL);
	if (r) {
		struct stat c;

		ASSERT_EQ(r->status, 0);
		ASSERT_EQ(r->id.size, 1u << 20);
		ASSERT_TRUE(r->copy_fd >= 0);
		if (r->copy_fd >= 0) {
			ASSERT_EQ(fstat(r->copy_fd, &c), 0);
			ASSERT_EQ(c.st_size, SELFMAG);
			ASSERT_EQ(pread(r->copy_fd, have, 16, 0), SELFMAG);
			ASSERT_EQ(memcmp(have, want + SELFMAG, SELFMAG), 0);
			close(r->copy_fd);
		}
		if (r->fd >= 0)
			close(r->fd);
	}

	examine_stats(p, &s);
	ASSERT_EQ(s.submitted, 5);
	ASSERT_EQ(s.done, 5);
	ASSERT_EQ(s.timeouts, 0);
	ASSERT_EQ(s.stuck, 0);
	ASSERT_EQ(s.workers, EXAMINE_WORKERS);
	ASSERT_EQ(examine_pending(p), 0);
	examine_pool_stop(p);

	unlink(big);
	unlink(other);
	unlink(data);
	unlink(fifo);
	rmdir(dir);
	free(want);
	free(have);
	printf("test_examine: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
