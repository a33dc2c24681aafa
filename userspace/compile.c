// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "compile.h"
#include "log.h"
#include "pinwarden.skel.h"
#include "procinfo.h"

struct keyed_alt {
	struct pw_rule_key key;
	struct pw_rule_alt alt;
	int nscopes;
	size_t order;		/* position in the policy: stable tie-break */
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed_alt *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	if (x->nscopes != y->nscopes)
		return y->nscopes - x->nscopes;	/* the more scoped first */
	return x->order < y->order ? -1 : x->order > y->order;
}

static void warn(struct compile_result *res, const char *fmt, const char *a, const char *b)
{
	if (res->nwarnings < COMPILE_MAX_WARNINGS) {
		snprintf(res->warnings[res->nwarnings], sizeof(res->warnings[0]), fmt, a, b);
		log_warnx("policy: %s", res->warnings[res->nwarnings]);
		res->nwarnings++;
	}
}

bool policy_has_cert_pins(const struct pw_policy *p)
{
	size_t i, j;

	for (i = 0; i < p->npinsets; i++)
		for (j = 0; j < p->pinsets[i].npins; j++)
			if (p->pinsets[i].pins[j].type == PW_PIN_CERT)
				return true;
	return false;
}

int policy_supported(const struct pw_policy *p, char *err, size_t errlen)
{
	/* every feature of the policy format is implemented */
	return 0;
}

/*
 * The cgroups map slot of a scope path for this generation, opening the
 * cgroup directory and storing its fd; -1 if it does not exist, -2 if full.
 */
/*
 * The slot of a scoped executable's path (resolved: the kernel names a
 * process's executable by the file it runs, not by a symlink), shared by the
 * rules that name the same path; -2 when full, -1 when it cannot be resolved.
 */
static int exe_slot(struct pinwarden_bpf *skel, uint32_t gen, const char *path,
		    const char **paths, size_t *n)
{
	struct pw_scope_exe v = {};
	char real[PATH_MAX];
	uint32_t slot;
	size_t i;

	for (i = 0; i < *n; i++)
		if (!strcmp(paths[i], path))
			return (gen & 1) * PW_EXE_SLOTS + i;
	if (*n == PW_EXE_SLOTS)
		return -2;
	if (!realpath(path, real) || strlen(real) >= sizeof(v.path))
		return -1;
	memcpy(v.path, real, strlen(real));
	slot = (gen & 1) * PW_EXE_SLOTS + *n;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.scope_exes), &slot, &v, BPF_ANY))
		return -1;
	paths[(*n)++] = path;
	return slot;
}

static int cgroup_slot(struct pinwarden_bpf *skel, uint32_t gen, const char *path,
		       const char **paths, size_t *n)
{
	char full[8192];
	const char *mnt = cgroup2_mount();
	uint32_t slot;
	size_t i;
	int fd, rc;

	for (i = 0; i < *n; i++)
		if (!strcmp(paths[i], path))
			return (gen & 1) * PW_CGROUP_SLOTS + i;
	if (*n == PW_CGROUP_SLOTS)
		return -2;
	if (!mnt)
		return -1;
	snprintf(full, sizeof(full), "%s%s", mnt, path);
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	slot = (gen & 1) * PW_CGROUP_SLOTS + *n;
	rc = bpf_map_update_elem(bpf_map__fd(skel->maps.cgroups), &slot, &fd, BPF_ANY);
	close(fd);
	if (rc)
		return -1;
	paths[(*n)++] = path;
	return slot;
}

/* What a chain of this rule's side fails closed as when its rule cannot be found. */
static uint32_t rule_side_flags(const struct pw_rule *r)
{
	bool server = r->side == PW_SIDE_SERVER;
	uint32_t f = server ? PW_CFG_RULES_SERVER : PW_CFG_RULES_CLIENT;

	if (r->mode == PW_MODE_ENFORCE) {
		f |= server ? PW_CFG_ENFORCE_SERVER : PW_CFG_ENFORCE_CLIENT;
		if (r->action == PW_ACTION_KILL)
			f |= server ? PW_CFG_KILL_SERVER : PW_CFG_KILL_CLIENT;
	}
	return f;
}

int policy_compile(const struct pw_policy *p, struct pinwarden_bpf *skel, uint32_t gen,
		   struct compile_result *res, char *err, size_t errlen)
{
	int rules_fd = bpf_map__fd(skel->maps.rules), pins_fd = bpf_map__fd(skel->maps.pins);
	int pinsets_fd = bpf_map__fd(skel->maps.pinsets), cfg_fd = bpf_map__fd(skel->maps.configs);
	struct pw_config cfg = {};
	const char *cg_paths[PW_CGROUP_SLOTS], *exe_paths[PW_EXE_SLOTS];
	struct keyed_alt *ka;
	size_t i, j, n = 0, ncg = 0, nexe = 0;
	int slot;

	memset(res, 0, sizeof(*res));
	ka = calloc(p->nrules ? p->nrules : 1, sizeof(*ka));
	if (!ka) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (p->log_mismatches_only)
		cfg.flags |= PW_CFG_LOG_MISMATCHES;
	for (i = 0; i < p->nrules; i++) {
		const struct pw_rule *r = &p->rules[i];
		struct keyed_alt *k = &ka[n];

		k->key.gen = gen;
		k->key.port = r->port;
		k->key.side = r->side;
		k->order = i;
		if (r->side == PW_SIDE_SERVER) {
			k->key.kind = PW_HOST_EXACT;	/* keyed by the local port alone */
		} else {
			k->key.kind = r->kind;
			if (r->kind == PW_HOST_IP)
				memcpy(k->key.host, r->ip, 16);
			else
				snprintf(k->key.host, sizeof(k->key.host), "%s", r->suffix);
			cfg.flags |= r->kind == PW_HOST_EXACT ? PW_CFG_HAS_EXACT :
				     r->kind == PW_HOST_ONE ? PW_CFG_HAS_ONE :
				     r->kind == PW_HOST_ANY ? PW_CFG_HAS_ANY : PW_CFG_HAS_IP;
		}
		if (r->port)
			cfg.flags |= PW_CFG_HAS_PORTS;
		k->alt.rule_id = i;
		k->alt.pinset_id = r->pinset;
		k->alt.mode = r->mode;
		k->alt.action = r->action;
		if (r->scope_exe) {
			struct stat st;

			if (stat(r->scope_exe, &st)) {
				warn(res, "rule '%s': scope exe %s does not exist here; rule skipped",
				     r->name, r->scope_exe);
				res->skipped_rules++;
				continue;
			}
			/* the kernel's s_dev encoding: major << 20 | minor */
			k->alt.scope_exe_dev = major(st.st_dev) << 20 | minor(st.st_dev);
			k->alt.scope_exe_ino = st.st_ino;
			/* and its path, which outlives the file across upgrades */
			slot = exe_slot(skel, gen, r->scope_exe, exe_paths, &nexe);
			if (slot == -2) {
				snprintf(err, errlen, "rule '%s': more than %d distinct scope executables",
					 r->name, PW_EXE_SLOTS);
				goto fail;
			}
			if (slot < 0)
				warn(res, "rule '%s': scope exe %s: its path could not be resolved; the "
				     "rule follows the file only, not an upgrade", r->name, r->scope_exe);
			else
				k->alt.scope_exe_path = slot + 1;
			k->nscopes++;
		}
		if (r->scope_cgroup) {
			slot = cgroup_slot(skel, gen, r->scope_cgroup, cg_paths, &ncg);

			if (slot == -2) {
				snprintf(err, errlen, "rule '%s': more than %d distinct scope cgroups",
					 r->name, PW_CGROUP_SLOTS);
				goto fail;
			}
			if (slot < 0) {
				warn(res, "rule '%s': cgroup %s does not exist (yet); rule skipped",
				     r->name, r->scope_cgroup);
				res->skipped_rules++;
				continue;
			}
			k->alt.scope_cgroup = slot + 1;
			k->nscopes++;
		}
		if (k->nscopes)
			cfg.flags |= PW_CFG_HAS_SCOPED;
		cfg.flags |= rule_side_flags(r);
		n++;
	}
	qsort(ka, n, sizeof(*ka), keyed_cmp);
	for (i = 0; i < n; i = j) {
		struct pw_rule_val v = {};

		for (j = i; j < n && !memcmp(&ka[j].key, &ka[i].key, sizeof(ka[i].key)); j++) {
			if (v.nalt == PW_RULE_ALTS) {
				snprintf(err, errlen, "rule '%s': more than %d rules share one host, port "
					 "and side", p->rules[ka[j].alt.rule_id].name, PW_RULE_ALTS);
				goto fail;
			}
			v.alt[v.nalt++] = ka[j].alt;
		}
		if (bpf_map_update_elem(rules_fd, &ka[i].key, &v, BPF_NOEXIST)) {
			snprintf(err, errlen, "rules map: %s", strerror(errno));
			goto fail;
		}
		res->rule_keys++;
	}
	for (i = 0; i < p->npinsets; i++) {
		const struct pw_pinset *ps = &p->pinsets[i];
		struct pw_pinset_key pk = { .gen = gen, .pinset_id = i };
		struct pw_pinset_val pv = { .expires = ps->expires };

		if (bpf_map_update_elem(pinsets_fd, &pk, &pv, BPF_NOEXIST)) {
			snprintf(err, errlen, "pinsets map: %s", strerror(errno));
			goto fail;
		}
		for (j = 0; j < ps->npins; j++) {
			struct pw_pin_key k = { .gen = gen, .pinset_id = i, .type = ps->pins[j].type };
			__u8 one = 1;

			memcpy(k.hash, ps->pins[j].hash, PW_HASH_LEN);
			if (k.type == PW_PIN_CERT)
				cfg.flags |= PW_CFG_HAS_CERT_PINS;
			if (bpf_map_update_elem(pins_fd, &k, &one, BPF_ANY)) {
				snprintf(err, errlen, "pins map: %s", strerror(errno));
				goto fail;
			}
			res->pins++;
		}
	}
	if (bpf_map_update_elem(cfg_fd, &gen, &cfg, BPF_ANY)) {
		snprintf(err, errlen, "configs map: %s", strerror(errno));
		goto fail;
	}
	free(ka);
	return 0;
fail:
	free(ka);
	/* the slots of this parity belonged to generation gen - 2, long inactive */
	policy_purge(skel, gen, true);
	return -1;
}

/* Delete every key of `map` whose leading __u32 is `gen`: collect first, the cursor
 * of get_next_key does not survive deletions. */
static void purge_map(int fd, size_t key_size, uint32_t gen)
{
	uint8_t *cur = calloc(1, key_size), *all = NULL, *na;
	size_t n = 0, cap = 0, i;
	int have = 0;

	if (!cur)
		return;
	while (bpf_map_get_next_key(fd, have ? cur : NULL, cur) == 0) {
		uint32_t g;

		have = 1;
		memcpy(&g, cur, sizeof(g));
		if (g != gen)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			na = realloc(all, cap * key_size);
			if (!na)
				break;
			all = na;
		}
		memcpy(all + n++ * key_size, cur, key_size);
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, all + i * key_size);
	free(all);
	free(cur);
}

void policy_purge(struct pinwarden_bpf *skel, uint32_t gen, bool cgroups)
{
	purge_map(bpf_map__fd(skel->maps.rules), sizeof(struct pw_rule_key), gen);
	purge_map(bpf_map__fd(skel->maps.pins), sizeof(struct pw_pin_key), gen);
	purge_map(bpf_map__fd(skel->maps.pinsets), sizeof(struct pw_pinset_key), gen);
	bpf_map_delete_elem(bpf_map__fd(skel->maps.configs), &gen);
	for (uint32_t i = 0; cgroups && i < PW_CGROUP_SLOTS; i++) {
		uint32_t slot = (gen & 1) * PW_CGROUP_SLOTS + i;

		bpf_map_delete_elem(bpf_map__fd(skel->maps.cgroups), &slot);
	}
}
