// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `run --metrics FILE`: every counter the daemon keeps, in the Prometheus text
 * exposition format (version 0.0.4), for the node_exporter textfile collector.
 * Every family has its HELP and TYPE lines; counters end in _total.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "examine.h"
#include "log.h"
#include "metrics.h"
#include "outq.h"
#include "safefile.h"
#include "snapwriter.h"

/* What the kernel counts (enum pw_counter): activity, or a reason it failed. */
const struct kernel_counter kernel_counters[PW_CNT_MAX] = {
	[PW_CNT_CERTS] = { "certificates_captured",
			   "Certificates the kernel captured from TLS handshakes." },
	[PW_CNT_CHAINS] = { "chains_judged", "Certificate chains the kernel judged." },
	[PW_CNT_ORPHAN_CERTS] = { "orphan_certificates",
				  "Certificates parsed outside a Certificate message (ignored)." },
	[PW_CNT_ABANDONED] = { "abandoned_chains",
			       "Chains dropped before completion (the handshake failed)." },
	[PW_CNT_KILLED] = { "processes_killed", "Processes killed by an enforcing verdict." },
	[PW_CNT_KNOWN_SKIPPED] = { "known_certificates_skipped",
				   "Certificates not resent to the daemon: it already had them." },
	[PW_CNT_DISCOVERY_STOPS] = { "discovery_stops",
				     "Processes stopped at discovery's gate (a TCP receive) until the "
				     "daemon examined a new file they mapped." },
	[PW_CNT_DISCOVERY_NOTED] = { "discovery_noted",
				     "New files (executables, shared objects) noted for the daemon "
				     "to examine; the process ran on." },
	[PW_CNT_DISCOVERY_UNGATED] = { "discovery_ungated",
				       "Processes that passed discovery's gate with a file not "
				       "examined yet, not stopped (see discovery_timeout events)." },
	[PW_CNT_RESET_MARKED] = { "connections_marked_reset",
				  "Connections marked by an enforcing verdict (reset, or a kill "
				  "that failed)." },
	[PW_CNT_RESET_DROPPED] = { "reset_packets_dropped",
				   "Packets of connections being reset dropped on egress." },
	[PW_CNT_RESET_RST_PASSED] = { "reset_rsts_passed",
				      "RST segments (no payload) of connections being reset let "
				      "out to the peer." },
	[PW_CNT_RESUMED] = { "resumed_sessions",
			     "Resumed client sessions (no chain presented; the verdict of the "
			     "full handshake stands)." },
	[PW_CNT_ANCHORS_HASHED] = { "validated_anchors_hashed",
				    "Certificates of validated chains that the peer did not present "
				    "(trust anchors), hashed because a pin needed them." },
	[PW_CNT_PIN_UNVALIDATED] = { "pins_in_unvalidated_certificates",
				     "Chains whose pinned key sat only in certificates that do not "
				     "count (not the leaf, not in the validated chain)." },
	[PW_CNT_RULE_UNKNOWN] = { "rule_unknown_failed_closed",
				  "Chains a rule could cover but whose rule could not be found (host "
				  "lost, peer unknown): judged as mismatches (failed closed)." },
	/* failures: what a chain or a probe could not do */
	[PW_CNT_LOST_MARK_FAILED] = { "session_loss_unrecorded", NULL, true },
	[PW_CNT_VCHAIN_UNREAD] = { "validated_chain_unreadable", NULL, true },
	[PW_CNT_PARK_QUOTA] = { "parked_quota", NULL, true },
	[PW_CNT_PENDING_LOST] = { "pending_chain_lost", NULL, true },
	[PW_CNT_VERDICT_UNREACHED] = { "verdict_unreachable", NULL, true },
	[PW_CNT_CONTENDED] = { "scratch_contended", NULL, true },
	[PW_CNT_COPY_FAILED] = { "copy_failed", NULL, true },
	[PW_CNT_TOO_BIG] = { "certificate_too_big", NULL, true },
	[PW_CNT_KILL_FAILED] = { "kill_failed", NULL, true },
	[PW_CNT_ACC_FULL] = { "accumulator_unavailable", NULL, true },
	[PW_CNT_SNI_FULL] = { "ssl_state_full", NULL, true },
	[PW_CNT_LOST_DISCOVERY] = { "discovery_lost", NULL, true },
	[PW_CNT_RESET_FULL] = { "reset_table_full", NULL, true },
	[PW_CNT_RESET_NO_SOCK] = { "reset_socket_unknown", NULL, true },
	[PW_CNT_RESET_UNHELD] = { "reset_not_held", NULL, true },
	/* pinwarden_lost_records_total */
	[PW_CNT_LOST_CERT_RECS] = { "lost_certificate_records", NULL, false, true },
	[PW_CNT_LOST_CHAIN_RECS] = { "lost_chain_records", NULL, false, true },
};

/* The verdict/action pairs that can occur: written as 0 for each attached library
 * before they happen, so that a rate or increase() sees the first one. */
static const struct {
	uint8_t verdict, done;
} verdict_series[] = {
	{ PW_VERDICT_MATCH, PW_DONE_NONE },	     { PW_VERDICT_UNPINNED, PW_DONE_NONE },
	{ PW_VERDICT_EXPIRED, PW_DONE_NONE },	     { PW_VERDICT_MISMATCH, PW_DONE_KILLED },
	{ PW_VERDICT_MISMATCH, PW_DONE_RESET },	     { PW_VERDICT_MISMATCH, PW_DONE_WOULD_KILL },
	{ PW_VERDICT_MISMATCH, PW_DONE_WOULD_RESET }, { PW_VERDICT_MISMATCH, PW_DONE_KILL_FAILED },
	{ PW_VERDICT_RESUMED, PW_DONE_NONE },
};

static const char *const library_names[PW_LIB_MAX] = PW_LIBRARY_NAMES;

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP pinwarden_%s %s\n# TYPE pinwarden_%s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void single(FILE *f, const char *type, const char *name, const char *help, uint64_t v)
{
	family(f, name, type, help);
	fprintf(f, "pinwarden_%s %llu\n", name, (unsigned long long)v);
}

/* A label value as the format wants it: backslash, quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* Is the series (lib, verdict, done) one written even at 0? */
static bool verdict_always(const bool lib_attached[PW_LIB_MAX], unsigned lib, unsigned v,
			   unsigned a)
{
	size_t i;

	if (!lib_attached[lib])
		return false;
	for (i = 0; i < sizeof(verdict_series) / sizeof(verdict_series[0]); i++)
		if (verdict_series[i].verdict == v && verdict_series[i].done == a)
			return true;
	return false;
}

static void verdicts(const struct daemon *d, FILE *f)
{
	bool attached[PW_LIB_MAX] = {};
	unsigned lib, v, a;
	size_t i;

	for (i = 0; i < d->libs.n; i++)
		for (lib = 0; lib < PW_LIB_MAX; lib++)
			if (d->libs.v[i].nlinks && !strcmp(d->libs.v[i].library, library_names[lib]))
				attached[lib] = true;
	family(f, "verdicts_total", "counter",
	       "Chains judged, by TLS library, verdict and the action taken (none, killed, "
	       "reset, would-kill, would-reset, kill-failed).");
	for (lib = 0; lib < PW_LIB_MAX; lib++)
		for (v = 0; v < PW_NVERDICTS; v++)
			for (a = 0; a < PW_NDONE; a++) {
				if (!d->verdicts[lib][v][a] && !verdict_always(attached, lib, v, a))
					continue;
				fprintf(f, "pinwarden_verdicts_total{library=\"%s\",verdict=\"%s\","
					"action=\"%s\"} %llu\n", library_names[lib],
					events_verdict_name(v), events_action_name(a),
					(unsigned long long)d->verdicts[lib][v][a]);
			}
}

/* Attached library files and their probes, by library (openssl, ...). */
static void libraries(const struct daemon *d, FILE *f)
{
	size_t i, j;

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			family(f, "libraries_attached", "gauge",
			       "Library or program files (device, inode) with probes, by library.");
		else
			family(f, "probes_attached", "gauge", "Probes attached, by library.");
		for (i = 0; i < d->libs.n; i++) {
			const char *name = d->libs.v[i].library;
			uint64_t n = 0;
			bool seen = false;

			for (j = 0; j < i && !seen; j++)
				seen = !strcmp(d->libs.v[j].library, name);
			if (seen)
				continue;	/* counted with the first of its name */
			for (j = i; j < d->libs.n; j++)
				if (!strcmp(d->libs.v[j].library, name) && d->libs.v[j].nlinks)
					n += pass == 0 ? 1 : d->libs.v[j].nprobes;
			fprintf(f, "pinwarden_%s{library=\"", pass == 0 ? "libraries_attached" :
				"probes_attached");
			label_value(f, name);
			fprintf(f, "\"} %llu\n", (unsigned long long)n);
		}
	}
}

/* Files left without probes: every reason written, at 0 too, so that increase() sees the first. */
static void uncovered(const struct daemon *d, FILE *f)
{
	unsigned lib, r;

	family(f, "libraries_uncovered", "gauge",
	       "TLS library files left without probes, by library and reason: file_limit (the "
	       "daemon's open files limit or the system's), table_full (a table of the daemon's), "
	       "budget (examining the file would cost more than a file may), attach_failed, "
	       "timeout (not read within --examine-timeout: a file system that does not answer), "
	       "unsupported (a TLS implementation pinwarden recognises but does not judge: "
	       "wolfSSL, Mbed TLS, a JVM's JSSE, rustls, LibreSSL, a build of a covered "
	       "family it does not know, one linked in and stripped), unreadable (mapped from "
	       "a file root may not read, a FUSE mount without allow_other: library unknown).");
	for (r = 0; r < UNCOVERED_MAX; r++) {
		uint64_t any = 0;

		for (lib = 0; lib < UNCOVERED_LIBS; lib++) {
			any += d->uncovered[lib][r];
			if (d->uncovered[lib][r])
				fprintf(f, "pinwarden_libraries_uncovered{library=\"%s\",reason=\"%s\"} "
					"%llu\n", uncovered_library_names[lib], uncovered_reason_names[r],
					(unsigned long long)d->uncovered[lib][r]);
		}
		if (!any)
			fprintf(f, "pinwarden_libraries_uncovered{library=\"unknown\",reason=\"%s\"} 0\n",
				uncovered_reason_names[r]);
	}
}

void metrics_format(const struct daemon *d, FILE *f)
{
	struct certcache_stats cs = {};
	struct outq_stats os = {};
	int k;

	family(f, "build_info", "gauge", "The running pinwarden's version (always 1).");
	fprintf(f, "pinwarden_build_info{version=\"%s\"} 1\n", PW_VERSION);
	family(f, "start_time_seconds", "gauge", "When the daemon started, Unix time.");
	fprintf(f, "pinwarden_start_time_seconds %.3f\n", d->started_unix_ns / 1e9);

	verdicts(d, f);
	family(f, "lost_records_total", "counter",
	       "Records the kernel dropped because the ring buffer was full: chain (verdict "
	       "taken and enforced, not logged) or certificate (judged, not explained); event: "
	       "events dropped because the log did not drain (--log-buffer full).");
	fprintf(f, "pinwarden_lost_records_total{record=\"chain\"} %llu\n",
		(unsigned long long)d->cnt[PW_CNT_LOST_CHAIN_RECS]);
	fprintf(f, "pinwarden_lost_records_total{record=\"certificate\"} %llu\n",
		(unsigned long long)d->cnt[PW_CNT_LOST_CERT_RECS]);
	if (d->outq)
		outq_stats(d->outq, &os);
	fprintf(f, "pinwarden_lost_records_total{record=\"event\"} %llu\n",
		(unsigned long long)os.dropped);
	libraries(d, f);

	single(f, "gauge", "policy_generation", "Generation of the policy in force (1 at start).",
	       d->gen);
	single(f, "counter", "policy_reloads_total", "Policy reloads asked for (SIGHUP).",
	       d->policy_reloads);
	single(f, "counter", "policy_reload_failures_total",
	       "Policy reloads refused (the previous policy stayed in force).", d->policy_errors);

	family(f, "kernel_failures_total", "counter",
	       "What the kernel side could not do, by reason: a certificate it could not read "
	       "(copy_failed), hash (certificate_too_big, scratch_contended) or hold "
	       "(accumulator_unavailable, ssl_state_full), a kill that failed, a new file "
	       "discovery could not report, a connection that could not be marked (reset_table_full) "
	       "or found (reset_socket_unknown): a reset then kills, a reset whose process could "
	       "not be held (reset_not_held).");
	for (k = 0; k < PW_CNT_MAX; k++)
		if (kernel_counters[k].failure)
			fprintf(f, "pinwarden_kernel_failures_total{reason=\"%s\"} %llu\n",
				kernel_counters[k].name, (unsigned long long)d->cnt[k]);
	for (k = 0; k < PW_CNT_MAX; k++) {
		char name[96];

		if (!kernel_counters[k].name || kernel_counters[k].failure ||
		    kernel_counters[k].own_family)
			continue;
		snprintf(name, sizeof(name), "%s_total", kernel_counters[k].name);
		single(f, "counter", name, kernel_counters[k].help, d->cnt[k]);
	}

	if (d->cc)
		certcache_stats(d->cc, &cs);
	single(f, "counter", "chain_records_total", "Chain verdicts the daemon received.",
	       d->chains);
	single(f, "counter", "mismatch_reports_merged_total",
	       "Identical mismatch reports counted but not logged (--dedup).", d->repeats);
	single(f, "counter", "certificates_explained_total",
	       "Distinct certificates parsed by the daemon.", cs.explained);
	single(f, "counter", "hash_disagreements_total",
	       "Certificates whose kernel and userspace hashes differ.", cs.disagreements);
	single(f, "counter", "certificate_parse_errors_total",
	       "Certificates OpenSSL could not parse.", cs.parse_errors);
	single(f, "gauge", "certificate_cache_entries", "Certificates in the daemon's cache.",
	       cs.entries);
	single(f, "counter", "event_write_errors_total", "Events that could not be written.",
	       d->write_errors + os.write_errors);
	single(f, "counter", "resets_total", "Connections destroyed by action reset.", d->resets);
	single(f, "counter", "reset_errors_total", "Connections action reset could not destroy.",
	       d->reset_errors);
	single(f, "counter", "reset_marks_late_total",
	       "Marked connections acted on before (or without) their chain record.",
	       d->reset_late);
	single(f, "counter", "reset_marks_abandoned_total",
	       "Marked connections whose socket could not be destroyed for 10 minutes, given up.",
	       d->reset_abandoned);
	family(f, "userspace_kills_total", "counter",
	       "Processes the daemon killed itself (the kernel's kill failed, or a reset could "
	       "not destroy the socket), by result.");
	for (k = 0; k < PROC_KILL_MAX; k++)
		fprintf(f, "pinwarden_userspace_kills_total{result=\"%s\"} %llu\n",
			proc_kill_name(k), (unsigned long long)d->ukills[k]);
	single(f, "counter", "files_examined_total", "Files examined by discovery.", d->examined);
	single(f, "counter", "discovery_stops_ended_total",
	       "Stops of discovery ended, by the daemon once the files were examined or past "
	       "the bound.", d->disc.stops_seen);
	single(f, "counter", "discovery_timeouts_total",
	       "Stops of discovery the watchdog ended at the bound (--discover-timeout): the "
	       "process ran unexamined for now.", d->disc.timeouts);
	if (d->disc.pool) {
		struct examine_stats es;

		examine_stats(d->disc.pool, &es);
		single(f, "counter", "examine_timeouts_total",
		       "Files not read within --examine-timeout: uncovered (reason timeout), "
		       "their workers abandoned.", es.timeouts);
		single(f, "counter", "examine_refused_total",
		       "Files not even opened: on a device where a worker is stuck, or with "
		       "every worker stuck (uncovered, reason timeout).", es.refused);
		single(f, "gauge", "examine_workers_stuck",
		       "Examination workers abandoned in a read that has not returned.", es.stuck);
	}
	single(f, "counter", "daemon_loop_stalls_total",
	       "Times the daemon's loop gave no heartbeat for longer than the kernel waits "
	       "(100 ms): processes started then ran unexamined (discovery_timeout events).",
	       d->beats_late);
	single(f, "counter", "watchdog_stalls_total",
	       "Times the watchdog gave no heartbeat for longer than the kernel waits (100 ms): "
	       "processes started then ran unexamined.",
	       d->watchdog_late);
	family(f, "daemon_loop_longest_stall_seconds", "gauge",
	       "The longest time between two heartbeats of the daemon's loop since ready.");
	fprintf(f, "pinwarden_daemon_loop_longest_stall_seconds %.6f\n", d->beat_gap_max_ns / 1e9);
	single(f, "counter", "discovery_leftovers_total",
	       "Processes an earlier daemon left stopped, continued at start.", d->disc.leftovers);
	family(f, "discovery_longest_stop_seconds", "gauge", "The longest stop of discovery so far.");
	fprintf(f, "pinwarden_discovery_longest_stop_seconds %.6f\n", d->disc.stop_max_ns / 1e9);
	single(f, "counter", "libraries_discovered_total",
	       "TLS libraries attached by discovery after start.", d->discovered);
	single(f, "counter", "discovery_remapped_total",
	       "Mappings that named another file when the daemon opened them than when it "
	       "listed them (mapped over meanwhile): not examined, nothing attached.",
	       d->disc.remapped);
	single(f, "counter", "discovery_notes_unfound_total",
	       "Files the kernel said a process mapped, found neither in its mappings nor "
	       "behind the descriptor it named (the mmap failed, or the process unmapped and "
	       "closed it at once): not examined for that process.", d->disc.note_unfound);
	single(f, "counter", "discovery_unseen_mappings_total",
	       "Files found executable-mapped by the periodic look that no hook saw mapped "
	       "(a shared object placed only at a fixed address): their processes ran them "
	       "unexamined until then (discovery_timeout events, reason unseen_mapping).",
	       d->disc.unseen_found);
	single(f, "counter", "libraries_changed_total",
	       "Attached files rewritten in place: their probes detached, the file examined "
	       "again (library_changed events).", d->disc.changed);
	single(f, "counter", "libraries_detached_total",
	       "Libraries found through a process that no process had mapped for "
	       "--detach-unmapped: detached (library_detached events).", d->disc.detached);
	uncovered(d, f);
	single(f, "gauge", "open_files_limit",
	       "The daemon's open files limit (RLIMIT_NOFILE, raised to the hard limit at start).",
	       d->nofile);
	single(f, "counter", "events_truncated_total",
	       "Chain events whose certificate explanations or PEM copies were left out to keep "
	       "the line under its size cap.", d->events_truncated);
}

void metrics_write(struct daemon *d)
{
	char *buf = NULL, why[512];
	size_t len = 0;
	FILE *mem;

	if (!d->metrics_path)
		return;
	mem = open_memstream(&buf, &len);
	if (!mem)
		return;
	metrics_format(d, mem);
	if (fclose(mem)) {
		free(buf);
		return;
	}
	/* a fresh file, renamed over the old one; node_exporter reads it as another user;
	 * once ready, by the writer thread (snapwriter.h) */
	if (d->snap) {
		snapwriter_put(d->snap, SNAP_METRICS, d->metrics_path, buf, len, 0644, false);
		return;
	}
	if (safefile_replace(d->metrics_path, buf, len, 0644, false, why, sizeof(why)) &&
	    !d->metrics_errors++)
		log_warnx("cannot update the metrics file: %s", why);
	free(buf);
}
