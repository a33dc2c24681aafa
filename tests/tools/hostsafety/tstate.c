// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Watches /proc for processes in state T (stopped), as the host-safety tests
 * need it: an independent measure of discovery's stops.
 *   tstate now [SID]        print the processes stopped now (of session SID), one a line
 *   tstate watch SID FILE   sample every 2 ms until SIGTERM, then write to FILE the
 *                           longest stop seen (ms), how many processes were seen
 *                           stopped, and the processes stopped at the end
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXP 65536

static volatile sig_atomic_t done;
static double since[MAXP];	/* when the pid was first seen stopped, 0: not stopped */
static char seen[MAXP];

static void on_term(int sig)
{
	done = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* state of pid, its session and its command; 0 if gone */
static char proc_state(int pid, long *sid, char comm[64])
{
	char path[64], buf[1024], *l, *r;
	char state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	l = strchr(buf, '(');
	r = strrchr(buf, ')');
	if (!l || !r || sscanf(r + 1, " %c %*d %*d %ld", &state, sid) != 2)
		return 0;
	snprintf(comm, 64, "%.*s", (int)(r - l - 1), l + 1);
	return state;
}

/* calls fn for every stopped process of session sid (0: any) */
static void scan(long want, void (*fn)(int pid, const char *comm, double t), double t)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char comm[64], st;
		long sid = 0;
		int pid = atoi(de->d_name);

		if (pid <= 0 || pid >= MAXP)
			continue;
		st = proc_state(pid, &sid, comm);
		if (st == 'T' && (!want || sid == want))
			fn(pid, comm, t);
	}
	if (d)
		closedir(d);
}

static void print_one(int pid, const char *comm, double t)
{
	printf("%d %s\n", pid, comm);
}

static double longest;
static int longest_pid, nseen;
static char mark[MAXP];

static void note(int pid, const char *comm, double t)
{
	mark[pid] = 1;
	if (!since[pid])
		since[pid] = t;
	if (!seen[pid]++)
		nseen++;
}

int main(int argc, char **argv)
{
	FILE *out;
	long sid;
	int pid;

	if (argc >= 2 && !strcmp(argv[1], "now")) {
		scan(argc >= 3 ? atol(argv[2]) : 0, print_one, 0);
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "watch")) {
		fprintf(stderr, "usage: tstate now [SID] | tstate watch SID FILE\n");
		return 2;
	}
	sid = atol(argv[2]);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!done) {
		double t = now_ms();

		memset(mark, 0, sizeof(mark));
		scan(sid, note, t);
		for (pid = 1; pid < MAXP; pid++) {
			if (!since[pid] || mark[pid])
				continue;
			/* it ran again: the stop lasted at most until now */
			if (t - since[pid] > longest) {
				longest = t - since[pid];
				longest_pid = pid;
			}
			since[pid] = 0;
		}
		usleep(2000);
	}
	out = fopen(argv[3], "w");
	if (!out)
		return 1;
	fprintf(out, "longest_ms %.1f\nlongest_pid %d\nstopped_processes %d\n", longest,
		longest_pid, nseen);
	for (pid = 1; pid < MAXP; pid++)
		if (since[pid])
			fprintf(out, "still_stopped %d %.1f\n", pid, now_ms() - since[pid]);
	fclose(out);
	return 0;
}
