// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The daemon's half of bpf/session.bpf.h: libraries free their connection
 * objects, but a process that exits frees nothing, so entries of dead
 * processes (a pid that is gone, or reused by a process that started later)
 * are swept here, a slice per tick; each full pass also recounts every uid's
 * entries (session_uids), so that the kernel's quota stays true, and lifts the
 * loss marks (session_lost) of processes that are gone, and a uid's
 * (session_lost_uid) once no process of that uid that could have lost state
 * lives any more.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"
#include "pinwarden.skel.h"
#include "proc.h"
#include "sessions.h"

#define SLICE		16384	/* entries looked at per tick */
#define BATCH		1024
#define MAX_UIDS	65536

/* Same process? The kernel's stamp is in ns, /proc's in clock ticks. */
static bool same_start(uint64_t kernel_ns, uint64_t proc_ns)
{
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t tick = 1000000000ULL / (hz > 0 ? hz : 100);

	return proc_ns && kernel_ns / tick * tick == proc_ns;
}

struct uid_count {
	uint32_t uid;
	uint64_t n;
};

static void uid_add(struct sessions *s, uint32_t uid)
{
	size_t i;

	for (i = 0; i < s->nuids; i++) {
		if (s->uids[i].uid == uid) {
			s->uids[i].n++;
			return;
		}
	}
	if (s->nuids == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct uid_count *v;

		if (cap > MAX_UIDS || !(v = realloc(s->uids, cap * sizeof(*v))))
			return;
		s->uids = v;
		s->cap = cap;
	}
	s->uids[s->nuids].uid = uid;
	s->uids[s->nuids++].n = 1;
}

/* The pass is over: every uid's true count, and the loss marks that can go. */
static void pass_end(struct daemon *d, struct sessions *s)
{
	int ufd = bpf_map__fd(d->skel->maps.session_uids);
	int pfd = bpf_map__fd(d->skel->maps.session_lost);
	int lfd = bpf_map__fd(d->skel->maps.session_lost_uid);
	uint32_t uid, next;
	int have = 0;
	size_t i;

	/* uids with no entry left: 0 */
	while (bpf_map_get_next_key(ufd, have ? &uid : NULL, &next) == 0) {
		uint64_t zero = 0;
		bool seen = false;

		for (i = 0; i < s->nuids && !seen; i++)
			seen = s->uids[i].uid == next;
		if (!seen)
			bpf_map_update_elem(ufd, &next, &zero, BPF_EXIST);
		uid = next;
		have = 1;
	}
	for (i = 0; i < s->nuids; i++)
		bpf_map_update_elem(ufd, &s->uids[i].uid, &s->uids[i].n, BPF_ANY);
	s->nuids = 0;
	s->passes++;

	/* a process's loss mark goes with the process */
	have = 0;
	while (bpf_map_get_next_key(pfd, have ? &uid : NULL, &next) == 0) {
		uint64_t start = 0;

		uid = next;
		have = 1;
		if (bpf_map_lookup_elem(pfd, &next, &start) == 0 &&
		    !same_start(start, proc_start_ns((pid_t)next)) &&
		    bpf_map_delete_elem(pfd, &next) == 0)
			s->lost_cleared++;
	}
	/* a uid's mark (the table above was full) stays while a process of that uid that
	 * lived then lives on */
	have = 0;
	while (bpf_map_get_next_key(lfd, have ? &uid : NULL, &next) == 0) {
		uint64_t mark = 0;
		bool older = false;
		DIR *dir;
		struct dirent *de;

		uid = next;
		have = 1;
		if (bpf_map_lookup_elem(lfd, &next, &mark))
			continue;
		dir = opendir("/proc");
		while (dir && !older && (de = readdir(dir))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			uint32_t puid;
			uint64_t start;

			if (*end || pid <= 0)
				continue;
			start = proc_start_ns((pid_t)pid);
			puid = proc_uid((pid_t)pid);
			older = start && puid == next && start <= mark;
		}
		if (dir)
			closedir(dir);
		if (dir && !older) {
			bpf_map_delete_elem(lfd, &next);
			s->lost_cleared++;
			log_info("uid %u: every process that lost a connection's state is gone", next);
		}
	}
}

/* When process tgid started (0: gone), read once per pass of the session sweep:
 * a few processes hold most entries. */
static uint64_t start_cached(struct sessions *s, uint32_t tgid)
{
	struct proc_seen *c = &s->seen[tgid % SESSIONS_SEEN];

	if (c->tgid != tgid || c->pass != s->passes + 1) {
		c->tgid = tgid;
		c->start = proc_start_ns((pid_t)tgid);
		c->pass = s->passes + 1;
	}
	return c->start;
}

void sessions_sweep(struct daemon *d, struct sessions *s)
{
	int fd = bpf_map__fd(d->skel->maps.ssl_state);
	struct pw_ssl_key keys[BATCH], dead[BATCH];
	struct pw_ssl_state vals[BATCH];
	uint32_t done = 0;

	while (done < SLICE) {
		__u32 count = BATCH, i, ndead = 0;
		int err;

		err = bpf_map_lookup_batch(fd, s->started ? &s->token : NULL, &s->token, keys, vals,
					   &count, NULL);
		if (err && errno != ENOENT) {
			if (!s->errors++)
				log_warn("cannot sweep the session table");
			s->started = false;
			return;
		}
		s->started = true;
		for (i = 0; i < count; i++) {
			if (!same_start(vals[i].start, start_cached(s, keys[i].tgid)))
				dead[ndead++] = keys[i];
			else
				uid_add(s, vals[i].uid);
		}
		for (i = 0; i < ndead; i++)
			if (bpf_map_delete_elem(fd, &dead[i]) == 0)
				s->swept++;
		done += count;
		if (err) {	/* ENOENT: the end of the table */
			s->started = false;
			pass_end(d, s);
			return;
		}
	}
}

#define PARKED_SLICE	1024	/* parked chains looked at per table and tick */
#define PARKED_DEAD	256

/* The start of a value of a table of parked chains (the BPF side's struct pw_chain_acc). */
struct parked_head {
	uint64_t ts;		/* boot ns of its last certificate */
	uint32_t park_uid;	/* the uid charged for it (parked_chains) */
};

/*
 * Go on through one table of parked chains from where the last tick stopped
 * (key struct pw_ssl_key), and drop the chains of processes gone. `uids_fd`:
 * the table of counts per uid to take them off (parked_uids), or -1.
 */
static void parked_sweep_map(struct bpf_map *map, int uids_fd, struct parked_cursor *cur,
			     struct sessions *s)
{
	int fd = bpf_map__fd(map);
	size_t vsize = bpf_map__value_size(map);
	struct pw_ssl_key next, dead[PARKED_DEAD];
	uint32_t dead_uid[PARKED_DEAD];
	uint32_t n = 0, ndead = 0, i;
	unsigned char *val;

	if (fd < 0 || vsize < sizeof(struct parked_head))
		return;
	val = malloc(vsize);
	if (!val)
		return;
	while (n++ < PARKED_SLICE && ndead < PARKED_DEAD) {
		struct parked_head h;
		uint64_t start;

		if (bpf_map_get_next_key(fd, cur->valid ? &cur->key : NULL, &next)) {
			cur->valid = false;	/* the end: the next tick starts over */
			break;
		}
		cur->key = next;
		cur->valid = true;
		if (bpf_map_lookup_elem(fd, &next, val))
			continue;	/* judged meanwhile */
		memcpy(&h, val, sizeof(h));
		start = start_cached(s, next.tgid);
		if (!start || start > h.ts) {
			dead_uid[ndead] = h.park_uid;
			dead[ndead++] = next;
		}
	}
	free(val);
	for (i = 0; i < ndead; i++) {
		uint64_t c;

		if (bpf_map_delete_elem(fd, &dead[i]))
			continue;
		log_debug("%s: the chain parked by pid %u (its process is gone) dropped",
			  bpf_map__name(map), dead[i].tgid);
		/* off its uid's count (not atomic with the kernel's: a drift of one at worst,
		 * and only for that uid) */
		if (uids_fd >= 0 && !bpf_map_lookup_elem(uids_fd, &dead_uid[i], &c) && c) {
			c--;
			bpf_map_update_elem(uids_fd, &dead_uid[i], &c, BPF_EXIST);
		}
	}
}

void parked_sweep(struct daemon *d, struct sessions *s)
{
	parked_sweep_map(d->skel->maps.parked_chains, bpf_map__fd(d->skel->maps.parked_uids),
			 &s->parked[0], s);
	parked_sweep_map(d->skel->maps.go_pending, -1, &s->parked[1], s);
}

void sessions_free(struct sessions *s)
{
	free(s->uids);
	memset(s, 0, sizeof(*s));
}
