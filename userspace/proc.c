// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Signals to a process a verdict named by its pid: through a pidfd, once its
 * start time says it is still that process.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
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

uint64_t proc_start_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || hz <= 0)
		return 0;
	buf[n] = 0;
	/* after the command, which may hold anything: field 22 is the start time */
	p = strrchr(buf, ')');
	for (i = 2; p && i < 22; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return 0;
	return ticks * (1000000000ULL / hz);
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
