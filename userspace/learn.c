// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * `pinwarden learn`: watch like `run` (audit, nothing enforced) and write a
 * draft policy of what was seen: one rule per host, with the SPKI pins of the
 * chains its servers presented.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "certcache.h"
#include "daemon.h"
#include "log.h"
#include "safefile.h"

#define LEARN_HOSTS	4096
#define LEARN_PINS	16

struct learned_pin {
	uint8_t spki[PW_HASH_LEN];
	unsigned position;	/* lowest position in a chain: 0 = leaf */
	uint64_t seen;
	uint64_t validated;	/* chains where the client's library verified it: a pin on it counts */
	bool anchor;		/* a trust anchor the server never sent */
};

struct learned_host {
	char host[PW_HOST_MAX];
	struct learned_pin pins[LEARN_PINS];
	size_t npins;
	uint64_t chains;
	bool more_pins;		/* some did not fit */
};

struct learn {
	struct learned_host *v;
	size_t n;
	uint64_t dropped_hosts;
};

struct learn *learn_new(void)
{
	struct learn *l = calloc(1, sizeof(*l));

	if (l)
		l->v = calloc(LEARN_HOSTS, sizeof(*l->v));
	if (!l || !l->v) {
		free(l);
		return NULL;
	}
	return l;
}

void learn_free(struct learn *l)
{
	if (!l)
		return;
	free(l->v);
	free(l);
}

/* Only names the policy parser accepts become rules. */
static bool host_ok(const char *h)
{
	size_t i, n = strlen(h);

	if (!n || n > 253)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_' &&
		    h[i] != ':')
			return false;
	return true;
}

void learn_chain(struct learn *l, const struct pw_chain_rec *r)
{
	char host[PW_HOST_MAX];
	struct learned_host *lh = NULL;
	size_t i, j;

	if (r->side != PW_SIDE_CLIENT || r->verdict == PW_VERDICT_RESUMED)
		return;
	if (r->host[0]) {
		snprintf(host, sizeof(host), "%.*s", (int)strnlen(r->host, PW_HOST_MAX), r->host);
	} else if (r->peer_family) {
		static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

		if (!memcmp(r->peer_addr, v4mapped, 12))
			inet_ntop(AF_INET, r->peer_addr + 12, host, sizeof(host));
		else
			inet_ntop(AF_INET6, r->peer_addr, host, sizeof(host));
	} else {
		return;
	}
	if (!host_ok(host))
		return;
	for (i = 0; i < l->n; i++) {
		if (!strcmp(l->v[i].host, host)) {
			lh = &l->v[i];
			break;
		}
	}
	if (!lh) {
		if (l->n == LEARN_HOSTS) {
			l->dropped_hosts++;
			return;
		}
		lh = &l->v[l->n++];
		snprintf(lh->host, sizeof(lh->host), "%s", host);
	}
	lh->chains++;
	for (i = 0; i < r->ncerts && i < PW_CHAIN_MAX; i++) {
		const struct pw_chain_cert *c = &r->certs[i];
		struct learned_pin *p = NULL;

		if (!(c->flags & PW_CERT_SPKI_HASHED))
			continue;
		for (j = 0; j < lh->npins; j++)
			if (!memcmp(lh->pins[j].spki, c->spki_sha256, PW_HASH_LEN))
				p = &lh->pins[j];
		if (!p) {
			if (lh->npins == LEARN_PINS) {
				lh->more_pins = true;
				continue;
			}
			p = &lh->pins[lh->npins++];
			memcpy(p->spki, c->spki_sha256, PW_HASH_LEN);
			p->position = i;
		}
		if (i < p->position)
			p->position = i;
		p->seen++;
		if (r->validation == PW_VALIDATION_VERIFIED && (c->flags & PW_CERT_VALIDATED))
			p->validated++;
		if (c->flags & PW_CERT_NOT_PRESENTED)
			p->anchor = true;
	}
}

/* Where a learned key sat, and whether a pin on it would count (SPEC: leaf, or validated). */
static void pin_comment(const struct learned_pin *p, char *out, size_t len)
{
	if (p->position == 0)
		snprintf(out, len, "leaf, in %llu chains", (unsigned long long)p->seen);
	else if (p->validated == p->seen)
		snprintf(out, len, "%s, in %llu chains, validated by the client in all",
			 p->anchor ? "trust anchor (not sent)" : "intermediate or root",
			 (unsigned long long)p->seen);
	else if (p->validated)
		snprintf(out, len, "intermediate or root, in %llu chains, validated by the client in "
			 "%llu only: a pin on it counts only where the client verifies",
			 (unsigned long long)p->seen, (unsigned long long)p->validated);
	else
		snprintf(out, len, "intermediate or root, in %llu chains, NEVER validated by the "
			 "client: a pin on it would not count (prefer the leaf key)",
			 (unsigned long long)p->seen);
}

/* s in a YAML comment: a file name may hold anything, a newline that would end
 * the comment and start policy included; bytes outside printable ASCII are '?' */
static void comment_str(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s >= 0x20 && *s < 0x7f ? *s : '?', f);
}

/* What the draft cannot speak for: the files seen that have no probes. */
static void uncovered_comments(const struct daemon *d, FILE *f)
{
	uint64_t i = uncovered_kept_first(d);

	if (!d->nuncov)
		return;
	fprintf(f, "# NOT JUDGED while learning: %llu TLS library files had no probes; no pin below\n"
		   "# protects the programs that use them (library_uncovered events, `pinwarden status`):\n",
		(unsigned long long)d->nuncov);
	for (; i < d->nuncov; i++) {
		const struct uncovered_file *u = &d->uncov[i % PW_UNCOVERED_KEEP];

		fputs("#   ", f);
		comment_str(f, u->path);
		fprintf(f, ": %s (%s)", uncovered_library_names[u->library],
			uncovered_reason_names[u->reason]);
		if (u->exe[0]) {
			fputs(", mapped by ", f);
			comment_str(f, u->exe);
		}
		fputc('\n', f);
	}
}

int learn_write(const struct learn *l, const struct daemon *d, FILE *f, uint64_t seconds)
{
	char t[32], pin[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i, j, kept;

	gmtime_r(&now, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "# Draft policy written by `pinwarden learn` at %s after %llu s: %zu hosts.\n",
		t, (unsigned long long)seconds, l->n);
	fprintf(f, "# Every pin below is a key that was SEEN, not one known to be good: check each\n"
		   "# against the real servers (pinwarden pin HOST:443), add a backup key, run\n"
		   "# `pinwarden check`, and only then switch a rule to mode: enforce.\n");
	uncovered_comments(d, f);
	if (l->dropped_hosts)
		fprintf(f, "# %llu chains for more than %d hosts were not recorded.\n",
			(unsigned long long)l->dropped_hosts, LEARN_HOSTS);
	for (i = kept = 0; i < l->n; i++) {
		if (l->v[i].npins)
			kept++;
		else	/* a pinset is never empty: such a host gets no rule */
			fprintf(f, "# %s: %llu chains, none with a key to pin (resumed sessions, "
				   "certificates lost or not parsed): no rule\n", l->v[i].host,
				(unsigned long long)l->v[i].chains);
	}
	fprintf(f, "mode: audit\naction: kill\nlog: all\npinsets:%s\n", kept ? "" : " {}");
	for (i = 0; i < l->n; i++) {
		const struct learned_host *lh = &l->v[i];

		if (!lh->npins)
			continue;
		fprintf(f, "  h%zu:    # %s, %llu chains\n    pins:\n", i + 1, lh->host,
			(unsigned long long)lh->chains);
		for (j = 0; j < lh->npins; j++) {
			char why[160];

			pin_format(lh->pins[j].spki, pin);
			pin_comment(&lh->pins[j], why, sizeof(why));
			fprintf(f, "      - %s    # %s\n", pin, why);
		}
		if (lh->more_pins)
			fprintf(f, "      # more keys were seen than are listed here\n");
	}
	fprintf(f, "rules:%s\n", kept ? "" : " []");
	for (i = 0; i < l->n; i++)
		if (l->v[i].npins)
			fprintf(f, "  - host: \"%s\"\n    pinset: h%zu\n", l->v[i].host, i + 1);
	return ferror(f) ? -1 : 0;
}

static void usage_learn(FILE *f)
{
	fprintf(f, "usage: pinwarden learn [--duration SECS] [--output FILE] [--log FILE] [-v]\n");
}

int cmd_learn(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "log", required_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .log_fd = -1, .log_path = "/dev/null" };
	const char *output = NULL;
	unsigned long secs = 60;
	char *end, *buf = NULL, why[512] = "";
	size_t len = 0;
	FILE *f;
	int c, rc, verbose = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:o:l:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			secs = strtoul(optarg, &end, 10);
			if (*end || !secs || secs > 86400 * 30) {
				fprintf(stderr, "pinwarden: --duration: seconds, 1 to 2592000\n");
				return 2;
			}
			break;
		case 'o': output = optarg; break;
		case 'l': d.log_path = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage_learn(stdout); return 0;
		default: usage_learn(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage_learn(stderr);
		return 2;
	}
	log_init("pinwarden", verbose);
	d.learn = learn_new();
	if (!d.learn)
		fatalx("out of memory");
	d.learn_seconds = secs;
	/* refused before the watching, not after it */
	if (output && safefile_check(output, false, why, sizeof(why))) {
		log_warnx("--output: %s", why);
		learn_free(d.learn);
		return 1;
	}
	rc = daemon_run(&d);
	if (rc == 0 && !output) {
		if (learn_write(d.learn, &d, stdout, secs))
			rc = 1;
	} else if (rc == 0) {
		/* written whole and fresh, then renamed into place */
		f = open_memstream(&buf, &len);
		if (!f || learn_write(d.learn, &d, f, secs) || fclose(f) ||
		    safefile_replace(output, buf, len, 0640, false, why, sizeof(why))) {
			log_warnx("--output: %s", why[0] ? why : "out of memory");
			rc = 1;
		}
		free(buf);
	}
	learn_free(d.learn);
	return rc;
}
