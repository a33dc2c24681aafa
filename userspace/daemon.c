// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `pinwarden run`: load the policy, load the BPF object, attach the probes,
 * then poll the ring buffer until SIGTERM/SIGINT; SIGHUP reloads the policy.
 * Lifecycle as libbpf intends: open -> configure -> load -> attach -> poll ->
 * destroy, with one cleanup path.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "compile.h"
#include "daemon.h"
#include "discover.h"
#include "examine.h"
#include "libraries.h"
#include "reset.h"
#include "dedup.h"
#include "log.h"
#include "metrics.h"
#include "outq.h"
#include "safefile.h"
#include "snapwriter.h"
#include "stops.h"
#include "watchdog.h"
#include "pinwarden.skel.h"

#define TICK_NS		1000000000ULL
#define CERT_CACHE	4096
#define BEAT_MS		20		/* the loop wakes at least this often: the heartbeat */
#define BATCH_NS	2000000ULL	/* events handled between two looks at discovery */
#define OUTQ_BYTES	(16u << 20)	/* events waiting for the log, at most */
#define DISCOVER_TIMEOUT_MS 200

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_verbose < 2)
		return 0;
	if (!log_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t boot_to_unix(void)
{
	struct timespec b, r;

	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &r);
	return ((uint64_t)r.tv_sec * 1000000000ULL + r.tv_nsec) -
	       ((uint64_t)b.tv_sec * 1000000000ULL + b.tv_nsec);
}

const struct pw_policy *daemon_policy(struct daemon *d, uint32_t gen)
{
	unsigned i = gen % PW_POLICY_KEEP;

	return d->pol_gen[i] == gen ? d->pol[i] : NULL;
}

static void keep_policy(struct daemon *d, struct pw_policy *p, uint32_t gen)
{
	unsigned i = gen % PW_POLICY_KEEP;

	policy_free(d->pol[i]);
	d->pol[i] = p;
	d->pol_gen[i] = gen;
}

/*
 * Read the policy file (or the built-in default): trust, parse, what this
 * build supports. Returns 0 with *out set, or -1 after saying why (stderr and,
 * once the daemon runs, a policy_error event).
 */
static int policy_read(struct daemon *d, struct pw_policy **out, struct pw_diags *diags)
{
	char why[512], err[1024];

	*out = NULL;
	if (!d->policy_path) {
		*out = policy_default();
		return *out ? 0 : -1;
	}
	if (policy_file_trusted(d->policy_path, why, sizeof(why))) {
		snprintf(err, sizeof(err), "%s: refused: %s", d->policy_path, why);
		log_warnx("%s", err);
		events_policy_error(d, d->policy_path, NULL, err);
		return -1;
	}
	if (policy_parse_file(d->policy_path, time(NULL), out, diags)) {
		diags_print(diags, d->policy_path, stderr);
		events_policy_error(d, d->policy_path, diags, "policy has errors; nothing changed");
		return -1;
	}
	if (diags->nwarnings)
		diags_print(diags, d->policy_path, stderr);
	if (policy_supported(*out, err, sizeof(err))) {
		log_warnx("%s", err);
		events_policy_error(d, d->policy_path, NULL, err);
		policy_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void purge_old(struct daemon *d);

/* Compile `p` as the next generation and switch to it; on failure the old one stays. */
static int policy_activate(struct daemon *d, struct pw_policy *p, const struct pw_diags *diags)
{
	const char *warnings[COMPILE_MAX_WARNINGS];
	struct compile_result cr;
	uint32_t gen = d->gen + 1;
	char err[1024];
	size_t i;

	if (policy_compile(p, d->skel, gen, &cr, err, sizeof(err))) {
		log_warnx("%s", err);
		events_policy_error(d, p->source, NULL, err);
		policy_free(p);
		return -1;
	}
	if (reset_enable(d, policy_uses_reset(p)) && policy_uses_reset(p)) {
		snprintf(err, sizeof(err), "%s: action reset cannot work on this host (see above); "
			 "nothing changed", p->source);
		log_warnx("%s", err);
		events_policy_error(d, p->source, NULL, err);
		policy_purge(d->skel, gen, true);
		policy_free(p);
		return -1;
	}
	read_track_enable(d, policy_uses_reset(p) || policy_has_server_rules(p));
	{
		const struct pw_policy *cur = daemon_policy(d, d->gen);

		/* certificates captured from now on may be judged by either generation */
		d->skel->bss->need_cert_hash = policy_has_cert_pins(p) ||
					       (cur && policy_has_cert_pins(cur));
	}
	keep_policy(d, p, gen);
	/* one aligned store: every verdict reads the generation once */
	__atomic_store_n(&d->skel->bss->active_gen, gen, __ATOMIC_RELEASE);
	d->gen = gen;
	d->switched_ns = mono_ns();
	purge_old(d);	/* generations before the previous one, at once */
	for (i = 0; i < cr.nwarnings; i++)
		warnings[i] = cr.warnings[i];
	events_policy_loaded(d, p, gen, diags, warnings, cr.nwarnings);
	return 0;
}

/* SIGHUP */
static void policy_reload(struct daemon *d)
{
	struct pw_diags diags = {};
	struct pw_policy *p;

	d->policy_reloads++;
	if (policy_read(d, &p, &diags) || policy_activate(d, p, &diags))
		d->policy_errors++;
	else
		log_info("policy reloaded: generation %u", d->gen);
	diags_free(&diags);
}

static void read_counters(struct daemon *d)
{
	int fd = bpf_map__fd(d->skel->maps.counters), ncpu = libbpf_num_possible_cpus();
	uint64_t *vals = calloc(ncpu, sizeof(*vals));
	uint32_t k;
	int c;

	d->watchdog_late = d->skel->bss->watchdog_late;
	if (!vals)
		return;
	for (k = 0; k < PW_CNT_MAX; k++) {
		uint64_t sum = 0;

		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (c = 0; c < ncpu; c++)
			sum += vals[c];
		d->cnt[k] = sum;
	}
	free(vals);
}

static void report_losses(struct daemon *d)
{
	uint64_t chains = d->cnt[PW_CNT_LOST_CHAIN_RECS], certs = d->cnt[PW_CNT_LOST_CERT_RECS];
	uint64_t disc = d->cnt[PW_CNT_LOST_DISCOVERY];
	struct outq_stats os = {}, after = {};

	if (d->outq)
		outq_stats(d->outq, &os);
	if (chains == d->lost_chains && certs == d->lost_certs && os.dropped == d->lost_events &&
	    disc == d->lost_discovery)
		return;
	events_lost(d, chains - d->lost_chains, certs - d->lost_certs, os.dropped - d->lost_events,
		    disc - d->lost_discovery);
	if (d->outq)
		outq_stats(d->outq, &after);
	/* reported once the lost event itself was queued; else again, counted, next time */
	if (after.dropped != os.dropped)
		return;
	log_warnx("lost: %llu chain, %llu certificate and %llu discovery records (ring buffers "
		  "full), %llu events (the log does not drain)",
		  (unsigned long long)(chains - d->lost_chains),
		  (unsigned long long)(certs - d->lost_certs),
		  (unsigned long long)(disc - d->lost_discovery),
		  (unsigned long long)(os.dropped - d->lost_events));
	d->lost_chains = chains;
	d->lost_certs = certs;
	d->lost_events = os.dropped;
	d->lost_discovery = disc;
}


/*
 * Old generations leave the maps once no verdict can still be reading them: the
 * one just replaced a tick after the switch, older ones at once. A verdict reads
 * active_gen once and finishes within microseconds.
 */
static void purge_old(struct daemon *d)
{
	uint32_t upto = d->gen >= 2 ? d->gen - 2 : 0, g;

	if (d->gen >= 1 && mono_ns() >= d->switched_ns + TICK_NS)
		upto = d->gen - 1;
	for (g = d->purged_upto + 1; g <= upto; g++)
		/* cgroup slots go by parity: generation g + 2, if loaded, owns them now */
		policy_purge(d->skel, g, g + 2 > d->gen);
	if (upto > d->purged_upto) {
		const struct pw_policy *cur = daemon_policy(d, d->gen);

		d->purged_upto = upto;
		if (upto + 1 >= d->gen && cur)
			d->skel->bss->need_cert_hash = policy_has_cert_pins(cur);
	}
}

/* What `pinwarden status` reads: written atomically, 0600, every tick. */
static void status_write(struct daemon *d)
{
	char why[512];
	struct json j;
	size_t i;
	int k;

	if (!d->status_path || !d->status_path[0])
		return;
	json_init(&j);
	json_obj_begin(&j, NULL);
	json_str(&j, "version", PW_VERSION);
	json_uint(&j, "pid", getpid());
	json_uint(&j, "started_unix_ns", d->started_unix_ns);
	json_uint(&j, "open_files_limit", d->nofile);
	json_uint(&j, "updated_unix_ns", events_now_unix_ns());
	json_str(&j, "log", d->log_path);
	json_obj_begin(&j, "policy");
	json_str(&j, "source", d->policy_path ? d->policy_path : "built-in default");
	json_uint(&j, "generation", d->gen);
	json_uint(&j, "reloads", d->policy_reloads);
	json_uint(&j, "reload_errors", d->policy_errors);
	json_obj_end(&j);
	json_arr_begin(&j, "libraries");
	for (i = 0; i < d->libs.n; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "library", d->libs.v[i].library);
		json_str(&j, "path", d->libs.v[i].display);
		json_uint(&j, "device", d->libs.v[i].dev);
		json_uint(&j, "inode", d->libs.v[i].ino);
		json_uint(&j, "probes", d->libs.v[i].nprobes);
		json_uint(&j, "links", d->libs.v[i].nlinks);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_begin(&j, "counters");
	for (k = 0; k < PW_CNT_MAX; k++)
		json_uint(&j, kernel_counters[k].name, d->cnt[k]);
	json_uint(&j, "chains_logged", d->chains);
	{
		struct outq_stats os = {};

		if (d->outq)
			outq_stats(d->outq, &os);
		json_uint(&j, "event_write_errors", d->write_errors + os.write_errors);
		json_uint(&j, "events_dropped", os.dropped);
	}
	json_obj_end(&j);
	json_obj_begin(&j, "discovery");
	json_uint(&j, "timeout_ms", d->disc.timeout_ns / 1000000);
	json_uint(&j, "stops", d->disc.stops_seen);
	json_uint(&j, "continued_examined", d->disc.continued);
	json_uint(&j, "timeouts", d->disc.timeouts);
	json_uint(&j, "leftovers_continued", d->disc.leftovers);
	json_uint(&j, "remapped", d->disc.remapped);
	json_uint(&j, "notes_unfound", d->disc.note_unfound);
	json_uint(&j, "unseen_mappings", d->disc.unseen_found);
	json_uint(&j, "libraries_changed", d->disc.changed);
	json_uint(&j, "libraries_attached", d->discovered);
	json_uint(&j, "libraries_detached", d->disc.detached);
	json_uint(&j, "longest_stop_us", d->disc.stop_max_ns / 1000);
	json_uint(&j, "stopped_now", d->skel && d->skel->bss ? d->skel->bss->stopped_procs : 0);
	json_uint(&j, "pending_now", d->skel && d->skel->bss ? d->skel->bss->pending_procs : 0);
	json_obj_begin(&j, "ungated");
	for (k = 1; k < PW_UNGATED_MAX; k++)
		json_uint(&j, discover_ungated_names[k], d->disc.ungated[k]);
	json_obj_end(&j);
	json_uint(&j, "watchdog_pid", d->disc.wd_pid);
	json_uint(&j, "watchdog_restarts", d->disc.wd_restarts);
	if (d->disc.pool) {
		struct examine_stats es;

		examine_stats(d->disc.pool, &es);
		json_obj_begin(&j, "examination");
		json_uint(&j, "timeout_ms", d->disc.examine_timeout_ns / 1000000);
		json_uint(&j, "workers", es.workers);
		json_uint(&j, "workers_stuck", es.stuck);
		json_uint(&j, "workers_stuck_max", es.stuck_max);
		json_uint(&j, "workers_returned", es.stuck_returned);
		json_uint(&j, "files", es.submitted);
		json_uint(&j, "timeouts", es.timeouts);
		json_uint(&j, "refused", es.refused);
		json_uint(&j, "longest_read_us", d->disc.examine_max_ns / 1000);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	json_obj_begin(&j, "uncovered");
	for (k = 0; k < UNCOVERED_MAX; k++) {
		uint64_t n = 0;

		for (i = 0; i < UNCOVERED_LIBS; i++)
			n += d->uncovered[i][k];
		json_uint(&j, uncovered_reason_names[k], n);
	}
	json_obj_end(&j);
	/* the same files by family, and the latest of them one by one */
	json_obj_begin(&j, "uncovered_by_library");
	for (i = 0; i < UNCOVERED_LIBS; i++) {
		uint64_t n = 0;

		for (k = 0; k < UNCOVERED_MAX; k++)
			n += d->uncovered[i][k];
		if (n)
			json_uint(&j, uncovered_library_names[i], n);
	}
	json_obj_end(&j);
	events_uncovered_list(d, &j, "uncovered_files");
	json_obj_end(&j);
	if (j.oom) {
		json_free(&j);
		return;
	}
	j.buf[j.len] = '\n';	/* the writer keeps room for its NUL */
	/* root's only: it names every library probed and what was killed; and a fresh
	 * file, never one planted there; once ready, by the writer thread */
	if (d->snap) {
		char *copy = malloc(j.len + 1);

		if (copy) {
			memcpy(copy, j.buf, j.len + 1);
			snapwriter_put(d->snap, SNAP_STATUS, d->status_path, copy, j.len + 1, 0600,
				       true);
			d->status_written = true;
		}
	} else if (!safefile_replace(d->status_path, j.buf, j.len + 1, 0600, true, why,
				     sizeof(why))) {
		d->status_written = true;
	}
	else if (!d->status_errors++)
		log_warnx("cannot write the status file: %s", why);
	json_free(&j);
}

static void beat(struct daemon *d, const char *at);
static void serve_discovery(struct daemon *d);

/* One step of the tick done: a heartbeat named after it, and the kernel answered
 * (a tick with a thousand libraries attached is long: a process held meanwhile
 * would otherwise wait for all of it, or, past 100 ms, not be held at all). */
static void tick_step(struct daemon *d, const char *done)
{
	beat(d, done);
	serve_discovery(d);
}

static void tick(struct daemon *d, unsigned n)
{
	d->boot_to_unix_ns = boot_to_unix();
	d->skel->bss->boot_to_unix_ns = d->boot_to_unix_ns;
	read_counters(d);
	report_losses(d);
	purge_old(d);
	sessions_sweep(d, &d->sessions);
	parked_sweep(d, &d->sessions);	/* chains parked by processes gone */
	reset_sweep(d);	/* marks of lost records, sockets not yet destroyed */
	tick_step(d, "tick: counters and sweeps");
	discover_check_attached(d);	/* files rewritten in place since they were attached */
	tick_step(d, "tick: attached files checked");
	discover_sweep_unmapped(d);	/* libraries no process maps any more */
	tick_step(d, "tick: unmapped libraries");
	discover_sweep_unseen(d);	/* mappings no hook saw */
	tick_step(d, "tick: unseen mappings");
	if (!d->no_discover)
		watchdog_check(d);
	events_flush_repeats(d, false);
	metrics_write(d);
	tick_step(d, "tick: metrics");
	status_write(d);
}

/*
 * Keep only what the daemon still needs once it runs: BPF and perf (load and
 * attach), SYS_ADMIN (attach to cgroups, read /proc/PID/map_files), KILL
 * (stop and continue processes for discovery), NET_ADMIN (SOCK_DESTROY),
 * DAC_READ_SEARCH (open_by_handle_at on cgroupfs, other users' /proc files),
 * SYS_PTRACE (other users' /proc/PID/maps), SYS_RESOURCE (locked memory).
 * No new privileges can be gained through exec either.
 */
static int caps_drop(void)
{
	static const int keep[] = {
		CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_KILL, CAP_NET_ADMIN,
		CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_SYS_RESOURCE,
	};
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {}, have[2] = {};
	size_t i;
	int c;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	/* keep what is both needed and held: a container or a service manager
	 * may have withheld some (CAP_SYS_RESOURCE, say), and asking capset for
	 * a capability not held fails the whole call */
	if (syscall(SYS_capget, &hdr, have))
		return -1;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	for (i = 0; i < 2; i++) {
		data[i].permitted &= have[i].permitted;
		data[i].effective &= have[i].permitted;
	}
	/* the bounding set too, so that nothing dropped can come back */
	for (c = 0; c <= CAP_LAST_CAP; c++) {
		bool kept = false;

		for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			kept |= keep[i] == c;
		/* dropping needs CAP_SETPCAP, which a service manager's bounding set
		 * (systemd's CapabilityBoundingSet) has already taken with the rest */
		if (!kept && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, c, 0, 0, 0))
			return -1;
	}
	return syscall(SYS_capset, &hdr, data);
}

static void usage_run(FILE *f)
{
	fprintf(f, "usage: pinwarden run [--policy FILE] [--log FILE] [--metrics FILE] "
		   "[--status FILE] [--no-discover] [--discover-timeout MS] [--examine-timeout MS] "
		   "[--detach-unmapped SECS] "
		   "[--dedup SECS] "
		   "[--log-buffer KIB] [--attach PATH]... [--session-quota N] [--park-quota N] [-v]\n");
}

/*
 * The kernel side sees every pid as the host's (the initial PID namespace's),
 * and discovery reads /proc/PID of those: from any other namespace it would
 * stop, continue and kill the wrong processes. Compared with /proc/1/ns/pid, a
 * container with its own /proc would agree with itself; the initial namespace
 * is the only one with the fixed inode PROC_PID_INIT_INO, and the descriptor's
 * file system tells a real namespace file (nsfs) from anything mounted there.
 */
#define PROC_PID_INIT_INO 0xEFFFFFFCU	/* include/linux/proc_ns.h, fixed since 3.8 */

static int host_pidns_check(void)
{
	struct statfs sf;
	struct stat st;
	int fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_warn("cannot open /proc/self/ns/pid to check the PID namespace");
		return -1;
	}
	if (fstat(fd, &st) || fstatfs(fd, &sf)) {
		log_warn("cannot check the PID namespace");
		close(fd);
		return -1;
	}
	close(fd);
	if (sf.f_type != NSFS_MAGIC || st.st_ino != PROC_PID_INIT_INO) {
		log_warnx("not in the host's PID namespace (pid namespace inode %llu, the host's is "
			  "%u): pinwarden judges and stops processes by their host pids; run it on "
			  "the host, or in a container with the host's (docker --pid=host, "
			  "Kubernetes hostPID: true)", (unsigned long long)st.st_ino,
			  PROC_PID_INIT_INO);
		return -1;
	}
	return 0;
}

static int open_log(const char *path)
{
	char why[512];
	int fd;

	if (!path || !strcmp(path, "-"))
		return dup(STDOUT_FILENO);
	if (!strcmp(path, "/dev/null"))	/* learn's default: the events are not wanted */
		return open(path, O_WRONLY | O_CLOEXEC);
	/* the daemon is root: nothing planted where the log goes is written through */
	fd = safefile_append(path, 0640, why, sizeof(why));
	if (fd < 0)
		fatalx("cannot open the event log: %s", why);
	return fd;
}

/* A duration option in milliseconds, 10 to max, into *ns; -1 (said why) if not one. */
static int option_ms(const char *arg, const char *name, unsigned long long max, uint64_t *ns)
{
	char *end;
	unsigned long long ms = strtoull(arg, &end, 10);

	if (*end || ms < 10 || ms > max) {
		fprintf(stderr, "pinwarden: %s: milliseconds, 10 to %llu\n", name, max);
		return -1;
	}
	*ns = ms * 1000000ULL;
	return 0;
}

/* A count of `what` from 1 to max: 0, or -1 said on stderr. */
static int option_count(const char *arg, const char *name, const char *what,
			unsigned long long max, uint64_t *n)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);

	if (*end || !v || v > max) {
		fprintf(stderr, "pinwarden: %s: %s, 1 to %llu\n", name, what, max);
		return -1;
	}
	*n = v;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'l' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "status", required_argument, NULL, 's' },
		{ "no-discover", no_argument, NULL, 'D' },
		{ "discover-timeout", required_argument, NULL, 'T' },
		{ "examine-timeout", required_argument, NULL, 'E' },
		{ "detach-unmapped", required_argument, NULL, 'U' },
		{ "log-buffer", required_argument, NULL, 'B' },
		{ "dedup", required_argument, NULL, 'R' },
		{ "attach", required_argument, NULL, 'a' },
		{ "session-quota", required_argument, NULL, 'Q' },
		{ "park-quota", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .log_fd = -1, .status_path = PW_STATUS_FILE, .dedup_seconds = 60,
			    .session_quota = PW_SESSION_QUOTA, .park_quota = PW_PARKED_QUOTA,
			    .disc.detach_after_ns = PW_DETACH_UNMAPPED_S * 1000000000ULL };
	int c, rc, verbose = 0;
	char *end;

	optind = 1;
	/* every --attach names an argv element: at most argc of them */
	d.attach_paths = calloc(argc, sizeof(*d.attach_paths));
	if (!d.attach_paths)
		fatal("out of memory");
	while ((c = getopt_long(argc, argv, "p:l:m:s:a:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'a': d.attach_paths[d.nattach++] = optarg; break;
		case 'p': d.policy_path = optarg; break;
		case 'l': d.log_path = optarg; break;
		case 'm': d.metrics_path = optarg; break;
		case 's': d.status_path = optarg; break;
		case 'D': d.no_discover = true; break;
		case 'T':
			if (option_ms(optarg, "--discover-timeout", 60000, &d.disc.timeout_ns))
				return 2;
			break;
		case 'E':
			if (option_ms(optarg, "--examine-timeout", 600000, &d.disc.examine_timeout_ns))
				return 2;
			break;
		case 'U': {
			unsigned long long secs = strtoull(optarg, &end, 10);

			if (!*optarg || *end || secs > 86400 * 30) {
				fprintf(stderr, "pinwarden: --detach-unmapped: seconds, 0 (never) to "
						"2592000\n");
				return 2;
			}
			d.disc.detach_after_ns = secs * 1000000000ULL;
			break;
		}
		case 'B': {
			unsigned long long kib = strtoull(optarg, &end, 10);

			if (*end || kib < 64 || kib > 4194304) {
				fprintf(stderr, "pinwarden: --log-buffer: KiB, 64 to 4194304\n");
				return 2;
			}
			d.log_buffer = kib << 10;
			break;
		}
		case 'R':
			d.dedup_seconds = strtoull(optarg, &end, 10);
			if (*end || d.dedup_seconds > 86400) {
				fprintf(stderr, "pinwarden: --dedup: seconds, 0 (off) to 86400\n");
				return 2;
			}
			break;
		case 'Q':
			if (option_count(optarg, "--session-quota", "connections per uid",
					 PW_SESSIONS_MAX, &d.session_quota))
				return 2;
			break;
		case 'K':
			if (option_count(optarg, "--park-quota", "parked chains per uid",
					 PW_PARKED_MAX, &d.park_quota))
				return 2;
			break;
		case 'v': verbose++; break;
		case 'h': usage_run(stdout); free(d.attach_paths); return 0;
		default: usage_run(stderr); free(d.attach_paths); return 2;
		}
	}
	if (optind != argc) {
		usage_run(stderr);
		free(d.attach_paths);
		return 2;
	}
	log_init("pinwarden", verbose);
	rc = daemon_run(&d);
	free(d.attach_paths);
	return rc;
}

/*
 * run --attach PATH: library files the host-wide lookup does not find (outside
 * the dynamic linker's cache, e.g. /usr/lib/x86_64-linux-gnu/android/libssl.so.0)
 * and programs with TLS linked in (Go, node), attached before `ready`.
 * Asked for by name, so a file that cannot be attached stops the daemon.
 */
static int attach_explicit(struct daemon *d)
{
	char err[512];
	size_t i;
	int r;

	for (i = 0; i < d->nattach; i++) {
		uint64_t t0 = mono_ns();

		r = library_attach_file(d->skel, &d->libs, d->attach_paths[i], err, sizeof(err));
		log_debug("--attach %s: %.1f ms", d->attach_paths[i], (mono_ns() - t0) / 1e6);
		if (r < 0) {
			log_warnx("--attach %s: %s", d->attach_paths[i], err);
			return -1;
		}
		if (r == 0 && !attach_set_find_path(&d->libs, d->attach_paths[i])) {
			log_warnx("--attach %s: not a TLS library or program pinwarden knows", d->attach_paths[i]);
			return -1;
		}
	}
	return 0;
}

static void host_uncovered(void *ctx, const char *path, const char *err)
{
	struct uncovered_where at = { 0 };
	struct daemon *d = ctx;
	struct stat st;

	if (!stat(path, &st)) {
		at.dev = st.st_dev;
		at.ino = st.st_ino;
	}
	events_library_uncovered(d, &at, d->libs.failed_library, d->libs.failed_version, path,
				 d->libs.failed_reason, err);
}

/*
 * Two descriptors per uprobe: a soft limit of 1024 ends coverage after some 60
 * libraries. Take all the hard limit gives (systemd: LimitNOFILE=); past it,
 * each file left out says so (library_uncovered, reason file_limit).
 */
static void nofile_raise(struct daemon *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			log_warn("cannot raise the open files limit from %llu to %llu",
				 (unsigned long long)was, (unsigned long long)rl.rlim_max);
			getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	d->nofile = rl.rlim_cur;
	/* the programs and maps take some 100, and each library 2 per probe (up to 30) */
	if (d->nofile < 4096)
		log_warnx("open files limit %llu: some %llu libraries can be attached (set "
			  "LimitNOFILE= or ulimit -Hn higher)", (unsigned long long)d->nofile,
			  (unsigned long long)(d->nofile > 228 ? (d->nofile - 164) / 32 : 0));
}

/*
 * The heartbeat the kernel checks before it stops anyone (with the watchdog's),
 * given at `at`. A gap longer than the kernel waits let processes started
 * meanwhile run unexamined: counted, and said with where it began and ended.
 */
static void beat(struct daemon *d, const char *at)
{
	uint64_t now = mono_ns(), gap = now - d->beat_ns;

	d->skel->bss->daemon_beat_ns = now;
	if (d->beat_watch && d->beat_ns && now > d->beat_ns) {
		if (gap > d->beat_gap_max_ns)
			d->beat_gap_max_ns = gap;
		if (gap > PW_BEAT_MAX_NS && d->beats_late++ < 20)
			log_warnx("the loop gave no heartbeat for %llu ms (from %s to %s): "
				  "processes started meanwhile were not held for examination",
				  (unsigned long long)(gap / 1000000), d->beat_at, at);
	}
	d->beat_ns = now;
	d->beat_at = at;
}

/* Answer the kernel: discovery records, the watchdog's reports, stops to continue. */
static void serve_discovery(struct daemon *d)
{
	beat(d, "serve");
	if (d->rb_disc)
		ring_buffer__consume(d->rb_disc);
	beat(d, "discovery ring");
	watchdog_drain(d);
	beat(d, "watchdog");
	discover_collect(d);
	beat(d, "collect");
	if (d->disc.nretry)
		discover_retry(d);
	beat(d, "retry");
}

/* The events ring's callback, with a budget: discovery never waits for a flood. */
static int on_event(void *ctx, void *data, size_t size)
{
	struct daemon *d = ctx;

	events_on_record(d, data, size);
	if (++d->batch % 16 == 0 && mono_ns() >= d->batch_until_ns)
		return -EAGAIN;
	return 0;
}

/* Everything the events ring holds, answering discovery between batches (serve). */
static int drain(struct daemon *d, bool serve)
{
	int err;

	do {
		if (serve)
			serve_discovery(d);
		d->batch = 0;
		d->batch_until_ns = mono_ns() + BATCH_NS;
		err = ring_buffer__consume(d->rb);
		beat(d, "events ring");
	} while (err == -EAGAIN);
	return err < 0 && err != -EINTR ? err : 0;
}

/* No process is stopped any more, and none is left stopped. */
static void discovery_end(struct daemon *d)
{
	if (!d->skel || !d->skel->bss)
		return;
	d->skel->bss->discover_on = 0;
	d->skel->bss->daemon_beat_ns = 0;
	if (d->rb_disc)
		ring_buffer__consume(d->rb_disc);
	discover_release_all(d);
	watchdog_drain(d);
	discover_unpin(d);
	discover_examine_stop(d);
}

int daemon_run(struct daemon *dp)
{
	struct daemon d = *dp;
	struct pw_policy *policy = NULL;
	struct pw_diags diags = {};
	struct sigaction sa = {};
	struct bpf_link *tcp_link = NULL, *exec_link = NULL, *exit_link = NULL, *gate_link = NULL;
	struct bpf_link *gate_connect_link = NULL, *mmap_link = NULL;
	struct epoll_event ev = { .events = EPOLLIN }, evs[4];
	unsigned ticks = 0;
	uint64_t next_tick;
	int c, err, rc = 1, ncpu, epfd = -1;
	char why[512];

	umask(027);
	if (!d.log_path)
		d.log_path = "stdout";
	if (!d.disc.timeout_ns)
		d.disc.timeout_ns = DISCOVER_TIMEOUT_MS * 1000000ULL;
	d.disc.wd_fd = -1;
	json_init(&d.j);
	if (d.dedup_seconds) {
		d.dedup = calloc(1, sizeof(*d.dedup));
		if (!d.dedup)
			fatalx("out of memory");
		dedup_init(d.dedup, d.dedup_seconds * 1000000000ULL);
	}

	/* a bad policy is refused before anything touches the kernel */
	if (policy_read(&d, &policy, &diags)) {
		if (d.policy_path)
			log_warnx("%s: nothing attached", d.policy_path);
		diags_free(&diags);
		return 2;
	}
	if (geteuid() != 0) {
		log_warnx("run needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); try sudo");
		return 1;
	}
	if (host_pidns_check())
		return 1;
	nofile_raise(&d);
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_warnx("this kernel has no BTF (/sys/kernel/btf/vmlinux): pinwarden needs "
			  "CONFIG_DEBUG_INFO_BTF=y");
		return 1;
	}
	libbpf_set_print(libbpf_print);
	/* the files the daemon replaces every second: refused now rather than in silence */
	if ((d.status_path && d.status_path[0] &&
	     safefile_check(d.status_path, true, why, sizeof(why))) ||
	    (d.metrics_path && safefile_check(d.metrics_path, false, why, sizeof(why)))) {
		log_warnx("%s", why);
		return 1;
	}
	d.log_fd = open_log(d.log_path[0] && strcmp(d.log_path, "stdout") ? d.log_path : NULL);
	d.outq = outq_new(d.log_fd, d.log_buffer ? d.log_buffer : OUTQ_BYTES, d.log_path);
	if (!d.outq)
		log_warnx("no writer thread for the event log: events are written in the loop");
	/* before anything else: processes an earlier daemon left stopped */
	discover_adopt_leftovers(&d);

	d.skel = pinwarden_bpf__open();
	if (!d.skel) {
		log_warn("cannot open the BPF object");
		goto cleanup;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		ncpu = 1;
	/* two scratch slots per CPU and two spare: a preempted hash never blocks another */
	bpf_map__set_max_entries(d.skel->maps.scratch, 2 * ncpu + 2);
	d.skel->rodata->scratch_slots = 2 * ncpu + 2;
	bpf_map__set_max_entries(d.skel->maps.known_certs, CERT_CACHE);
	/* the key that names certificates between the kernel and us: secret, per run */
	if (getrandom(d.cert_id_key, sizeof(d.cert_id_key), 0) != sizeof(d.cert_id_key)) {
		log_warn("getrandom");
		goto cleanup;
	}
	if (!d.session_quota)
		d.session_quota = PW_SESSION_QUOTA;	/* learn: the default */
	d.skel->data->session_quota = d.session_quota;
	if (!d.park_quota)
		d.park_quota = PW_PARKED_QUOTA;	/* learn: the default */
	d.skel->data->park_quota = d.park_quota;
	d.skel->rodata->cert_id_key[0] = d.cert_id_key[0];
	d.skel->rodata->cert_id_key[1] = d.cert_id_key[1];
	attach_multi_setup(d.skel->obj);
	err = pinwarden_bpf__load(d.skel);
	if (err) {
		log_warnx("cannot load the BPF programs: %s (run with -v -v for the verifier's log)",
			  strerror(-err));
		goto cleanup;
	}
	/* the verdict every probe tail-calls: in place before any probe is attached */
	if (bpf_map_update_elem(bpf_map__fd(d.skel->maps.verdict_prog), &(__u32){ 0 },
				&(int){ bpf_program__fd(d.skel->progs.pw_verdict) }, BPF_ANY)) {
		log_warn("cannot install the verdict program");
		goto cleanup;
	}
	d.cc = certcache_new(CERT_CACHE, bpf_map__fd(d.skel->maps.known_certs), d.cert_id_key);
	d.rb = ring_buffer__new(bpf_map__fd(d.skel->maps.events), on_event, &d, NULL);
	d.rb_disc = ring_buffer__new(bpf_map__fd(d.skel->maps.discovery), discover_on_record, &d,
				     NULL);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!d.cc || !d.rb || !d.rb_disc || epfd < 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(d.rb_disc), &ev) ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(d.rb), &ev)) {
		log_warnx("cannot set up the event path");
		goto cleanup;
	}
	d.skel->bss->daemon_tgid = getpid();
	if (!d.no_discover) {
		int efd = discover_examine_start(&d);

		if (efd < 0)
			log_warnx("discovery: no examination workers: files are read on the loop, "
				  "where a file system that does not answer blocks it");
		else if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
			log_warn("discovery: epoll");
		discover_pin(&d);
		/* without it, nobody is ever stopped (its heartbeat is what the kernel checks) */
		if (watchdog_start(&d))
			log_warnx("discovery: no watchdog: no process will be stopped for examination");
	}
	d.boot_to_unix_ns = boot_to_unix();
	d.skel->bss->boot_to_unix_ns = d.boot_to_unix_ns;
	d.started_unix_ns = events_now_unix_ns();
	rc = policy_activate(&d, policy, &diags);
	policy = NULL;	/* kept by the daemon, or freed */
	diags_free(&diags);
	if (rc) {
		rc = 2;
		goto cleanup;
	}
	rc = 1;
	tcp_link = bpf_program__attach(d.skel->progs.pw_tcp_connect);
	if (!tcp_link)
		log_warn("cannot attach the connect tracker: peers of custom-BIO clients will be unknown");
	libraries_attach_host(d.skel, &d.libs, host_uncovered, &d);
	if (attach_explicit(&d))
		goto cleanup;
	if (!d.no_discover) {
		/* watch execs first, so that nothing started during the scan escapes it */
		d.skel->bss->discover_on = 1;
		beat(&d, "scan");
		exit_link = bpf_program__attach(d.skel->progs.pw_exit);
		exec_link = bpf_program__attach(d.skel->progs.pw_exec);
		if (!exec_link) {
			log_warn("cannot watch exec: processes started from now on with a TLS "
				 "library of their own are NOT covered");
			d.skel->bss->discover_on = 0;
		}
		mmap_link = bpf_program__attach(d.skel->progs.pw_mmap);
		if (!mmap_link)
			log_warn("cannot watch mmap (tp_btf/mmap_lock_released): shared objects "
				 "loaded from now on (a private libssl, dlopen) are NOT covered "
				 "until a process that maps one is scanned");
		gate_link = bpf_program__attach(d.skel->progs.pw_gate);
		gate_connect_link = bpf_program__attach(d.skel->progs.pw_gate_connect);
		if (!gate_link || !gate_connect_link)
			log_warn("cannot attach discovery's gates (tcp_rcv_space_adjust, "
				 "inet_sock_set_state): a new file's first handshake may run before "
				 "the file is examined");
		/* answering the kernel between processes: the scan takes seconds */
		discover_scan_all(&d, serve_discovery);
		serve_discovery(&d);
		/* what the workers still read: each file within its bound */
		while (discover_busy(&d) && !got_stop) {
			epoll_wait(epfd, evs, 4, BEAT_MS);
			serve_discovery(&d);
		}
	}
	if (!d.libs.n) {
		log_warnx("no TLS library could be attached: nothing to watch");
		goto cleanup;
	}

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (caps_drop())
		log_warn("cannot drop the capabilities the daemon does not need; running with all");
	events_ready(&d);
	status_write(&d);
	d.snap = snapwriter_start();
	if (!d.snap)
		log_warn("no writer thread: metrics and status are written on the loop");
	d.beat_watch = true;
	if (d.learn_seconds)
		d.learn_until_ns = mono_ns() + d.learn_seconds * TICK_NS;
	log_info("ready: %zu libraries attached, policy generation %u", d.libs.n, d.gen);
	next_tick = mono_ns() + TICK_NS;
	while (!got_stop && !(d.learn_until_ns && mono_ns() >= d.learn_until_ns)) {
		/* discovery's ring wakes us at once; the events ring batches its wake-ups
		 * (BPF_RB_NO_WAKEUP): drained on every pass, at least every BEAT_MS */
		if (epoll_wait(epfd, evs, 4, d.disc.nretry ? 1 : BEAT_MS) < 0 && errno != EINTR) {
			log_warn("epoll_wait");
			goto cleanup;
		}
		err = drain(&d, true);
		if (err < 0) {
			log_warnx("ring buffer: %s", strerror(-err));
			goto cleanup;
		}
		if (got_hup) {
			got_hup = 0;
			policy_reload(&d);
			beat(&d, "reload");
		}
		if (mono_ns() >= next_tick) {
			tick(&d, ++ticks);
			beat(&d, "tick");
			next_tick = mono_ns() + TICK_NS;
		}
	}
	/* stop stopping processes, then continue the ones waiting for us and drain what is
	 * queued; account for any loss before leaving */
	bpf_link__destroy(gate_link);
	gate_link = NULL;
	bpf_link__destroy(gate_connect_link);
	gate_connect_link = NULL;
	bpf_link__destroy(exec_link);
	exec_link = NULL;
	bpf_link__destroy(mmap_link);
	mmap_link = NULL;
	discovery_end(&d);
	drain(&d, false);
	read_counters(&d);
	report_losses(&d);
	events_flush_repeats(&d, true);
	log_info("stopping: %llu chains judged", (unsigned long long)d.chains);
	rc = 0;
cleanup:
	snapwriter_stop(d.snap);	/* what it still has is written first */
	d.snap = NULL;
	if (d.status_path && d.status_written)
		unlink(d.status_path);
	dp->learn = d.learn;
	policy_free(policy);
	bpf_link__destroy(gate_link);
	bpf_link__destroy(gate_connect_link);
	bpf_link__destroy(exec_link);
	bpf_link__destroy(mmap_link);
	discovery_end(&d);
	if (d.rb)
		drain(&d, false);
	bpf_link__destroy(exit_link);
	/* no verdict from here on: every process held for a reset can then be let go */
	attach_set_destroy(&d.libs);
	if (d.rb)
		ring_buffer__consume(d.rb);
	if (d.skel && d.skel->bss) {
		reset_enable(&d, false);
		read_track_enable(&d, false);
	}
	bpf_link__destroy(tcp_link);
	ring_buffer__free(d.rb);
	ring_buffer__free(d.rb_disc);
	if (epfd >= 0)
		close(epfd);
	if (d.disc.wd_fd >= 0)
		close(d.disc.wd_fd);
	pinwarden_bpf__destroy(d.skel);
	certcache_free(d.cc);
	sessions_free(&d.sessions);
	for (c = 0; c < PW_POLICY_KEEP; c++)
		policy_free(d.pol[c]);
	outq_free(d.outq, 2000);
	json_free(&d.j);
	free(d.dedup);
	if (d.log_fd >= 0)
		close(d.log_fd);
	/* what was left uncovered outlives the run: learn's draft lists it */
	memcpy(dp->uncov, d.uncov, sizeof(d.uncov));
	dp->nuncov = d.nuncov;
	return rc;
}
