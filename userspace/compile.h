/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* policy_compile: a parsed policy into the kernel's maps, as one generation. */
#ifndef PW_COMPILE_H
#define PW_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct pinwarden_bpf;

#define COMPILE_MAX_WARNINGS 32

struct compile_result {
	size_t rule_keys;		/* entries written to the rules map */
	size_t pins;
	size_t skipped_rules;		/* scopes that name nothing on this host */
	size_t nwarnings;
	char warnings[COMPILE_MAX_WARNINGS][256];
};

/*
 * Write policy `p` into the maps under generation `gen` (not yet active).
 * Returns 0, or -1 with `err` set and nothing of `gen` left in the maps.
 */
int policy_compile(const struct pw_policy *p, struct pinwarden_bpf *skel, uint32_t gen,
		   struct compile_result *res, char *err, size_t errlen);

/*
 * Remove every entry of generation `gen` from the maps, and its cgroup slots
 * when `cgroups` (not when a newer generation of the same parity owns them).
 */
void policy_purge(struct pinwarden_bpf *skel, uint32_t gen, bool cgroups);

/* Does any pinset hold a cert-sha256 pin (the kernel must hash whole certificates)? */
bool policy_has_cert_pins(const struct pw_policy *p);

/* Refuse what this build cannot enforce; 0 if the policy is fine. */
int policy_supported(const struct pw_policy *p, char *err, size_t errlen);

#endif /* PW_COMPILE_H */
