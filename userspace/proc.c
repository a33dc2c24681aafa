// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Signals to a process a verdict named by its pid: through a pidfd, once its
 * start time says it is still that process.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

/* how long a SIGKILL'ed process gets to be gone before it is reported as surviving */
#define KILL_WAIT_MS	100

static const char *const kill_names[PROC_KILL_MAX] = PROC_KILL_NAMES;

const char *proc_kill_name(int kill)
{
	return kill >= 0 && kill < PROC_KILL_MAX ? kill_names[kill] : "none";
}

int proc_stat_parse(const char *line, struct proc_stat *st)
{
	/* the command may hold anything, even ") 1 2": its last ')' ends it */
	const char *p = strrchr(line, ')');
	unsigned long long v;
	char *end;
	int field;

	if (!p || p[1] != ' ' || !p[2] || p[2] == ' ' || p[3] != ' ')
		return -1;
	st->state = p[2];
	p += 3;
	/* fields 4 to 22, each a number followed by a space: a line cut short, even
	 * inside the start time, is refused rather than misread */
	for (field = 4; field <= 22; field++) {
		if (*p++ != ' ' || !isdigit((unsigned char)p[*p == '-']))	/* tpgid may be -1 */
			return -1;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || *end != ' ')
			return -1;
		if (field == 9)
			st->flags = v;
		else if (field == 22)
			st->start_ticks = v;
		p = end;
	}
	return 0;
}

int proc_stat_read(pid_t pid, struct proc_stat *st)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return proc_stat_parse(buf, st);
}

uint64_t proc_start_ns(pid_t pid)
{
	long hz = sysconf(_SC_CLK_TCK);
	struct proc_stat st;

	if (hz <= 0 || proc_stat_read(pid, &st))
		return 0;
	return st.start_ticks * (1000000000ULL / hz);
}

uint32_t proc_uid(pid_t pid)
{
	char path[64], line[256];
	uint32_t uid = (uint32_t)-1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return uid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %u", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

int proc_pidfd(pid_t pid, uint64_t start_ns, uint64_t verdict_ns)
{
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t tick = hz > 0 ? 1000000000ULL / hz : 10000000ULL, seen;
	int fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	seen = proc_start_ns(pid);
	if (!seen) {
		close(fd);
		return -ESRCH;
	}
	if (start_ns ? seen != start_ns / tick * tick : seen > verdict_ns) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int proc_kill(pid_t pid, uint64_t start_ns, uint64_t verdict_ns)
{
	struct pollfd pfd = { .events = POLLIN };
	int r;

	pfd.fd = proc_pidfd(pid, start_ns, verdict_ns);
	if (pfd.fd == -ESRCH)
		return PROC_KILL_GONE;
	if (pfd.fd == -ESTALE)
		return PROC_KILL_REUSED;
	if (pfd.fd < 0) {
		log_warnx("cannot kill pid %d: pidfd_open: %s", pid, strerror(-pfd.fd));
		return PROC_KILL_ERROR;
	}
	if (syscall(SYS_pidfd_send_signal, pfd.fd, SIGKILL, NULL, 0)) {
		r = errno == ESRCH ? PROC_KILL_GONE : PROC_KILL_ERROR;
		if (r == PROC_KILL_ERROR)
			log_warn("cannot kill pid %d", pid);
		close(pfd.fd);
		return r;
	}
	/* a pidfd is readable once its process has exited */
	r = poll(&pfd, 1, KILL_WAIT_MS) == 1 ? PROC_KILL_KILLED : PROC_KILL_SURVIVED;
	close(pfd.fd);
	return r;
}

int proc_signal(pid_t pid, uint64_t start_ns, int sig)
{
	int fd = proc_pidfd(pid, start_ns, 0), rc = 0;

	if (fd < 0)
		return fd;
	if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0))
		rc = -errno;
	close(fd);
	return rc;
}
