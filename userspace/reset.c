// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * action: reset, the daemon's half. The kernel marks the connection in
 * reset_conns (keyed by its network namespace and 4-tuple: see
 * bpf/verdict.bpf.h, conn_mark_reset) and holds its process; the chain record
 * wakes us: we destroy the socket with netlink SOCK_DESTROY from inside the
 * socket's own network namespace, then continue the process, and remove the
 * mark. A verdict whose kill failed marks its connection the same way: we
 * kill the process from userspace and destroy the connection.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"
#include "pinwarden.skel.h"
#include "proc.h"
#include "procinfo.h"
#include "reset.h"
#include "stops.h"

/* a mark its chain record has not claimed by then: the record was lost (ring full) */
#define MARK_RECORD_WAIT_NS	(200ULL * 1000000ULL)
/* a mark whose stop is still to be sent after this long: its program is long over */
#define MARK_PENDING_WAIT_NS	(10ULL * 1000000000ULL)
/* a socket that could not be destroyed for this long: its mark is given up */
#define MARK_GIVE_UP_NS		(600ULL * 1000000000ULL)
/* how long a SIGKILL'ed process gets to be gone before it is reported as surviving */
#define MARKS_PER_PASS		256
/* how long to wait for a program that is sending its stop (it takes microseconds) */
#define PENDING_TRIES		100
#define PENDING_SLEEP_US	20
#define HOLD_SLEEP_US		500
#define HOLD_TRIES		((int)(PW_STOP_SETTLE_NS / 1000 / HOLD_SLEEP_US) + 2)

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

bool policy_uses_reset(const struct pw_policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (p->rules[i].mode == PW_MODE_ENFORCE && p->rules[i].action == PW_ACTION_RESET)
			return true;
	return false;
}

bool policy_has_server_rules(const struct pw_policy *p)
{
	size_t i;

	for (i = 0; i < p->nrules; i++)
		if (p->rules[i].side == PW_SIDE_SERVER)
			return true;
	return false;
}

void read_track_enable(struct daemon *d, bool on)
{
	if (!on) {
		d->skel->bss->read_track_on = 0;
		bpf_link__destroy(d->read_track_link);
		d->read_track_link = NULL;
		return;
	}
	if (d->read_track_link)
		return;
	d->read_track_link = bpf_program__attach(d->skel->progs.pw_sys_enter);
	if (!d->read_track_link) {
		log_warn("cannot track reads: the connections of libraries without an fd binding "
			 "are found by their thread's last connect() only (server sides: not at all)");
		return;
	}
	d->skel->bss->read_track_on = 1;
}

int reset_enable(struct daemon *d, bool on)
{
	const char *mnt;
	int fd;

	if (!on) {
		/* nothing held or marked may outlive the filter */
		reset_flush(d);
		d->skel->bss->reset_on = 0;
		bpf_link__destroy(d->reset_egress_link);
		d->reset_egress_link = NULL;
		return 0;
	}
	if (d->reset_egress_link)
		return 0;
	mnt = cgroup2_mount();
	if (!mnt) {
		log_warnx("action reset needs the cgroup v2 hierarchy mounted: none found");
		return -1;
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("%s", mnt);
		return -1;
	}
	/* the root of the hierarchy: every process's egress passes it */
	d->reset_egress_link = bpf_program__attach_cgroup(d->skel->progs.pw_reset_egress, fd);
	close(fd);
	if (!d->reset_egress_link) {
		log_warn("cannot attach the reset egress filter to %s", mnt);
		return -1;
	}
	d->skel->bss->reset_on = 1;
	log_info("action reset: egress filter on %s", mnt);
	return 0;
}

/* ---- SOCK_DESTROY in the socket's own network namespace ---------------------- */

/* The daemon's own network namespace, opened once. -1 if it cannot be. */
static int netns_self(struct daemon *d)
{
	struct stat st;
	int fd;

	if (d->netns_ino)
		return 0;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		log_warn("/proc/self/ns/net");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	d->netns_fd = fd;
	d->netns_ino = st.st_ino;
	d->netns_dev = st.st_dev;
	return 0;
}

/* `path` if it is the network namespace `ino`; else -1. */
static int netns_try(const struct daemon *d, const char *path, uint32_t ino)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || st.st_ino != ino || st.st_dev != d->netns_dev) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Look for the network namespace `ino` among the entries of `dir`: -1 if none. */
static int netns_scan(const struct daemon *d, const char *dir, const char *fmt, uint32_t ino)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	char path[512];
	int fd = -1;

	if (!dh)
		return -1;
	while (fd < 0 && (de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), fmt, de->d_name);
		fd = netns_try(d, path, ino);
	}
	closedir(dh);
	return fd;
}

/*
 * The network namespace `ino`, found through the thread that took the verdict
 * or its process (the socket's namespace is theirs but for a process that
 * moved since), else any process in it, else a named one (ip netns).
 */
static int netns_open(const struct daemon *d, uint32_t ino, uint32_t pid, uint32_t tid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/ns/net", tid);
	fd = netns_try(d, path, ino);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%u/ns/net", pid);
		fd = netns_try(d, path, ino);
	}
	if (fd < 0)
		fd = netns_scan(d, "/proc", "/proc/%s/ns/net", ino);
	if (fd < 0)
		fd = netns_scan(d, "/run/netns", "/run/netns/%s", ino);
	return fd;
}

/* A NETLINK_SOCK_DIAG socket in the network namespace `ino`: -errno if none. */
static int diag_socket(struct daemon *d, uint32_t ino, uint32_t pid, uint32_t tid)
{
	int nsfd, fd, err;

	if (netns_self(d))
		return -EIO;
	if (!ino || ino == d->netns_ino) {
		fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		return fd < 0 ? -errno : fd;
	}
	nsfd = netns_open(d, ino, pid, tid);
	if (nsfd < 0)
		return -ESRCH;
	/* a netlink socket belongs to the namespace it was made in, for good */
	if (setns(nsfd, CLONE_NEWNET)) {
		err = -errno;
		close(nsfd);
		return err;
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	err = fd < 0 ? -errno : 0;
	close(nsfd);
	if (setns(d->netns_fd, CLONE_NEWNET))
		fatal("cannot return to the daemon's own network namespace");
	return fd < 0 ? err : fd;
}

/* SOCK_DESTROY one TCP connection: 0, -ENOENT (no such socket: closed), -errno. */
static int sock_destroy_tcp(struct daemon *d, const struct pw_conn_key *k, uint32_t pid,
			    uint32_t tid)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DESTROY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
		.req = {
			.sdiag_family = k->family,
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = ~0u,
		},
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[512];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;
	int fd, rc = -EIO;

	msg.req.id.idiag_sport = htons(k->sport);
	msg.req.id.idiag_dport = htons(k->dport);
	msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (k->family == AF_INET) {
		if (memcmp(k->saddr, v4mapped, 12) || memcmp(k->daddr, v4mapped, 12))
			return -EINVAL;
		memcpy(&msg.req.id.idiag_src[0], k->saddr + 12, 4);
		memcpy(&msg.req.id.idiag_dst[0], k->daddr + 12, 4);
	} else {
		memcpy(msg.req.id.idiag_src, k->saddr, 16);
		memcpy(msg.req.id.idiag_dst, k->daddr, 16);
	}
	fd = diag_socket(d, k->netns, pid, tid);
	if (fd < 0)
		return fd;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n >= (ssize_t)sizeof(*h) && h->nlmsg_type == NLMSG_ERROR &&
	    n >= (ssize_t)(sizeof(*h) + sizeof(struct nlmsgerr)))
		rc = ((struct nlmsgerr *)NLMSG_DATA(h))->error;	/* 0 or -errno */
	else if (n < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

/* ---- the marks ------------------------------------------------------------ */

static void outcome_keep(struct daemon *d, const struct reset_outcome *o)
{
	unsigned n = sizeof(d->reset_recent) / sizeof(d->reset_recent[0]);

	d->reset_recent[d->reset_recent_next++ % n] = *o;
}

static bool outcome_find(const struct daemon *d, uint32_t tid, uint64_t ts, struct reset_outcome *o)
{
	unsigned i, n = sizeof(d->reset_recent) / sizeof(d->reset_recent[0]);

	for (i = 0; i < n; i++)
		if (d->reset_recent[i].marked && d->reset_recent[i].tid == tid &&
		    d->reset_recent[i].ts_boot_ns == ts) {
			*o = d->reset_recent[i];
			return true;
		}
	return false;
}

/*
 * Destroy the mark's socket; kill its process if its verdict's kill failed, or
 * if the socket could not be destroyed (fail closed: its egress stays dropped,
 * the mark stays for the sweep to try again). The outcome is kept for the
 * verdict's chain record.
 */
static struct reset_outcome mark_destroy(struct daemon *d, int mfd, const struct pw_conn_key *k,
					 struct pw_conn_mark *m, bool late)
{
	struct reset_outcome o = {
		.ts_boot_ns = m->ts_boot_ns, .tid = m->tid, .netns = k->netns, .marked = true,
		.held = m->flags & PW_MARK_HELD, .late = late, .kill = PROC_KILL_NONE,
	};

	o.destroy = sock_destroy_tcp(d, k, m->pid, m->tid);
	if (o.destroy == 0)
		d->resets++;
	if (o.destroy && o.destroy != -ENOENT) {
		d->reset_errors++;
		log_warnx("pid %u's connection to port %u (network namespace %u): SOCK_DESTROY "
			  "failed: %s; its egress stays dropped, the process is killed", m->pid,
			  k->dport, k->netns, strerror(-o.destroy));
		o.kill = proc_kill(m->pid, m->start_boottime, m->ts_boot_ns);
	} else if (m->flags & PW_MARK_KILL) {
		o.kill = proc_kill(m->pid, m->start_boottime, m->ts_boot_ns);
	}
	if (o.kill != PROC_KILL_NONE)
		d->ukills[o.kill]++;
	if (late)
		d->reset_late++;
	if (o.destroy == 0 || o.destroy == -ENOENT) {
		bpf_map_delete_elem(mfd, k);
	} else {
		m->flags = PW_MARK_DONE;
		bpf_map_update_elem(mfd, k, m, BPF_EXIST);
	}
	outcome_keep(d, &o);
	return o;
}

/* The marks of process `pid` with any of `flags` (not yet acted on): up to `max` of them. */
static size_t marks_of(int mfd, uint32_t pid, uint32_t flags, struct pw_conn_key *keys,
		       struct pw_conn_mark *vals, size_t max)
{
	struct pw_conn_key cur;
	struct pw_conn_mark v;
	size_t n = 0;
	int have = 0;

	while (n < max && bpf_map_get_next_key(mfd, have ? &cur : NULL, &cur) == 0) {
		have = 1;
		if (bpf_map_lookup_elem(mfd, &cur, &v) || v.pid != pid || (v.flags & PW_MARK_DONE) ||
		    !(v.flags & flags))
			continue;
		keys[n] = cur;
		vals[n++] = v;
	}
	return n;
}

/*
 * The hold of a reset is a stop in `stops` (bpf/verdict.bpf.h, reset_hold):
 * whoever deletes the entry continues the process, so the watchdog, which ends
 * it at the bound, and the daemon never both do. 1: continued by us; 0: no
 * such hold any more (ended at the bound, or the process is gone); <0: error.
 */
static int hold_claim(struct daemon *d, pid_t pid)
{
	int fd = bpf_map__fd(d->skel->maps.stops), tries, r = 0;
	__u32 key = pid;
	struct pw_stop s;

	/* its SIGSTOP lands within microseconds; past the settle time it is released anyway */
	for (tries = 0; tries < HOLD_TRIES; tries++) {
		/* only a reset's hold: a stop of discovery is discovery's to end */
		if (bpf_map_lookup_elem(fd, &key, &s) || s.dev != PW_STOP_RESET)
			return 0;
		r = stop_release(fd, &d->skel->bss->stopped_procs, pid, stops_now_ns(), &s);
		if (r != 0)
			break;
		usleep(HOLD_SLEEP_US);
	}
	return r > 0 ? 1 : 0;
}

/* Record a hold made from here (a thread stopped again): 1 when it is recorded. */
static int hold_record(struct daemon *d, pid_t pid, uint64_t start)
{
	struct pw_stop s = { .start = start, .stopped_ns = stops_now_ns(), .dev = PW_STOP_RESET };
	__u32 key = pid;

	if (d->skel->bss->stopped_procs >= d->skel->rodata->stops_max)
		return 0;
	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.stops), &key, &s, BPF_NOEXIST))
		/* the verdict of the new mark recorded its own stop: that one bounds it */
		return !bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.stops), &key, &s) &&
		       s.dev == PW_STOP_RESET && s.start == start;
	__atomic_fetch_add(&d->skel->bss->stopped_procs, 1, __ATOMIC_RELAXED);
	return 1;
}

/*
 * Let a process held for resets go on. Each verdict stopped its own thread
 * (the stop of a thread takes the whole process), but SIGCONT continues all
 * of them and cancels every stop not yet taken: so first the sockets its
 * other threads wait on are destroyed too, those of the marks whose stop was
 * sent (PW_MARK_HELD), once those whose stop is being sent (PW_MARK_PENDING:
 * a program still running, microseconds) are. A mark made between the last
 * look and the SIGCONT (its stop may have been cancelled) stops its thread
 * again, at once, for that mark's own record to continue the process.
 */
static int hold_release(struct daemon *d, int mfd, uint32_t pid, uint64_t start)
{
	struct pw_conn_key keys[MARKS_PER_PASS];
	struct pw_conn_mark vals[MARKS_PER_PASS];
	int pidfd, rc = 0, tries;
	size_t n, i, pending;

	pidfd = proc_pidfd(pid, start, 0);
	if (pidfd < 0)
		return pidfd;
	for (tries = 0; tries < PENDING_TRIES; tries++) {
		n = marks_of(mfd, pid, PW_MARK_HELD | PW_MARK_PENDING, keys, vals, MARKS_PER_PASS);
		for (i = pending = 0; i < n; i++) {
			if (vals[i].flags & PW_MARK_PENDING)
				pending++;
			else
				mark_destroy(d, mfd, &keys[i], &vals[i], true);
		}
		if (!pending)
			break;
		usleep(PENDING_SLEEP_US);
	}
	rc = hold_claim(d, pid);
	if (rc > 0) {
		/* to the thread itself: it stops at once, not when another thread runs;
		 * recorded first, so that the watchdog bounds it like any other stop */
		n = marks_of(mfd, pid, PW_MARK_HELD | PW_MARK_PENDING, keys, vals, MARKS_PER_PASS);
		for (i = 0; i < n && (i || hold_record(d, pid, start)); i++)
			syscall(SYS_tgkill, pid, vals[i].tid, SIGSTOP);
	}
	close(pidfd);
	if (rc < 0 && rc != -ESRCH)
		log_warnx("cannot continue pid %u, stopped for a reset: %s", pid, strerror(-rc));
	return rc < 0 ? rc : 0;
}

/* Act on one mark: destroy its socket, then let its process go on, or kill it. */
static void mark_act(struct daemon *d, int mfd, const struct pw_conn_key *k, struct pw_conn_mark *m,
		     bool late)
{
	struct reset_outcome o = mark_destroy(d, mfd, k, m, late);

	if (o.held && o.kill != PROC_KILL_KILLED && o.kill != PROC_KILL_GONE &&
	    hold_release(d, mfd, m->pid, m->start_boottime) == 0) {
		o.continued = true;
		outcome_keep(d, &o);	/* the later entry is the one found */
	}
}

/* A mark whose socket could not be destroyed: try again, give up after a while. */
static void mark_retry(struct daemon *d, int mfd, const struct pw_conn_key *k,
		       const struct pw_conn_mark *m, uint64_t now)
{
	int rc = sock_destroy_tcp(d, k, m->pid, m->tid);

	if (rc == 0 || rc == -ENOENT) {
		d->resets += rc == 0;
		bpf_map_delete_elem(mfd, k);
	} else if (now > m->ts_boot_ns + MARK_GIVE_UP_NS) {
		d->reset_abandoned++;
		log_warnx("pid %u's connection to port %u (network namespace %u) could not be "
			  "destroyed for %llu s (%s): its mark is given up, its egress flows again",
			  m->pid, k->dport, k->netns, MARK_GIVE_UP_NS / 1000000000ULL, strerror(-rc));
		bpf_map_delete_elem(mfd, k);
	}
}

static void marks_act_batch(struct daemon *d, int mfd, const struct pw_conn_key *keys,
			    struct pw_conn_mark *vals, size_t n, bool own, uint64_t now)
{
	struct pw_conn_mark v;
	size_t i;

	for (i = 0; i < n; i++) {
		/* acted on meanwhile, with another mark of its process? */
		if (bpf_map_lookup_elem(mfd, &keys[i], &v) || v.ts_boot_ns != vals[i].ts_boot_ns ||
		    v.tid != vals[i].tid || v.flags != vals[i].flags)
			continue;
		if (v.flags & PW_MARK_DONE)
			mark_retry(d, mfd, &keys[i], &v, now);
		else
			mark_act(d, mfd, &keys[i], &v, !(own && i == 0));
	}
}

/*
 * Act on the marks: the one of the verdict (tid, ts) if given, then those
 * whose record is overdue (lost, or not read yet), or with `all` every one;
 * with `retry`, try again to destroy the sockets that could not be. At most
 * MARKS_PER_PASS others a pass: a flood of marks must not stall the daemon.
 */
static void marks_pass(struct daemon *d, uint32_t tid, uint64_t ts, bool all, bool retry)
{
	int mfd = bpf_map__fd(d->skel->maps.reset_conns);
	struct pw_conn_key keys[MARKS_PER_PASS + 1], cur;
	struct pw_conn_mark vals[MARKS_PER_PASS + 1], v;
	uint64_t now = boot_ns();
	size_t n = 0;
	bool own = false;
	int have = 0;

	while (bpf_map_get_next_key(mfd, have ? &cur : NULL, &cur) == 0) {
		have = 1;
		if (bpf_map_lookup_elem(mfd, &cur, &v))
			continue;
		if (!(v.flags & PW_MARK_DONE) && ts && v.tid == tid && v.ts_boot_ns == ts) {
			/* the verdict's own (one mark): first, whatever else is waiting */
			if (n) {
				keys[n] = keys[0];
				vals[n] = vals[0];
			}
			keys[0] = cur;
			vals[0] = v;
			n++;
			own = true;
			continue;
		}
		if (n >= MARKS_PER_PASS + (own ? 1u : 0u)) {
			if (!all)
				continue;
			/* stopping: every mark, a batch at a time */
			marks_act_batch(d, mfd, keys, vals, n, own, now);
			n = 0;
			own = false;
		}
		/* a mark stamped in the future is not overdue (boot time never goes back);
		 * one whose stop is still to be sent waits for it (its program is
		 * running), else that stop would come after our SIGCONT */
		if ((v.flags & PW_MARK_DONE) ? retry :
		    (v.flags & PW_MARK_PENDING) ? now > v.ts_boot_ns + MARK_PENDING_WAIT_NS :
		    all || now > v.ts_boot_ns + MARK_RECORD_WAIT_NS) {
			keys[n] = cur;
			vals[n] = v;
			n++;
		}
	}
	marks_act_batch(d, mfd, keys, vals, n, own, now);
}

void reset_act(struct daemon *d, const struct pw_chain_rec *r, struct reset_outcome *o)
{
	marks_pass(d, r->tid, r->ts_boot_ns, false, false);
	if (outcome_find(d, r->tid, r->ts_boot_ns, o))
		return;
	/* no mark: the connection is unknown (or its mark was given up) */
	*o = (struct reset_outcome){ .ts_boot_ns = r->ts_boot_ns, .tid = r->tid,
				     .kill = PROC_KILL_NONE };
	if (r->done == PW_DONE_KILL_FAILED) {
		o->kill = proc_kill(r->pid, 0, r->ts_boot_ns);
		d->ukills[o->kill]++;
	}
}

void reset_sweep(struct daemon *d)
{
	marks_pass(d, 0, 0, false, true);
}

void reset_flush(struct daemon *d)
{
	marks_pass(d, 0, 0, true, false);
}
