/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The pin policy: parsed from YAML (libyaml), validated, then compiled into BPF maps. */
#ifndef PW_POLICY_H
#define PW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "pinwarden.h"

struct pw_pin {
	uint8_t type;			/* enum pw_pin_type */
	uint8_t hash[PW_HASH_LEN];
	char *text;			/* as written, e.g. "sha256/..." */
	int line, col;
};

struct pw_pinset {
	char *name;
	int64_t expires;		/* unix seconds: end of the given day (UTC); 0 = never */
	char *expires_text;		/* as written, "2027-06-30"; NULL when none */
	struct pw_pin *pins;
	size_t npins;
	int line, col;
};

struct pw_rule {
	char *name;			/* "name:" if given, else the host pattern as written (+":port") */
	char *host;			/* as written, e.g. "**.bank.example"; NULL for side: server */
	uint8_t kind;			/* enum pw_host_kind */
	char *suffix;			/* lower case host without "*." / "**." and without a final dot;
					 * "" (kind PW_HOST_EXACT) for side: server */
	uint8_t ip[16];			/* kind == PW_HOST_IP: the address, IPv4 mapped into ::ffff:0:0/96 */
	uint16_t port;			/* 0 = any */
	uint8_t side;			/* enum pw_side */
	size_t pinset;			/* index into policy->pinsets */
	uint8_t mode;			/* enum pw_mode, resolved (rule's own or the top-level one) */
	uint8_t action;			/* enum pw_action, resolved */
	bool mode_set, action_set;	/* given on the rule itself */
	char *scope_exe;		/* NULL = any */
	char *scope_cgroup;		/* NULL = any; a cgroup v2 path prefix starting with "/" */
	int line, col;
};

struct pw_policy {
	char *source;			/* file name, or "built-in default" */
	uint8_t mode;			/* top-level default */
	uint8_t action;
	bool log_mismatches_only;	/* log: mismatches */
	struct pw_pinset *pinsets;
	size_t npinsets;
	struct pw_rule *rules;
	size_t nrules;
};

/* One diagnostic: FILE:LINE:COL: message (line and col are 1-based; 0 when unknown). */
struct pw_diag {
	int line, col;
	bool warning;			/* lint warning, not an error */
	char msg[256];
};

struct pw_diags {
	struct pw_diag *v;
	size_t n, cap;
	size_t nerrors, nwarnings;
};

/*
 * Parse and validate the policy in `path`. Returns 0 and stores the policy when
 * there is no error (warnings may still have been added to `diags`); returns -1
 * with at least one error in `diags` otherwise. Never partially succeeds.
 * `now` (unix seconds) decides which pinsets the lint calls expired.
 */
int policy_parse_file(const char *path, time_t now, struct pw_policy **out, struct pw_diags *diags);

/* Same, from memory; `name` is used in messages. */
int policy_parse_buf(const char *name, const char *buf, size_t len, time_t now,
		     struct pw_policy **out, struct pw_diags *diags);

/* The built-in default: audit every chain, enforce nothing, log all. */
struct pw_policy *policy_default(void);

void policy_free(struct pw_policy *p);
void diags_free(struct pw_diags *d);

/* Print every diagnostic as "FILE:LINE:COL: error|warning: message" to `f`. */
void diags_print(const struct pw_diags *d, const char *file, FILE *f);

/* One-line summary for `check` and the policy_loaded event: "3 rules, 2 pinsets, 5 pins". */
void policy_summary(const struct pw_policy *p, char *buf, size_t len);

/*
 * Does `host` (an SNI, any case, optional final dot) match the rule's pattern?
 * The reference implementation of SPEC.md's patterns; the kernel's lookups are
 * tested against it.
 */
bool policy_host_matches(const struct pw_rule *r, const char *host);

/*
 * May a daemon running as root trust the policy at `path`? Returns 0 when the
 * file (symbolic links resolved) is a regular file owned by root and not
 * writable by group or others, in directories up to "/" that are all owned by
 * root and not writable by group or others; else -1 and a one-line reason.
 */
int policy_file_trusted(const char *path, char *why, size_t whylen);

/* `pinwarden check FILE [--strict]`: returns the process exit code. */
int cmd_check(int argc, char **argv);

#endif /* PW_POLICY_H */
