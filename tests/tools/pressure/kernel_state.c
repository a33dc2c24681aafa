// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * kernel_state DAEMON_PID: what the kernel side of that pinwarden daemon holds
 * and counts right now, read from its maps (found through the daemon's file
 * descriptors, so that no other daemon's maps are read), for
 * tests/pressure.bats: the daemon's own metrics are written by its main loop,
 * which a flood can hold up. As root.
 *
 *   entries TGID UID N   ssl_state entries of process TGID, counted against UID
 *   total N              ssl_state entries in all
 *   quota UID N          session_uids: the entries the kernel charges to UID
 *   lost TGID START      session_lost: process TGID (started at START, boot ns)
 *                        could not keep a connection's state
 *   lost_uid UID NS      session_lost_uid: the same for a whole uid (when the
 *                        table of processes is full), at NS
 *   parked UID N         parked_chains: chains waiting for their library's
 *                        verification, charged to UID (the value's park_uid)
 *   parked_quota UID N   parked_uids: the parked chains the kernel charges to UID
 *   counter NAME N       a kernel counter (enum pw_counter), summed over CPUs
 *
 * Exit 0, or 1 with a message (no such daemon, a map missing).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pinwarden.h"

#define BATCH 4096

struct owner {
	__u32 tgid, uid;
	unsigned long n;
};

static struct owner *owners;
static size_t nowners, capowners;

static void owner_add(__u32 tgid, __u32 uid)
{
	size_t i;

	for (i = 0; i < nowners; i++)
		if (owners[i].tgid == tgid && owners[i].uid == uid) {
			owners[i].n++;
			return;
		}
	if (nowners == capowners) {
		capowners = capowners ? 2 * capowners : 64;
		owners = realloc(owners, capowners * sizeof(*owners));
		if (!owners) {
			perror("realloc");
			exit(1);
		}
	}
	owners[nowners].tgid = tgid;
	owners[nowners].uid = uid;
	owners[nowners++].n = 1;
}

/* The fd (ours) of the daemon's map called name; exits if it has none. */
static int daemon_map(const char *pid, const char *name)
{
	char dir[64], path[PATH_MAX], line[256];
	struct dirent *de;
	DIR *d;
	int found = -1;

	snprintf(dir, sizeof(dir), "/proc/%s/fdinfo", pid);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "kernel_state: %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	while (found < 0 && (de = readdir(d))) {
		unsigned id = 0;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "map_id: %u", &id) == 1)
				break;
		fclose(f);
		if (id) {
			struct bpf_map_info info = {};
			__u32 len = sizeof(info);
			int fd = bpf_map_get_fd_by_id(id);

			if (fd < 0)
				continue;
			/* the kernel keeps 15 bytes of a map's name */
			if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
			    !strncmp(info.name, name, sizeof(info.name) - 1))
				found = fd;
			else
				close(fd);
		}
	}
	closedir(d);
	if (found < 0) {
		fprintf(stderr, "kernel_state: daemon %s holds no map %s\n", pid, name);
		exit(1);
	}
	return found;
}

/* Every (u32 -> u64) entry of a small hash map, printed as "what KEY VALUE". */
static void dump_u32_u64(int fd, const char *what)
{
	__u32 uid, next;
	__u64 v;
	int have = 0;

	while (bpf_map_get_next_key(fd, have ? &uid : NULL, &next) == 0) {
		uid = next;
		have = 1;
		if (bpf_map_lookup_elem(fd, &uid, &v) == 0)
			printf("%s %u %llu\n", what, uid, (unsigned long long)v);
	}
}

/* the counters the tests read, by the names of pinwarden_*_total where there is one */
static const char *const counter_names[PW_CNT_MAX] = {
	[PW_CNT_CERTS] = "certificates_captured",
	[PW_CNT_CHAINS] = "chains_judged",
	[PW_CNT_LOST_CERT_RECS] = "lost_certificate_records",
	[PW_CNT_LOST_CHAIN_RECS] = "lost_chain_records",
	[PW_CNT_KILLED] = "processes_killed",
	[PW_CNT_KILL_FAILED] = "kill_failed",
	[PW_CNT_SNI_FULL] = "ssl_state_full",
	[PW_CNT_KNOWN_SKIPPED] = "known_certificates_skipped",
	[PW_CNT_LOST_DISCOVERY] = "discovery_lost",
	[PW_CNT_RULE_UNKNOWN] = "rule_unknown_failed_closed",
	[PW_CNT_LOST_MARK_FAILED] = "session_loss_unrecorded",
	[PW_CNT_PARK_QUOTA] = "parked_quota",
	[PW_CNT_VCHAIN_UNREAD] = "validated_chain_unreadable",
};

/* parked_chains' entries by the uid charged (the value starts with the boot ns of its
 * last certificate, then that uid) */
static void dump_parked(int fd)
{
	struct {
		__u32 uid;
		unsigned long n;
	} by[64];
	struct pw_ssl_key k, next;
	int nby = 0, have = 0, i;
	unsigned char *val;
	__u32 uid;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !(val = malloc(info.value_size))) {
		fprintf(stderr, "kernel_state: parked_chains: %s\n", strerror(errno));
		exit(1);
	}
	while (bpf_map_get_next_key(fd, have ? &k : NULL, &next) == 0) {
		k = next;
		have = 1;
		if (bpf_map_lookup_elem(fd, &next, val))
			continue;
		memcpy(&uid, val + 8, sizeof(uid));
		for (i = 0; i < nby && by[i].uid != uid; i++)
			;
		if (i == nby) {
			if (nby == 64)
				continue;
			by[nby].uid = uid;
			by[nby++].n = 0;
		}
		by[i].n++;
	}
	for (i = 0; i < nby; i++)
		printf("parked %u %lu\n", by[i].uid, by[i].n);
	free(val);
}

static void dump_counters(int fd)
{
	int ncpus = libbpf_num_possible_cpus(), c;
	__u32 i;

	if (ncpus <= 0) {
		fprintf(stderr, "kernel_state: cannot count the CPUs\n");
		exit(1);
	}
	for (i = 0; i < PW_CNT_MAX; i++) {
		__u64 v[ncpus], sum = 0;

		if (!counter_names[i])
			continue;
		if (bpf_map_lookup_elem(fd, &i, v)) {
			perror("kernel_state: counters");
			exit(1);
		}
		for (c = 0; c < ncpus; c++)
			sum += v[c];
		printf("counter %s %llu\n", counter_names[i], (unsigned long long)sum);
	}
}

int main(int argc, char **argv)
{
	static struct pw_ssl_key keys[BATCH];
	static struct pw_ssl_state vals[BATCH];
	unsigned long total = 0;
	__u64 token = 0;
	int fd, have = 0;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: kernel_state DAEMON_PID\n");
		return 1;
	}
	/* in batches: a walk by next key starts over when its key is deleted meanwhile */
	fd = daemon_map(argv[1], "ssl_state");
	for (;;) {
		__u32 n = BATCH, j;
		int err = bpf_map_lookup_batch(fd, have ? &token : NULL, &token, keys, vals, &n, NULL);

		if (err && errno != ENOENT) {
			perror("kernel_state: ssl_state");
			return 1;
		}
		have = 1;
		for (j = 0; j < n; j++)
			owner_add(keys[j].tgid, vals[j].uid);
		total += n;
		if (err)
			break;
	}
	for (i = 0; i < nowners; i++)
		printf("entries %u %u %lu\n", owners[i].tgid, owners[i].uid, owners[i].n);
	printf("total %lu\n", total);
	dump_u32_u64(daemon_map(argv[1], "session_uids"), "quota");
	dump_u32_u64(daemon_map(argv[1], "session_lost"), "lost");
	dump_u32_u64(daemon_map(argv[1], "session_lost_uid"), "lost_uid");
	dump_parked(daemon_map(argv[1], "parked_chains"));
	dump_u32_u64(daemon_map(argv[1], "parked_uids"), "parked_quota");
	dump_counters(daemon_map(argv[1], "counters"));
	return 0;
}
