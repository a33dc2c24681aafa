/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the JSON fuzz targets check an event line against: the shape of the bytes
 * (one line, no raw control character, no raw U+2028/2029, valid UTF-8), decoding
 * by jansson (a strict, well-kept JSON parser; in jsoncheck.c, whose names would
 * clash with userspace/json.h's), and what a string must decode to: the valid UTF-8
 * of the input kept as it is, every other byte as U+FFFD.
 *
 * The reference for "valid UTF-8" here is the Unicode Standard's table 3-7 of
 * well-formed byte sequences, written as a table: deliberately not the code of
 * userspace/json.c that it checks.
 */
#ifndef PW_FUZZ_JSONCHECK_H
#define PW_FUZZ_JSONCHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Unicode 15, table 3-7: first byte range, then the allowed range of each next byte */
static const struct {
	uint8_t lo, hi, n;
	uint8_t next[3][2];
} utf8_table[] = {
	{ 0x00, 0x7f, 1, { { 0 } } },
	{ 0xc2, 0xdf, 2, { { 0x80, 0xbf } } },
	{ 0xe0, 0xe0, 3, { { 0xa0, 0xbf }, { 0x80, 0xbf } } },
	{ 0xe1, 0xec, 3, { { 0x80, 0xbf }, { 0x80, 0xbf } } },
	{ 0xed, 0xed, 3, { { 0x80, 0x9f }, { 0x80, 0xbf } } },
	{ 0xee, 0xef, 3, { { 0x80, 0xbf }, { 0x80, 0xbf } } },
	{ 0xf0, 0xf0, 4, { { 0x90, 0xbf }, { 0x80, 0xbf }, { 0x80, 0xbf } } },
	{ 0xf1, 0xf3, 4, { { 0x80, 0xbf }, { 0x80, 0xbf }, { 0x80, 0xbf } } },
	{ 0xf4, 0xf4, 4, { { 0x80, 0x8f }, { 0x80, 0xbf }, { 0x80, 0xbf } } },
};

/* Length of the well-formed sequence at p, or 0. */
static inline size_t ref_utf8_len(const uint8_t *p, size_t n)
{
	size_t t, k;

	for (t = 0; t < sizeof(utf8_table) / sizeof(utf8_table[0]); t++) {
		if (p[0] < utf8_table[t].lo || p[0] > utf8_table[t].hi)
			continue;
		if (n < utf8_table[t].n)
			return 0;
		for (k = 1; k < utf8_table[t].n; k++)
			if (p[k] < utf8_table[t].next[k - 1][0] || p[k] > utf8_table[t].next[k - 1][1])
				return 0;
		return utf8_table[t].n;
	}
	return 0;
}

/* What the escaper's output must decode to; *outlen bytes, malloc'ed. */
static inline char *ref_decoded(const uint8_t *p, size_t n, size_t *outlen)
{
	char *out = malloc(3 * n + 1);
	size_t i = 0, o = 0, l;

	CHECK(out, "malloc");
	while (i < n) {
		l = ref_utf8_len(p + i, n - i);
		if (l) {
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);	/* U+FFFD for that one byte */
			o += 3;
			i++;
		}
	}
	*outlen = o;
	return out;
}

/* The bytes of a JSON text as an event line must be: one line, nothing raw that could
 * break a reader, all of it valid UTF-8. */
static inline void check_line_bytes(const char *s, size_t n)
{
	size_t i, l;

	for (i = 0; i < n; i += l) {
		uint8_t c = (uint8_t)s[i];

		CHECK(c >= 0x20 && c != 0x7f, "raw byte 0x%02x at %zu of %zu", c, i, n);
		l = ref_utf8_len((const uint8_t *)s + i, n - i);
		CHECK(l, "invalid UTF-8 at %zu of %zu", i, n);
		CHECK(!(l == 3 && c == 0xe2 && (uint8_t)s[i + 1] == 0x80 &&
			((uint8_t)s[i + 2] == 0xa8 || (uint8_t)s[i + 2] == 0xa9)),
		      "raw U+2028/U+2029 at %zu", i);
	}
}

/* jsoncheck.c: jansson's verdicts, each aborting with a message when it fails */

/* `s` is one JSON string that decodes to ref_decoded(in) */
void jc_check_string_literal(const char *s, size_t n, const uint8_t *in, size_t inlen);

/* `s` is fuzz_json.c's event: {"time", "event": in, "chain": [{"subject": in[0, half),
 * "sans": [in[half, size), in up to its first NUL], "der_bytes": size, "matched"}],
 * "host": null} */
void jc_check_event(const char *s, size_t n, const uint8_t *in, size_t size, size_t half);

/* `s` is {cert_describe's members}: subject, issuer, sans, not_before, not_after when
 * `parsed`, else only "error" */
void jc_check_description(const char *s, size_t n, int parsed);

#endif /* PW_FUZZ_JSONCHECK_H */
