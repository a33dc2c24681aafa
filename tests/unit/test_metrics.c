// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * userspace/metrics.c: every counter the daemon keeps reaches the file, with the
 * labels and zero series the README promises; the file is replaced, never written
 * through a name planted where its temporary goes. (tests/ops.bats parses the file
 * of a real daemon with prometheus_client.)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "daemon.h"
#include "metrics.h"

/* Is `line` a whole line of `text`? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define ASSERT_LINE(text, line)                                                         \
	do {                                                                            \
		checks++;                                                               \
		if (!has_line(text, line))                                              \
			FAIL("no line '%s'", line);                                     \
	} while (0)

static char *format(const struct daemon *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		exit(2);
	metrics_format(d, f);
	fclose(f);
	return buf;
}

static struct daemon *fixture(void)
{
	static struct attached_lib libs[3];
	struct daemon *d = calloc(1, sizeof(*d));
	int k;

	if (!d)
		exit(2);
	memset(libs, 0, sizeof(libs));
	snprintf(libs[0].library, sizeof(libs[0].library), "openssl");
	libs[0].nprobes = 11;
	libs[0].nlinks = 6;
	snprintf(libs[1].library, sizeof(libs[1].library), "nss");
	libs[1].nprobes = libs[1].nlinks = 1;
	/* detached (its process is gone): not counted */
	snprintf(libs[2].library, sizeof(libs[2].library), "openssl");
	d->libs.v = libs;
	d->libs.n = 3;
	d->verdicts[PW_LIB_OPENSSL][PW_VERDICT_MATCH][PW_DONE_NONE] = 3;
	d->verdicts[PW_LIB_GNUTLS][PW_VERDICT_MISMATCH][PW_DONE_KILLED] = 1;
	/* a value of its own for each kernel counter, to find each one in the text */
	for (k = 0; k < PW_CNT_MAX; k++)
		d->cnt[k] = 7000 + k;
	d->gen = 3;
	d->policy_reloads = 4;
	d->policy_errors = 1;
	d->started_unix_ns = 1767225600123000000ULL;
	d->ukills[PROC_KILL_KILLED] = 2;
	d->reset_late = 5;
	return d;
}

static void test_families(void)
{
	struct daemon *d = fixture();
	char *t = format(d), line[256];
	int k;

	ASSERT_LINE(t, "# TYPE pinwarden_verdicts_total counter");
	ASSERT_LINE(t, "pinwarden_verdicts_total{library=\"openssl\",verdict=\"match\",action=\"none\"} 3");
	/* an attached library's possible series are there at 0 before they happen */
	ASSERT_LINE(t, "pinwarden_verdicts_total{library=\"openssl\",verdict=\"mismatch\",action=\"killed\"} 0");
	ASSERT_LINE(t, "pinwarden_verdicts_total{library=\"openssl\",verdict=\"mismatch\",action=\"would-reset\"} 0");
	ASSERT_LINE(t, "pinwarden_verdicts_total{library=\"openssl\",verdict=\"expired\",action=\"none\"} 0");
	/* impossible pairs are not invented */
	ASSERT_TRUE(!strstr(t, "verdict=\"match\",action=\"killed\""));
	/* a library not attached (any more) shows only what it counted */
	ASSERT_LINE(t, "pinwarden_verdicts_total{library=\"gnutls\",verdict=\"mismatch\",action=\"killed\"} 1");
	ASSERT_TRUE(!strstr(t, "library=\"gnutls\",verdict=\"match\""));
	ASSERT_LINE(t, "pinwarden_libraries_attached{library=\"openssl\"} 1");
	ASSERT_LINE(t, "pinwarden_libraries_attached{library=\"nss\"} 1");
	ASSERT_LINE(t, "pinwarden_probes_attached{library=\"openssl\"} 11");
	ASSERT_LINE(t, "pinwarden_policy_generation 3");
	ASSERT_LINE(t, "pinwarden_policy_reloads_total 4");
	ASSERT_LINE(t, "pinwarden_policy_reload_failures_total 1");
	ASSERT_LINE(t, "pinwarden_start_time_seconds 1767225600.123");
	ASSERT_LINE(t, "pinwarden_build_info{version=\"" PW_VERSION "\"} 1");
	snprintf(line, sizeof(line), "pinwarden_lost_records_total{record=\"chain\"} %d",
		 7000 + PW_CNT_LOST_CHAIN_RECS);
	ASSERT_LINE(t, line);
	snprintf(line, sizeof(line), "pinwarden_kernel_failures_total{reason=\"copy_failed\"} %d",
		 7000 + PW_CNT_COPY_FAILED);
	ASSERT_LINE(t, line);
	snprintf(line, sizeof(line), "pinwarden_chains_judged_total %d", 7000 + PW_CNT_CHAINS);
	ASSERT_LINE(t, line);
	/* a reset that became a kill, and the daemon's own kills, by result */
	snprintf(line, sizeof(line), "pinwarden_kernel_failures_total{reason=\"reset_table_full\"} %d",
		 7000 + PW_CNT_RESET_FULL);
	ASSERT_LINE(t, line);
	ASSERT_LINE(t, "pinwarden_userspace_kills_total{result=\"killed\"} 2");
	ASSERT_LINE(t, "pinwarden_userspace_kills_total{result=\"pid-reused\"} 0");
	ASSERT_LINE(t, "pinwarden_reset_marks_late_total 5");
	/* every kernel counter, including one added later, reaches the file exactly once */
	for (k = 0; k < PW_CNT_MAX; k++) {
		char v[32], *p;
		int n = 0;

		snprintf(v, sizeof(v), " %d\n", 7000 + k);
		for (p = t; (p = strstr(p, v)); p++)
			n++;
		if (n != 1)
			FAIL("kernel counter %d appears %d times", k, n);
		checks++;
	}
	free(t);
	free(d);
}

static void test_write(void)
{
	char dir[] = "/tmp/pw-test-metrics-XXXXXX", path[64], tmp[80], victim[80], *want, got[65536];
	struct daemon *d = fixture();
	struct stat st;
	ssize_t n;
	int fd;

	if (!mkdtemp(dir))
		exit(2);
	snprintf(path, sizeof(path), "%s/pinwarden.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	/* a hard link and then a symbolic link planted where the temporary file goes */
	fd = open(victim, O_WRONLY | O_CREAT, 0600);
	ASSERT_TRUE(fd >= 0 && write(fd, "keep", 4) == 4);
	close(fd);
	ASSERT_TRUE(link(victim, tmp) == 0);
	d->metrics_path = path;
	umask(077);
	metrics_write(d);
	ASSERT_TRUE(stat(victim, &st) == 0 && st.st_size == 4);
	ASSERT_TRUE(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
	/* the temporary file has a name nobody can guess: what was planted stays as it was */
	ASSERT_TRUE(stat(tmp, &st) == 0 && st.st_nlink == 2);
	ASSERT_TRUE(unlink(tmp) == 0);
	ASSERT_TRUE(symlink(victim, tmp) == 0);
	metrics_write(d);
	ASSERT_TRUE(stat(victim, &st) == 0 && st.st_size == 4);
	ASSERT_TRUE(unlink(tmp) == 0);
	/* what was written is what metrics_format says, whole */
	want = format(d);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? read(fd, got, sizeof(got) - 1) : -1;
	close(fd);
	ASSERT_TRUE(n == (ssize_t)strlen(want) && !memcmp(got, want, n));
	ASSERT_TRUE(d->metrics_errors == 0);
	/* a symlink or a hard link where the file itself goes: refused, the victim untouched */
	{
		int fd2 = dup(STDERR_FILENO);

		ASSERT_TRUE(freopen("/dev/null", "w", stderr) != NULL);
		unlink(path);
		ASSERT_TRUE(symlink(victim, path) == 0);
		metrics_write(d);
		ASSERT_TRUE(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
		unlink(path);
		ASSERT_TRUE(link(victim, path) == 0);
		metrics_write(d);
		fflush(stderr);
		dup2(fd2, STDERR_FILENO);
		close(fd2);
		setvbuf(stderr, NULL, _IONBF, 0);
		ASSERT_TRUE(stat(victim, &st) == 0 && st.st_size == 4);
		ASSERT_TRUE(d->metrics_errors == 2);
		d->metrics_errors = 0;
		unlink(path);
	}
	/* a directory that is gone: counted, nothing else happens */
	unlink(path);
	unlink(victim);
	rmdir(dir);
	fd = dup(STDERR_FILENO);	/* its one warning is expected: not in the test's output */
	ASSERT_TRUE(freopen("/dev/null", "w", stderr) != NULL);
	metrics_write(d);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
	setvbuf(stderr, NULL, _IONBF, 0);
	ASSERT_TRUE(d->metrics_errors == 1);
	free(want);
	free(d);
}

int main(void)
{
	test_families();
	test_write();
	return checks_report("test_metrics");
}
