// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Unit tests of the policy parser (userspace/policy.c), through policy.h only.
 * Run from the repository root (the example policies are in tests/policy/).
 * Every failed assertion prints one "file:line: FAIL ..." line; the exit
 * status is the number of failures (capped), 0 when all pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "policy.h"

/* 2026-01-01T00:00:00Z: fixed, so that expiry warnings do not depend on the clock */
#define NOW ((time_t)1767225600)

#define PIN_A "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="	/* sha256("") */
#define PIN_B "sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="	/* sha256("abc") */
#define PIN_C "sha256/jdBw9dmrwOU1F06MVIRpeynU+pULDIS1rE/H5CP4OWQ="
#define HEX_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define HEX_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* A pinset "p" with two pins, so that rule tests get no lint warnings. */
#define PINSETS "pinsets:\n  p:\n    pins: [" PIN_A ", " PIN_B "]\n"

static const uint8_t SHA_EMPTY[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
	0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
	0xb8, 0x55,
};
static const uint8_t SHA_ABC[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
	0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
	0x15, 0xad,
};

/* The last parse: its result and diagnostics, freed by the next parse. */
static struct pw_policy *P;
static struct pw_diags D;

static int parse_len(const char *yaml, size_t len)
{
	policy_free(P);
	P = NULL;
	diags_free(&D);
	return policy_parse_buf("t.yaml", yaml, len, NOW, &P, &D);
}

static int parse(const char *yaml)
{
	return parse_len(yaml, strlen(yaml));
}

static int parsef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int parsef(const char *fmt, ...)
{
	char *s;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	rc = parse(s);
	free(s);
	return rc;
}

static void dump_diags(void)
{
	diags_print(&D, "t.yaml", stderr);
}

/* Is there a diagnostic of this kind at line:col whose message contains `sub`? */
static bool has_diag(int line, int col, bool warning, const char *sub)
{
	for (size_t i = 0; i < D.n; i++)
		if (D.v[i].line == line && D.v[i].col == col && D.v[i].warning == warning &&
		    strstr(D.v[i].msg, sub))
			return true;
	return false;
}

#define ASSERT_DIAG(line, col, warning, sub)                                            \
	do {                                                                            \
		checks++;                                                               \
		if (!has_diag(line, col, warning, sub)) {                               \
			FAIL("no %s at %d:%d containing \"%s\"; got:",                   \
			     (warning) ? "warning" : "error", line, col, sub);          \
			dump_diags();                                                   \
		}                                                                       \
	} while (0)
#define ASSERT_ERROR(line, col, sub) ASSERT_DIAG(line, col, false, sub)
#define ASSERT_WARNING(line, col, sub) ASSERT_DIAG(line, col, true, sub)

/* Exactly one error, at line:col, containing `sub`. */
#define ASSERT_ONLY_ERROR(rc, line, col, sub)                                           \
	do {                                                                            \
		ASSERT_EQ(rc, -1);                                                      \
		ASSERT_NULL(P);                                                         \
		ASSERT_EQ(D.nerrors, 1);                                                \
		ASSERT_ERROR(line, col, sub);                                           \
	} while (0)

/* Parsed with neither error nor warning. */
#define ASSERT_CLEAN(rc)                                                                \
	do {                                                                            \
		ASSERT_EQ(rc, 0);                                                       \
		ASSERT_TRUE(P != NULL);                                                 \
		ASSERT_EQ(D.nerrors, 0);                                                \
		ASSERT_EQ(D.nwarnings, 0);                                              \
		if (D.n)                                                                \
			dump_diags();                                                   \
	} while (0)

static char policy_dir[512];

static const char *policy_path(const char *name)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s/%s", policy_dir, name);
	return buf;
}

static int64_t utc(int y, int m, int d)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };

	return (int64_t)timegm(&tm);
}

/* ---- the example that uses every feature ------------------------------------------ */

static void test_good_file(void)
{
	const struct pw_rule *r;
	const struct pw_pinset *ps;
	char sum[160];
	int rc;

	diags_free(&D);
	policy_free(P);
	P = NULL;
	rc = policy_parse_file(policy_path("good.yaml"), NOW, &P, &D);
	ASSERT_CLEAN(rc);
	if (!P)
		return;
	ASSERT_STREQ(P->source, policy_path("good.yaml"));
	ASSERT_EQ(P->mode, PW_MODE_ENFORCE);
	ASSERT_EQ(P->action, PW_ACTION_RESET);
	ASSERT_TRUE(P->log_mismatches_only);

	ASSERT_EQ(P->npinsets, 2);
	ps = &P->pinsets[0];
	ASSERT_STREQ(ps->name, "bank");
	ASSERT_EQ(ps->line, 6);
	ASSERT_EQ(ps->col, 3);
	ASSERT_STREQ(ps->expires_text, "2027-06-30");
	ASSERT_EQ(ps->expires, utc(2027, 7, 1));
	ASSERT_EQ(ps->npins, 2);
	ASSERT_EQ(ps->pins[0].type, PW_PIN_SPKI);
	ASSERT_TRUE(!memcmp(ps->pins[0].hash, SHA_EMPTY, 32));
	ASSERT_STREQ(ps->pins[0].text, PIN_A);
	ASSERT_EQ(ps->pins[0].line, 9);
	ASSERT_EQ(ps->pins[0].col, 9);
	ASSERT_EQ(ps->pins[1].type, PW_PIN_CERT);
	ASSERT_TRUE(!memcmp(ps->pins[1].hash, SHA_ABC, 32)); /* upper-case hex */
	ps = &P->pinsets[1];
	ASSERT_STREQ(ps->name, "clients");
	ASSERT_EQ(ps->expires, 0);
	ASSERT_NULL(ps->expires_text);
	ASSERT_EQ(ps->npins, 2);
	ASSERT_TRUE(!memcmp(ps->pins[0].hash, SHA_ABC, 32));
	ASSERT_EQ(ps->pins[1].type, PW_PIN_CERT);
	ASSERT_TRUE(!memcmp(ps->pins[1].hash, SHA_EMPTY, 32));

	ASSERT_EQ(P->nrules, 7);
	if (P->nrules != 7)
		return;
	r = &P->rules[0];
	ASSERT_STREQ(r->host, "API.Bank.Example.");
	ASSERT_STREQ(r->suffix, "api.bank.example");
	ASSERT_EQ(r->kind, PW_HOST_EXACT);
	ASSERT_EQ(r->port, 443);
	ASSERT_EQ(r->side, PW_SIDE_CLIENT);
	ASSERT_EQ(r->pinset, 0);
	ASSERT_EQ(r->mode, PW_MODE_AUDIT);
	ASSERT_EQ(r->action, PW_ACTION_KILL);
	ASSERT_TRUE(r->mode_set && r->action_set);
	ASSERT_STREQ(r->scope_exe, "/usr/bin/curl");
	ASSERT_STREQ(r->scope_cgroup, "/system.slice/app.service");
	ASSERT_STREQ(r->name, "API.Bank.Example.:443");
	ASSERT_EQ(r->line, 16);
	ASSERT_EQ(r->col, 5);

	r = &P->rules[1];
	ASSERT_STREQ(r->host, "*.bank.example");
	ASSERT_STREQ(r->suffix, "bank.example");
	ASSERT_EQ(r->kind, PW_HOST_ONE);
	ASSERT_EQ(r->port, 0);
	ASSERT_EQ(r->mode, PW_MODE_ENFORCE); /* from the top level */
	ASSERT_EQ(r->action, PW_ACTION_RESET);
	ASSERT_TRUE(!r->mode_set && !r->action_set);
	ASSERT_NULL(r->scope_exe);
	ASSERT_NULL(r->scope_cgroup);
	ASSERT_STREQ(r->name, "*.bank.example");

	r = &P->rules[2];
	ASSERT_STREQ(r->name, "everything under bank");
	ASSERT_EQ(r->kind, PW_HOST_ANY);
	ASSERT_STREQ(r->suffix, "bank.example");

	r = &P->rules[3];
	ASSERT_EQ(r->kind, PW_HOST_IP);
	ASSERT_STREQ(r->suffix, "192.0.2.7");
	ASSERT_TRUE(!memcmp(r->ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\x00\x02\x07", 16));
	ASSERT_EQ(r->port, 8443);
	ASSERT_STREQ(r->name, "192.0.2.7:8443");

	r = &P->rules[4];
	ASSERT_EQ(r->kind, PW_HOST_IP);
	ASSERT_STREQ(r->suffix, "2001:db8::1");
	ASSERT_TRUE(!memcmp(r->ip, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
	ASSERT_STREQ(r->host, "2001:DB8:0:0::1");

	r = &P->rules[5];
	ASSERT_EQ(r->side, PW_SIDE_SERVER);
	ASSERT_EQ(r->port, 8443);
	ASSERT_NULL(r->host);
	ASSERT_STREQ(r->suffix, "");
	ASSERT_EQ(r->pinset, 1);
	ASSERT_STREQ(r->name, "server:8443");

	r = &P->rules[6];
	ASSERT_EQ(r->side, PW_SIDE_CLIENT);
	ASSERT_STREQ(r->scope_exe, "/usr/bin/wget");
	ASSERT_NULL(r->scope_cgroup);

	policy_summary(P, sum, sizeof(sum));
	ASSERT_STREQ(sum, "7 rules (6 enforced), 2 pinsets, 4 pins");
}

/* ---- the other example files ------------------------------------------------------- */

static int parse_file(const char *name)
{
	diags_free(&D);
	policy_free(P);
	P = NULL;
	return policy_parse_file(policy_path(name), NOW, &P, &D);
}

static void test_example_files(void)
{
	int rc;

	rc = parse_file("warnings.yaml");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nerrors, 0);
	ASSERT_EQ(D.nwarnings, 5);
	ASSERT_WARNING(3, 3, "single pin and no backup pin");
	ASSERT_WARNING(7, 14, "pinset 'old' expired on 2020-01-31");
	ASSERT_WARNING(10, 9, "not the base64 of a 32-byte SHA-256");
	ASSERT_WARNING(12, 9, "duplicate pin in pinset 'old'; the first is at 9:9");
	ASSERT_WARNING(13, 3, "pinset 'unused' is not used by any rule");
	if (P) {
		ASSERT_EQ(P->pinsets[1].npins, 2); /* the invalid and the duplicate pin dropped */
		ASSERT_EQ(P->pinsets[1].pins[1].type, PW_PIN_CERT);
	}

	rc = parse_file("bad-syntax.yaml");
	ASSERT_ONLY_ERROR(rc, 6, 12, "YAML syntax");
	ASSERT_ERROR(6, 12, "must be quoted");

	rc = parse_file("bad-keys.yaml");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 6);
	ASSERT_ERROR(7, 5, "unknown key 'expire' in pinset 'bank'; did you mean 'expires'?");
	ASSERT_ERROR(9, 5, "rule has no pinset");
	ASSERT_ERROR(10, 5, "unknown key 'pinsets' in rule; did you mean 'pinset'? "
		     "(expected one of name, host, port, side, pinset, mode, action, scope)");
	ASSERT_ERROR(13, 5, "duplicate key 'pinset' in rule; the first is at 12:5");
	ASSERT_ERROR(15, 7, "unknown key 'path' in scope; expected one of exe, cgroup");
	ASSERT_ERROR(16, 1, "duplicate key 'mode' in the policy; the first is at 1:1");

	rc = parse_file("bad-hosts.yaml");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 8);
	ASSERT_ERROR(7, 11, "'*' may only be the whole leftmost label");
	ASSERT_ERROR(9, 11, "'*' may only be the whole leftmost label");
	ASSERT_ERROR(11, 11, "'*' may only be the whole leftmost label");
	ASSERT_ERROR(13, 11, "empty label");
	ASSERT_ERROR(15, 11, "neither an IP address nor a DNS name");
	ASSERT_ERROR(18, 11, "port '70000' is not a port number");
	ASSERT_ERROR(20, 5, "side: server rule needs the port");
	ASSERT_ERROR(21, 5, "host is not allowed with side: server");

	rc = parse_file("bad-refs.yaml");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 4);
	ASSERT_ERROR(3, 14, "not a calendar date: February 2027 has 28 days");
	ASSERT_ERROR(5, 9, "unknown pin type in 'sha1/");
	ASSERT_ERROR(9, 13, "unknown pinset 'bnak'; define it under pinsets: (defined: bank)");
	ASSERT_ERROR(12, 5, "duplicate rule (same host, port, side and scope); the first is at "
		     "10:5");

	rc = parse_file("bad-empty.yaml");
	ASSERT_ONLY_ERROR(rc, 1, 1, "the policy is empty");

	rc = parse_file("does-not-exist.yaml");
	ASSERT_ONLY_ERROR(rc, 0, 0, "cannot open the policy: No such file or directory");
	rc = parse_file("");	/* the directory itself */
	ASSERT_ONLY_ERROR(rc, 0, 0, "is a directory");
}

/* ---- top level ---------------------------------------------------------------------- */

static void test_top_level(void)
{
	char sum[160];
	int rc;

	/* defaults */
	rc = parse("rules: []\n");
	ASSERT_CLEAN(rc);
	if (P) {
		ASSERT_EQ(P->mode, PW_MODE_AUDIT);
		ASSERT_EQ(P->action, PW_ACTION_KILL);
		ASSERT_TRUE(!P->log_mismatches_only);
		ASSERT_EQ(P->nrules, 0);
		ASSERT_STREQ(P->source, "t.yaml");
		policy_summary(P, sum, sizeof(sum));
		ASSERT_TRUE(strstr(sum, "no rules") != NULL);
	}
	/* "rules:" with nothing after it is an empty list too */
	rc = parse("mode: enforce\nrules:\npinsets:\n");
	ASSERT_CLEAN(rc);
	if (P)
		ASSERT_EQ(P->mode, PW_MODE_ENFORCE);
	rc = parse("log: all\naction: kill\n");
	ASSERT_CLEAN(rc);

	rc = parse("mode: Enforce\n");
	ASSERT_ONLY_ERROR(rc, 1, 7, "mode must be 'audit' or 'enforce', not 'Enforce'");
	rc = parse("action: block\n");
	ASSERT_ONLY_ERROR(rc, 1, 9, "action must be 'kill' or 'reset', not 'block'");
	rc = parse("log: some\n");
	ASSERT_ONLY_ERROR(rc, 1, 6, "log must be 'all' or 'mismatches'");
	rc = parse("mode: [audit]\n");
	ASSERT_ONLY_ERROR(rc, 1, 7, "mode must be a single value (e.g. mode: audit), not a list");
	rc = parse("mode:\n");
	ASSERT_ONLY_ERROR(rc, 1, 6, "mode is empty");
	rc = parse("rules: []\nrule: []\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "unknown key 'rule' in the policy; did you mean 'rules'?");
	rc = parse("rules: []\nfrobnicate: 1\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "unknown key 'frobnicate' in the policy; expected one of "
			  "mode, action, log, pinsets, rules");
	rc = parse("rules: []\n? [a]\n: b\n");
	ASSERT_ONLY_ERROR(rc, 2, 3, "a key in the policy is a list");
	rc = parse("rules: {}\n");
	ASSERT_ONLY_ERROR(rc, 1, 8, "rules must be a list");
	rc = parse("pinsets: []\n");
	ASSERT_ONLY_ERROR(rc, 1, 10, "pinsets must be a mapping");

	/* documents that are not a policy */
	rc = parse("");
	ASSERT_ONLY_ERROR(rc, 1, 1, "the policy is empty");
	rc = parse("---\n...\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "the policy is empty"); /* where the empty value ends */
	rc = parse("\n\n~\n");
	ASSERT_ONLY_ERROR(rc, 3, 1, "the policy is empty");
	rc = parse("- host: a.example\n");
	ASSERT_ONLY_ERROR(rc, 1, 1, "a policy is a mapping with the keys mode, action, log, "
			  "pinsets and rules, not a list");
	rc = parse("just words\n");
	ASSERT_ONLY_ERROR(rc, 1, 1, "not a plain value");
	rc = parse("rules: []\n---\nrules: []\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "a second YAML document");

	/* a UTF-8 byte order mark and CRLF line ends are fine; positions are unchanged */
	rc = parse("\xef\xbb\xbfmode: audit\r\nrules: []\r\nlog: everything\r\n");
	ASSERT_ONLY_ERROR(rc, 3, 6, "log must be 'all' or 'mismatches', not 'everything'");
	/* UTF-16 is not UTF-8 */
	rc = parse_len("\xff\xfer\0u\0l\0e\0s\0:\0 \0[\0]\0\n\0", 22);
	ASSERT_ONLY_ERROR(rc, 1, 1, "save the policy as UTF-8");
	/* merge keys are a YAML extension libyaml does not implement */
	rc = parse(PINSETS "rules:\n  - <<: {host: a.example}\n    pinset: p\n");
	ASSERT_EQ(rc, -1);
	ASSERT_ERROR(5, 5, "YAML merge keys (<<) are not supported in rule");
}

/* ---- YAML syntax ------------------------------------------------------------------------ */

static void test_yaml_syntax(void)
{
	int rc;

	/* the position is libyaml's problem mark, 1-based */
	rc = parse("rules:\n  - host: a.example\n   pinset: p\n");
	ASSERT_ONLY_ERROR(rc, 3, 4, "YAML syntax: did not find expected '-' indicator while "
			  "parsing a block collection at 2:3");
	rc = parse("rules: [a, b\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "YAML syntax: did not find expected ',' or ']'");
	rc = parse("rules:\n\t- host: a\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "indent with spaces");
	rc = parse("rules:\n  - host: *.example.com\n");
	ASSERT_ONLY_ERROR(rc, 2, 12, "must be quoted");
	rc = parse("mode: \"audit\n");
	ASSERT_ONLY_ERROR(rc, 2, 1, "YAML syntax: found unexpected end of stream");
	/* not UTF-8, and raw control characters: the reader refuses them */
	rc = parse("rules: []\nmode: au\xff\xfe" "dit\n");
	ASSERT_ONLY_ERROR(rc, 2, 9, "YAML: invalid leading UTF-8 octet");
	rc = parse("rules: []\nmode: a\x01udit\n");
	ASSERT_ONLY_ERROR(rc, 2, 8, "control characters are not allowed");
	rc = parse_len("rules: []\nmode: a\0udit\n", 22);
	ASSERT_ONLY_ERROR(rc, 2, 8, "control characters are not allowed");
	/* aliases to undefined anchors, and to an anchor still being defined */
	rc = parse("rules: *nothing\n");
	ASSERT_ONLY_ERROR(rc, 1, 8, "unknown alias '*nothing'");
	rc = parse("rules: &r [ *r ]\n");
	ASSERT_ONLY_ERROR(rc, 1, 13, "unknown alias '*r'");
}

/* Anchors and aliases work, and positions of aliased values are where they are used. */
static void test_aliases(void)
{
	int rc;

	rc = parse(PINSETS "rules:\n"
		   "  - host: a.example\n"
		   "    pinset: p\n"
		   "    scope: &s {exe: /usr/bin/curl, cgroup: /app}\n"
		   "  - host: b.example\n"
		   "    pinset: p\n"
		   "    scope: *s\n");
	ASSERT_CLEAN(rc);
	if (P && P->nrules == 2) {
		ASSERT_STREQ(P->rules[1].scope_exe, "/usr/bin/curl");
		ASSERT_STREQ(P->rules[1].scope_cgroup, "/app");
	}
	rc = parse(PINSETS "rules:\n"
		   "  - &r {host: a.example, pinset: p}\n"
		   "  - *r\n");
	ASSERT_ONLY_ERROR(rc, 6, 5, "duplicate rule (same host, port, side and scope); the first "
			  "is at 5:5");
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p, port: &port 443}\n"
		   "  - {host: b.example, pinset: p, port: *port, mode: *port}\n");
	ASSERT_ONLY_ERROR(rc, 6, 53, "mode must be 'audit' or 'enforce', not '443'");
}

/* ---- pinsets and pins -------------------------------------------------------------- */

static void test_pins(void)
{
	int rc;

	/* both forms, hex in any case */
	rc = parse("pinsets:\n  p:\n    pins:\n"
		   "      - cert-sha256/" HEX_EMPTY "\n"
		   "      - cert-sha256/BA7816BF8F01CFEA414140de5dae2223"
		   "b00361a396177a9cb410ff61f20015ad\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_CLEAN(rc);
	if (P) {
		ASSERT_EQ(P->pinsets[0].pins[0].type, PW_PIN_CERT);
		ASSERT_TRUE(!memcmp(P->pinsets[0].pins[0].hash, SHA_EMPTY, 32));
		ASSERT_TRUE(!memcmp(P->pinsets[0].pins[1].hash, SHA_ABC, 32));
		ASSERT_EQ(P->pinsets[0].pins[1].line, 5);
		ASSERT_EQ(P->pinsets[0].pins[1].col, 9);
	}

	/* a known prefix with a payload that can never match: warning, pin dropped */
	static const char *const invalid[] = {
		"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",	 /* no padding */
		"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU==", /* too much */
		"sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",	 /* base64url */
		"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",	 /* bits under '=' */
		"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NM",		 /* short */
		"sha256/",
		"sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=ungWv48Bz+pBQUDeXa4iI7A=",
		"cert-sha256/" HEX_EMPTY "0",
		"cert-sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
		"cert-sha256/g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"cert-sha256/",
	};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		rc = parsef("pinsets:\n  p:\n    pins:\n      - %s\n      - %s\n      - %s\n"
			    "rules: [{host: a.example, pinset: p}]\n", PIN_A, invalid[i], PIN_B);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(D.nerrors, 0);
		ASSERT_EQ(D.nwarnings, 1);
		ASSERT_WARNING(5, 9, "it can never match and is ignored");
		if (P) {
			ASSERT_EQ(P->pinsets[0].npins, 2);
			ASSERT_STREQ(P->pinsets[0].pins[1].text, PIN_B);
		}
	}
	rc = parse("pinsets:\n  p:\n    pins:\n      - " PIN_A "\n      - cert-sha256/E3:B0:C4\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_WARNING(5, 9, "remove the ':' separators");

	/* unknown prefixes are errors */
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", sha1/abc, " PIN_B "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 3, 65, "unknown pin type in 'sha1/abc'");
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", SHA256/abc, " PIN_B "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 3, 65, "unknown pin type");
	rc = parse("pinsets:\n  p:\n    pins:\n      - " PIN_A "\n"
		   "      - 'pin-sha256=\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"'\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 5, 9, "HTTP header form; write it as sha256/<base64>");
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", [x]]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 1);
	ASSERT_ERROR(3, 65, "a pin must be a string such as sha256/<base64>, not a list");

	/* lint: duplicate pin, single pin, no valid pin */
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", " PIN_B ", " PIN_A "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nwarnings, 1);
	ASSERT_WARNING(3, 118, "duplicate pin in pinset 'p'; the first is at 3:12");
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nwarnings, 1);
	ASSERT_WARNING(2, 3, "pinset 'p' has a single pin and no backup pin");
	rc = parse("pinsets:\n  p:\n    pins: [sha256/x=]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nwarnings, 2);
	ASSERT_WARNING(3, 11, "pinset 'p' has no valid pin");
	if (P)
		ASSERT_EQ(P->pinsets[0].npins, 0);

	/* structure of a pinset */
	rc = parse("pinsets:\n  p:\n    pins: []\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 3, 11, "must be a list of at least one pin");
	rc = parse("pinsets:\n  p:\n    expires: 2030-01-01\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 2, 3, "pinset 'p' has no 'pins'");
	rc = parse("pinsets:\n  p:\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 2, 5, "pinset 'p' must be a mapping with 'pins:'");
	rc = parse("pinsets:\n  p: [" PIN_A "]\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 2, 6, "not a list");
	rc = parse("pinsets:\n  p:\n    pins: " PIN_A "\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 3, 11, "must be a list");
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", " PIN_B "]\n    pins: [" PIN_C "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 4, 5, "duplicate key 'pins' in pinset 'p'; the first is at 3:5");
	rc = parse("pinsets:\n  p:\n    pins: [" PIN_A ", " PIN_B "]\n  p:\n    pins: [" PIN_C "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 4, 3, "duplicate pinset 'p'; the first is at 2:3");
	rc = parse("pinsets:\n  [p]:\n    pins: [" PIN_A ", " PIN_B "]\nrules: []\n");
	ASSERT_ONLY_ERROR(rc, 2, 3, "a pinset name is a list");

	/* unused pinset */
	rc = parse(PINSETS "  q:\n    pins: [" PIN_A ", " PIN_B "]\n"
		   "rules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nwarnings, 1);
	ASSERT_WARNING(4, 3, "pinset 'q' is not used by any rule");
}

static void test_expires(void)
{
	static const struct {
		const char *text;
		int y, m, d;	/* the day after */
	} good[] = {
		{ "2027-06-30", 2027, 7, 1 },	{ "2024-02-29", 2024, 3, 1 },
		{ "2000-02-29", 2000, 3, 1 },	{ "1999-12-31", 2000, 1, 1 },
		{ "2026-12-31", 2027, 1, 1 },	{ "2099-01-31", 2099, 2, 1 },
		{ "9999-12-31", 10000, 1, 1 },
	};
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
		{ "2023-02-29", "February 2023 has 28 days" },
		{ "2100-02-29", "February 2100 has 28 days" },
		{ "2027-04-31", "April 2027 has 30 days" },
		{ "2027-13-01", "has no month 13" },
		{ "2027-00-10", "has no month 00" },
		{ "2027-01-00", "is not a calendar date" },
		{ "2027-6-30", "is not a date YYYY-MM-DD" },
		{ "2027-06-30T00:00:00Z", "is not a date YYYY-MM-DD" },
		{ "30/06/2027", "is not a date YYYY-MM-DD" },
		{ "'2027-06-3x'", "is not a date YYYY-MM-DD" },
		{ "1969-12-31", "is before 1970" },
		{ "20270630", "is not a date" },
	};
	int rc;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		rc = parsef(PINSETS "    expires: %s\nrules: [{host: a.example, pinset: p}]\n",
			    good[i].text);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(D.nerrors, 0);
		if (P) {
			ASSERT_EQ(P->pinsets[0].expires, utc(good[i].y, good[i].m, good[i].d));
			ASSERT_STREQ(P->pinsets[0].expires_text, good[i].text);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parsef(PINSETS "    expires: %s\nrules: [{host: a.example, pinset: p}]\n",
			    bad[i].text);
		ASSERT_ONLY_ERROR(rc, 4, 14, bad[i].why);
	}
	/* valid through the end of the day: expired exactly when now >= expires */
	rc = parse(PINSETS "    expires: 2025-12-31\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(D.nwarnings, 1);
	ASSERT_WARNING(4, 14, "pinset 'p' expired on 2025-12-31");
	rc = parse(PINSETS "    expires: 2026-01-01\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_CLEAN(rc);
	if (P)
		ASSERT_EQ(P->pinsets[0].expires, NOW + 86400);
	rc = parse(PINSETS "    expires:\nrules: [{host: a.example, pinset: p}]\n");
	ASSERT_ONLY_ERROR(rc, 4, 13, "expires is empty");
}

/* ---- rules -------------------------------------------------------------------------------- */

struct host_case {
	const char *yaml;	/* as written after "host: " */
	uint8_t kind;
	const char *suffix;
	const char *ip;		/* 16 bytes, or NULL */
};

static void test_hosts(void)
{
	static const struct host_case good[] = {
		{ "api.example.com", PW_HOST_EXACT, "api.example.com", NULL },
		{ "API.Example.COM.", PW_HOST_EXACT, "api.example.com", NULL },
		{ "'*.Example.com'", PW_HOST_ONE, "example.com", NULL },
		{ "\"**.example.com.\"", PW_HOST_ANY, "example.com", NULL },
		{ "\"**.com\"", PW_HOST_ANY, "com", NULL },
		{ "localhost", PW_HOST_EXACT, "localhost", NULL },
		{ "_srv.x-y.example", PW_HOST_EXACT, "_srv.x-y.example", NULL },
		{ "xn--bnk-sna.example", PW_HOST_EXACT, "xn--bnk-sna.example", NULL },
		{ "a1.2b.3com", PW_HOST_EXACT, "a1.2b.3com", NULL },
		{ "10.1.2.3", PW_HOST_IP, "10.1.2.3",
		  "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x01\x02\x03" },
		{ "::1", PW_HOST_IP, "::1", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" },
		{ "'FE80::AB'", PW_HOST_IP, "fe80::ab",
		  "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\xab" },
		{ "\"::ffff:10.1.2.3\"", PW_HOST_IP, "10.1.2.3",
		  "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x01\x02\x03" },
	};
	static const struct {
		const char *yaml;
		const char *why;
	} bad[] = {
		{ "\"a*.example.com\"", "'*' may only be the whole leftmost label" },
		{ "\"*a.example.com\"", "'*' may only be the whole leftmost label" },
		{ "\"*.*.example.com\"", "'*' may only be the whole leftmost label" },
		{ "\"a.*.example.com\"", "'*' may only be the whole leftmost label" },
		{ "\"***.example.com\"", "'*' may only be the whole leftmost label" },
		{ "\"*\"", "'*' may only be the whole leftmost label" },
		{ "\"**\"", "'*' may only be the whole leftmost label" },
		{ "\"*.\"", "nothing after the wildcard" },
		{ "\"**.\"", "nothing after the wildcard" },
		{ "\".\"", "is empty" },
		{ "a..example", "has an empty label" },
		{ ".example", "has an empty label" },
		{ "\"example..\"", "has an empty label" },
		{ "\"*..example\"", "has an empty label" },
		{ "\"a b.example\"", "contains ' '" },
		{ "a/b.example", "contains '/'" },
		{ "\"bänk.example\"", "xn-- (punycode)" },
		{ "\"a\\tb.example\"", "control byte 0x09" },
		{ "\"a\\0b.example\"", "control byte 0x00" },
		{ "\"[::1]\"", "without brackets" },
		{ "\"fe80::1%eth0\"", "not a valid IPv6 address" },
		{ "\"1:2:3\"", "not a valid IPv6 address" },
		{ "1.2.3", "neither an IP address nor a DNS name" },
		{ "1.2.3.256", "neither an IP address nor a DNS name" },
		{ "01.2.3.4", "neither an IP address nor a DNS name" },
		{ "\"*.10.0.0.1\"", "neither an IP address nor a DNS name" },
		{ "[a.example]", "host must be a single value" },
		{ "\"\"", "host '' is empty" },
	};
	char label64[80], name254[300];
	int rc;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		rc = parsef(PINSETS "rules:\n  - host: %s\n    pinset: p\n", good[i].yaml);
		ASSERT_CLEAN(rc);
		if (!P || P->nrules != 1) {
			FAIL("host %s", good[i].yaml);
			continue;
		}
		ASSERT_EQ(P->rules[0].kind, good[i].kind);
		ASSERT_STREQ(P->rules[0].suffix, good[i].suffix);
		if (good[i].ip)
			ASSERT_TRUE(!memcmp(P->rules[0].ip, good[i].ip, 16));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parsef(PINSETS "rules:\n  - host: %s\n    pinset: p\n", bad[i].yaml);
		ASSERT_ONLY_ERROR(rc, 5, 11, bad[i].why);
	}

	/* lengths: labels up to 63 bytes, names up to 253 */
	memset(label64, 'a', 64);
	label64[64] = '\0';
	rc = parsef(PINSETS "rules:\n  - host: %s.example\n    pinset: p\n", label64);
	ASSERT_ONLY_ERROR(rc, 5, 11, "has a label of 64 bytes; DNS labels are at most 63");
	rc = parsef(PINSETS "rules:\n  - host: %s.example\n    pinset: p\n", label64 + 1);
	ASSERT_CLEAN(rc);
	/* 4 labels of 63 + 3 dots = 255; take two off to reach 253 */
	snprintf(name254, sizeof(name254), "%.63s.%.63s.%.63s.%.61s", label64, label64, label64,
		 label64);
	ASSERT_EQ(strlen(name254), 253);
	rc = parsef(PINSETS "rules:\n  - host: %s\n    pinset: p\n", name254);
	ASSERT_CLEAN(rc);
	rc = parsef(PINSETS "rules:\n  - host: %s.\n    pinset: p\n", name254); /* final dot */
	ASSERT_CLEAN(rc);
	rc = parsef(PINSETS "rules:\n  - host: x%s\n    pinset: p\n", name254);
	ASSERT_ONLY_ERROR(rc, 5, 11, "is 254 bytes long; DNS names are at most 253");
	rc = parsef(PINSETS "rules:\n  - host: \"**.%s\"\n    pinset: p\n", name254 + 3);
	ASSERT_CLEAN(rc);
	rc = parsef(PINSETS "rules:\n  - host: \"**.%s\"\n    pinset: p\n", name254 + 2);
	ASSERT_ONLY_ERROR(rc, 5, 11, "is 254 bytes long");
}

static void test_ports(void)
{
	static const char *const bad[] = {
		"0", "65536", "70000", "-1", "+443", "0443", "443.0", "1e3", "'443'",
		"\"443\"", "https", "99999999999999999999",
	};
	int rc;

	rc = parse(PINSETS "rules:\n  - host: a.example\n    port: 65535\n    pinset: p\n"
		   "  - host: a.example\n    port: 1\n    pinset: p\n");
	ASSERT_CLEAN(rc);
	if (P && P->nrules == 2) {
		ASSERT_EQ(P->rules[0].port, 65535);
		ASSERT_EQ(P->rules[1].port, 1);
		ASSERT_STREQ(P->rules[1].name, "a.example:1");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parsef(PINSETS "rules:\n  - host: a.example\n    port: %s\n    pinset: p\n",
			    bad[i]);
		ASSERT_ONLY_ERROR(rc, 6, 11, "is not a port number; write a number from 1 to "
				  "65535");
	}
	rc = parse(PINSETS "rules:\n  - host: a.example\n    port: [443]\n    pinset: p\n");
	ASSERT_ONLY_ERROR(rc, 6, 11, "port must be a single value");
}

static void test_rules(void)
{
	int rc;

	rc = parse(PINSETS "mode: enforce\naction: reset\nrules:\n"
		   "  - {host: a.example, pinset: p, mode: audit}\n"
		   "  - {host: b.example, pinset: p, action: kill}\n"
		   "  - {host: c.example, pinset: p, mode: enforce, action: reset}\n");
	ASSERT_CLEAN(rc);
	if (P && P->nrules == 3) {
		ASSERT_EQ(P->rules[0].mode, PW_MODE_AUDIT);
		ASSERT_EQ(P->rules[0].action, PW_ACTION_RESET);
		ASSERT_TRUE(P->rules[0].mode_set && !P->rules[0].action_set);
		ASSERT_EQ(P->rules[1].mode, PW_MODE_ENFORCE);
		ASSERT_EQ(P->rules[1].action, PW_ACTION_KILL);
		ASSERT_TRUE(!P->rules[1].mode_set && P->rules[1].action_set);
		ASSERT_TRUE(P->rules[2].mode_set && P->rules[2].action_set);
		ASSERT_EQ(P->rules[2].line, 9);
		ASSERT_EQ(P->rules[2].col, 5);
	}
	/* the top-level mode applies even when written after the rules */
	rc = parse("rules: [{host: a.example, pinset: p}]\n" PINSETS "mode: enforce\n");
	ASSERT_CLEAN(rc);
	if (P && P->nrules == 1)
		ASSERT_EQ(P->rules[0].mode, PW_MODE_ENFORCE);

	/* required keys and side */
	rc = parse(PINSETS "rules:\n  - host: a.example\n");
	ASSERT_ONLY_ERROR(rc, 5, 5, "rule has no pinset; add pinset:");
	rc = parse(PINSETS "rules:\n  - pinset: p\n    port: 443\n");
	ASSERT_ONLY_ERROR(rc, 5, 5, "rule has no host");
	rc = parse(PINSETS "rules:\n  - side: server\n    pinset: p\n");
	ASSERT_ONLY_ERROR(rc, 5, 5, "a side: server rule needs the port");
	rc = parse(PINSETS "rules:\n  - side: server\n    port: 443\n    host: a.example\n"
		   "    pinset: p\n");
	ASSERT_ONLY_ERROR(rc, 7, 5, "host is not allowed with side: server");
	rc = parse(PINSETS "rules:\n  - side: Server\n    port: 443\n    pinset: p\n");
	ASSERT_EQ(rc, -1);
	ASSERT_ERROR(5, 11, "side must be 'client' or 'server', not 'Server'");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, mode: on}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "mode must be 'audit' or 'enforce', not 'on'");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, action: drop}\n");
	ASSERT_ONLY_ERROR(rc, 5, 42, "action must be 'kill' or 'reset'");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: q}\n");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 1);
	ASSERT_ERROR(5, 31, "unknown pinset 'q'; define it under pinsets: (defined: p)");
	ASSERT_WARNING(2, 3, "pinset 'p' is not used by any rule");
	rc = parse("rules:\n  - {host: a.example, pinset: q}\n");
	ASSERT_ONLY_ERROR(rc, 2, 31, "unknown pinset 'q'; no pinsets are defined");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: [p]}\n");
	ASSERT_ONLY_ERROR(rc, 5, 31, "pinset must be a single value");
	rc = parse(PINSETS "rules:\n  - a.example\n");
	ASSERT_ONLY_ERROR(rc, 5, 5, "a rule must be a mapping (host:, port:, pinset:, ...), "
			  "not a plain value");
	rc = parse(PINSETS "rules:\n  -\n");
	ASSERT_ONLY_ERROR(rc, 5, 4, "a rule must be a mapping");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, hots: b}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "unknown key 'hots' in rule; did you mean 'host'?");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, hsot: b}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "unknown key 'hsot' in rule; did you mean 'host'?");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, ports: 1}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "unknown key 'ports' in rule; did you mean 'port'?");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, hxyz: b}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "unknown key 'hxyz' in rule; expected one of");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, host: b.example}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "duplicate key 'host' in rule; the first is at 5:6");
	/* the key is compared with its length: a NUL byte does not truncate it */
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, \"mode\\0x\": audit}\n");
	ASSERT_ONLY_ERROR(rc, 5, 34, "unknown key 'mode\\x00x' in rule");

	/* several errors in one file are all reported, in file order */
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a..example, pinset: p}\n"
		   "  - {host: b.example, port: 0, pinset: p}\n"
		   "  - {host: c.example, pinset: nope}\n");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 3);
	ASSERT_EQ(D.n, 3);
	if (D.n == 3) {
		ASSERT_EQ(D.v[0].line, 5);
		ASSERT_EQ(D.v[1].line, 6);
		ASSERT_EQ(D.v[2].line, 7);
	}
}

static void test_names(void)
{
	char name[200];
	int rc;

	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p}\n"
		   "  - {host: A.example., port: 443, pinset: p}\n"
		   "  - {host: \"**.b.example\", pinset: p, name: \"Bank \\u00e9 API\"}\n"
		   "  - {side: server, port: 8443, pinset: p}\n"
		   "  - {host: \"2001:db8::1\", port: 443, pinset: p}\n");
	ASSERT_CLEAN(rc);
	ASSERT_EQ(P ? P->nrules : 0, 5);
	if (P && P->nrules == 5) {
		ASSERT_STREQ(P->rules[4].name, "[2001:db8::1]:443");
		ASSERT_STREQ(P->rules[0].name, "a.example");
		ASSERT_STREQ(P->rules[1].name, "A.example.:443");
		ASSERT_STREQ(P->rules[2].name, "Bank \xc3\xa9 API");
		ASSERT_STREQ(P->rules[3].name, "server:8443");
	}
	memset(name, 'n', sizeof(name));
	name[128] = '\0';
	rc = parsef(PINSETS "rules:\n  - {host: a.example, pinset: p, name: %s}\n", name);
	ASSERT_CLEAN(rc);
	name[128] = 'n';
	name[129] = '\0';
	rc = parsef(PINSETS "rules:\n  - {host: a.example, pinset: p, name: %s}\n", name);
	ASSERT_ONLY_ERROR(rc, 5, 40, "is 129 bytes long; the limit is 128");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, name: \"a\\x01b\"}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "contains the control character U+0001");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, name: \"a\\0b\"}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "contains a NUL byte");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, name: \"a\\x85b\"}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "control character U+0085");
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p, name: \"evil\\u202egnp.exe\"}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "invisible formatting character U+202E");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, name: ''}\n");
	ASSERT_ONLY_ERROR(rc, 5, 40, "rule name is empty");
	rc = parse("pinsets:\n  \"p\\tq\":\n    pins: [" PIN_A ", " PIN_B "]\nrules: []\n");
	ASSERT_ONLY_ERROR(rc, 2, 3, "pinset name 'p\\x09q' contains the control character U+0009");
	memset(name, 'p', sizeof(name));
	name[129] = '\0';
	rc = parsef("pinsets:\n  %s:\n    pins: [" PIN_A ", " PIN_B "]\nrules: []\n", name);
	ASSERT_ONLY_ERROR(rc, 2, 3, "pinset name 'pppp");
	ASSERT_ERROR(2, 3, "...' is 129 bytes long");
}

static void test_scope(void)
{
	int rc;

	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {cgroup: /a}}\n");
	ASSERT_CLEAN(rc);
	if (P && P->nrules == 1) {
		ASSERT_NULL(P->rules[0].scope_exe);
		ASSERT_STREQ(P->rules[0].scope_cgroup, "/a");
	}
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {exe: curl}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 47, "scope exe 'curl' must be an absolute path");
	/* a broken scope is not taken for "no scope": no duplicate error follows */
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: curl}}\n");
	ASSERT_ONLY_ERROR(rc, 6, 47, "scope exe 'curl' must be an absolute path");
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p, scope: {cgroup: system.slice}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 50, "scope cgroup 'system.slice' must be an absolute path");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {uid: 0}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 42, "unknown key 'uid' in scope; expected one of exe, cgroup");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 41, "scope is empty");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: /usr/bin/curl}\n");
	ASSERT_ONLY_ERROR(rc, 5, 41, "scope must be a mapping with exe: and/or cgroup:");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {exe: /a, exe: /b}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 51, "duplicate key 'exe' in scope; the first is at 5:42");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {exe: \"/a\\nb\"}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 47, "contains the control character U+000A");
	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p, scope: {exe: \"/a\\0b\"}}\n");
	ASSERT_ONLY_ERROR(rc, 5, 47, "contains a NUL byte");
}

static void test_collisions(void)
{
	int rc;

	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p}\n"
		   "  - {host: a.example, pinset: p, port: 443}\n"	  /* other port */
		   "  - {host: \"*.a.example\", pinset: p}\n"	  /* other kind */
		   "  - {host: \"**.a.example\", pinset: p}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /a}}\n"	  /* other scope */
		   "  - {host: a.example, pinset: p, scope: {cgroup: /a}}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /a, cgroup: /a}}\n"
		   "  - {side: server, port: 443, pinset: p}\n");	  /* other side */
	ASSERT_CLEAN(rc);

	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p}\n"
		   "  - {host: A.EXAMPLE., pinset: p, mode: enforce}\n");
	ASSERT_ONLY_ERROR(rc, 6, 5, "duplicate rule (same host, port, side and scope); the first "
			  "is at 5:5");
	rc = parse(PINSETS "rules:\n"
		   "  - {host: 10.0.0.1, port: 443, pinset: p, scope: {exe: /x}}\n"
		   "  - {host: b.example, pinset: p}\n"
		   "  - {host: \"::ffff:10.0.0.1\", port: 443, pinset: p, scope: {exe: /x}}\n");
	ASSERT_ONLY_ERROR(rc, 7, 5, "duplicate rule");
	rc = parse(PINSETS "rules:\n"
		   "  - {side: server, port: 443, pinset: p}\n"
		   "  - {side: server, port: 443, pinset: p, name: other}\n"
		   "  - {side: server, port: 443, pinset: p, name: third}\n");
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 2);
	ASSERT_ERROR(6, 5, "the first is at 5:5");
	ASSERT_ERROR(7, 5, "the first is at 5:5");

	/* at most PW_RULE_ALTS rules share a (host, port, side) */
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /a}}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /b}}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /c}}\n");
	ASSERT_CLEAN(rc);
	rc = parse(PINSETS "rules:\n"
		   "  - {host: a.example, pinset: p}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /a}}\n"
		   "  - {host: b.example, pinset: p}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /b}}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /c}}\n"
		   "  - {host: a.example, pinset: p, scope: {exe: /d}}\n");
	ASSERT_ONLY_ERROR(rc, 10, 5, "5 rules for host 'a.example', any port (the first is at "
			  "5:5); at most 4 rules may share a host, port and side");
	rc = parse(PINSETS "rules:\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /a}}\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /b}}\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /c}}\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /d}}\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /e}}\n"
		   "  - {side: server, port: 443, pinset: p, scope: {exe: /f}}\n");
	ASSERT_ONLY_ERROR(rc, 9, 5, "6 rules for side server, port 443");
}

/* ---- host matching: the reference for the kernel's lookups ------------------------------ */

static void test_host_matching(void)
{
	static const struct {
		const char *pattern;
		const char *host;
		bool match;
	} table[] = {
		{ "pin.test", "pin.test", true },
		{ "pin.test", "PIN.Test", true },
		{ "pin.test", "pin.test.", true },
		{ "PIN.TEST.", "pin.test", true },
		{ "pin.test", "pin.test..", false },
		{ "pin.test", "a.pin.test", false },
		{ "pin.test", "xpin.test", false },
		{ "pin.test", "pin.tes", false },
		{ "pin.test", "", false },
		{ "pin.test", ".pin.test", false },

		{ "*.pin.test", "a.pin.test", true },
		{ "*.pin.test", "A.PIN.TEST.", true },
		{ "*.pin.test", "pin.test", false },
		{ "*.pin.test", "b.a.pin.test", false },
		{ "*.pin.test", ".pin.test", false },
		{ "*.pin.test", "apin.test", false },
		{ "*.pin.test", "a.pin.test.x", false },
		{ "*.pin.test", "a..pin.test", false },

		{ "**.pin.test", "pin.test", true },
		{ "**.pin.test", "a.pin.test", true },
		{ "**.pin.test", "b.a.pin.test", true },
		{ "**.pin.test", "c.b.a.PIN.test.", true },
		{ "**.pin.test", "apin.test", false },
		{ "**.pin.test", ".pin.test", false },
		{ "**.pin.test", "a..pin.test", false },
		{ "**.pin.test", "pin.test.evil", false },
		{ "**.pin.test", "test", false },

		{ "192.0.2.1", "192.0.2.1", true },
		{ "192.0.2.1", "::ffff:192.0.2.1", true },
		{ "192.0.2.1", "192.0.2.10", false },
		{ "192.0.2.1", "192.0.2.1.example", false },
		{ "2001:db8::1", "2001:DB8:0::1", true },
		{ "2001:db8::1", "2001:db8::2", false },
	};
	int rc;

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		rc = parsef(PINSETS "rules:\n  - host: \"%s\"\n    pinset: p\n", table[i].pattern);
		ASSERT_EQ(rc, 0);
		if (!P || P->nrules != 1)
			continue;
		checks++;
		if (policy_host_matches(&P->rules[0], table[i].host) != table[i].match)
			FAIL("'%s' %s match '%s'", table[i].pattern,
			     table[i].match ? "should" : "should not", table[i].host);
	}
	rc = parse(PINSETS "rules:\n  - host: pin.test\n    pinset: p\n"
		   "  - {side: server, port: 443, pinset: p}\n");
	ASSERT_EQ(rc, 0);
	if (P && P->nrules == 2) {
		char longhost[600];

		ASSERT_TRUE(!policy_host_matches(&P->rules[0], NULL));
		memset(longhost, 'a', sizeof(longhost) - 1);
		longhost[sizeof(longhost) - 1] = '\0';
		ASSERT_TRUE(!policy_host_matches(&P->rules[0], longhost));
		/* server rules are keyed by port alone */
		ASSERT_TRUE(!policy_host_matches(&P->rules[1], "pin.test"));
		ASSERT_TRUE(!policy_host_matches(&P->rules[1], ""));
	}
}

/* ---- limits --------------------------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (b->s && b->len + (size_t)n < b->cap)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	b->len += (size_t)n;
}

static void test_limits(void)
{
	struct sbuf b = { 0 };
	char sum[160];
	int rc;

	/* 10000 rules are fine, 10001 are not */
	sb_add(&b, PINSETS "rules:\n");
	for (int i = 0; i < 10000; i++)
		sb_add(&b, "  - {host: h%d.example, pinset: p}\n", i);
	rc = parse_len(b.s, b.len);
	ASSERT_CLEAN(rc);
	if (P) {
		ASSERT_EQ(P->nrules, 10000);
		policy_summary(P, sum, sizeof(sum));
		ASSERT_STREQ(sum, "10000 rules (0 enforced), 1 pinset, 2 pins");
	}
	sb_add(&b, "  - {host: last.example, pinset: p}\n");
	rc = parse_len(b.s, b.len);
	ASSERT_ONLY_ERROR(rc, 10005, 5, "10001 rules; the limit is 10000");
	b.len = 0;

	/* 1000 pinsets */
	sb_add(&b, "pinsets:\n");
	for (int i = 0; i < 1001; i++)
		sb_add(&b, "  p%d: {pins: [" PIN_A ", " PIN_B "]}\n", i);
	sb_add(&b, "rules: []\n");
	rc = parse_len(b.s, b.len);
	ASSERT_ONLY_ERROR(rc, 1002, 3, "more than 1000 pinsets");
	b.len = 0;

	/* 64 pins per pinset (the same pin 65 times: the limit comes first) */
	sb_add(&b, "pinsets:\n  p:\n    pins:\n");
	for (int i = 0; i < 65; i++)
		sb_add(&b, "      - " PIN_A "\n");
	sb_add(&b, "rules: [{host: a.example, pinset: p}]\n");
	rc = parse_len(b.s, b.len);
	ASSERT_ONLY_ERROR(rc, 68, 9, "pinset 'p' has 65 pins; the limit is 64");
	b.len = 0;

	/* file size: 4 MiB */
	sb_add(&b, "rules: []\n");
	while (b.len <= (4u << 20))
		sb_add(&b, "# %0200d\n", 0);
	rc = parse_len(b.s, b.len);
	ASSERT_ONLY_ERROR(rc, 0, 0, "the limit is 4194304 (4 MiB)");
	{
		char path[] = "/tmp/pw-test-policy-XXXXXX";
		int fd = mkstemp(path);

		ASSERT_TRUE(fd >= 0);
		if (fd >= 0) {
			ASSERT_EQ(write(fd, b.s, b.len), (ssize_t)b.len);
			close(fd);
			diags_free(&D);
			policy_free(P);
			P = NULL;
			rc = policy_parse_file(path, NOW, &P, &D);
			ASSERT_ONLY_ERROR(rc, 0, 0, "larger than 4 MiB");
			unlink(path);
		}
	}
	b.len = 0;

	/* nesting */
	sb_add(&b, "rules: ");
	for (int i = 0; i < 16; i++)
		sb_add(&b, "[");
	rc = parse_len(b.s, b.len);
	ASSERT_ONLY_ERROR(rc, 1, 23, "YAML nested more than 16 levels deep");
	b.len = 0;

	/* many errors: all counted, the first 100 kept, the rest summarized */
	sb_add(&b, "rules: []\n");
	for (int i = 0; i < 500; i++)
		sb_add(&b, "k%d: 1\n", i);
	rc = parse_len(b.s, b.len);
	ASSERT_EQ(rc, -1);
	ASSERT_EQ(D.nerrors, 500);
	ASSERT_EQ(D.n, 100);
	free(b.s);
}

/* ---- hostile input never crashes ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Parse must return, with an error or a policy, and ASan must see nothing. */
static void parse_survives(const char *buf, size_t len)
{
	int rc = parse_len(buf, len);

	checks++;
	if (rc == 0 && (!P || D.nerrors))
		FAIL("rc 0 with %zu errors", D.nerrors);
	if (rc != 0 && (P || !D.nerrors))
		FAIL("rc %d without an error", rc);
}

#define PARSE_LIT(s) parse_survives(s, sizeof(s) - 1)

static void test_hostile(void)
{
	static const char *const alphabet[] = {
		"\n", " ", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ", "? ",
		"'", "\"", "#", "|", ">", "---\n", "...\n", "rules", "pinsets", "host", "pinset",
		"p", "pins", PIN_A, "side", "server", "port", "443", "scope", "exe", "/x", "\\0",
		"\t", "\xff", "\xc3\xa9", "*.", "**.", "a.example", "expires", "2027-06-30", "~",
	};
	const size_t nalpha = sizeof(alphabet) / sizeof(alphabet[0]);
	struct sbuf b = { 0 };
	const char *good = NULL;
	size_t goodlen = 0;
	char *mut;
	int fd;

	/* NUL bytes in every kind of scalar */
	PARSE_LIT(PINSETS "rules: [{host: \"a\\0.example\", pinset: p}]\n");
	ASSERT_ERROR(4, 16, "control byte 0x00");
	PARSE_LIT("\"\\0\": 1\n");
	PARSE_LIT("pinsets: {\"p\\0\": {pins: [\"sha256/\\0\"]}}\nrules: []\n");
	ASSERT_ERROR(1, 11, "pinset name 'p\\x00' contains a NUL byte");
	PARSE_LIT("\0\0\0\0");
	PARSE_LIT("rules: [{host: a.example, pinset: \"\\0\"}]\n");
	ASSERT_ERROR(1, 35, "unknown pinset '\\x00'");
	PARSE_LIT("rules: []\n\"\\0\": \"\\0\"\n");
	PARSE_LIT("rules: []\nmode: \"audit\\0\"\n");
	ASSERT_ERROR(2, 7, "not 'audit\\x00'");

	/* very long strings */
	sb_add(&b, PINSETS "rules: [{host: ");
	for (int i = 0; i < 200000; i++)
		sb_add(&b, "a.");
	sb_add(&b, "example, pinset: p, name: \"");
	for (int i = 0; i < 200000; i++)
		sb_add(&b, "\\u00e9");
	sb_add(&b, "\"}]\n");
	parse_survives(b.s, b.len);
	ASSERT_ERROR(4, 16, "DNS names are at most 253");
	b.len = 0;
	sb_add(&b, "rules: []\nmode: ");
	for (int i = 0; i < 300000; i++)
		sb_add(&b, "x");
	sb_add(&b, "\n");
	parse_survives(b.s, b.len);
	ASSERT_ERROR(2, 7, "mode must be 'audit' or 'enforce', not 'xxxx");
	/* YAML itself limits implicit keys to 1024 characters */
	b.s[10 + 4] = 'x';
	parse_survives(b.s, b.len);
	ASSERT_ERROR(3, 1, "YAML syntax: could not find expected ':'");
	b.len = 0;

	/* deep nesting, in flow and block style */
	for (int i = 0; i < 100000; i++)
		sb_add(&b, "[");
	parse_survives(b.s, b.len);
	ASSERT_ERROR(1, 17, "nested more than 16 levels deep");
	b.len = 0;
	for (int i = 0; i < 2000; i++)
		sb_add(&b, "%*sk:\n", i, "");
	parse_survives(b.s, b.len);
	b.len = 0;
	for (int i = 0; i < 2000; i++)
		sb_add(&b, "%*s- \n", 2 * i, "");
	parse_survives(b.s, b.len);
	b.len = 0;

	/* "billion laughs": aliases are references, never expanded */
	sb_add(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 12; i++) {
		sb_add(&b, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			sb_add(&b, "%s*a%d", j ? ", " : "", i - 1);
		sb_add(&b, "]\n");
	}
	sb_add(&b, "rules: *a11\n");
	parse_survives(b.s, b.len);
	b.len = 0;
	/* and many anchors */
	sb_add(&b, "rules: [");
	for (int i = 0; i < 2000; i++)
		sb_add(&b, "&x%d a, ", i);
	sb_add(&b, "]\n");
	parse_survives(b.s, b.len);
	/* the 1001st anchor: after "rules: [" and 10, 90 and 900 items of 7, 8 and 9 bytes */
	ASSERT_ERROR(1, 8 + 10 * 7 + 90 * 8 + 900 * 9 + 1, "more than 1000 YAML anchors");
	b.len = 0;

	/* binary garbage */
	for (int i = 0; i < 3000; i++) {
		size_t len = rng() % 512;

		b.len = 0;
		for (size_t j = 0; j < len; j++)
			sb_add(&b, "%c", (char)(rng() % 255 + 1));
		if (len)
			parse_survives(b.s, b.len);
	}
	/* random tokens that look like YAML and like a policy */
	for (int i = 0; i < 5000; i++) {
		size_t n = rng() % 60;

		b.len = 0;
		sb_add(&b, "%s", "");
		for (size_t j = 0; j < n; j++)
			sb_add(&b, "%s", alphabet[rng() % nalpha]);
		parse_survives(b.s, b.len);
	}
	/* the good example, mutated: flipped, deleted and duplicated bytes */
	fd = open(policy_path("good.yaml"), O_RDONLY);
	if (fd >= 0) {
		static char gbuf[8192];
		ssize_t n = read(fd, gbuf, sizeof(gbuf));

		close(fd);
		if (n > 0) {
			good = gbuf;
			goodlen = (size_t)n;
		}
	}
	ASSERT_TRUE(good != NULL);
	mut = malloc(2 * goodlen + 1);
	for (int i = 0; good && mut && i < 3000; i++) {
		size_t len = goodlen;

		memcpy(mut, good, goodlen);
		for (int k = 0; k < 1 + (int)(rng() % 4); k++) {
			size_t at = rng() % len;

			switch (rng() % 3) {
			case 0:
				mut[at] = (char)rng();
				break;
			case 1:
				memmove(mut + at, mut + at + 1, len - at - 1);
				len--;
				break;
			default:
				if (len < 2 * goodlen) {
					memmove(mut + at + 1, mut + at, len - at);
					len++;
				}
			}
		}
		parse_survives(mut, len);
	}
	free(mut);
	free(b.s);
}

/* ---- the rest of the API ----------------------------------------------------------------- */

static void test_default_and_summary(void)
{
	struct pw_policy *p = policy_default();
	char sum[160];
	int rc;

	ASSERT_TRUE(p != NULL);
	if (p) {
		ASSERT_EQ(p->mode, PW_MODE_AUDIT);
		ASSERT_EQ(p->action, PW_ACTION_KILL);
		ASSERT_TRUE(!p->log_mismatches_only);
		ASSERT_EQ(p->npinsets, 0);
		ASSERT_EQ(p->nrules, 0);
		ASSERT_STREQ(p->source, "built-in default");
		policy_summary(p, sum, sizeof(sum));
		ASSERT_STREQ(sum, "no rules (every chain is reported as unpinned, none enforced), "
			     "0 pinsets, 0 pins");
	}
	policy_free(p);
	policy_free(NULL);

	rc = parse(PINSETS "mode: enforce\nrules:\n  - {host: a.example, pinset: p}\n");
	ASSERT_CLEAN(rc);
	if (P) {
		policy_summary(P, sum, sizeof(sum));
		ASSERT_STREQ(sum, "1 rule (1 enforced), 1 pinset, 2 pins");
		policy_summary(P, sum, 8); /* truncated, still terminated */
		ASSERT_STREQ(sum, "1 rule ");
	}
}

static char *capture_begin(FILE *f, int *saved, char *path)
{
	int fd;

	fflush(f);
	strcpy(path, "/tmp/pw-test-out-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	*saved = dup(fileno(f));
	dup2(fd, fileno(f));
	close(fd);
	return path;
}

static char *capture_end(FILE *f, int saved, const char *path)
{
	static char out[2][8192];
	static int which;
	char *o = out[which ^= 1];
	ssize_t n;
	int fd;

	fflush(f);
	dup2(saved, fileno(f));
	close(saved);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, o, sizeof(out[0]) - 1) : -1;
	o[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	unlink(path);
	return o;
}

/* Run `pinwarden check ARGS`, capturing stdout and stderr. */
static int run_check(char **out, char **err, int argc, ...)
{
	char *argv[8], po[32], pe[32];
	int so, se, rc;
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc && i < 7; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	capture_begin(stdout, &so, po);
	capture_begin(stderr, &se, pe);
	rc = cmd_check(argc, argv);
	*err = capture_end(stderr, se, pe);
	*out = capture_end(stdout, so, po);
	return rc;
}

static void test_check_command(void)
{
	char good[600], warn[600], bad[600], expect[1400];
	char *out, *err;
	int rc;

	snprintf(good, sizeof(good), "%s", policy_path("good.yaml"));
	snprintf(warn, sizeof(warn), "%s", policy_path("warnings.yaml"));
	snprintf(bad, sizeof(bad), "%s", policy_path("bad-refs.yaml"));

	rc = run_check(&out, &err, 2, "check", good);
	ASSERT_EQ(rc, 0);
	snprintf(expect, sizeof(expect), "%s: ok: 7 rules (6 enforced), 2 pinsets, 4 pins\n", good);
	ASSERT_STREQ(out, expect);
	ASSERT_STREQ(err, "");

	rc = run_check(&out, &err, 3, "check", "--strict", good);
	ASSERT_EQ(rc, 0);

	rc = run_check(&out, &err, 2, "check", warn);
	ASSERT_EQ(rc, 0);
	ASSERT_TRUE(strstr(out, ": ok: 2 rules (0 enforced), 3 pinsets, 5 pins\n") != NULL);
	snprintf(expect, sizeof(expect), "%s:3:3: warning: pinset 'single' has a single pin", warn);
	ASSERT_TRUE(strncmp(err, expect, strlen(expect)) == 0);

	rc = run_check(&out, &err, 3, "check", warn, "--strict");
	ASSERT_EQ(rc, 2);
	ASSERT_STREQ(out, "");
	ASSERT_TRUE(strstr(err, "failed: 5 warnings with --strict") != NULL);

	rc = run_check(&out, &err, 2, "check", bad);
	ASSERT_EQ(rc, 2);
	ASSERT_STREQ(out, "");
	snprintf(expect, sizeof(expect), "%s:3:14: error: expires '2027-02-29' is not a calendar "
		 "date", bad);
	ASSERT_TRUE(strstr(err, expect) != NULL);
	snprintf(expect, sizeof(expect), "%s:2:3: warning: pinset 'bank' has a single pin", bad);
	ASSERT_TRUE(strstr(err, expect) != NULL);

	rc = run_check(&out, &err, 2, "check", "/nonexistent/policy.yaml");
	ASSERT_EQ(rc, 2);
	ASSERT_STREQ(err, "/nonexistent/policy.yaml: error: cannot open the policy: No such file "
		     "or directory; check the path and that it is readable\n");

	/* usage errors */
	rc = run_check(&out, &err, 1, "check");
	ASSERT_EQ(rc, 2);
	ASSERT_TRUE(strstr(err, "usage: pinwarden check [--strict] FILE") != NULL);
	rc = run_check(&out, &err, 3, "check", "--bogus", good);
	ASSERT_EQ(rc, 2);
	ASSERT_TRUE(strstr(err, "unknown option '--bogus'") != NULL);
	rc = run_check(&out, &err, 3, "check", good, good);
	ASSERT_EQ(rc, 2);
	ASSERT_TRUE(strstr(err, "more than one FILE") != NULL);
	rc = run_check(&out, &err, 2, "check", "--help");
	ASSERT_EQ(rc, 0);
	ASSERT_STREQ(out, "usage: pinwarden check [--strict] FILE\n");
	/* "--" ends the options */
	rc = run_check(&out, &err, 3, "check", "--", "--strict");
	ASSERT_EQ(rc, 2);
	ASSERT_TRUE(strstr(err, "--strict: error: cannot open the policy") != NULL);
}

static void test_diags_print(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	rc = parse(PINSETS "rules:\n  - {host: a.example, pinset: p}\n  - {host: \"\\x1b[31m\", "
		   "pinset: p}\n");
	ASSERT_EQ(rc, -1);
	f = open_memstream(&buf, &len);
	diags_print(&D, "dir/policy.yaml", f);
	fclose(f);
	/* the escape sequence from the file reaches the terminal escaped */
	ASSERT_STREQ(buf, "dir/policy.yaml:6:12: error: host '\\x1b[31m' contains the control "
		     "byte 0x1b; a host may contain only letters, digits, '-', '_' and '.'\n");
	free(buf);

	buf = NULL;
	rc = parse("rules: []\nx0: 1\nx1: 1\n");
	f = open_memstream(&buf, &len);
	D.n = 1; /* as if only one had been kept */
	diags_print(&D, "p.yaml", f);
	fclose(f);
	ASSERT_TRUE(strstr(buf, "p.yaml:2:1: error: unknown key 'x0'") == buf);
	ASSERT_TRUE(strstr(buf, "p.yaml: note: 1 more errors or warnings not shown") != NULL);
	free(buf);
}

/* ---- who may write the policy -------------------------------------------------------------- */

static void test_file_trusted(void)
{
	char dir[] = "/tmp/pw-test-trust-XXXXXX", file[64], link[64], why[512];
	struct stat st;
	int fd;

	ASSERT_TRUE(mkdtemp(dir) != NULL);
	snprintf(file, sizeof(file), "%s/policy.yaml", dir);
	snprintf(link, sizeof(link), "%s/link.yaml", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_TRUE(fd >= 0);
	if (fd >= 0)
		close(fd);

	/* a root-owned 0755 directory inside sticky /tmp: only root can replace it */
	chmod(dir, 0755);
	if (stat("/tmp", &st) == 0 && (st.st_mode & S_ISVTX) && st.st_uid == 0)
		ASSERT_EQ(policy_file_trusted(file, why, sizeof(why)), 0);
	/* a world-writable directory without the sticky bit lets anyone swap the file */

	chmod(dir, 0777);
	ASSERT_EQ(policy_file_trusted(file, why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, dir) != NULL);
	ASSERT_TRUE(strstr(why, "is writable by group or others") != NULL);

	/* unless that directory is on a read-only mount, as a Kubernetes ConfigMap volume is */
	if (geteuid() == 0) {
		pid_t pid = fork();
		int status = -1;

		if (pid == 0) {
			/* a mount namespace of its own: the test's view stays as it was */
			_exit(unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
			      mount(dir, dir, NULL, MS_BIND, NULL) ||
			      mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) ? 2 :
			      policy_file_trusted(file, why, sizeof(why)) ? 1 : 0);
		}
		ASSERT_TRUE(pid > 0);
		waitpid(pid, &status, 0);
		ASSERT_TRUE(WIFEXITED(status));
		/* 2: no mount namespace here (a container without CAP_SYS_ADMIN) */
		if (WIFEXITED(status) && WEXITSTATUS(status) != 2)
			ASSERT_EQ(WEXITSTATUS(status), 0);
	}

	/* the file is checked before its directories */
	chmod(file, 0666);
	ASSERT_EQ(policy_file_trusted(file, why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, "policy.yaml is writable by group or others: chmod go-w") != NULL);
	chmod(file, 0620);
	ASSERT_EQ(policy_file_trusted(file, why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, "policy.yaml is writable by group") != NULL);
	chmod(file, 0644);
	if (geteuid() == 0) {
		ASSERT_EQ(chown(file, 1, 0), 0);
		ASSERT_EQ(policy_file_trusted(file, why, sizeof(why)), -1);
		ASSERT_TRUE(strstr(why, "is owned by uid 1, not root") != NULL);
		ASSERT_EQ(chown(file, 0, 0), 0);
	}
	/* a symbolic link is judged by what it points to */
	ASSERT_EQ(symlink(file, link), 0);
	chmod(file, 0666);
	ASSERT_EQ(policy_file_trusted(link, why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, file) != NULL);

	ASSERT_EQ(policy_file_trusted("/nonexistent/policy.yaml", why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, "No such file or directory") != NULL);
	ASSERT_EQ(policy_file_trusted("/dev/null", why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, "/dev/null is not a regular file") != NULL);
	ASSERT_EQ(policy_file_trusted(dir, why, sizeof(why)), -1);
	ASSERT_TRUE(strstr(why, "is not a regular file") != NULL);

	/* a root-owned file in root-owned directories, as on every Linux system */
	if (stat("/etc/passwd", &st) == 0 && st.st_uid == 0 && !(st.st_mode & 022) &&
	    stat("/etc", &st) == 0 && st.st_uid == 0 && !(st.st_mode & 022)) {
		why[0] = '\0';
		ASSERT_EQ(policy_file_trusted("/etc/passwd", why, sizeof(why)), 0);
		ASSERT_EQ(policy_file_trusted("/etc/../etc/./passwd", why, sizeof(why)), 0);
	}
	/* a short buffer is filled, not overrun */
	ASSERT_EQ(policy_file_trusted(file, why, 8), -1);
	ASSERT_EQ(strlen(why), 7);

	unlink(link);
	unlink(file);
	rmdir(dir);
}

int main(void)
{
	const char *env = getenv("PW_TEST_POLICY_DIR");
	const char *src = __FILE__, *unit = strstr(src, "unit/test_policy.c");

	/* tests/policy/, next to this file's directory */
	if (env)
		snprintf(policy_dir, sizeof(policy_dir), "%s", env);
	else if (unit)
		snprintf(policy_dir, sizeof(policy_dir), "%.*spolicy", (int)(unit - src), src);
	else
		snprintf(policy_dir, sizeof(policy_dir), "tests/policy");

	test_good_file();
	test_example_files();
	test_top_level();
	test_yaml_syntax();
	test_aliases();
	test_pins();
	test_expires();
	test_hosts();
	test_ports();
	test_rules();
	test_names();
	test_scope();
	test_collisions();
	test_host_matching();
	test_limits();
	test_hostile();
	test_default_and_summary();
	test_diags_print();
	test_check_command();
	test_file_trusted();

	policy_free(P);
	diags_free(&D);
	if (failures) {
		fprintf(stderr, "test_policy: %d of %d checks failed\n", failures, checks);
		return failures > 100 ? 100 : failures;
	}
	printf("test_policy: all %d checks passed\n", checks);
	return 0;
}
