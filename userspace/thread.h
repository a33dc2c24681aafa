/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A helper thread of the daemon (a writer): it takes no signal, which are the
 * loop's business (signalfd), whatever the mask of the thread that starts it.
 */
#ifndef PW_THREAD_H
#define PW_THREAD_H

#include <pthread.h>
#include <signal.h>

/* pthread_create() with every signal blocked in the new thread: 0, or an errno. */
static inline int thread_start_unsignalled(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

#endif /* PW_THREAD_H */
