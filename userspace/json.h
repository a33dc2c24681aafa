/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A small JSON writer for event lines. Every string goes through json_esc:
 * quotes, backslashes and control characters are escaped, invalid UTF-8
 * becomes U+FFFD, so nothing a certificate or a process carries can break a
 * line or the log format.
 */
#ifndef PW_JSON_H
#define PW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

struct json {
	char *buf;
	size_t len, cap;
	int depth;
	bool first[JSON_MAX_DEPTH];	/* no member written yet at this depth */
	bool oom;
};

void json_init(struct json *j);
void json_free(struct json *j);
void json_reset(struct json *j);

/* `key` is NULL inside arrays and for the top-level object. */
void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *s);		/* NULL -> null */
void json_strn(struct json *j, const char *key, const char *s, size_t n); /* any bytes */
void json_int(struct json *j, const char *key, long long v);
void json_uint(struct json *j, const char *key, unsigned long long v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
void json_raw(struct json *j, const char *key, const char *raw);	/* already valid JSON */

/* Append the JSON string literal for bytes s[0, n) to j (no member logic). */
void json_esc(struct json *j, const char *s, size_t n);

#endif /* PW_JSON_H */
