// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* `pinwarden status`: what the running daemon has attached, its counters, its policy. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "daemon.h"

static void usage_status(FILE *f)
{
	fprintf(f, "usage: pinwarden status [--status FILE] [--json]\n");
}

/* The value of a "key":number member at the top level of a flat JSON text. */
static long long json_num(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(s, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "status", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = PW_STATUS_FILE;
	yaml_parser_t parser;
	yaml_event_t ev;
	char *buf, key[64] = "", section[32] = "";
	bool as_json = false, in_libs = false, done = false;
	long long pid;
	size_t n;
	FILE *f;
	int c, depth = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'j': as_json = true; break;
		case 'h': usage_status(stdout); return 0;
		default: usage_status(stderr); return 2;
		}
	}
	f = fopen(path, "re");
	if (!f && errno == EACCES) {
		fprintf(stderr, "pinwarden: %s: %s: the daemon's status is root's only; run "
			"`sudo pinwarden status`\n", path, strerror(errno));
		return 1;
	}
	if (!f) {
		fprintf(stderr, "pinwarden: no running daemon (%s: %s)\n", path, strerror(errno));
		return 1;
	}
	buf = calloc(1, 1 << 20);
	n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!n) {
		free(buf);
		fprintf(stderr, "pinwarden: %s is empty\n", path);
		return 1;
	}
	pid = json_num(buf, "pid");
	if (pid <= 0 || (kill((pid_t)pid, 0) && errno == ESRCH)) {
		fprintf(stderr, "pinwarden: no running daemon (%s names pid %lld, which is gone)\n",
			path, pid);
		free(buf);
		return 1;
	}
	if (as_json) {
		fputs(buf, stdout);
		free(buf);
		return 0;
	}
	/* JSON is YAML: walk it with libyaml and print it readably */
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, n);
	while (!done && yaml_parser_parse(&parser, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
			depth++;
			if (in_libs)
				printf("  -");
			else if (depth == 2)
				printf("%s:\n", key);
			key[0] = 0;
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			if (in_libs)
				printf("\n");
			break;
		case YAML_SEQUENCE_START_EVENT:
			in_libs = !strcmp(key, "libraries");
			printf("%s:\n", key);
			snprintf(section, sizeof(section), "%s", key);
			key[0] = 0;
			break;
		case YAML_SEQUENCE_END_EVENT:
			in_libs = false;
			break;
		case YAML_SCALAR_EVENT:
			if (!key[0]) {
				snprintf(key, sizeof(key), "%s", (const char *)ev.data.scalar.value);
			} else {
				if (in_libs)
					printf(" %s=%s", key, (const char *)ev.data.scalar.value);
				else
					printf("%*s%s: %s\n", depth > 1 ? 2 : 0, "", key,
					       (const char *)ev.data.scalar.value);
				key[0] = 0;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	free(buf);
	return 0;
}
