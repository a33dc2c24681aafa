// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * userspace/proc.c: the daemon signals a process named by a verdict only if
 * its pid still names that process. Real children: one killed when its start
 * time matches, left alone when the start time (or a verdict older than the
 * process) says the pid was reused, reported gone once reaped, continued
 * after a stop. /proc/PID/stat parsed once for all (proc_stat_parse): lines
 * whose command holds spaces, ')' and digits, lines cut short, real children
 * named to mislead a parser that counts from the first ')'. (The kernel's own
 * kill cannot be made to fail on a test host: bpf_send_signal refuses only
 * the host's init and exiting tasks.)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "proc.h"

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* a child that waits, under the command name `comm` (NULL: its parent's) */
static pid_t child_named(const char *comm)
{
	pid_t pid = fork();

	if (pid < 0)
		exit(2);
	if (pid == 0) {
		if (comm)
			prctl(PR_SET_NAME, comm);
		pause();
		_exit(0);
	}
	return pid;
}

static pid_t child(void)
{
	return child_named(NULL);
}

/* fields 4 to 21 of a real line (ppid ... itrealvalue), then 22 and the rest */
#define MID " 1 1234 1234 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 "
#define TAIL " 2363392 220 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"

static void test_stat_parse(void)
{
	struct proc_stat st = { 0 };

	ASSERT_EQ(proc_stat_parse("4242 (sleep) S" MID "987654" TAIL, &st), 0);
	ASSERT_EQ(st.state, 'S');
	ASSERT_EQ(st.flags, 4194560);
	ASSERT_EQ(st.start_ticks, 987654);
	/* the command may say anything: the fields start after its last ')' */
	ASSERT_EQ(proc_stat_parse("4242 () Z 1 2 3 4 5 6) T" MID "1234567890123" TAIL, &st), 0);
	ASSERT_EQ(st.state, 'T');
	ASSERT_EQ(st.start_ticks, 1234567890123ULL);
	ASSERT_EQ(proc_stat_parse("4242 (a b)) t" MID "77" TAIL, &st), 0);
	ASSERT_EQ(st.state, 't');
	ASSERT_EQ(st.start_ticks, 77);
	ASSERT_EQ(proc_stat_parse("4242 ()) X" MID "0" TAIL, &st), 0);
	ASSERT_EQ(st.state, 'X');
	ASSERT_EQ(st.start_ticks, 0);
	/* lines cut short: before the state, inside the fields, inside the start time */
	ASSERT_EQ(proc_stat_parse("", &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep", &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep)", &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S", &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S 1 1234 1234 0 -1 4194560 120", &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S" MID, &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S" MID "98765", &st), -1);
	/* not numbers where numbers stand, or two letters for the state */
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S 1 x" MID "5" TAIL, &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) SS" MID "5" TAIL, &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S" MID "99999999999999999999999" TAIL, &st), -1);
	ASSERT_EQ(proc_stat_parse("4242 (sleep) S" MID "+5" TAIL, &st), -1);
}

/* Real children whose names mislead a parser that reads from the first ')'. */
static void test_stat_hostile_comm(void)
{
	static const char *const names[] = { ") Z 1 2 3 4 5", "x) T 9 9 9 9 9", ") ) ) ) ) ) )",
					     "a b (c) d", "(", ")", " " };
	long hz = sysconf(_SC_CLK_TCK);
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		pid_t pid = child_named(names[i]);
		struct proc_stat st = { 0 }, again = { 0 };
		char path[64], comm[32] = "";
		int status = 0;
		FILE *f;

		/* wait until the child has renamed itself */
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		for (int tries = 0; tries < 1000; tries++) {
			f = fopen(path, "re");
			if (f && fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = 0;
			if (f)
				fclose(f);
			if (!strcmp(comm, names[i]))
				break;
			usleep(1000);
		}
		ASSERT_STREQ(comm, names[i]);
		ASSERT_EQ(proc_stat_read(pid, &st), 0);
		ASSERT_TRUE(st.state == 'S' || st.state == 'R');
		ASSERT_TRUE(st.start_ticks != 0);
		ASSERT_EQ(st.start_ticks * (1000000000ULL / hz), proc_start_ns(pid));
		kill(pid, SIGSTOP);
		ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
		ASSERT_EQ(proc_stat_read(pid, &again), 0);
		ASSERT_EQ(again.state, 'T');
		ASSERT_EQ(again.start_ticks, st.start_ticks);
		kill(pid, SIGKILL);
		ASSERT_EQ(waitpid(pid, &status, 0), pid);
		/* reaped: nothing to read */
		ASSERT_EQ(proc_stat_read(pid, &again), -1);
		ASSERT_EQ(proc_start_ns(pid), 0);
	}
}

static void test_kill(void)
{
	uint64_t before = boot_ns() - 20000000ULL;	/* two ticks before the child */
	pid_t pid = child();
	uint64_t start = proc_start_ns(pid);
	int status = 0;

	ASSERT_TRUE(start != 0);
	ASSERT_TRUE(start <= boot_ns());
	/* another start time: a process that took the pid later */
	ASSERT_EQ(proc_kill(pid, start + 1000000000ULL, 0), PROC_KILL_REUSED);
	/* start unknown, verdict older than the process: not the one judged */
	ASSERT_EQ(proc_kill(pid, 0, before), PROC_KILL_REUSED);
	ASSERT_EQ(proc_signal(pid, start + 1000000000ULL, SIGCONT), -ESTALE);
	ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0);
	/* the kernel's start time is in ns; /proc rounds it down to a tick */
	ASSERT_EQ(proc_kill(pid, start + 3000000ULL, 0), PROC_KILL_KILLED);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* reaped: gone, whatever the check */
	ASSERT_EQ(proc_kill(pid, start, 0), PROC_KILL_GONE);
	ASSERT_EQ(proc_signal(pid, start, SIGCONT), -ESRCH);
	ASSERT_STREQ(proc_kill_name(PROC_KILL_REUSED), "pid-reused");
	ASSERT_STREQ(proc_kill_name(PROC_KILL_NONE), "none");
}

static void test_kill_started_before_verdict(void)
{
	pid_t pid = child();
	int status = 0;

	/* start unknown: a process started before the verdict is the one judged */
	ASSERT_EQ(proc_kill(pid, 0, boot_ns()), PROC_KILL_KILLED);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_continue(void)
{
	pid_t pid = child();
	uint64_t start = proc_start_ns(pid);
	int status = 0;

	kill(pid, SIGSTOP);
	ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(proc_signal(pid, start, SIGCONT), 0);
	ASSERT_EQ(waitpid(pid, &status, WCONTINUED), pid);
	ASSERT_TRUE(WIFCONTINUED(status));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

int main(void)
{
	test_stat_parse();
	test_stat_hostile_comm();
	test_kill();
	test_kill_started_before_verdict();
	test_continue();
	return checks_report("test_proc");
}
