// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hangfs SOURCE VICTIM_PID STATEDIR MOUNTPOINT: a FUSE file system with one
 * file, /lib.so (SOURCE's bytes), that answers everyone but the process
 * VICTIM_PID (any of its threads): its requests (lookup, getattr, open, read)
 * never get an answer until STATEDIR/release exists, as on a hung NFS or FUSE
 * mount, or a hostile one. STATEDIR/hung is created when the first such
 * request arrives. Runs in the foreground, multi-threaded.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *data;
static size_t size;
static pid_t victim;
static const char *statedir;

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[256];
	pid_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static void maybe_hang(void)
{
	char hung[4096], release[4096];
	int fd;

	if (tgid_of(fuse_get_context()->pid) != victim)
		return;
	snprintf(hung, sizeof(hung), "%s/hung", statedir);
	snprintf(release, sizeof(release), "%s/release", statedir);
	fd = open(hung, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	while (access(release, F_OK))
		usleep(20000);
}

static void *hang_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* every stat and open goes to us: nothing answered from the kernel's caches */
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	return NULL;
}

static int hang_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/lib.so"))
		return -ENOENT;
	maybe_hang();
	st->st_mode = S_IFREG | 0755;
	st->st_nlink = 1;
	st->st_size = size;
	return 0;
}

static int hang_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "lib.so", NULL, 0, 0);
	return 0;
}

static int hang_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/lib.so"))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	maybe_hang();
	return 0;
}

static int hang_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	maybe_hang();
	if ((size_t)off >= size)
		return 0;
	if (len > size - off)
		len = size - off;
	memcpy(buf, data + off, len);
	return len;
}

static const struct fuse_operations ops = {
	.init = hang_init,
	.getattr = hang_getattr,
	.readdir = hang_readdir,
	.open = hang_open,
	.read = hang_read,
};

int main(int argc, char **argv)
{
	char *fargv[] = { argv[0], "-f", "-o", "fsname=hangfs", argv[4], NULL };
	struct stat st;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: hangfs SOURCE VICTIM_PID STATEDIR MOUNTPOINT\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !(data = malloc(st.st_size)) ||
	    read(fd, data, st.st_size) != st.st_size) {
		perror(argv[1]);
		return 1;
	}
	close(fd);
	size = st.st_size;
	victim = atoi(argv[2]);
	statedir = argv[3];
	return fuse_main(5, fargv, &ops, NULL);
}
