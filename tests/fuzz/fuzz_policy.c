// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: the policy parser (userspace/policy.c: policy_parse_buf) on
 * any bytes, from an exact-length buffer with no terminating NUL.
 *
 *  - No crash, no undefined behaviour, no leak (LeakSanitizer runs per input).
 *  - It either succeeds with a policy and no error, or fails with no policy and
 *    at least one error stored; never both, never neither.
 *  - Every diagnostic has line and column >= 1 (line at most the input's line
 *    count + 1), or both 0 when the place is unknown; its message is non-empty,
 *    NUL-terminated, valid UTF-8 with no control character (C0, DEL, C1,
 *    U+2028/2029) and no bidirectional or invisible formatting character: user
 *    text is either quoted as \xNN or a name the parser accepted, so a hostile
 *    file cannot put terminal escapes into `pinwarden check`'s output or reorder
 *    what it displays (a message cut at its 255-byte limit may end mid-character).
 *  - A policy it returns is consistent: every rule names an existing pinset,
 *    has a name and a mode/action/side/kind in range, every pinset has a name;
 *    policy_summary() and policy_host_matches() run on it (a rule's own suffix
 *    matches its exact rules).
 */
#include "jsoncheck.h"	/* CHECK, ref_utf8_len */
#include "policy.h"

/* 2026-01-01T00:00:00Z, as the unit tests use: expiry lint does not depend on the clock */
#define NOW ((time_t)1767225600)

static void check_message(const char *msg, size_t len)
{
	const uint8_t *u = (const uint8_t *)msg;
	size_t k, l;

	for (k = 0; k < len; k += l) {
		uint32_t cp;

		l = ref_utf8_len(u + k, len - k);
		if (!l && len == 255 && len - k < 4 && u[k] >= 0xc2)
			break;	/* vsnprintf cut the last character */
		CHECK(l, "invalid UTF-8 at %zu in the message \"%s\"", k, msg);
		cp = l == 1 ? u[k] : l == 2 ? (u[k] & 0x1fu) << 6 | (u[k + 1] & 0x3f) :
		     l == 3 ? (u[k] & 0x0fu) << 12 | (u[k + 1] & 0x3fu) << 6 | (u[k + 2] & 0x3f) :
			      (u[k] & 0x07u) << 18 | (u[k + 1] & 0x3fu) << 12 |
				      (u[k + 2] & 0x3fu) << 6 | (u[k + 3] & 0x3f);
		CHECK(cp >= 0x20 && !(cp >= 0x7f && cp <= 0x9f) && cp != 0x2028 && cp != 0x2029 &&
		      !(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069) &&
		      cp != 0x200e && cp != 0x200f && cp != 0x061c && cp != 0xfeff,
		      "U+%04X at %zu in the message \"%s\"", cp, k, msg);
	}
}

static void check_diags(const struct pw_diags *d, size_t lines)
{
	size_t i, k, stored_errors = 0;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	CHECK(d->n <= d->nerrors + d->nwarnings, "%zu stored, %zu counted", d->n,
	      d->nerrors + d->nwarnings);
	for (i = 0; i < d->n; i++) {
		const struct pw_diag *g = &d->v[i];
		size_t len = strnlen(g->msg, sizeof(g->msg));

		stored_errors += !g->warning;
		CHECK((g->line >= 1 && g->col >= 1) || (g->line == 0 && g->col == 0),
		      "diagnostic at %d:%d: %s", g->line, g->col, g->msg);
		CHECK((size_t)g->line <= lines + 1, "line %d of a %zu-line input: %s", g->line,
		      lines, g->msg);
		CHECK(len > 0 && len < sizeof(g->msg), "empty or unterminated message");
		check_message(g->msg, len);
	}
	CHECK(d->nerrors == 0 || stored_errors > 0 || d->n == 100, "errors counted, none stored");
	/* what `pinwarden check` prints: one line per stored diagnostic, plus a note */
	f = open_memstream(&out, &outlen);
	CHECK(f, "open_memstream");
	diags_print(d, "fuzz.yaml", f);
	fclose(f);
	for (i = 0, k = 0; i < outlen; i++)
		k += out[i] == '\n';
	CHECK(k == d->n || k == d->n + 1, "%zu lines printed for %zu diagnostics", k, d->n);
	free(out);
}

static void check_policy(const struct pw_policy *p)
{
	char summary[256];
	size_t i;

	for (i = 0; i < p->npinsets; i++)
		CHECK(p->pinsets[i].name && p->pinsets[i].npins <= 64, "pinset %zu", i);
	for (i = 0; i < p->nrules; i++) {
		const struct pw_rule *r = &p->rules[i];
		char host[300];

		CHECK(r->pinset < p->npinsets, "rule %zu names pinset %zu of %zu", i, r->pinset,
		      p->npinsets);
		CHECK(r->name && r->mode <= PW_MODE_ENFORCE && r->action <= PW_ACTION_RESET &&
		      r->side <= PW_SIDE_SERVER && r->kind <= PW_HOST_IP, "rule %zu", i);
		CHECK(r->side == PW_SIDE_SERVER || (r->host && r->suffix), "client rule %zu has no host", i);
		if (r->side != PW_SIDE_CLIENT || !r->suffix)
			continue;
		if (r->kind == PW_HOST_EXACT)
			CHECK(policy_host_matches(r, r->suffix), "rule %zu: '%s' does not match itself",
			      i, r->suffix);
		/* whatever the pattern, these must not crash */
		snprintf(host, sizeof(host), "a.%s", r->suffix);
		policy_host_matches(r, host);
		snprintf(host, sizeof(host), "A.B.%s.", r->suffix);
		policy_host_matches(r, host);
		policy_host_matches(r, "");
		policy_host_matches(r, ".");
	}
	policy_summary(p, summary, sizeof(summary));
	CHECK(strlen(summary) > 0, "empty summary");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact length, no NUL after it: the parser must respect `len` */
	char *buf = malloc(size ? size : 1);
	struct pw_diags diags = { 0 };
	struct pw_policy *p = (struct pw_policy *)1;
	size_t i, lines = 1;
	int rc;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* an upper bound: libyaml also breaks lines at NEL, U+2028 and U+2029 */
	for (i = 0; i < size; i++)
		lines += strchr("\n\r\x85\xa8\xa9", buf[i]) && buf[i];
	rc = policy_parse_buf("fuzz.yaml", buf, size, NOW, &p, &diags);
	CHECK(rc == 0 || rc == -1, "returned %d", rc);
	if (rc == 0) {
		CHECK(p != NULL && diags.nerrors == 0, "success with %zu errors", diags.nerrors);
		check_policy(p);
	} else {
		CHECK(p == NULL && diags.nerrors > 0, "failure with no error (policy %p)", (void *)p);
	}
	check_diags(&diags, lines);
	policy_free(rc == 0 ? p : NULL);
	diags_free(&diags);
	free(buf);
	return 0;
}
