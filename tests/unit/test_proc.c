// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * userspace/proc.c: the daemon signals a process named by a verdict only if
 * its pid still names that process. Real children: one killed when its start
 * time matches, left alone when the start time (or a verdict older than the
 * process) says the pid was reused, reported gone once reaped, continued
 * after a stop. (The kernel's own kill cannot be made to fail on a test host:
 * bpf_send_signal refuses only the host's init and exiting tasks.)
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
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

static pid_t child(void)
{
	pid_t pid = fork();

	if (pid < 0)
		exit(2);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
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
	test_kill();
	test_kill_started_before_verdict();
	test_continue();
	return checks_report("test_proc");
}
