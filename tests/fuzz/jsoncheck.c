// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* jansson's side of jsoncheck.h: parse what the writer wrote, compare with the reference. */
#include <jansson.h>

#include "jsoncheck.h"

/* Parse with jansson (NUL allowed in strings: \u0000 is how one is written). */
static json_t *parse(const char *s, size_t n, size_t flags)
{
	json_error_t err;
	json_t *v = json_loadb(s, n, flags | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);

	CHECK(v, "jansson: %s at %d:%d in \"%.*s\"", err.text, err.line, err.column,
	      (int)(n > 300 ? 300 : n), s);
	return v;
}

/* A decoded JSON string equals the reference decoding of the input bytes. */
static void check_string(const json_t *v, const uint8_t *in, size_t n, const char *what)
{
	size_t wl;
	char *want = ref_decoded(in, n, &wl);

	CHECK(json_is_string(v), "%s is not a string", what);
	CHECK(json_string_length(v) == wl && !memcmp(json_string_value(v), want, wl),
	      "%s decodes to %zu bytes, want %zu", what, json_string_length(v), wl);
	free(want);
}

void jc_check_string_literal(const char *s, size_t n, const uint8_t *in, size_t inlen)
{
	json_t *v = parse(s, n, JSON_DECODE_ANY);

	check_string(v, in, inlen, "the string");
	json_decref(v);
}

void jc_check_event(const char *s, size_t n, const uint8_t *in, size_t size, size_t half)
{
	json_t *v = parse(s, n, 0), *chain, *cert, *sans;

	CHECK(json_is_object(v) && json_object_size(v) == 4, "not the 4-member object");
	check_string(json_object_get(v, "event"), in, size, "event");
	chain = json_object_get(v, "chain");
	CHECK(json_is_array(chain) && json_array_size(chain) == 1, "chain");
	cert = json_array_get(chain, 0);
	CHECK(json_is_object(cert) && json_object_size(cert) == 4, "chain[0]");
	check_string(json_object_get(cert, "subject"), in, half, "subject");
	sans = json_object_get(cert, "sans");
	CHECK(json_is_array(sans) && json_array_size(sans) == 2, "sans");
	check_string(json_array_get(sans, 0), in + half, size - half, "sans[0]");
	check_string(json_array_get(sans, 1), in, strnlen((const char *)in, size), "sans[1]");
	CHECK(json_integer_value(json_object_get(cert, "der_bytes")) == (json_int_t)size,
	      "der_bytes");
	CHECK(json_is_boolean(json_object_get(cert, "matched")), "matched");
	CHECK(json_is_null(json_object_get(v, "host")), "host");
	json_decref(v);
}

void jc_check_description(const char *s, size_t n, int parsed)
{
	json_t *v = parse(s, n, 0), *m;
	size_t i;

	CHECK(json_is_object(v), "not an object");
	if (!parsed) {
		CHECK(json_object_size(v) == 1 && json_is_string(json_object_get(v, "error")),
		      "a refused certificate has one member, \"error\"");
		json_decref(v);
		return;
	}
	CHECK(json_object_size(v) == 5, "%zu members", json_object_size(v));
	CHECK(json_is_string(json_object_get(v, "subject")), "subject");
	CHECK(json_is_string(json_object_get(v, "issuer")), "issuer");
	m = json_object_get(v, "sans");
	CHECK(json_is_array(m), "sans");
	for (i = 0; i < json_array_size(m); i++)
		CHECK(json_is_string(json_array_get(m, i)), "sans[%zu]", i);
	m = json_object_get(v, "not_before");
	CHECK(json_is_string(m) || json_is_null(m), "not_before");
	m = json_object_get(v, "not_after");
	CHECK(json_is_string(m) || json_is_null(m), "not_after");
	json_decref(v);
}
