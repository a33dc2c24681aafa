// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer target: the JSON escaper and writer (userspace/json.c) on any bytes,
 * checked by jansson and an independent UTF-8 reference (jsoncheck.h).
 *
 *  - json_esc() of the input is one JSON string that decodes to the input's valid
 *    UTF-8 as it is, each other byte as U+FFFD;
 *  - an event built the way events.c builds one (object, nested array and object,
 *    the input as values, json_strn and the NUL-terminated json_str) is one line of
 *    valid UTF-8 with no raw control character, no raw newline and no raw
 *    U+2028/2029, that jansson parses to an object whose strings decode as above.
 */
#include "json.h"
#include "jsoncheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);	/* + a NUL, for json_str */
	size_t half = size / 2;
	struct json j;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;

	/* the bare escaper */
	json_init(&j);
	json_esc(&j, in, size);
	CHECK(!j.oom, "out of memory");
	CHECK(j.len >= 2 && j.buf[0] == '"' && j.buf[j.len - 1] == '"', "not a string literal");
	check_line_bytes(j.buf, j.len);
	jc_check_string_literal(j.buf, j.len, data, size);

	/* a whole event line */
	json_reset(&j);
	json_obj_begin(&j, NULL);
	json_str(&j, "time", "2026-11-26T20:04:52.710887Z");
	json_strn(&j, "event", in, size);
	json_arr_begin(&j, "chain");
	json_obj_begin(&j, NULL);
	json_strn(&j, "subject", in, half);
	json_arr_begin(&j, "sans");
	json_strn(&j, NULL, in + half, size - half);
	json_str(&j, NULL, in);
	json_arr_end(&j);
	json_uint(&j, "der_bytes", size);
	json_bool(&j, "matched", size & 1);
	json_obj_end(&j);
	json_arr_end(&j);
	json_null(&j, "host");
	json_obj_end(&j);
	CHECK(!j.oom, "out of memory");
	check_line_bytes(j.buf, j.len);
	jc_check_event(j.buf, j.len, data, size, half);
	json_free(&j);
	free(in);
	return 0;
}
