// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j)
{
	memset(j, 0, sizeof(*j));
	j->first[0] = true;
}

void json_free(struct json *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

void json_reset(struct json *j)
{
	j->len = 0;
	j->depth = 0;
	j->first[0] = true;
	j->oom = false;
	if (j->buf)
		j->buf[0] = 0;
}

static void put(struct json *j, const char *s, size_t n)
{
	if (j->oom)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 1024;
		char *nb;

		while (cap < j->len + n + 1)
			cap *= 2;
		nb = realloc(j->buf, cap);
		if (!nb) {
			j->oom = true;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = 0;
}

static void putc_(struct json *j, char c)
{
	put(j, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0;	/* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0;	/* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0;	/* overlong */
		if (c == 0xf4 && s[1] >= 0x90)
			return 0;	/* above U+10FFFF */
		return 4;
	}
	return 0;
}

void json_esc(struct json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	char tmp[8];

	putc_(j, '"');
	while (i < n) {
		unsigned c = s[i];
		size_t l;

		switch (c) {
		case '"': put(j, "\\\"", 2); i++; continue;
		case '\\': put(j, "\\\\", 2); i++; continue;
		case '\n': put(j, "\\n", 2); i++; continue;
		case '\r': put(j, "\\r", 2); i++; continue;
		case '\t': put(j, "\\t", 2); i++; continue;
		}
		if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			put(j, tmp, 6);
			i++;
			continue;
		}
		l = utf8_len(s + i, n - i);
		if (!l) {
			put(j, "\\ufffd", 6);
			i++;
			continue;
		}
		/* U+2028 and U+2029 end lines in JavaScript */
		if (l == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
			put(j, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			i += 3;
			continue;
		}
		put(j, (const char *)s + i, l);
		i += l;
	}
	putc_(j, '"');
}

static void member(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		putc_(j, ',');
	j->first[j->depth] = false;
	if (key) {
		json_esc(j, key, strlen(key));
		putc_(j, ':');
	}
}

static void open_(struct json *j, const char *key, char c)
{
	if (j->len || j->depth)
		member(j, key);
	putc_(j, c);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

void json_obj_begin(struct json *j, const char *key)
{
	open_(j, key, '{');
}

void json_obj_end(struct json *j)
{
	putc_(j, '}');
	if (j->depth > 0)
		j->depth--;
}

void json_arr_begin(struct json *j, const char *key)
{
	open_(j, key, '[');
}

void json_arr_end(struct json *j)
{
	putc_(j, ']');
	if (j->depth > 0)
		j->depth--;
}

void json_strn(struct json *j, const char *key, const char *s, size_t n)
{
	member(j, key);
	json_esc(j, s, n);
}

void json_str(struct json *j, const char *key, const char *s)
{
	if (!s) {
		json_null(j, key);
		return;
	}
	json_strn(j, key, s, strlen(s));
}

void json_int(struct json *j, const char *key, long long v)
{
	char tmp[32];

	member(j, key);
	put(j, tmp, snprintf(tmp, sizeof(tmp), "%lld", v));
}

void json_uint(struct json *j, const char *key, unsigned long long v)
{
	char tmp[32];

	member(j, key);
	put(j, tmp, snprintf(tmp, sizeof(tmp), "%llu", v));
}

void json_bool(struct json *j, const char *key, bool v)
{
	member(j, key);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	put(j, "null", 4);
}

void json_raw(struct json *j, const char *key, const char *raw)
{
	member(j, key);
	put(j, raw, strlen(raw));
}
