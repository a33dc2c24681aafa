// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The product: one JSON object per line for every verdict and every change
 * of state. Strings from certificates and processes always go through the
 * JSON escaper; a line is written with a single write(2).
 */
#include <arpa/inet.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "daemon.h"
#include "discover.h"
#include "log.h"
#include "outq.h"
#include "procinfo.h"
#include "reset.h"
#include "dedup.h"

static const char *const library_names[PW_LIB_MAX] = PW_LIBRARY_NAMES;

/*
 * A chain event stays under EVENT_MAX_BYTES whatever the peer sends (32
 * certificates of 32 KiB, each with thousands of SANs, would make megabytes):
 * certificates' explanations (subject, SANs) stop at EVENT_EXPLAIN_BYTES, a
 * mismatch report's PEM copies at EVENT_MAX_BYTES less a reserve for the rest;
 * what is left out is counted in "truncated" (the hashes are always there).
 */
#define EVENT_MAX_BYTES		(256u << 10)
#define EVENT_EXPLAIN_BYTES	(128u << 10)
#define EVENT_TAIL_BYTES	(16u << 10)
static const char *const verdict_names[PW_NVERDICTS] = { "unpinned", "match", "mismatch",
							  "expired", "resumed" };
static const char *const done_names[PW_NDONE] = { "none", "killed", "reset", "would-kill",
						  "would-reset", "kill-failed" };
static const char *const validation_names[] = PW_VALIDATION_NAMES;

const char *events_verdict_name(unsigned verdict)
{
	return verdict < PW_NVERDICTS ? verdict_names[verdict] : "unknown";
}

const char *events_action_name(unsigned done)
{
	return done < PW_NDONE ? done_names[done] : "unknown";
}

uint64_t events_now_unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void rfc3339(uint64_t unix_ns, char out[40], bool micro)
{
	time_t s = unix_ns / 1000000000ULL;
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	if (micro)
		snprintf(out + n, 40 - n, ".%06uZ", (unsigned)(unix_ns % 1000000000ULL / 1000));
	else
		snprintf(out + n, 40 - n, "Z");
}

static void begin(struct daemon *d, const char *event, uint64_t unix_ns)
{
	char t[40];

	json_reset(&d->j);
	json_obj_begin(&d->j, NULL);
	rfc3339(unix_ns, t, true);
	json_str(&d->j, "time", t);
	json_str(&d->j, "event", event);
}

static void emit(struct daemon *d)
{
	struct json *j = &d->j;
	size_t off = 0;

	json_obj_end(j);
	if (d->log_fd < 0)
		return;		/* before the log is open: stderr has said it */
	if (j->oom) {
		d->write_errors++;
		return;
	}
	j->buf[j->len] = '\n';	/* the writer keeps room for its NUL */
	if (d->outq) {
		/* never blocks: a full queue drops the line, counted and reported (lost) */
		outq_push(d->outq, j->buf, j->len + 1);
		j->buf[j->len] = 0;
		return;
	}
	while (off < j->len + 1) {
		ssize_t n = write(d->log_fd, j->buf + off, j->len + 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!d->write_errors++)
				log_warn("cannot write events to %s", d->log_path);
			break;
		}
		off += n;
	}
	j->buf[j->len] = 0;
}

static void peer_str(const struct pw_chain_rec *r, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!r->peer_family) {
		out[0] = 0;
		return;
	}
	if (!memcmp(r->peer_addr, v4mapped, 12)) {
		inet_ntop(AF_INET, r->peer_addr + 12, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, r->peer_port);
	} else {
		inet_ntop(AF_INET6, r->peer_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, r->peer_port);
	}
}

static void process_members(struct daemon *d, const struct pw_chain_rec *r)
{
	struct json *j = &d->j;
	const char *cg = cgroup_path(r->cgroup_id);
	char cid[65];

	json_uint(j, "pid", r->pid);
	json_uint(j, "tid", r->tid);
	json_strn(j, "comm", r->comm, strnlen(r->comm, sizeof(r->comm)));
	json_strn(j, "exe", r->exe, strnlen(r->exe, sizeof(r->exe)));
	json_uint(j, "uid", r->uid);
	if (cg)
		json_str(j, "cgroup", cg);
	else
		json_null(j, "cgroup");
	json_uint(j, "cgroup_id", r->cgroup_id);
	if (cg && container_id_from_cgroup(cg, cid) == 0)
		json_str(j, "container_id", cid);
}

static const char *cert_error(uint32_t f)
{
	if (f & PW_CERT_TOO_BIG)
		return "larger than the kernel's copy buffer: not hashed";
	if (f & PW_CERT_COPY_FAILED)
		return "could not be read from the process: not hashed";
	if (f & PW_CERT_CONTENDED)
		return "hashing buffer contended: not hashed";
	if (f & PW_CERT_NO_SPKI)
		return "the kernel's DER walker could not find its public key: SPKI not hashed";
	return NULL;
}

/* Bytes pem_of adds, at most (base64 lines, armour, JSON escapes of the newlines). */
static size_t pem_bytes(size_t der_len)
{
	size_t b64 = 4 * ((der_len + 2) / 3);

	return b64 + 2 * (b64 / 64 + 1) + 64 + 8;
}

static void pem_of(const uint8_t *der, size_t len, struct json *j)
{
	size_t b64len = 4 * ((len + 2) / 3), i, o = 0;
	char *b64 = malloc(b64len + 1), *pem;

	if (!b64)
		return;
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	pem = malloc(b64len + b64len / 64 + 64);
	if (!pem) {
		free(b64);
		return;
	}
	o += sprintf(pem, "-----BEGIN CERTIFICATE-----\n");
	for (i = 0; i < b64len; i += 64) {
		size_t n = b64len - i < 64 ? b64len - i : 64;

		memcpy(pem + o, b64 + i, n);
		o += n;
		pem[o++] = '\n';
	}
	o += sprintf(pem + o, "-----END CERTIFICATE-----\n");
	json_strn(j, NULL, pem, o);
	free(pem);
	free(b64);
}

static void report_member(struct daemon *d, const struct pw_chain_rec *r, const struct pw_policy *p,
			  uint64_t unix_ns, const char *host, unsigned *truncated)
{
	struct json *j = &d->j;
	const struct pw_rule *rule = NULL;
	const struct pw_pinset *ps = NULL;
	char t[40];
	unsigned i;

	if (p && r->rule_id < p->nrules) {
		rule = &p->rules[r->rule_id];
		if (rule->pinset < p->npinsets)
			ps = &p->pinsets[rule->pinset];
	}
	json_obj_begin(j, "report");
	rfc3339(unix_ns, t, false);
	json_str(j, "date-time", t);
	json_str(j, "hostname", host);
	json_uint(j, "port", r->side == PW_SIDE_SERVER ? r->local_port : r->peer_port);
	if (ps && ps->expires) {
		rfc3339((uint64_t)(ps->expires - 1) * 1000000000ULL, t, false);
		json_str(j, "effective-expiration-date", t);
	} else {
		json_null(j, "effective-expiration-date");
	}
	json_bool(j, "include-subdomains", rule && (rule->kind == PW_HOST_ANY || rule->kind == PW_HOST_ONE));
	json_str(j, "noted-hostname", rule ? rule->suffix : NULL);
	/* served: what the peer sent; validated: those of them in the chain the library
	 * verified (its trust anchor, not sent, has no DER here) */
	for (int pass = 0; pass < 2; pass++) {
		json_arr_begin(j, pass ? "validated-certificate-chain" : "served-certificate-chain");
		for (i = 0; i < r->ncerts && i < PW_CHAIN_MAX; i++) {
			const struct pw_chain_cert *c = &r->certs[i];
			const struct cert_info *ci;

			if (!(c->flags & PW_CERT_ID) || (c->flags & PW_CERT_NOT_PRESENTED))
				continue;
			if (pass && (r->validation != PW_VALIDATION_VERIFIED ||
				     !(c->flags & PW_CERT_VALIDATED)))
				continue;
			ci = certcache_get(d->cc, c->id, c->der_len);
			if (!ci || !ci->der)
				continue;
			if (j->len + pem_bytes(ci->der_len) > EVENT_MAX_BYTES - EVENT_TAIL_BYTES) {
				(*truncated)++;
				continue;
			}
			pem_of(ci->der, ci->der_len, j);
		}
		json_arr_end(j);
	}
	json_arr_begin(j, "known-pins");
	for (i = 0; ps && i < ps->npins; i++) {
		char pin[80];

		if (ps->pins[i].type != PW_PIN_SPKI)
			continue;
		snprintf(pin, sizeof(pin), "pin-sha256=\"");
		EVP_EncodeBlock((unsigned char *)pin + 12, ps->pins[i].hash, PW_HASH_LEN);
		strcat(pin, "\"");
		json_str(j, NULL, pin);
	}
	json_arr_end(j);
	json_obj_end(j);
}

/* What a chain event and a repeat summary share: the process, the connection, the verdict. */
static void chain_members(struct daemon *d, const struct pw_chain_rec *r, const struct pw_policy *p,
			  const char *host, const char *peer)
{
	struct json *j = &d->j;

	process_members(d, r);
	json_str(j, "library", r->library < PW_LIB_MAX ? library_names[r->library] : "unknown");
	json_str(j, "side", r->side == PW_SIDE_SERVER ? "server" : "client");
	if (host[0])
		json_strn(j, "host", host, strnlen(host, PW_HOST_MAX));
	else
		json_null(j, "host");
	if (peer[0])
		json_str(j, "peer", peer);
	else
		json_null(j, "peer");
	if (r->side == PW_SIDE_SERVER && r->local_port)
		json_uint(j, "local_port", r->local_port);
	json_str(j, "verdict", events_verdict_name(r->verdict));
	json_str(j, "mode", r->mode == PW_MODE_ENFORCE ? "enforce" : "audit");
	json_str(j, "action", events_action_name(r->done));
	if (r->rule_id != PW_NO_ID && p && r->rule_id < p->nrules) {
		json_str(j, "rule", p->rules[r->rule_id].name);
		json_str(j, "pinset", p->pinsets[p->rules[r->rule_id].pinset].name);
	} else {
		json_null(j, "rule");
		json_null(j, "pinset");
		if (r->rule_id != PW_NO_ID) {
			/* judged by a rule of a policy replaced many reloads ago */
			json_uint(j, "rule_id", r->rule_id);
			json_str(j, "rule_error", "policy generation no longer known to the daemon");
		}
	}
	json_uint(j, "generation", r->gen);
}

static void rec_host(const struct pw_chain_rec *r, char host[PW_HOST_MAX + 1])
{
	memcpy(host, r->host, PW_HOST_MAX);
	host[PW_HOST_MAX] = 0;
}

/* What the daemon did about a reset, or about a kill the kernel could not do. */
static void enforcement_members(struct daemon *d, const struct pw_chain_rec *r,
				const struct reset_outcome *o)
{
	struct json *j = &d->j;
	char msg[256];

	if (o->marked) {
		json_uint(j, "netns", o->netns);
		json_str(j, "socket", o->destroy == 0 ? "destroyed" :
				      o->destroy == -ENOENT ? "closed" : "not destroyed");
	}
	if (o->kill != PROC_KILL_NONE)
		json_str(j, "userspace_kill", proc_kill_name(o->kill));
	if (r->done == PW_DONE_RESET) {
		if (!o->marked)
			json_str(j, "reset_error", "the connection's mark was not found: nothing was destroyed");
		else if (o->destroy && o->destroy != -ENOENT) {
			snprintf(msg, sizeof(msg), "SOCK_DESTROY failed (%s): the connection stays "
				 "dropped and the process was %s", strerror(-o->destroy),
				 o->kill == PROC_KILL_KILLED ? "killed from userspace" : "not killed");
			json_str(j, "reset_error", msg);
		} else if (!o->held) {
			json_str(j, "reset_error", "the process could not be held until the socket was "
				 "destroyed: it may have seen its connection end after the handshake");
		}
		return;
	}
	/* kill-failed */
	snprintf(msg, sizeof(msg), "bpf_send_signal failed; the daemon's SIGKILL: %s; the "
		 "connection: %s", proc_kill_name(o->kill),
		 !o->marked ? "unknown" : o->destroy == 0 ? "destroyed" :
		 o->destroy == -ENOENT ? "already closed" : "not destroyed");
	json_str(j, "kill_error", msg);
}

/* dedup_flush: one summary for the identical reports a window merged */
static void emit_repeated(void *ctx, const struct dedup_entry *e)
{
	struct daemon *d = ctx;
	const struct pw_chain_rec *r = &e->last;
	struct json *j = &d->j;
	char t[40], peer[80], host[PW_HOST_MAX + 1], pin[64], hex[65];
	unsigned i;

	rec_host(r, host);
	peer_str(r, peer, sizeof(peer));
	begin(d, "tls_chain_repeated", events_now_unix_ns());
	json_uint(j, "count", e->repeats);
	rfc3339(e->first_repeat_ns, t, true);
	json_str(j, "first", t);
	rfc3339(e->last_repeat_ns, t, true);
	json_str(j, "last", t);
	chain_members(d, r, daemon_policy(d, r->gen), host, peer);
	json_arr_begin(j, "chain");
	for (i = 0; i < r->ncerts && i < PW_CHAIN_MAX; i++) {
		json_obj_begin(j, NULL);
		if (r->certs[i].flags & PW_CERT_SPKI_HASHED) {
			pin_format(r->certs[i].spki_sha256, pin);
			json_str(j, "spki_sha256", pin);
		}
		if (r->certs[i].flags & PW_CERT_HASHED) {
			hex_format(r->certs[i].cert_sha256, hex);
			json_str(j, "cert_sha256", hex);
		} else {
			const struct cert_info *ci = (r->certs[i].flags & PW_CERT_ID) ?
				certcache_get(d->cc, r->certs[i].id, r->certs[i].der_len) : NULL;

			if (ci) {
				hex_format(ci->cert_sha256, hex);
				json_str(j, "cert_sha256", hex);
			}
		}
		json_obj_end(j);
	}
	json_arr_end(j);
	emit(d);
	d->repeat_events++;
}

void events_flush_repeats(struct daemon *d, bool all)
{
	if (d->dedup)
		dedup_flush(d->dedup, events_now_unix_ns(), all, emit_repeated, d);
}

/* How the library validated the chain, and what that let the pins rely on. */
static void validation_members(struct json *j, const struct pw_chain_rec *r)
{
	unsigned v = r->validation < sizeof(validation_names) / sizeof(validation_names[0]) ?
			     r->validation : PW_VALIDATION_UNKNOWN;

	if (r->verdict == PW_VERDICT_RESUMED)
		return;
	json_str(j, "validation", validation_names[v]);
	if (v != PW_VALIDATION_UNVERIFIED)
		return;
	/* BoringSSL keeps OpenSSL's X509_V_* codes */
	if (r->verify_error > 0 && (r->library == PW_LIB_OPENSSL || r->library == PW_LIB_BORINGSSL))
		json_str(j, "verify_error", X509_verify_cert_error_string(r->verify_error));
	else if (r->verify_error < -2 && r->library == PW_LIB_NSS) {
		/* the error the application handed SSL_AuthCertificateComplete (a PRErrorCode) */
		char why[80];

		snprintf(why, sizeof(why), "the application rejected the chain (NSS error %d)",
			 r->verify_error);
		json_str(j, "verify_error", why);
	} else if (r->verify_error < 0)
		json_str(j, "verify_error", "the application's verification built no chain");
}

static void on_chain(struct daemon *d, const struct pw_chain_rec *r)
{
	struct reset_outcome ro = { .kill = PROC_KILL_NONE };
	const struct pw_policy *p = daemon_policy(d, r->gen);
	uint64_t unix_ns = r->ts_boot_ns + d->boot_to_unix_ns;
	struct json *j = &d->j;
	char peer[80], host[PW_HOST_MAX + 1];
	unsigned i, truncated = 0;

	d->chains++;
	if (r->library < PW_LIB_MAX && r->verdict < PW_NVERDICTS && r->done < PW_NDONE)
		d->verdicts[r->library][r->verdict][r->done]++;
	/* first the enforcement: a process is held, a connection's egress dropped, until then */
	if (r->done == PW_DONE_RESET || r->done == PW_DONE_KILL_FAILED)
		reset_act(d, r, &ro);
	if (d->learn)
		learn_chain(d->learn, r);
	if (d->dedup && !dedup_admit(d->dedup, r, unix_ns)) {
		d->repeats++;
		return;
	}
	rec_host(r, host);
	begin(d, "tls_chain", unix_ns);
	peer_str(r, peer, sizeof(peer));
	chain_members(d, r, p, host, peer);

	json_arr_begin(j, "chain");
	for (i = 0; i < r->ncerts && i < PW_CHAIN_MAX; i++) {
		const struct pw_chain_cert *c = &r->certs[i];
		const struct cert_info *ci = NULL;
		const char *err = cert_error(c->flags);
		char pin[64], hex[65];

		json_obj_begin(j, NULL);
		if (c->flags & PW_CERT_ID)
			ci = certcache_get(d->cc, c->id, c->der_len);
		if (ci && ci->json && ci->json[0] &&
		    j->len + strlen(ci->json) > EVENT_EXPLAIN_BYTES)
			truncated++;	/* its hashes follow: enough to tell it */
		else if (ci && ci->json && ci->json[0])
			json_raw(j, NULL, ci->json);	/* subject, issuer, sans, not_after */
		else if (c->flags & PW_CERT_ID)
			json_str(j, "error", "certificate not explained: its DER was lost on the way");
		if (c->flags & PW_CERT_SPKI_HASHED) {
			pin_format(c->spki_sha256, pin);
			json_str(j, "spki_sha256", pin);
		} else {
			json_null(j, "spki_sha256");
		}
		/* the kernel's when a policy needs it, else the daemon's from the DER */
		if (c->flags & PW_CERT_HASHED) {
			hex_format(c->cert_sha256, hex);
			json_str(j, "cert_sha256", hex);
		} else if (ci) {
			hex_format(ci->cert_sha256, hex);
			json_str(j, "cert_sha256", hex);
		} else {
			json_null(j, "cert_sha256");
		}
		json_uint(j, "der_bytes", c->der_len);
		json_bool(j, "presented", !(c->flags & PW_CERT_NOT_PRESENTED));
		json_bool(j, "validated", c->flags & PW_CERT_VALIDATED);
		json_bool(j, "pinned", r->pinned & (1u << i));
		json_bool(j, "matched", r->matched & (1u << i));
		if (err)
			json_str(j, "kernel_error", err);
		if (ci && ci->disagree)
			json_bool(j, "hash_disagreement", true);
		json_obj_end(j);
	}
	json_arr_end(j);
	validation_members(j, r);

	if (r->flags & (PW_CHAIN_UNJUDGEABLE | PW_CHAIN_EXE_TRUNCATED | PW_CHAIN_LOST_CERT)) {
		json_arr_begin(j, "errors");
		if (r->flags & PW_CHAIN_NO_CERTS)
			json_str(j, NULL, "no certificate was captured for this chain");
		if (r->flags & PW_CHAIN_STALE)
			json_str(j, NULL, "the captured certificates were too old for this verification");
		if (r->flags & PW_CHAIN_TRUNCATED)
			json_str(j, NULL, "more certificates than the kernel judges (32): the rest were not judged");
		if (r->flags & PW_CHAIN_CERT_ERROR)
			json_str(j, NULL, "a certificate could not be hashed by the kernel");
		if (r->flags & PW_CHAIN_LOST_CERT)
			json_str(j, NULL, "a certificate's DER could not be sent to the daemon");
		if (r->flags & PW_CHAIN_ANCHOR_ERROR)
			json_str(j, NULL, "a certificate of the validated chain could not be hashed");
		if (r->flags & PW_CHAIN_VCHAIN_ERROR)
			json_str(j, NULL, "the library's validated chain could not be read: only the "
					  "leaf counted");
		if (r->flags & PW_CHAIN_LEAF_MISMATCH)
			json_str(j, NULL, "the library verified a leaf other than the captured one");
		if (r->flags & PW_CHAIN_HOST_LOST)
			json_str(j, NULL, "the connection's host could not be learned: its SNI could not "
					  "be kept or read, or the library's connection object was not "
					  "confirmed");
		if (r->flags & PW_CHAIN_ACC_UNAVAILABLE)
			json_str(j, NULL, "the kernel could not allocate this thread's chain "
					  "accumulator: nothing was captured");
		if (r->flags & PW_CHAIN_PENDING_LOST)
			json_str(j, NULL, "the chain, kept on the handshake's thread until the "
					  "library verified it, was gone when the connection was used "
					  "(another thread, or another chain on that thread)");
		if (r->flags & PW_CHAIN_VERDICT_UNREACHED)
			json_str(j, NULL, "the verdict program was not reachable from the probe: "
					  "nothing was judged");
		if (r->flags & PW_CHAIN_PORT_UNKNOWN)
			json_str(j, NULL, "the port rules need is unknown");
		if (r->flags & PW_CHAIN_ADDR_UNKNOWN)
			json_str(j, NULL, "no SNI, and the peer address IP rules need is unknown");
		if (r->flags & PW_CHAIN_EXE_TRUNCATED)
			json_str(j, NULL, "executable path truncated");
		json_arr_end(j);
	}
	if (r->verdict == PW_VERDICT_MISMATCH) {
		if (r->flags & PW_CHAIN_RULE_UNKNOWN)
			json_str(j, "reason", "a rule could cover this chain, but which one cannot be "
					      "known: failed closed");
		else if (r->flags & PW_CHAIN_LEAF_MISMATCH)
			json_str(j, "reason", "not the chain the library verified: failed closed");
		else if (r->flags & PW_CHAIN_PIN_UNVALIDATED)
			json_str(j, "reason", "pinned key only in certificates the client did not validate");
		else if (r->flags & PW_CHAIN_UNJUDGEABLE)
			json_str(j, "reason", "chain could not be judged in full: failed closed");
	}
	if (r->flags & PW_CHAIN_RESET_NO_SOCK)
		json_str(j, "reset_error", "the connection's socket is unknown: the process was killed instead");
	if (r->flags & PW_CHAIN_RESET_FULL)
		json_str(j, "reset_error", "the table of connections to reset is full: the process was killed instead");
	if (r->done == PW_DONE_RESET || r->done == PW_DONE_KILL_FAILED)
		enforcement_members(d, r, &ro);
	if (r->flags & (PW_CHAIN_NO_SNI | PW_CHAIN_PEER_GUESSED | PW_CHAIN_NO_PEER | PW_CHAIN_NO_POLICY |
			PW_CHAIN_PEER_READ | PW_CHAIN_RESUMED)) {
		json_arr_begin(j, "notes");
		if (r->flags & PW_CHAIN_RESUMED)
			json_str(j, NULL, "resumed session: no certificates presented; the verdict "
				 "of its full handshake stands");
		if (r->flags & PW_CHAIN_NO_SNI)
			json_str(j, NULL, "no SNI");
		if (r->flags & PW_CHAIN_PEER_GUESSED)
			json_str(j, NULL, "peer from the thread's last connect()");
		if (r->flags & PW_CHAIN_NO_PEER)
			json_str(j, NULL, "peer unknown");
		if (r->flags & PW_CHAIN_NO_POLICY)
			json_str(j, NULL, "no policy loaded");
		if (r->flags & PW_CHAIN_PEER_READ)
			json_str(j, NULL, "socket from the thread's last read");
		json_arr_end(j);
	}
	if (r->verdict == PW_VERDICT_MISMATCH) {
		char name[PW_HOST_MAX + 1];

		if (host[0])
			snprintf(name, sizeof(name), "%s", host);
		else if (peer[0])
			snprintf(name, sizeof(name), "%.*s", (int)(strrchr(peer, ':') - peer), peer);
		else
			name[0] = 0;
		report_member(d, r, p, unix_ns, name[0] ? name : NULL, &truncated);
	}
	if (truncated) {
		/* explanations and PEM copies left out to keep the line bounded */
		json_uint(j, "truncated", truncated);
		d->events_truncated++;
	}
	emit(d);
}

int events_on_record(void *ctx, void *data, size_t size)
{
	struct daemon *d = ctx;
	__u32 type;

	d->records++;
	if (size < sizeof(type)) {
		d->short_records++;
		return 0;
	}
	memcpy(&type, data, sizeof(type));
	if (type == PW_REC_CERT && size >= sizeof(struct pw_cert_rec)) {
		const struct pw_cert_rec *c = data;

		if (c->copied && c->copied <= size - sizeof(*c))
			certcache_add(d->cc, c, (const uint8_t *)data + sizeof(*c), c->copied);
	} else if (type == PW_REC_CHAIN && size >= sizeof(struct pw_chain_rec)) {
		on_chain(d, data);
	} else {
		d->short_records++;
	}
	return 0;
}

void events_ready(struct daemon *d)
{
	const struct pw_policy *p = daemon_policy(d, d->gen);
	struct json *j = &d->j;
	char summary[256];
	size_t i;

	begin(d, "ready", events_now_unix_ns());
	json_str(j, "version", PW_VERSION);
	json_uint(j, "daemon_pid", getpid());
	json_uint(j, "open_files_limit", d->nofile);
	json_arr_begin(j, "libraries");
	for (i = 0; i < d->libs.n; i++) {
		const struct attached_lib *l = &d->libs.v[i];

		json_obj_begin(j, NULL);
		json_str(j, "library", l->library);
		json_str(j, "path", l->display);
		json_uint(j, "inode", l->ino);
		json_uint(j, "device", l->dev);
		json_uint(j, "probes", l->nprobes);
		json_obj_end(j);
	}
	json_arr_end(j);
	/* the files found so far that have no probes: coverage is both lists */
	events_uncovered_list(d, j, "uncovered");
	json_obj_begin(j, "policy");
	json_str(j, "source", p ? p->source : NULL);
	json_uint(j, "generation", d->gen);
	if (p) {
		policy_summary(p, summary, sizeof(summary));
		json_str(j, "summary", summary);
	}
	json_obj_end(j);
	emit(d);
}

static void diags_member(struct json *j, const char *key, const struct pw_diags *diags, bool warnings)
{
	size_t i;

	json_arr_begin(j, key);
	for (i = 0; diags && i < diags->n; i++) {
		const struct pw_diag *dg = &diags->v[i];

		if (dg->warning != warnings)
			continue;
		json_obj_begin(j, NULL);
		json_int(j, "line", dg->line);
		json_int(j, "col", dg->col);
		json_str(j, "message", dg->msg);
		json_obj_end(j);
	}
	json_arr_end(j);
}

void events_policy_loaded(struct daemon *d, const struct pw_policy *p, uint32_t gen,
			  const struct pw_diags *diags, const char **warnings, size_t nwarnings)
{
	struct json *j = &d->j;
	char summary[256];
	size_t i;

	policy_summary(p, summary, sizeof(summary));
	begin(d, "policy_loaded", events_now_unix_ns());
	json_str(j, "source", p->source);
	json_uint(j, "generation", gen);
	json_str(j, "summary", summary);
	json_uint(j, "rules", p->nrules);
	json_uint(j, "pinsets", p->npinsets);
	diags_member(j, "warnings", diags, true);
	if (nwarnings) {
		json_arr_begin(j, "compile_warnings");
		for (i = 0; i < nwarnings; i++)
			json_str(j, NULL, warnings[i]);
		json_arr_end(j);
	}
	emit(d);
}

void events_policy_error(struct daemon *d, const char *source, const struct pw_diags *diags,
			 const char *message)
{
	struct json *j = &d->j;

	begin(d, "policy_error", events_now_unix_ns());
	json_str(j, "source", source);
	if (message)
		json_str(j, "message", message);
	diags_member(j, "errors", diags, false);
	if (d->gen)
		json_uint(j, "kept_generation", d->gen);
	emit(d);
}

void events_lost(struct daemon *d, uint64_t chains, uint64_t certs, uint64_t events,
		 uint64_t discovery)
{
	struct json *j = &d->j;

	begin(d, "lost", events_now_unix_ns());
	json_uint(j, "count", chains + certs + events + discovery);
	json_uint(j, "chains", chains);
	json_uint(j, "certificates", certs);
	json_uint(j, "events", events);
	json_uint(j, "discovery", discovery);
	emit(d);
}

void events_discovery_timeout(struct daemon *d, uint32_t pid, const char comm[16], uint64_t kdev,
			      uint64_t ino, const char *reason, bool stopped, uint64_t wait_ns)
{
	struct json *j = &d->j;
	char link[64], exe[4096], file[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%u/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	begin(d, "discovery_timeout", events_now_unix_ns());
	json_uint(j, "pid", pid);
	json_strn(j, "comm", comm, strnlen(comm, 16));
	if (n > 0)
		json_strn(j, "exe", exe, n);
	else
		json_null(j, "exe");
	if (kdev == PW_STOP_RESET) {
		/* held by a reset verdict until its socket was destroyed */
		json_str(j, "hold", "reset");
		json_null(j, "file");
	} else {
		json_str(j, "hold", "discovery");
		json_obj_begin(j, "file");
		json_uint(j, "device", makedev(kdev >> 20, kdev & 0xfffff));
		json_uint(j, "inode", ino);
		if ((kdev || ino) && discover_file_path(pid, kdev, ino, file, sizeof(file)))
			json_str(j, "path", file);
		else
			json_null(j, "path");
		json_obj_end(j);
	}
	json_str(j, "reason", reason);
	json_bool(j, "stopped", stopped);
	snprintf(file, sizeof(file), "%.3f", wait_ns / 1e6);
	json_raw(j, "wait_ms", file);
	emit(d);
}

/* The fields library_changed and library_detached share: a file whose probes went. */
static void library_probes_gone(struct daemon *d, const char *event, const char *library,
				const char *path, uint64_t dev, uint64_t ino, size_t probes)
{
	struct json *j = &d->j;

	begin(d, event, events_now_unix_ns());
	json_str(j, "library", library);
	json_str(j, "path", path);
	json_uint(j, "device", dev);
	json_uint(j, "inode", ino);
	json_uint(j, "probes_removed", probes);
}

void events_library_changed(struct daemon *d, const char *library, const char *path, uint64_t dev,
			    uint64_t ino, size_t probes, const char *attached)
{
	library_probes_gone(d, "library_changed", library, path, dev, ino, probes);
	if (attached)
		json_str(&d->j, "attached", attached);
	else
		json_null(&d->j, "attached");
	emit(d);
}

void events_library_detached(struct daemon *d, const char *library, const char *path, uint64_t dev,
			     uint64_t ino, size_t probes)
{
	library_probes_gone(d, "library_detached", library, path, dev, ino, probes);
	json_str(&d->j, "reason", "unmapped");
	emit(d);
}

/* the program of `pid`, or "" when it is gone or cannot be read */
static void exe_of(uint32_t pid, char *exe, size_t len)
{
	char link[32];
	ssize_t n;

	exe[0] = 0;
	if (!pid)
		return;
	snprintf(link, sizeof(link), "/proc/%u/exe", pid);
	n = readlink(link, exe, len - 1);
	exe[n > 0 ? n : 0] = 0;
}

/* one uncovered file's members, as the event and the lists give them */
static void uncovered_members(struct json *j, const struct uncovered_file *u)
{
	json_str(j, "library", uncovered_library_names[u->library]);
	json_str(j, "path", u->path);
	if (u->ino) {
		json_uint(j, "device", u->dev);
		json_uint(j, "inode", u->ino);
	}
	json_str(j, "reason", uncovered_reason_names[u->reason]);
	if (u->version[0])
		json_str(j, "version", u->version);
	if (u->pid)
		json_uint(j, "pid", u->pid);
	if (u->exe[0])
		json_str(j, "exe", u->exe);
}

void events_library_uncovered(struct daemon *d, const struct uncovered_where *at,
			      const char *library, const char *version, const char *path,
			      unsigned reason, const char *err)
{
	struct uncovered_file *u = &d->uncov[d->nuncov++ % PW_UNCOVERED_KEEP];
	struct json *j = &d->j;

	if (reason >= UNCOVERED_MAX)
		reason = UNCOVERED_FAILED;
	d->uncovered[library_index(library)][reason]++;
	memset(u, 0, sizeof(*u));
	u->library = library_index(library);
	u->reason = reason;
	if (at) {
		u->dev = at->dev;
		u->ino = at->ino;
		u->pid = at->pid;
	}
	snprintf(u->version, sizeof(u->version), "%s", version ? version : "");
	snprintf(u->path, sizeof(u->path), "%s", path);
	exe_of(u->pid, u->exe, sizeof(u->exe));
	log_warnx("%s: %s NOT covered (%s): %s", path, library ? library : "TLS library",
		  uncovered_reason_names[reason], err);
	begin(d, "library_uncovered", events_now_unix_ns());
	uncovered_members(j, u);
	json_str(j, "error", err);
	if (reason == UNCOVERED_FILE_LIMIT)
		json_uint(j, "open_files_limit", d->nofile);
	emit(d);
}

uint64_t uncovered_kept_first(const struct daemon *d)
{
	return d->nuncov > PW_UNCOVERED_KEEP ? d->nuncov - PW_UNCOVERED_KEEP : 0;
}

void events_uncovered_list(const struct daemon *d, struct json *j, const char *key)
{
	uint64_t i;

	json_arr_begin(j, key);
	for (i = uncovered_kept_first(d); i < d->nuncov; i++) {
		json_obj_begin(j, NULL);
		uncovered_members(j, &d->uncov[i % PW_UNCOVERED_KEEP]);
		json_obj_end(j);
	}
	json_arr_end(j);
}
