// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The pin policy: YAML -> a small node tree that remembers where every node
 * was written -> a validated struct pw_policy. Every problem becomes a
 * diagnostic with the 1-based line and column of the node at fault, and
 * parsing goes on after an error so that one `check` run reports as much as
 * it can. libyaml's document loader is not used: it has no depth limit and
 * cannot tell us about duplicate keys, so we build our own tree from events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "policy.h"

#define POLICY_MAX_FILE		(4u << 20)
#define POLICY_MAX_RULES	10000
#define POLICY_MAX_PINSETS	1000
#define POLICY_MAX_PINS		64
#define POLICY_MAX_NAME		128
#define POLICY_MAX_PATH		4095	/* PATH_MAX without the NUL */
#define POLICY_MAX_DEPTH	16	/* a policy needs 5; more is garbage or an attack */
#define POLICY_MAX_NODES	500000	/* 10000 rules of ~20 nodes, with room to spare */
#define POLICY_MAX_ANCHORS	1000
#define DIAGS_MAX		100	/* stored; the rest are only counted */
#define HOST_NAME_MAX_LEN	253
#define HOST_LABEL_MAX		63

#define NONE			((size_t)-1)

/* ---- diagnostics ---------------------------------------------------------- */

static void diags_vadd(struct pw_diags *d, bool warning, int line, int col, const char *fmt,
		       va_list ap)
{
	struct pw_diag *g;

	if (warning)
		d->nwarnings++;
	else
		d->nerrors++;
	/* counted but not stored: a hostile file must not make us print a million lines */
	if (d->n >= DIAGS_MAX)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct pw_diag *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	g = &d->v[d->n++];
	g->line = line;
	g->col = col;
	g->warning = warning;
	vsnprintf(g->msg, sizeof(g->msg), fmt, ap);
}

static void __attribute__((format(printf, 5, 6)))
diags_add(struct pw_diags *d, bool warning, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diags_vadd(d, warning, line, col, fmt, ap);
	va_end(ap);
}

/* Stable, so that two messages about one node keep the order they were found in. */
static void diags_sort(struct pw_diags *d, size_t from)
{
	for (size_t i = from + 1; i < d->n; i++) {
		struct pw_diag tmp = d->v[i];
		size_t j = i;

		while (j > from && (d->v[j - 1].line > tmp.line ||
				    (d->v[j - 1].line == tmp.line && d->v[j - 1].col > tmp.col))) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = tmp;
	}
}

void diags_free(struct pw_diags *d)
{
	if (!d)
		return;
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void diags_print(const struct pw_diags *d, const char *file, FILE *f)
{
	size_t total = d->nerrors + d->nwarnings;

	if (!file)
		file = "policy";
	for (size_t i = 0; i < d->n; i++) {
		const struct pw_diag *g = &d->v[i];
		const char *kind = g->warning ? "warning" : "error";

		if (g->line > 0)
			fprintf(f, "%s:%d:%d: %s: %s\n", file, g->line, g->col, kind, g->msg);
		else
			fprintf(f, "%s: %s: %s\n", file, kind, g->msg);
	}
	if (total > d->n)
		fprintf(f, "%s: note: %zu more errors or warnings not shown; fix the ones above "
			"first\n", file, total - d->n);
}

/*
 * Quote user text for a message: printable ASCII as is, every other byte as
 * \xNN (no terminal escapes from a hostile file), long text cut short.
 */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t o = 0, max = size - 4; /* room for "..." and the NUL */

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool plain = ch >= 0x20 && ch < 0x7f && ch != '\\';
		size_t need = plain ? 1 : 4;

		/* the last character may use the room kept for "..." */
		if (o + need > (i + 1 == len ? size - 1 : max)) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (plain)
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
	}
	buf[o] = '\0';
	return buf;
}

#define QBUF 64

/* ---- text checks ----------------------------------------------------------- */

/* Decode one UTF-8 sequence; returns its length, or 0 when it is not valid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c, min;
	size_t n;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Names end up in events, logs and terminals: refuse NUL bytes, invalid
 * UTF-8, control characters and the invisible characters that reorder text
 * (a rule name that displays as something else is a trap for a reviewer).
 */
static bool text_ok(const char *s, size_t len, char *why, size_t whylen)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n;

		if (u[i] == 0) {
			snprintf(why, whylen, "contains a NUL byte");
			return false;
		}
		n = utf8_decode(u + i, len - i, &cp);
		if (!n) {
			snprintf(why, whylen, "is not valid UTF-8 (byte 0x%02x at offset %zu)",
				 u[i], i);
			return false;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029) {
			snprintf(why, whylen, "contains the control character U+%04X", cp);
			return false;
		}
		if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
		    cp == 0x200e || cp == 0x200f || cp == 0x061c || cp == 0xfeff) {
			snprintf(why, whylen, "contains the invisible formatting character U+%04X",
				 cp);
			return false;
		}
		i += n;
	}
	return true;
}

/* ---- YAML to a node tree ------------------------------------------------------ */

enum ynode_type {
	YN_SCALAR,
	YN_SEQ,
	YN_MAP,
	YN_ALIAS,
};

struct ynode {
	uint8_t type;		/* enum ynode_type */
	bool plain;		/* unquoted scalar: the only kind a number may be written as */
	int line, col;		/* 1-based */
	char *val;		/* scalar text, NUL-terminated, may contain NULs */
	size_t len;
	size_t *kids;		/* sequence items; mapping keys and values, alternating */
	size_t nkids, capkids;
	size_t target;		/* alias: the anchored node, never an alias itself */
};

struct yanchor {
	char *name;
	size_t node;
};

struct ytree {
	struct ynode *v;
	size_t n, cap;
	size_t root;		/* NONE: empty document */
	struct yanchor *anchors;
	size_t nanchors;
};

struct pctx {
	struct ytree t;
	struct pw_policy *p;
	struct pw_diags *d;
	time_t now;
	const char *buf;	/* the whole input, to place reader errors */
	size_t len;
	bool *pinset_used;	/* parallel to p->pinsets */
	bool oom;
};

static void __attribute__((format(printf, 4, 5)))
perr(struct pctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diags_vadd(c->d, false, line, col, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 4, 5)))
pwarn(struct pctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diags_vadd(c->d, true, line, col, fmt, ap);
	va_end(ap);
}

static void policy_oom(struct pctx *c)
{
	if (!c->oom)
		perr(c, 0, 0, "out of memory while reading the policy");
	c->oom = true;
}

static void ytree_free(struct ytree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].val);
		free(t->v[i].kids);
	}
	free(t->v);
	for (size_t i = 0; i < t->nanchors; i++)
		free(t->anchors[i].name);
	free(t->anchors);
	memset(t, 0, sizeof(*t));
}

/* The node a key or item refers to, through an alias. */
static const struct ynode *ynode(const struct pctx *c, size_t i)
{
	const struct ynode *n = &c->t.v[i];

	return n->type == YN_ALIAS ? &c->t.v[n->target] : n;
}

/* Where a key or item was written (for an alias: where the alias is). */
static const struct ynode *yat(const struct pctx *c, size_t i)
{
	return &c->t.v[i];
}

static const char *ynode_kind(const struct ynode *n)
{
	switch (n->type) {
	case YN_SEQ:
		return "a list";
	case YN_MAP:
		return "a mapping";
	default:
		return n->plain ? "a plain value" : "a quoted string";
	}
}

static bool ynode_is_null(const struct ynode *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YN_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (n->len == strlen(nulls[i]) && memcmp(n->val, nulls[i], n->len) == 0)
			return true;
	return false;
}

static bool ynode_eq(const struct ynode *n, const char *s)
{
	return n->type == YN_SCALAR && n->len == strlen(s) && memcmp(n->val, s, n->len) == 0;
}

/* Adds a node under the innermost open collection; returns its index or NONE. */
static size_t ytree_add(struct pctx *c, uint8_t type, const yaml_mark_t *m, size_t parent)
{
	struct ytree *t = &c->t;
	struct ynode *n;
	size_t idx;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct ynode *v = realloc(t->v, cap * sizeof(*v));

		if (!v) {
			policy_oom(c);
			return NONE;
		}
		t->v = v;
		t->cap = cap;
	}
	if (parent != NONE) {
		struct ynode *p = &t->v[parent];

		if (p->nkids == p->capkids) {
			size_t cap = p->capkids ? p->capkids * 2 : 4;
			size_t *k = realloc(p->kids, cap * sizeof(*k));

			if (!k) {
				policy_oom(c);
				return NONE;
			}
			p->kids = k;
			p->capkids = cap;
		}
	}
	idx = t->n++;
	n = &t->v[idx];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	n->target = NONE;
	if (parent != NONE)
		t->v[parent].kids[t->v[parent].nkids++] = idx;
	else if (t->root == NONE)
		t->root = idx;
	return idx;
}

static int ytree_anchor(struct pctx *c, const char *name, size_t node, const yaml_mark_t *m)
{
	struct ytree *t = &c->t;
	struct yanchor *a;
	char *dup;

	if (t->nanchors >= POLICY_MAX_ANCHORS) {
		perr(c, (int)m->line + 1, (int)m->column + 1,
		     "more than %d YAML anchors; a policy does not need that many",
		     POLICY_MAX_ANCHORS);
		return -1;
	}
	dup = strdup(name);
	a = realloc(t->anchors, (t->nanchors + 1) * sizeof(*a));
	if (!dup || !a) {
		free(dup);
		if (a)
			t->anchors = a;
		policy_oom(c);
		return -1;
	}
	t->anchors = a;
	a[t->nanchors].name = dup;
	a[t->nanchors].node = node;
	t->nanchors++;
	return 0;
}

/* Turn a byte offset (reader errors carry no mark) into a line and a column. */
static void offset_to_pos(const struct pctx *c, size_t off, int *line, int *col)
{
	int l = 1, k = 1;

	if (off > c->len)
		off = c->len;
	for (size_t i = 0; i < off; i++) {
		if (c->buf[i] == '\n') {
			l++;
			k = 1;
		} else if (((unsigned char)c->buf[i] & 0xc0) != 0x80) {
			k++;
		}
	}
	*line = l;
	*col = k;
}

static void ytree_syntax_error(struct pctx *c, const yaml_parser_t *yp)
{
	const char *problem = yp->problem ? yp->problem : "unknown problem";
	const char *hint = "";
	int line, col;

	if (yp->error == YAML_MEMORY_ERROR) {
		policy_oom(c);
		return;
	}
	if (yp->error == YAML_READER_ERROR) {
		offset_to_pos(c, yp->problem_offset, &line, &col);
		if (yp->problem_value == 0)
			hint = "; is the file UTF-16 or binary? save the policy as UTF-8 text";
		else if (strstr(problem, "control"))
			hint = "; remove it or write it as an escape inside a double-quoted string";
		else
			hint = "; save the policy as UTF-8";
		/* libyaml gives the offending octet, or the code point, or nothing */
		if (yp->problem_value == -1)
			perr(c, line, col, "YAML: %s%s", problem, hint);
		else if (strstr(problem, "octet"))
			perr(c, line, col, "YAML: %s (byte 0x%02x)%s", problem,
			     (unsigned)yp->problem_value & 0xff, hint);
		else
			perr(c, line, col, "YAML: %s (U+%04X)%s", problem,
			     (unsigned)yp->problem_value, hint);
		return;
	}
	line = (int)yp->problem_mark.line + 1;
	col = (int)yp->problem_mark.column + 1;
	if (yp->problem_mark.index < c->len) {
		char ch = c->buf[yp->problem_mark.index];

		if (ch == '\t')
			hint = "; indent with spaces, YAML does not allow tabs there";
	}
	if (yp->context && strstr(yp->context, "alias"))
		hint = "; a value that starts with '*' (a host pattern) must be quoted, as in "
		       "host: \"*.example.com\"";
	if (yp->context)
		perr(c, line, col, "YAML syntax: %s %s at %d:%d%s", problem, yp->context,
		     (int)yp->context_mark.line + 1, (int)yp->context_mark.column + 1, hint);
	else
		perr(c, line, col, "YAML syntax: %s%s", problem, hint);
}

/*
 * Build the tree from libyaml's events. Anchors are registered only when their
 * node is complete, so that an alias can never point at one of its own
 * ancestors: the tree stays acyclic and every walk over it terminates.
 */
static int ytree_load(struct pctx *c)
{
	struct {
		size_t node;
		char *anchor;
		yaml_mark_t mark;
	} stack[POLICY_MAX_DEPTH];
	size_t depth = 0;
	yaml_parser_t yp;
	yaml_event_t ev;
	int docs = 0, rc = 0;
	bool done = false;

	c->t.root = NONE;
	if (!yaml_parser_initialize(&yp)) {
		policy_oom(c);
		return -1;
	}
	yaml_parser_set_encoding(&yp, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&yp, (const unsigned char *)c->buf, c->len);
	while (!done && rc == 0) {
		size_t parent = depth ? stack[depth - 1].node : NONE;
		const char *anchor = NULL;
		size_t idx;

		if (!yaml_parser_parse(&yp, &ev)) {
			ytree_syntax_error(c, &yp);
			rc = -1;
			break;
		}
		if (c->t.n >= POLICY_MAX_NODES) {
			perr(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
			     "more than %d YAML nodes; a policy is at most %d rules and %d pinsets",
			     POLICY_MAX_NODES, POLICY_MAX_RULES, POLICY_MAX_PINSETS);
			rc = -1;
		}
		switch (rc ? YAML_NO_EVENT : ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0) {
				perr(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				     "a second YAML document; a policy is one document: remove "
				     "this '---' and what follows, or merge it into the first");
				rc = -1;
			}
			break;
		case YAML_ALIAS_EVENT: {
			const char *name = (const char *)ev.data.alias.anchor;
			size_t target = NONE;

			for (size_t i = c->t.nanchors; i-- > 0;) {
				if (strcmp(c->t.anchors[i].name, name) == 0) {
					target = c->t.anchors[i].node;
					break;
				}
			}
			if (target == NONE) {
				char q[QBUF];

				perr(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				     "unknown alias '*%s'; define the anchor '&%s' on a complete "
				     "value before it (or quote the value if '*' was not meant as "
				     "an alias)",
				     quote(q, sizeof(q), name, strlen(name)),
				     quote(q, sizeof(q), name, strlen(name)));
				rc = -1;
				break;
			}
			idx = ytree_add(c, YN_ALIAS, &ev.start_mark, parent);
			if (idx == NONE)
				rc = -1;
			else
				c->t.v[idx].target = target;
			break;
		}
		case YAML_SCALAR_EVENT: {
			struct ynode *n;

			idx = ytree_add(c, YN_SCALAR, &ev.start_mark, parent);
			if (idx == NONE) {
				rc = -1;
				break;
			}
			n = &c->t.v[idx];
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			n->len = ev.data.scalar.length;
			n->val = malloc(n->len + 1);
			if (!n->val) {
				policy_oom(c);
				rc = -1;
				break;
			}
			memcpy(n->val, ev.data.scalar.value, n->len);
			n->val[n->len] = '\0';
			anchor = (const char *)ev.data.scalar.anchor;
			if (anchor && ytree_anchor(c, anchor, idx, &ev.start_mark))
				rc = -1;
			break;
		}
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth == POLICY_MAX_DEPTH) {
				perr(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
				     "YAML nested more than %d levels deep; a policy needs 5 at "
				     "most",
				     POLICY_MAX_DEPTH);
				rc = -1;
				break;
			}
			idx = ytree_add(c, ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ,
					&ev.start_mark, parent);
			if (idx == NONE) {
				rc = -1;
				break;
			}
			anchor = ev.type == YAML_MAPPING_START_EVENT ?
					 (const char *)ev.data.mapping_start.anchor :
					 (const char *)ev.data.sequence_start.anchor;
			stack[depth].node = idx;
			stack[depth].mark = ev.start_mark;
			stack[depth].anchor = anchor ? strdup(anchor) : NULL;
			depth++;
			if (anchor && !stack[depth - 1].anchor) {
				policy_oom(c);
				rc = -1;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			if (stack[depth].anchor) {
				if (ytree_anchor(c, stack[depth].anchor, stack[depth].node,
						 &stack[depth].mark))
					rc = -1;
				free(stack[depth].anchor);
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	while (depth > 0)
		free(stack[--depth].anchor);
	yaml_parser_delete(&yp);
	return rc;
}

/* ---- walking the tree ------------------------------------------------------- */

/*
 * Edit distance of two short keys (optimal string alignment: a swap of two
 * neighbours counts as one edit), for "did you mean".
 */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), d[33][33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			size_t best = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);

			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/*
 * Look up the keys of a fixed-schema mapping: vals[i] (and keys[i]) get the
 * value (and key) node of names[i], NONE when absent. Non-string keys,
 * unknown keys and duplicates are errors; `what` names the mapping in them.
 */
static void ymap_fetch(struct pctx *c, const struct ynode *map, const char *what,
		       const char *const names[], size_t nnames, size_t vals[], size_t keys[])
{
	char expected[160] = "", q[QBUF];
	size_t o = 0;

	for (size_t i = 0; i < nnames; i++) {
		vals[i] = keys[i] = NONE;
		o += snprintf(expected + o, sizeof(expected) - o, "%s%s", i ? ", " : "", names[i]);
		if (o >= sizeof(expected))
			o = sizeof(expected) - 1;
	}
	for (size_t k = 0; k + 1 < map->nkids; k += 2) {
		const struct ynode *key = ynode(c, map->kids[k]);
		const struct ynode *at = yat(c, map->kids[k]);
		size_t i;

		if (key->type != YN_SCALAR) {
			perr(c, at->line, at->col, "a key in %s is %s; keys are plain names (%s)",
			     what, ynode_kind(key), expected);
			continue;
		}
		for (i = 0; i < nnames; i++)
			if (ynode_eq(key, names[i]))
				break;
		if (i == nnames && ynode_eq(key, "<<")) {
			perr(c, at->line, at->col, "YAML merge keys (<<) are not supported in %s; "
			     "write the keys out", what);
			continue;
		}
		if (i == nnames) {
			const char *best = NULL;
			size_t bestd = SIZE_MAX;

			for (size_t j = 0; j < nnames; j++) {
				size_t dist = edit_distance(key->val, key->len, names[j]);

				/* one typo in a short name, two in a longer one */
				if (dist < bestd && dist <= (strlen(names[j]) > 4 ? 2 : 1)) {
					bestd = dist;
					best = names[j];
				}
			}
			if (best)
				perr(c, at->line, at->col,
				     "unknown key '%s' in %s; did you mean '%s'? (expected one of "
				     "%s)",
				     quote(q, sizeof(q), key->val, key->len), what, best, expected);
			else
				perr(c, at->line, at->col,
				     "unknown key '%s' in %s; expected one of %s",
				     quote(q, sizeof(q), key->val, key->len), what, expected);
			continue;
		}
		if (keys[i] != NONE) {
			const struct ynode *first = yat(c, keys[i]);

			perr(c, at->line, at->col,
			     "duplicate key '%s' in %s; the first is at %d:%d: keep only one",
			     names[i], what, first->line, first->col);
			continue;
		}
		keys[i] = map->kids[k];
		vals[i] = map->kids[k + 1];
	}
}

/* The scalar at `idx`, or NULL (with an error naming `what`) when it is not one. */
static const struct ynode *yscalar(struct pctx *c, size_t idx, const char *what, const char *eg)
{
	const struct ynode *n = ynode(c, idx), *at = yat(c, idx);

	if (n->type == YN_SCALAR && !ynode_is_null(n))
		return n;
	if (n->type == YN_SCALAR)
		perr(c, at->line, at->col, "%s is empty; give a value, e.g. %s", what, eg);
	else
		perr(c, at->line, at->col, "%s must be a single value (e.g. %s), not %s", what, eg,
		     ynode_kind(n));
	return NULL;
}

/* One of a few fixed words; returns its index or -1 (with an error). */
static int yenum(struct pctx *c, size_t idx, const char *what, const char *a, const char *b)
{
	char eg[64], q[QBUF];
	const struct ynode *n, *at = yat(c, idx);

	snprintf(eg, sizeof(eg), "%s: %s", what, a);
	n = yscalar(c, idx, what, eg);
	if (!n)
		return -1;
	if (ynode_eq(n, a))
		return 0;
	if (ynode_eq(n, b))
		return 1;
	perr(c, at->line, at->col, "%s must be '%s' or '%s', not '%s'", what, a, b,
	     quote(q, sizeof(q), n->val, n->len));
	return -1;
}

/* A name (pinset, rule): printable UTF-8, 1..POLICY_MAX_NAME bytes. Returns a copy or NULL. */
static char *yname(struct pctx *c, const struct ynode *n, const struct ynode *at, const char *what)
{
	char why[96], q[QBUF];
	char *s;

	if (n->len == 0) {
		perr(c, at->line, at->col, "%s is empty; give it a short name", what);
		return NULL;
	}
	if (n->len > POLICY_MAX_NAME) {
		perr(c, at->line, at->col, "%s '%s' is %zu bytes long; the limit is %d", what,
		     quote(q, sizeof(q), n->val, n->len), n->len, POLICY_MAX_NAME);
		return NULL;
	}
	if (!text_ok(n->val, n->len, why, sizeof(why))) {
		perr(c, at->line, at->col, "%s '%s' %s; use printable text", what,
		     quote(q, sizeof(q), n->val, n->len), why);
		return NULL;
	}
	s = strdup(n->val);
	if (!s)
		policy_oom(c);
	return s;
}

/* ---- pins ---------------------------------------------------------------------- */

static bool is_b64(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* 32 bytes are exactly 44 base64 characters, the last one '='. */
static bool pin_decode_b64(const char *s, size_t len, uint8_t out[PW_HASH_LEN])
{
	unsigned char tmp[36];

	if (len != 44 || s[43] != '=')
		return false;
	for (size_t i = 0; i < 43; i++)
		if (!is_b64(s[i]))
			return false;
	/* EVP_DecodeBlock counts the padding: 44 characters always give 33 bytes */
	if (EVP_DecodeBlock(tmp, (const unsigned char *)s, 44) != 33)
		return false;
	/* the bits under the '=' must be zero, or the text is not the hash's encoding */
	if (tmp[32] != 0)
		return false;
	memcpy(out, tmp, PW_HASH_LEN);
	return true;
}

static bool pin_decode_hex(const char *s, size_t len, uint8_t out[PW_HASH_LEN])
{
	if (len != 2 * PW_HASH_LEN)
		return false;
	for (size_t i = 0; i < PW_HASH_LEN; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool has_prefix(const struct ynode *n, const char *prefix)
{
	size_t l = strlen(prefix);

	return n->len >= l && memcmp(n->val, prefix, l) == 0;
}

static void policy_parse_pin(struct pctx *c, size_t idx, struct pw_pinset *ps)
{
	static const char spki[] = "sha256/", cert[] = "cert-sha256/";
	const struct ynode *n = ynode(c, idx), *at = yat(c, idx);
	struct pw_pin pin = { 0 };
	char q[QBUF];

	if (n->type != YN_SCALAR || ynode_is_null(n)) {
		perr(c, at->line, at->col,
		     "a pin must be a string such as sha256/<base64>, not %s",
		     n->type == YN_SCALAR ? "empty" : ynode_kind(n));
		return;
	}
	if (has_prefix(n, spki)) {
		pin.type = PW_PIN_SPKI;
		if (!pin_decode_b64(n->val + strlen(spki), n->len - strlen(spki), pin.hash)) {
			pwarn(c, at->line, at->col,
			      "pin '%s' is not the base64 of a 32-byte SHA-256 (44 characters "
			      "ending in '='): it can never match and is ignored; recompute it "
			      "with 'pinwarden pin'", quote(q, sizeof(q), n->val, n->len));
			return;
		}
	} else if (has_prefix(n, cert)) {
		pin.type = PW_PIN_CERT;
		if (!pin_decode_hex(n->val + strlen(cert), n->len - strlen(cert), pin.hash)) {
			pwarn(c, at->line, at->col,
			      "pin '%s' is not 64 hex digits of a SHA-256%s: it can never match "
			      "and is ignored; recompute it with 'pinwarden pin'",
			      quote(q, sizeof(q), n->val, n->len),
			      memchr(n->val, ':', n->len) ? " (remove the ':' separators)" : "");
			return;
		}
	} else if (has_prefix(n, "pin-sha256")) {
		perr(c, at->line, at->col,
		     "pin '%s' is in HTTP header form; write it as sha256/<base64>, without "
		     "pin-sha256= and quotes", quote(q, sizeof(q), n->val, n->len));
		return;
	} else {
		perr(c, at->line, at->col,
		     "unknown pin type in '%s'; a pin is sha256/<base64 SHA-256 of the "
		     "SubjectPublicKeyInfo> or cert-sha256/<hex SHA-256 of the certificate>",
		     quote(q, sizeof(q), n->val, n->len));
		return;
	}
	for (size_t i = 0; i < ps->npins; i++) {
		const struct pw_pin *o = &ps->pins[i];

		if (o->type == pin.type && !memcmp(o->hash, pin.hash, PW_HASH_LEN)) {
			pwarn(c, at->line, at->col,
			      "duplicate pin in pinset '%s'; the first is at %d:%d: remove this "
			      "one",
			      ps->name, ps->pins[i].line, ps->pins[i].col);
			return;
		}
	}
	pin.line = at->line;
	pin.col = at->col;
	pin.text = strdup(n->val);
	if (!pin.text) {
		policy_oom(c);
		return;
	}
	ps->pins[ps->npins++] = pin;
}

/* ---- dates ------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : mdays[m - 1];
}

/* YYYY-MM-DD -> unix time of 00:00 UTC the day after; -1 when it is not a real date. */
static int64_t parse_expires(const struct ynode *n, char *why, size_t whylen)
{
	static const char *const months[12] = { "January", "February", "March", "April", "May",
						 "June", "July", "August", "September",
						 "October", "November", "December" };
	const char *s = n->val;
	int y;
	unsigned m, d;

	if (n->len != 10 || s[4] != '-' || s[7] != '-') {
		snprintf(why, whylen, "is not a date YYYY-MM-DD");
		return -1;
	}
	for (size_t i = 0; i < 10; i++) {
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
			snprintf(why, whylen, "is not a date YYYY-MM-DD");
			return -1;
		}
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	if (y < 1970) {
		snprintf(why, whylen, "is before 1970");
		return -1;
	}
	if (m < 1 || m > 12) {
		snprintf(why, whylen, "has no month %02u", m);
		return -1;
	}
	if (d < 1 || d > days_in_month(y, m)) {
		snprintf(why, whylen, "is not a calendar date: %s %d has %u days", months[m - 1], y,
			 days_in_month(y, m));
		return -1;
	}
	return (days_from_civil(y, m, d) + 1) * 86400;
}

/* ---- pinsets --------------------------------------------------------------------- */

static void policy_parse_pinset(struct pctx *c, size_t keyidx, size_t validx, struct pw_pinset *ps)
{
	static const char *const names[] = { "expires", "pins" };
	const struct ynode *v = ynode(c, validx), *vat = yat(c, validx);
	const struct ynode *kat = yat(c, keyidx);
	size_t vals[2], keys[2];
	char what[POLICY_MAX_NAME + 32], why[96], q[QBUF];

	snprintf(what, sizeof(what), "pinset '%s'", ps->name);
	if (v->type != YN_MAP) {
		perr(c, vat->line, vat->col,
		     "pinset '%s' must be a mapping with 'pins:' (and optionally 'expires:'), "
		     "not %s",
		     ps->name, ynode_is_null(v) ? "empty" : ynode_kind(v));
		return;
	}
	ymap_fetch(c, v, what, names, 2, vals, keys);
	if (vals[0] != NONE) {
		const struct ynode *e = yscalar(c, vals[0], "expires", "expires: 2027-06-30");
		const struct ynode *eat = yat(c, vals[0]);

		if (e) {
			int64_t t = parse_expires(e, why, sizeof(why));

			if (t < 0) {
				perr(c, eat->line, eat->col,
				     "expires '%s' %s; write the last day the pins are valid, "
				     "e.g. expires: 2027-06-30",
				     quote(q, sizeof(q), e->val, e->len), why);
			} else {
				ps->expires = t;
				ps->expires_text = strdup(e->val);
				if (!ps->expires_text)
					policy_oom(c);
				if ((int64_t)c->now >= t)
					pwarn(c, eat->line, eat->col,
					      "pinset '%s' expired on %s: it is no longer enforced "
					      "(fail-open) and every use is reported as expired; "
					      "renew its pins and the date",
					      ps->name, e->val);
			}
		}
	}
	if (vals[1] == NONE) {
		perr(c, kat->line, kat->col,
		     "pinset '%s' has no 'pins'; add a list of sha256/<base64> pins", ps->name);
		return;
	}
	{
		const struct ynode *l = ynode(c, vals[1]), *lat = yat(c, vals[1]);

		if (l->type != YN_SEQ || l->nkids == 0) {
			perr(c, lat->line, lat->col,
			     "pins of pinset '%s' must be a list of at least one pin (two, with a "
			     "backup), not %s", ps->name,
			     l->type == YN_SEQ || ynode_is_null(l) ? "empty" : ynode_kind(l));
			return;
		}
		if (l->nkids > POLICY_MAX_PINS) {
			const struct ynode *extra = yat(c, l->kids[POLICY_MAX_PINS]);

			perr(c, extra->line, extra->col,
			     "pinset '%s' has %zu pins; the limit is %d: pin the keys of the "
			     "issuing CAs instead of every leaf", ps->name, l->nkids,
			     POLICY_MAX_PINS);
			return;
		}
		ps->pins = calloc(l->nkids, sizeof(*ps->pins));
		if (!ps->pins) {
			policy_oom(c);
			return;
		}
		for (size_t i = 0; i < l->nkids; i++)
			policy_parse_pin(c, l->kids[i], ps);
		if (ps->npins == 0)
			pwarn(c, lat->line, lat->col,
			      "pinset '%s' has no valid pin: every chain judged against it is a "
			      "mismatch; fix its pins", ps->name);
		else if (ps->npins == 1)
			pwarn(c, kat->line, kat->col,
			      "pinset '%s' has a single pin and no backup pin: a key rotation will "
			      "lock its clients out; add the hash of a backup key", ps->name);
	}
}

static void policy_parse_pinsets(struct pctx *c, size_t idx)
{
	const struct ynode *m = ynode(c, idx), *at = yat(c, idx);
	char q[QBUF];

	if (ynode_is_null(m))
		return;
	if (m->type != YN_MAP) {
		perr(c, at->line, at->col,
		     "pinsets must be a mapping of names to pinsets (bank: {pins: [...]}), not %s",
		     ynode_kind(m));
		return;
	}
	if (m->nkids / 2 > POLICY_MAX_PINSETS) {
		const struct ynode *extra = yat(c, m->kids[2 * POLICY_MAX_PINSETS]);

		perr(c, extra->line, extra->col, "more than %d pinsets; the limit is %d",
		     POLICY_MAX_PINSETS, POLICY_MAX_PINSETS);
		return;
	}
	c->p->pinsets = calloc(m->nkids / 2 + 1, sizeof(*c->p->pinsets));
	c->pinset_used = calloc(m->nkids / 2 + 1, sizeof(*c->pinset_used));
	if (!c->p->pinsets || !c->pinset_used) {
		policy_oom(c);
		return;
	}
	for (size_t k = 0; k + 1 < m->nkids; k += 2) {
		const struct ynode *key = ynode(c, m->kids[k]), *kat = yat(c, m->kids[k]);
		struct pw_pinset *ps;
		bool dup = false;

		if (key->type != YN_SCALAR) {
			perr(c, kat->line, kat->col, "a pinset name is %s; use a short name",
			     ynode_kind(key));
			continue;
		}
		for (size_t i = 0; i < c->p->npinsets; i++) {
			const struct pw_pinset *o = &c->p->pinsets[i];

			if (strlen(o->name) == key->len && !memcmp(o->name, key->val, key->len)) {
				perr(c, kat->line, kat->col,
				     "duplicate pinset '%s'; the first is at %d:%d: rename or "
				     "merge them",
				     quote(q, sizeof(q), key->val, key->len), o->line, o->col);
				dup = true;
				break;
			}
		}
		if (dup)
			continue;
		ps = &c->p->pinsets[c->p->npinsets];
		ps->name = yname(c, key, kat, "pinset name");
		if (!ps->name)
			continue;
		ps->line = kat->line;
		ps->col = kat->col;
		c->p->npinsets++;
		policy_parse_pinset(c, m->kids[k], m->kids[k + 1], ps);
	}
}

/* ---- hosts --------------------------------------------------------------------- */

static bool host_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

/* Address literal -> 16 bytes (IPv4 mapped into ::ffff:0:0/96); false when it is none. */
static bool ip_parse(const char *s, uint8_t ip[16], char *text, size_t textlen)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &a4, 4);
		if (text)
			inet_ntop(AF_INET, &a4, text, (socklen_t)textlen);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(ip, &a6, 16);
		/* ::ffff:1.2.3.4 is 1.2.3.4: one canonical text, so duplicates are seen */
		if (text && IN6_IS_ADDR_V4MAPPED(&a6))
			inet_ntop(AF_INET, ip + 12, text, (socklen_t)textlen);
		else if (text)
			inet_ntop(AF_INET6, &a6, text, (socklen_t)textlen);
		return true;
	}
	return false;
}

/*
 * Validate a host pattern and fill r->kind, r->suffix and r->ip. On failure
 * returns false with the complete message (it quotes the host) in `why`.
 */
static bool host_parse(const struct ynode *n, struct pw_rule *r, char *why, size_t whylen)
{
	char q[QBUF], text[INET6_ADDRSTRLEN], tmp[8];
	const char *s = n->val, *name;
	size_t len = n->len, nlen, label = 0, total;

	quote(q, sizeof(q), s, len);
	/* before anything treats it as a C string: no NUL, no control character */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f) {
			snprintf(why, whylen,
				 "host '%s' contains the control byte 0x%02x; a host may "
				 "contain only letters, digits, '-', '_' and '.'", q, ch);
			return false;
		}
	}
	if (len > 2 && s[0] == '[' && s[len - 1] == ']') {
		snprintf(why, whylen, "host '%s': write an IPv6 address without brackets", q);
		return false;
	}
	if (ip_parse(s, r->ip, text, sizeof(text))) {
		r->kind = PW_HOST_IP;
		r->suffix = strdup(text);
		return true;
	}
	if (memchr(s, ':', len)) {
		snprintf(why, whylen,
			 "host '%s' is not a valid IPv6 address (zone ids like %%eth0 are not "
			 "supported); a host is a DNS name, a pattern or an IP address", q);
		return false;
	}
	name = s;
	if (len >= 3 && !memcmp(s, "**.", 3)) {
		r->kind = PW_HOST_ANY;
		name = s + 3;
	} else if (len >= 2 && !memcmp(s, "*.", 2)) {
		r->kind = PW_HOST_ONE;
		name = s + 2;
	} else {
		r->kind = PW_HOST_EXACT;
	}
	nlen = len - (size_t)(name - s);
	/* one final dot is the DNS root and changes nothing */
	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	for (size_t i = 0; i < nlen; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '*') {
			snprintf(why, whylen,
				 "host '%s': '*' may only be the whole leftmost label, as in "
				 "'*.example.com' (exactly one label under) or "
				 "'**.example.com' (the name and any depth under)", q);
			return false;
		}
		if (!host_char_ok((char)ch)) {
			if (ch >= 0x80)
				snprintf(why, whylen,
					 "host '%s' contains a non-ASCII character; write "
					 "internationalized names in their xn-- (punycode) "
					 "form", q);
			else
				snprintf(why, whylen,
					 "host '%s' contains '%s'; a host may contain only "
					 "letters, digits, '-', '_' and '.'", q,
					 quote(tmp, sizeof(tmp), name + i, 1));
			return false;
		}
	}
	if (nlen == 0) {
		snprintf(why, whylen, r->kind == PW_HOST_EXACT ?
			 "host '%s' is empty; give a name such as api.example.com" :
			 "host '%s' has nothing after the wildcard; write e.g. '*.example.com'", q);
		return false;
	}
	total = (size_t)(name - s) + nlen;
	if (total > HOST_NAME_MAX_LEN) {
		snprintf(why, whylen, "host '%s' is %zu bytes long; DNS names are at most %d", q,
			 total, HOST_NAME_MAX_LEN);
		return false;
	}
	for (size_t i = 0; i <= nlen; i++) {
		if (i < nlen && name[i] != '.') {
			label++;
			continue;
		}
		if (label == 0) {
			snprintf(why, whylen, "host '%s' has an empty label; remove the extra '.'",
				 q);
			return false;
		}
		if (label > HOST_LABEL_MAX) {
			snprintf(why, whylen,
				 "host '%s' has a label of %zu bytes; DNS labels are at most %d",
				 q, label, HOST_LABEL_MAX);
			return false;
		}
		label = 0;
	}
	/* the last label of a DNS name is never all digits: this is a mistyped address */
	{
		size_t i = nlen;
		bool digits = true;

		while (i > 0 && name[i - 1] != '.') {
			if (name[i - 1] < '0' || name[i - 1] > '9')
				digits = false;
			i--;
		}
		if (digits) {
			snprintf(why, whylen,
				 "host '%s' is neither an IP address nor a DNS name (its last "
				 "label is a number); check the address", q);
			return false;
		}
	}
	r->suffix = strndup(name, nlen);
	if (r->suffix)
		for (char *p = r->suffix; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return true;
}

bool policy_host_matches(const struct pw_rule *r, const char *host)
{
	char h[PW_HOST_MAX];
	size_t hl, sl;

	if (!r || !host || !r->suffix || r->side != PW_SIDE_CLIENT)
		return false;
	hl = strnlen(host, sizeof(h));
	if (hl == 0 || hl >= sizeof(h))
		return false;
	memcpy(h, host, hl + 1);
	if (r->kind == PW_HOST_IP) {
		uint8_t ip[16];

		return ip_parse(h, ip, NULL, 0) && !memcmp(ip, r->ip, 16);
	}
	if (h[hl - 1] == '.')
		h[--hl] = '\0';
	for (size_t i = 0; i < hl; i++)
		if (h[i] >= 'A' && h[i] <= 'Z')
			h[i] = (char)(h[i] - 'A' + 'a');
	/* an empty label ("a..b", ".a") is no DNS name: it matches nothing */
	if (hl == 0 || h[0] == '.' || h[hl - 1] == '.' || strstr(h, ".."))
		return false;
	sl = strlen(r->suffix);
	if (r->kind == PW_HOST_EXACT || (r->kind == PW_HOST_ANY && hl == sl))
		return hl == sl && !memcmp(h, r->suffix, sl);
	/* "<something>.<suffix>" */
	if (hl < sl + 2 || h[hl - sl - 1] != '.' || memcmp(h + hl - sl, r->suffix, sl))
		return false;
	if (r->kind == PW_HOST_ANY)
		return true;
	return r->kind == PW_HOST_ONE && !memchr(h, '.', hl - sl - 1);
}

/* ---- rules ----------------------------------------------------------------------- */

static bool port_parse(const struct ynode *n, uint16_t *port)
{
	unsigned long v = 0;

	if (!n->plain || n->len == 0 || n->len > 5 || n->val[0] == '0')
		return false;
	for (size_t i = 0; i < n->len; i++) {
		if (n->val[i] < '0' || n->val[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(n->val[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* A path: absolute, printable, at most PATH_MAX. Returns a copy or NULL (with an error). */
static char *ypath(struct pctx *c, size_t idx, const char *what, const char *eg)
{
	const struct ynode *n = yscalar(c, idx, what, eg), *at = yat(c, idx);
	char why[96], q[QBUF];
	char *s;

	if (!n)
		return NULL;
	if (n->val[0] != '/') {
		perr(c, at->line, at->col, "%s '%s' must be an absolute path starting with '/', "
		     "e.g. %s", what, quote(q, sizeof(q), n->val, n->len), eg);
		return NULL;
	}
	if (n->len > POLICY_MAX_PATH) {
		perr(c, at->line, at->col, "%s is %zu bytes long; paths are at most %d", what,
		     n->len, POLICY_MAX_PATH);
		return NULL;
	}
	if (!text_ok(n->val, n->len, why, sizeof(why))) {
		perr(c, at->line, at->col, "%s '%s' %s; give the path as plain text", what,
		     quote(q, sizeof(q), n->val, n->len), why);
		return NULL;
	}
	s = strdup(n->val);
	if (!s)
		policy_oom(c);
	return s;
}

static void policy_parse_scope(struct pctx *c, size_t idx, struct pw_rule *r)
{
	static const char *const names[] = { "exe", "cgroup" };
	const struct ynode *m = ynode(c, idx), *at = yat(c, idx);
	size_t vals[2], keys[2];

	if (m->type != YN_MAP) {
		perr(c, at->line, at->col,
		     "scope must be a mapping with exe: and/or cgroup:, not %s",
		     ynode_is_null(m) ? "empty" : ynode_kind(m));
		return;
	}
	ymap_fetch(c, m, "scope", names, 2, vals, keys);
	if (vals[0] == NONE && vals[1] == NONE) {
		if (m->nkids == 0)
			perr(c, at->line, at->col,
			     "scope is empty; give exe: and/or cgroup:, or remove it");
		return;
	}
	if (vals[0] != NONE)
		r->scope_exe = ypath(c, vals[0], "scope exe", "/usr/bin/curl");
	if (vals[1] != NONE)
		r->scope_cgroup = ypath(c, vals[1], "scope cgroup", "/system.slice/app.service");
}

static ssize_t pinset_find(const struct pctx *c, const struct ynode *n)
{
	for (size_t i = 0; i < c->p->npinsets; i++) {
		const char *name = c->p->pinsets[i].name;

		if (strlen(name) == n->len && !memcmp(name, n->val, n->len))
			return (ssize_t)i;
	}
	return -1;
}

enum {
	RK_NAME,
	RK_HOST,
	RK_PORT,
	RK_SIDE,
	RK_PINSET,
	RK_MODE,
	RK_ACTION,
	RK_SCOPE,
	RK_MAX,
};

/* Returns true when the rule is complete enough to keep (errors may still have been found). */
static bool policy_parse_rule(struct pctx *c, size_t idx, struct pw_rule *r)
{
	static const char *const names[RK_MAX] = { "name", "host", "port", "side",
						   "pinset", "mode", "action", "scope" };
	const struct ynode *m = ynode(c, idx), *at = yat(c, idx);
	size_t vals[RK_MAX], keys[RK_MAX];
	char why[256], q[QBUF];
	bool ok = true;
	int v;

	r->line = at->line;
	r->col = at->col;
	r->mode = c->p->mode;
	r->action = c->p->action;
	r->pinset = NONE;
	if (m->type != YN_MAP) {
		perr(c, at->line, at->col,
		     "a rule must be a mapping (host:, port:, pinset:, ...), not %s",
		     ynode_is_null(m) ? "empty" : ynode_kind(m));
		return false;
	}
	ymap_fetch(c, m, "rule", names, RK_MAX, vals, keys);

	if (vals[RK_SIDE] != NONE) {
		v = yenum(c, vals[RK_SIDE], "side", "client", "server");
		if (v < 0)
			ok = false;
		else
			r->side = v ? PW_SIDE_SERVER : PW_SIDE_CLIENT;
	}
	if (vals[RK_MODE] != NONE) {
		v = yenum(c, vals[RK_MODE], "mode", "audit", "enforce");
		if (v < 0)
			ok = false;
		else
			r->mode = v ? PW_MODE_ENFORCE : PW_MODE_AUDIT;
		r->mode_set = true;
	}
	if (vals[RK_ACTION] != NONE) {
		v = yenum(c, vals[RK_ACTION], "action", "kill", "reset");
		if (v < 0)
			ok = false;
		else
			r->action = v ? PW_ACTION_RESET : PW_ACTION_KILL;
		r->action_set = true;
	}
	if (vals[RK_PORT] != NONE) {
		const struct ynode *n = yscalar(c, vals[RK_PORT], "port", "port: 443");
		const struct ynode *pat = yat(c, vals[RK_PORT]);

		if (n && !port_parse(n, &r->port)) {
			perr(c, pat->line, pat->col,
			     "port '%s' is not a port number; write a number from 1 to 65535, "
			     "unquoted and without leading zeros",
			     quote(q, sizeof(q), n->val, n->len));
			ok = false;
		} else if (!n) {
			ok = false;
		}
	}
	if (vals[RK_HOST] != NONE) {
		const struct ynode *n = yscalar(c, vals[RK_HOST], "host", "host: api.example.com");
		const struct ynode *hat = yat(c, vals[RK_HOST]);

		if (!n) {
			ok = false;
		} else if (r->side == PW_SIDE_SERVER) {
			const struct ynode *kat = yat(c, keys[RK_HOST]);

			perr(c, kat->line, kat->col,
			     "host is not allowed with side: server (such a rule pins the client "
			     "certificates received on a local port); remove it");
			ok = false;
		} else if (!host_parse(n, r, why, sizeof(why))) {
			perr(c, hat->line, hat->col, "%s", why);
			ok = false;
		} else if (!r->suffix) {
			policy_oom(c);
			ok = false;
		} else {
			r->host = strdup(n->val);
			if (!r->host) {
				policy_oom(c);
				ok = false;
			}
		}
	} else if (r->side == PW_SIDE_CLIENT) {
		perr(c, at->line, at->col,
		     "rule has no host; add the host the client connects to (host: "
		     "api.example.com), or use side: server with a port");
		ok = false;
	}
	if (r->side == PW_SIDE_SERVER && vals[RK_PORT] == NONE) {
		perr(c, at->line, at->col,
		     "a side: server rule needs the port the local TLS server listens on; add "
		     "port: (e.g. port: 8443)");
		ok = false;
	}
	if (vals[RK_PINSET] != NONE) {
		const struct ynode *n = yscalar(c, vals[RK_PINSET], "pinset", "pinset: bank");
		const struct ynode *pat = yat(c, vals[RK_PINSET]);
		ssize_t ps = n ? pinset_find(c, n) : -1;

		if (n && ps < 0) {
			char known[128] = "";
			size_t o = 0;

			for (size_t i = 0; i < c->p->npinsets && o < sizeof(known) - 8; i++)
				o += snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
					      c->p->pinsets[i].name);
			if (o >= sizeof(known) - 8)
				snprintf(known + sizeof(known) - 8, 8, ", ...");
			if (c->p->npinsets)
				perr(c, pat->line, pat->col,
				     "unknown pinset '%s'; define it under pinsets: (defined: %s)",
				     quote(q, sizeof(q), n->val, n->len), known);
			else
				perr(c, pat->line, pat->col,
				     "unknown pinset '%s'; no pinsets are defined: add it under "
				     "pinsets:", quote(q, sizeof(q), n->val, n->len));
		}
		if (ps < 0) {
			ok = false;
		} else {
			r->pinset = (size_t)ps;
			c->pinset_used[ps] = true;
		}
	} else {
		perr(c, at->line, at->col,
		     "rule has no pinset; add pinset: with the name of a pinset defined under "
		     "pinsets:");
		ok = false;
	}
	if (vals[RK_SCOPE] != NONE) {
		size_t errors = c->d->nerrors;

		policy_parse_scope(c, vals[RK_SCOPE], r);
		/* a rule whose scope was lost would be taken for an unscoped duplicate */
		if (c->d->nerrors != errors)
			ok = false;
	}
	if (vals[RK_NAME] != NONE) {
		const struct ynode *n = yscalar(c, vals[RK_NAME], "name", "name: bank-api");

		if (n)
			r->name = yname(c, n, yat(c, vals[RK_NAME]), "rule name");
		if (!r->name)
			ok = false;
	} else if (ok) {
		int rc;

		if (r->side == PW_SIDE_SERVER)
			rc = asprintf(&r->name, "server:%u", r->port);
		else if (r->port && r->kind == PW_HOST_IP && strchr(r->host, ':'))
			rc = asprintf(&r->name, "[%s]:%u", r->host, r->port);
		else if (r->port)
			rc = asprintf(&r->name, "%s:%u", r->host, r->port);
		else
			rc = asprintf(&r->name, "%s", r->host);
		if (rc < 0) {
			r->name = NULL;
			policy_oom(c);
			ok = false;
		}
	}
	/* server rules have no host; an empty suffix keeps every rule's strings non-NULL */
	if (ok && !r->suffix) {
		r->suffix = strdup("");
		if (!r->suffix) {
			policy_oom(c);
			ok = false;
		}
	}
	return ok;
}

static void rule_free(struct pw_rule *r)
{
	free(r->name);
	free(r->host);
	free(r->suffix);
	free(r->scope_exe);
	free(r->scope_cgroup);
	memset(r, 0, sizeof(*r));
}

static int strcmp_null(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

/* The key the kernel looks a rule up by: (kind, host, port, side). */
static int rule_cmp_key(const struct pw_rule *a, const struct pw_rule *b)
{
	int d;

	if (a->kind != b->kind)
		return a->kind - b->kind;
	d = strcmp(a->suffix, b->suffix);
	if (d)
		return d;
	if (a->port != b->port)
		return a->port - b->port;
	return a->side - b->side;
}

static int rule_cmp_line(const struct pw_rule *a, const struct pw_rule *b)
{
	if (a->line != b->line)
		return a->line - b->line;
	return a->col - b->col;
}

static int rule_ptr_cmp_key_line(const void *pa, const void *pb)
{
	const struct pw_rule *a = *(const struct pw_rule *const *)pa;
	const struct pw_rule *b = *(const struct pw_rule *const *)pb;

	return rule_cmp_key(a, b) ?: rule_cmp_line(a, b);
}

static int rule_ptr_cmp_scope_line(const void *pa, const void *pb)
{
	const struct pw_rule *a = *(const struct pw_rule *const *)pa;
	const struct pw_rule *b = *(const struct pw_rule *const *)pb;

	return rule_cmp_key(a, b) ?: strcmp_null(a->scope_exe, b->scope_exe) ?:
	       strcmp_null(a->scope_cgroup, b->scope_cgroup) ?: rule_cmp_line(a, b);
}

static const char *rule_describe(const struct pw_rule *r, char *buf, size_t len)
{
	if (r->side == PW_SIDE_SERVER)
		snprintf(buf, len, "side server, port %u", r->port);
	else if (r->port)
		snprintf(buf, len, "host '%.80s', port %u", r->host, r->port);
	else
		snprintf(buf, len, "host '%.80s', any port", r->host);
	return buf;
}

/*
 * Two rules with the same lookup key and scope could never both apply, and
 * the kernel keeps at most PW_RULE_ALTS rules (told apart by scope) per key.
 * Sorting makes both checks O(n log n) on a 10000-rule policy.
 */
static void policy_check_collisions(struct pctx *c)
{
	struct pw_policy *p = c->p;
	const struct pw_rule **v;
	char desc[128];
	size_t i, j;

	if (p->nrules < 2)
		return;
	v = malloc(p->nrules * sizeof(*v));
	if (!v) {
		policy_oom(c);
		return;
	}
	for (i = 0; i < p->nrules; i++)
		v[i] = &p->rules[i];

	qsort(v, p->nrules, sizeof(*v), rule_ptr_cmp_scope_line);
	for (i = 0; i < p->nrules; i = j) {
		for (j = i + 1; j < p->nrules && !rule_cmp_key(v[i], v[j]) &&
				!strcmp_null(v[i]->scope_exe, v[j]->scope_exe) &&
				!strcmp_null(v[i]->scope_cgroup, v[j]->scope_cgroup); j++)
			perr(c, v[j]->line, v[j]->col,
			     "duplicate rule (same host, port, side and scope); the first is at "
			     "%d:%d: remove one or give them different scopes", v[i]->line,
			     v[i]->col);
	}

	qsort(v, p->nrules, sizeof(*v), rule_ptr_cmp_key_line);
	for (i = 0; i < p->nrules; i = j) {
		for (j = i + 1; j < p->nrules && !rule_cmp_key(v[i], v[j]); j++)
			;
		if (j - i > PW_RULE_ALTS)
			perr(c, v[i + PW_RULE_ALTS]->line, v[i + PW_RULE_ALTS]->col,
			     "%zu rules for %s (the first is at %d:%d); at most %d rules may share "
			     "a host, port and side: merge some of them", j - i,
			     rule_describe(v[i], desc, sizeof(desc)), v[i]->line, v[i]->col,
			     PW_RULE_ALTS);
	}
	free(v);
}

static void policy_parse_rules(struct pctx *c, size_t idx)
{
	const struct ynode *l = ynode(c, idx), *at = yat(c, idx);

	if (ynode_is_null(l))
		return;
	if (l->type != YN_SEQ) {
		perr(c, at->line, at->col, "rules must be a list (each item starting with '- '), "
		     "not %s", ynode_kind(l));
		return;
	}
	if (l->nkids > POLICY_MAX_RULES) {
		const struct ynode *extra = yat(c, l->kids[POLICY_MAX_RULES]);

		perr(c, extra->line, extra->col, "%zu rules; the limit is %d: use '*.' or '**.' "
		     "patterns to cover many hosts with one rule", l->nkids, POLICY_MAX_RULES);
		return;
	}
	c->p->rules = calloc(l->nkids ? l->nkids : 1, sizeof(*c->p->rules));
	if (!c->p->rules) {
		policy_oom(c);
		return;
	}
	for (size_t i = 0; i < l->nkids; i++) {
		struct pw_rule *r = &c->p->rules[c->p->nrules];

		if (policy_parse_rule(c, l->kids[i], r))
			c->p->nrules++;
		else
			rule_free(r);
	}
}

/* ---- the whole policy ---------------------------------------------------------------- */

enum {
	TK_MODE,
	TK_ACTION,
	TK_LOG,
	TK_PINSETS,
	TK_RULES,
	TK_MAX,
};

static void policy_parse_top(struct pctx *c)
{
	static const char *const names[TK_MAX] = { "mode", "action", "log", "pinsets", "rules" };
	size_t vals[TK_MAX], keys[TK_MAX];
	const struct ynode *root;
	int v;

	if (c->t.root == NONE || ynode_is_null(ynode(c, c->t.root))) {
		int line = c->t.root == NONE ? 1 : yat(c, c->t.root)->line;
		int col = c->t.root == NONE ? 1 : yat(c, c->t.root)->col;

		perr(c, line, col, "the policy is empty; write at least 'rules:' with a list "
		     "of rules ('rules: []' audits every chain and enforces nothing)");
		return;
	}
	root = ynode(c, c->t.root);
	if (root->type != YN_MAP) {
		perr(c, root->line, root->col, "a policy is a mapping with the keys mode, action, "
		     "log, pinsets and rules, not %s", ynode_kind(root));
		return;
	}
	ymap_fetch(c, root, "the policy", names, TK_MAX, vals, keys);
	v = vals[TK_MODE] != NONE ? yenum(c, vals[TK_MODE], "mode", "audit", "enforce") : -1;
	if (v >= 0)
		c->p->mode = v ? PW_MODE_ENFORCE : PW_MODE_AUDIT;
	v = vals[TK_ACTION] != NONE ? yenum(c, vals[TK_ACTION], "action", "kill", "reset") : -1;
	if (v >= 0)
		c->p->action = v ? PW_ACTION_RESET : PW_ACTION_KILL;
	v = vals[TK_LOG] != NONE ? yenum(c, vals[TK_LOG], "log", "all", "mismatches") : -1;
	if (v >= 0)
		c->p->log_mismatches_only = v == 1;
	/* pinsets first: rules name them wherever they are written */
	if (vals[TK_PINSETS] != NONE)
		policy_parse_pinsets(c, vals[TK_PINSETS]);
	if (vals[TK_RULES] != NONE)
		policy_parse_rules(c, vals[TK_RULES]);
	if (c->oom)
		return;
	for (size_t i = 0; i < c->p->npinsets; i++) {
		const struct pw_pinset *ps = &c->p->pinsets[i];

		if (!c->pinset_used[i])
			pwarn(c, ps->line, ps->col,
			      "pinset '%s' is not used by any rule; use it in a rule or remove it",
			      ps->name);
	}
	policy_check_collisions(c);
}

static struct pw_policy *policy_alloc(const char *source)
{
	struct pw_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->source = strdup(source ? source : "policy");
	if (!p->source) {
		free(p);
		return NULL;
	}
	p->mode = PW_MODE_AUDIT;
	p->action = PW_ACTION_KILL;
	return p;
}

int policy_parse_buf(const char *name, const char *buf, size_t len, time_t now,
		     struct pw_policy **out, struct pw_diags *diags)
{
	struct pctx c = { 0 };
	size_t first = diags->n, errors = diags->nerrors;

	*out = NULL;
	c.d = diags;
	c.now = now;
	c.buf = buf;
	c.len = len;
	if (len > POLICY_MAX_FILE) {
		perr(&c, 0, 0, "the policy is %zu bytes; the limit is %u (4 MiB)", len,
		     POLICY_MAX_FILE);
		return -1;
	}
	/*
	 * libyaml strips a byte order mark only when it detects the encoding, and
	 * we do not let it: a UTF-16 policy is refused rather than converted.
	 */
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
		c.buf += 3;
		c.len -= 3;
	}
	c.p = policy_alloc(name);
	if (!c.p) {
		policy_oom(&c);
		return -1;
	}
	if (ytree_load(&c) == 0)
		policy_parse_top(&c);
	ytree_free(&c.t);
	free(c.pinset_used);
	diags_sort(diags, first);
	if (diags->nerrors != errors) {
		policy_free(c.p);
		return -1;
	}
	*out = c.p;
	return 0;
}

int policy_parse_file(const char *path, time_t now, struct pw_policy **out, struct pw_diags *diags)
{
	struct stat st;
	size_t len = 0, cap = 64 * 1024;
	char *buf = NULL;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		diags_add(diags, false, 0, 0, "cannot open the policy: %s; check the path and that "
			  "it is readable", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		diags_add(diags, false, 0, 0, "is a directory; give the policy file");
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (len == cap || !buf) {
			char *nb;

			if (buf)
				cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				diags_add(diags, false, 0, 0, "out of memory reading the policy");
				goto fail;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			diags_add(diags, false, 0, 0, "cannot read the policy: %s",
				  strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > POLICY_MAX_FILE) {
			diags_add(diags, false, 0, 0,
				  "the policy is larger than 4 MiB; split hosts into '*.'/'**.' "
				  "patterns or check that this is the right file");
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	rc = policy_parse_buf(path, buf, len, now, out, diags);
	free(buf);
	return rc;
fail:
	close(fd);
	free(buf);
	return -1;
}

struct pw_policy *policy_default(void)
{
	return policy_alloc("built-in default");
}

void policy_free(struct pw_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->npinsets; i++) {
		struct pw_pinset *ps = &p->pinsets[i];

		for (size_t j = 0; j < ps->npins; j++)
			free(ps->pins[j].text);
		free(ps->pins);
		free(ps->name);
		free(ps->expires_text);
	}
	free(p->pinsets);
	for (size_t i = 0; i < p->nrules; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p->source);
	free(p);
}

void policy_summary(const struct pw_policy *p, char *buf, size_t len)
{
	size_t pins = 0, enforced = 0;

	for (size_t i = 0; i < p->npinsets; i++)
		pins += p->pinsets[i].npins;
	for (size_t i = 0; i < p->nrules; i++)
		enforced += p->rules[i].mode == PW_MODE_ENFORCE;
	if (p->nrules == 0)
		snprintf(buf, len, "no rules (every chain is reported as unpinned, none enforced), "
			 "%zu pinset%s, %zu pin%s", p->npinsets, p->npinsets == 1 ? "" : "s",
			 pins, pins == 1 ? "" : "s");
	else
		snprintf(buf, len, "%zu rule%s (%zu enforced), %zu pinset%s, %zu pin%s",
			 p->nrules, p->nrules == 1 ? "" : "s", enforced, p->npinsets,
			 p->npinsets == 1 ? "" : "s", pins, pins == 1 ? "" : "s");
}

/* ---- who may have written the policy ------------------------------------------------------ */

/*
 * Nobody writes a directory on a read-only mount, whatever its mode: a Kubernetes
 * ConfigMap volume is a 0777 directory mounted read-only, and only root could
 * remount it.
 */
static bool on_read_only_mount(const char *path)
{
	struct statvfs sv;

	return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/*
 * The daemon runs as root and does what the policy says, so the policy must be
 * as trustworthy as root: a root-owned regular file that only root can write,
 * in directories only root can change (or else anyone could swap the file).
 * Because nothing on the resolved path is writable by anyone else, reading the
 * file by name afterwards cannot race with an attacker.
 */
int policy_file_trusted(const char *path, char *why, size_t whylen)
{
	char *real, *slash;
	struct stat st;
	int rc = -1;

	real = realpath(path, NULL);
	if (!real) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(real, &st) < 0) {
		snprintf(why, whylen, "%s: %s", real, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", real);
		goto out;
	}
	if (st.st_uid != 0) {
		snprintf(why, whylen, "%s is owned by uid %u, not root: chown root %s", real,
			 (unsigned)st.st_uid, real);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "%s is writable by group or others: chmod go-w %s", real,
			 real);
		goto out;
	}
	/* every directory from the file's up to "/" */
	while ((slash = strrchr(real, '/')) != NULL) {
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (lstat(real, &st) < 0) {
			snprintf(why, whylen, "%s: %s", real, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, whylen, "%s is not a directory", real);
			goto out;
		}
		if (st.st_uid != 0) {
			snprintf(why, whylen, "directory %s is owned by uid %u, not root; keep the "
				 "policy in a root-owned directory such as /etc/pinwarden", real,
				 (unsigned)st.st_uid);
			goto out;
		}
		/*
		 * A sticky directory (/tmp) is fine: only the owner of an entry may
		 * rename or remove it, and the entry below was checked to be root's.
		 */
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX) &&
		    !on_read_only_mount(real)) {
			snprintf(why, whylen, "directory %s is writable by group or others; keep "
				 "the policy in a directory only root can write, such as "
				 "/etc/pinwarden", real);
			goto out;
		}
		if (slash == real)
			break;
	}
	rc = 0;
out:
	free(real);
	return rc;
}

/* ---- pinwarden check -------------------------------------------------------------------- */

static void check_usage(FILE *f)
{
	fprintf(f, "usage: pinwarden check [--strict] FILE\n");
}

int cmd_check(int argc, char **argv)
{
	struct pw_diags d = { 0 };
	struct pw_policy *p = NULL;
	const char *file = NULL;
	bool strict = false, opts = true;
	char summary[160];
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts && strcmp(a, "--") == 0) {
			opts = false;
		} else if (opts && strcmp(a, "--strict") == 0) {
			strict = true;
		} else if (opts && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			check_usage(stdout);
			return 0;
		} else if (opts && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "pinwarden check: unknown option '%s'\n", a);
			check_usage(stderr);
			return 2;
		} else if (file) {
			fprintf(stderr, "pinwarden check: more than one FILE ('%s' and '%s'); "
				"check one policy at a time\n", file, a);
			check_usage(stderr);
			return 2;
		} else {
			file = a;
		}
	}
	if (!file) {
		fprintf(stderr, "pinwarden check: no policy FILE given\n");
		check_usage(stderr);
		return 2;
	}
	rc = policy_parse_file(file, time(NULL), &p, &d);
	diags_print(&d, file, stderr);
	if (rc < 0) {
		rc = 2;
	} else if (strict && d.nwarnings) {
		fprintf(stderr, "%s: failed: %zu warning%s with --strict\n", file, d.nwarnings,
			d.nwarnings == 1 ? "" : "s");
		rc = 2;
	} else {
		policy_summary(p, summary, sizeof(summary));
		printf("%s: ok: %s\n", file, summary);
		rc = 0;
	}
	policy_free(p);
	diags_free(&d);
	return rc;
}
