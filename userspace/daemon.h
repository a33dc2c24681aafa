/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The running daemon's state, shared by daemon.c (lifecycle) and events.c (output). */
#ifndef PW_DAEMON_H
#define PW_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "attach.h"
#include "certcache.h"
#include "discover.h"
#include "json.h"
#include "libraries.h"
#include "pinwarden.h"
#include "policy.h"
#include "reset.h"
#include "sessions.h"

#define PW_VERSION "0.1.0"
#define PW_POLICY_KEEP 64	/* policies kept to explain events still queued */
#define PW_STATUS_FILE "/run/pinwarden/status.json"
#define PW_NVERDICTS 5		/* enum pw_verdict */
#define PW_NDONE 6		/* enum pw_done */

struct learn;
struct outq;

struct ring_buffer;
struct pinwarden_bpf;

/* A file left without probes, as status and the ready event list it. */
#define PW_UNCOVERED_KEEP	64
struct uncovered_file {
	unsigned library;		/* uncovered_library_names[] */
	unsigned reason;		/* enum uncovered_reason */
	uint64_t dev, ino;		/* 0 when not known */
	uint32_t pid;			/* the process that mapped it (0: found on the host's paths) */
	char version[32];
	char path[256];
	char exe[256];			/* that process's program, when it could be read */
};

/* Where a file left without probes was found: its identity, and the process
 * that mapped it (pid 0: none, it was found at start on the host's paths). */
struct uncovered_where {
	uint64_t dev, ino;
	uint32_t pid;
};

struct daemon {
	struct pinwarden_bpf *skel;
	struct ring_buffer *rb;
	struct ring_buffer *rb_disc;	/* the discovery ring: read first, never behind events */
	struct outq *outq;		/* the event log's writer (never blocks the loop) */
	size_t log_buffer;		/* --log-buffer: bytes of events it may hold */
	uint64_t lost_events;		/* events dropped by outq already reported in lost events */
	struct discover_state disc;
	struct attach_set libs;
	struct certcache *cc;
	int log_fd;
	const char *log_path;
	const char *metrics_path;
	const char *policy_path;	/* NULL: built-in default */
	const char *status_path;	/* what `pinwarden status` reads */
	char **attach_paths;		/* run --attach PATH: library files and programs to attach */
	size_t nattach;
	bool status_written;
	uint64_t status_errors;
	struct snapwriter *snap;	/* writes metrics and status off the loop (once ready) */
	uint64_t started_unix_ns;
	struct learn *learn;		/* `pinwarden learn`: what was seen */
	uint64_t learn_seconds;		/* learn for this long, then stop */
	uint64_t learn_until_ns;	/* CLOCK_MONOTONIC end of learning, 0: run */
	struct pw_policy *pol[PW_POLICY_KEEP];	/* by generation % PW_POLICY_KEEP */
	uint32_t pol_gen[PW_POLICY_KEEP];
	uint32_t gen;			/* active generation */
	uint32_t purged_upto;		/* every generation up to this one is out of the maps */
	uint64_t switched_ns;		/* when the active generation became active */
	uint64_t boot_to_unix_ns;
	uint64_t cnt[PW_CNT_MAX];	/* kernel counters, summed over CPUs, last read */
	uint64_t lost_chains, lost_certs; /* kernel losses already reported in lost events */
	uint64_t lost_discovery;	/* discovery notes the kernel could not make, reported */
	uint64_t chains, records, write_errors, short_records, policy_reloads, policy_errors;
	uint64_t discovered, examined, discover_records;	/* discovery counters */
	bool no_discover;		/* --no-discover: host libraries only, no process is stopped */
	uint64_t batch, batch_until_ns;	/* events handled in this batch, and until when */
	uint64_t beat_ns;		/* the loop's last heartbeat */
	const char *beat_at;		/* where in the loop it was given */
	uint64_t beat_gap_max_ns;	/* the longest time between two heartbeats, after ready */
	uint64_t beats_late;		/* gaps longer than the kernel waits (PW_BEAT_MAX_NS) */
	bool beat_watch;		/* ready: gaps are counted from now on */
	uint64_t watchdog_late;		/* the watchdog's gaps as long (its count, last read) */
	struct bpf_link *reset_egress_link;	/* while a policy resets */
	struct bpf_link *read_track_link;	/* while a policy resets or has server rules */
	uint64_t resets, reset_errors;	/* sockets destroyed, and not */
	uint64_t reset_late, reset_abandoned;	/* marks acted on without their record; given up */
	uint64_t ukills[PROC_KILL_MAX];	/* kills from userspace, by result */
	struct reset_outcome reset_recent[32];	/* the last acts, for records that come later */
	unsigned reset_recent_next;
	int netns_fd;			/* the daemon's own network namespace, once opened */
	uint64_t netns_ino, netns_dev;	/* its inode; nsfs's device */
	struct dedup *dedup;		/* merges identical mismatch reports */
	uint64_t dedup_seconds;		/* --dedup SECS (default 60; 0: off) */
	uint64_t repeats, repeat_events;
	uint64_t verdicts[PW_LIB_MAX][PW_NVERDICTS][PW_NDONE];	/* chain records, for metrics */
	uint64_t metrics_errors;
	uint64_t cert_id_key[2];	/* SipHash key of certificate names (random per run) */
	struct sessions sessions;	/* the sweep of the kernel's session table */
	uint64_t session_quota;		/* --session-quota: session entries per uid */
	uint64_t park_quota;		/* --park-quota: parked chains per uid */
	uint64_t events_truncated;	/* chain events cut to their size cap (events.c) */
	uint64_t nofile;		/* RLIMIT_NOFILE in force: raised to the hard limit at start */
	uint64_t uncovered[UNCOVERED_LIBS][UNCOVERED_MAX];	/* files left without probes */
	struct uncovered_file uncov[PW_UNCOVERED_KEEP];	/* the latest of them, for status */
	uint64_t nuncov;		/* every one reported (uncov holds the last KEEP) */
	struct json j;
};

/* events.c */
int events_on_record(void *ctx, void *data, size_t size);	/* ring_buffer callback */
void events_ready(struct daemon *d);
void events_policy_loaded(struct daemon *d, const struct pw_policy *p, uint32_t gen,
			  const struct pw_diags *diags, const char **warnings, size_t nwarnings);
void events_policy_error(struct daemon *d, const char *source, const struct pw_diags *diags,
			 const char *message);
void events_lost(struct daemon *d, uint64_t chains, uint64_t certs, uint64_t events,
		 uint64_t discovery);
void events_discovery_timeout(struct daemon *d, uint32_t pid, const char comm[16], uint64_t kdev,
			      uint64_t ino, const char *reason, bool stopped, uint64_t wait_ns);
void events_library_changed(struct daemon *d, const char *library, const char *path, uint64_t dev,
			    uint64_t ino, size_t probes, const char *attached);
void events_library_detached(struct daemon *d, const char *library, const char *path, uint64_t dev,
			     uint64_t ino, size_t probes);
void events_flush_repeats(struct daemon *d, bool all);	/* closed dedup windows */
/* A TLS library file left without probes (library NULL: which family is unknown;
 * version NULL or "": not known). */
void events_library_uncovered(struct daemon *d, const struct uncovered_where *at,
			      const char *library, const char *version, const char *path,
			      unsigned reason, const char *err);
/* the index in d->uncov's history of the oldest uncovered file still kept */
uint64_t uncovered_kept_first(const struct daemon *d);
/* the uncovered files kept, as a JSON array member `key` (status, ready) */
void events_uncovered_list(const struct daemon *d, struct json *j, const char *key);
uint64_t events_now_unix_ns(void);
const char *events_verdict_name(unsigned verdict);	/* "match", ... */
const char *events_action_name(unsigned done);		/* "none", "killed", ... */

/* daemon.c */
int cmd_run(int argc, char **argv);
int daemon_run(struct daemon *d);	/* load, attach, poll until a signal (or learn ends) */
int cmd_status(int argc, char **argv);

/* learn.c */
int cmd_learn(int argc, char **argv);
struct learn *learn_new(void);
void learn_chain(struct learn *l, const struct pw_chain_rec *r);
/* the draft policy; `d`'s uncovered files are listed first, as comments */
int learn_write(const struct learn *l, const struct daemon *d, FILE *f, uint64_t seconds);
void learn_free(struct learn *l);
const struct pw_policy *daemon_policy(struct daemon *d, uint32_t gen);

/* pin.c */
int cmd_pin(int argc, char **argv);

#endif /* PW_DAEMON_H */
