// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The watchdog bounds every stop discovery makes, whatever the daemon does:
 * killed at any instant, stopped, starting up, blocked in a write, busy with
 * a hostile file. The daemon starts it (fork + exec of its own binary, with
 * only these descriptors):
 *   3  the kernel's `stops` map      4  the BPF .bss (the heartbeats, the count)
 *   5  a pidfd of the daemon         6  a pipe to the daemon (struct pw_expired)
 * and the bound and the daemon's pid as arguments.
 * Every 20 ms it beats (the kernel stops nobody unless both the daemon and the
 * watchdog beat) and continues every stop older than the bound. When the
 * daemon ends, by any means, it stops the beats, continues every stop and
 * exits. It holds no program and no link: the probes still go with the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "discover.h"
#include "log.h"
#include "proc.h"
#include "stops.h"
#include "watchdog.h"
#include "pinwarden.skel.h"

#define WD_FD_STOPS	3
#define WD_FD_BSS	4
#define WD_FD_DAEMON	5
#define WD_FD_PIPE	6
#define WD_PERIOD_MS	20
#define WD_FINAL_NS	100000000ULL	/* after the daemon: gate programs still running end by then */

extern char **environ;

int watchdog_start(struct daemon *d)
{
	int fds[4], p[2], pidfd, i;
	char bound[32], self[32], *argv[] = { "pinwarden", "watchdog", bound, self, NULL };
	pid_t pid;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
		log_warn("watchdog: pipe");
		return -1;
	}
	pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		log_warn("watchdog: pidfd_open");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	snprintf(bound, sizeof(bound), "%llu", (unsigned long long)d->disc.timeout_ns);
	snprintf(self, sizeof(self), "%d", getpid());
	fds[0] = bpf_map__fd(d->skel->maps.stops);
	fds[1] = bpf_map__fd(d->skel->maps.bss);
	fds[2] = pidfd;
	fds[3] = p[1];
	pid = fork();
	if (pid == 0) {
		/* async-signal-safe only until exec: the daemon may run threads */
		int hi[4];

		/* never held, not even at its exec (a plain store to the shared mapping) */
		d->skel->bss->watchdog_tgid = getpid();

		for (i = 0; i < 4; i++)
			hi[i] = fcntl(fds[i], F_DUPFD, 100);
		for (i = 0; i < 4; i++)
			if (hi[i] < 0 || dup2(hi[i], WD_FD_STOPS + i) < 0)
				_exit(127);
		syscall(SYS_close_range, WD_FD_PIPE + 1, ~0U, 0);
		execve("/proc/self/exe", argv, environ);
		_exit(127);
	}
	close(pidfd);
	close(p[1]);
	if (pid < 0) {
		log_warn("watchdog: fork");
		close(p[0]);
		return -1;
	}
	d->disc.wd_pid = pid;
	d->disc.wd_fd = p[0];
	d->disc.wd_started_ns = stops_now_ns();
	d->skel->bss->watchdog_tgid = pid;
	log_debug("watchdog: pid %d, bound %.0f ms", pid, d->disc.timeout_ns / 1e6);
	return 0;
}

static const char *why_name(uint32_t why)
{
	switch (why) {
	case PW_CONT_BOUND: return "bound";
	case PW_CONT_DAEMON_GONE: return "daemon_gone";
	case PW_CONT_LEFTOVER: return "previous_daemon";
	default: return "unknown";
	}
}

void watchdog_drain(struct daemon *d)
{
	struct pw_expired e[32];
	ssize_t n;
	size_t i;

	if (d->disc.wd_fd < 0)
		return;
	while ((n = read(d->disc.wd_fd, e, sizeof(e))) > 0) {
		for (i = 0; i < (size_t)n / sizeof(e[0]); i++) {
			struct pw_stop s = { .start = e[i].start, .stopped_ns = e[i].stopped_ns,
					     .dev = e[i].dev, .ino = e[i].ino };

			memcpy(s.comm, e[i].comm, sizeof(s.comm));
			if (e[i].why == PW_CONT_BOUND)
				d->disc.timeouts++;
			discover_stop_ended(d, e[i].pid, &s, e[i].continued_ns, why_name(e[i].why));
		}
	}
}

void watchdog_check(struct daemon *d)
{
	int status;

	if (d->disc.wd_pid <= 0 || waitpid(d->disc.wd_pid, &status, WNOHANG) != d->disc.wd_pid)
		return;
	/* meanwhile its heartbeat is stale: the kernel stops nobody */
	watchdog_drain(d);
	log_warnx("watchdog (pid %d) ended (status 0x%x): no process is stopped for "
		  "discovery until it runs again", d->disc.wd_pid, status);
	close(d->disc.wd_fd);
	d->disc.wd_fd = -1;
	d->disc.wd_pid = 0;
	d->skel->bss->watchdog_tgid = 0;
	if (stops_now_ns() - d->disc.wd_started_ns < 1000000000ULL)
		usleep(100000);	/* not in a tight loop */
	d->disc.wd_restarts++;
	watchdog_start(d);
}

/* ---- the watchdog process ---- */

static int wd_out = WD_FD_PIPE;
#define PF_EXITING 0x4

/*
 * Has the daemon begun to end? Its pidfd says so only once every thread is gone,
 * which, with hundreds of uprobes to release, takes seconds: its main thread's
 * state says so at once.
 */
static int daemon_ending(pid_t pid)
{
	struct proc_stat st;

	if (proc_stat_read(pid, &st))
		return 1;
	return st.state == 'Z' || st.state == 'X' || (st.flags & PF_EXITING);
}

static uint32_t wd_why;

static void wd_report(void *ctx, pid_t pid, const struct pw_stop *s)
{
	struct pw_expired e = { .pid = pid, .why = wd_why, .start = s->start,
				.stopped_ns = s->stopped_ns, .continued_ns = stops_now_ns(),
				.dev = s->dev, .ino = s->ino };

	memcpy(e.comm, s->comm, sizeof(e.comm));
	/* non-blocking: a daemon that reads no more must not hold the watchdog */
	if (write(wd_out, &e, sizeof(e)) < 0 && errno != EAGAIN && errno != EPIPE)
		log_warn("watchdog: report");
}

/* Keep only CAP_KILL: continuing another user's process is all it does. */
static void wd_drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	data[0].effective = data[0].permitted = 1u << CAP_KILL;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_capset, &hdr, data))
		log_warn("watchdog: cannot drop capabilities");
}

int cmd_watchdog(int argc, char **argv)
{
	struct pinwarden_bpf__bss *bss;
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	struct pollfd pfd = { .fd = WD_FD_DAEMON, .events = POLLIN };
	uint64_t bound, end;
	long page = sysconf(_SC_PAGESIZE);
	pid_t daemon;
	char *endp;

	log_init("pinwarden watchdog", 0);
	if (argc != 3 || (bound = strtoull(argv[1], &endp, 10)) == 0 || *endp ||
	    (daemon = atoi(argv[2])) <= 0 || fcntl(WD_FD_DAEMON, F_GETFD) < 0) {
		fprintf(stderr, "pinwarden: the watchdog is started by `pinwarden run`\n");
		return 2;
	}
	prctl(PR_SET_NAME, "pw-watchdog", 0, 0, 0);
	/* a terminal's Ctrl-C or a service manager's SIGTERM reach it too: it ends after
	 * the daemon, once every stop is continued */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (bpf_obj_get_info_by_fd(WD_FD_BSS, &info, &ilen) || info.value_size < sizeof(*bss)) {
		log_warnx("watchdog: not the daemon's .bss map");
		return 1;
	}
	bss = mmap(NULL, (info.value_size + page - 1) / page * page, PROT_READ | PROT_WRITE,
		   MAP_SHARED, WD_FD_BSS, 0);
	if (bss == MAP_FAILED) {
		log_warn("watchdog: mmap");
		return 1;
	}
	wd_drop_caps();
	bss->watchdog_tgid = getpid();
	wd_why = PW_CONT_BOUND;
	for (;;) {
		uint64_t now = stops_now_ns();
		__u32 keys[PW_STOPS_MAX], key;
		struct pw_stop s;
		int n = 0, i;

		/* a gap the kernel saw as unresponsive: counted for the daemon's metrics */
		if (bss->watchdog_beat_ns && now > bss->watchdog_beat_ns + PW_BEAT_MAX_NS)
			bss->watchdog_late++;
		bss->watchdog_beat_ns = now;
		while (n < PW_STOPS_MAX &&
		       !bpf_map_get_next_key(WD_FD_STOPS, n ? &keys[n - 1] : NULL, &key))
			keys[n++] = key;
		for (i = 0; i < n; i++)
			if (!bpf_map_lookup_elem(WD_FD_STOPS, &keys[i], &s) &&
			    now - s.stopped_ns >= bound &&
			    stop_release(WD_FD_STOPS, &bss->stopped_procs, keys[i], now, &s) > 0)
				wd_report(NULL, keys[i], &s);
		if (poll(&pfd, 1, WD_PERIOD_MS) > 0 || daemon_ending(daemon))
			break;	/* the daemon has ended */
	}
	/* no new stop from here on; a gate program already past its check records its stop
	 * within microseconds: sweep until none is left and those are surely over */
	bss->daemon_beat_ns = 0;
	bss->watchdog_beat_ns = 0;
	wd_why = PW_CONT_DAEMON_GONE;
	end = stops_now_ns() + WD_FINAL_NS;
	while (stops_release_all(WD_FD_STOPS, &bss->stopped_procs, stops_now_ns(), wd_report, NULL) ||
	       stops_now_ns() < end)
		usleep(10000);
	return 0;
}
