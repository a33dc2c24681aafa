// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A bounded byte ring between the daemon's loop (one producer) and a writer
 * thread (one consumer). Lines go in whole or not at all; the writer writes
 * whatever is contiguous, blocking as long as the file wants, outside the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outq.h"
#include "thread.h"

struct outq {
	pthread_mutex_t lock;
	pthread_cond_t more, drained;
	pthread_t thread;
	char *buf;
	size_t cap, head, len;	/* bytes [head, head + len) mod cap wait */
	size_t writing;		/* bytes the writer has taken, still counted in len */
	size_t touched;		/* bytes of buf written to since it was last given back */
	bool stop;
	int fd;
	const char *name;
	uint64_t dropped, write_errors;
};

#define OUTQ_KEEP	(1u << 20)	/* kept resident once touched; the rest given back */

/* Drained after a burst: give the pages past OUTQ_KEEP back to the kernel, so that
 * the daemon's memory follows its backlog, not the largest burst it ever saw. */
static void release(struct outq *q)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t from = ((uintptr_t)q->buf + OUTQ_KEEP + page - 1) & ~(page - 1);
	uintptr_t to = ((uintptr_t)q->buf + q->touched) & ~(page - 1);

	if (q->touched <= OUTQ_KEEP)
		return;
	if (to > from)
		madvise((void *)from, to - from, MADV_DONTNEED);
	q->touched = OUTQ_KEEP;
}

static void *writer(void *arg)
{
	struct outq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		size_t n;
		ssize_t w;
		int err;

		while (!q->len && !q->stop)
			pthread_cond_wait(&q->more, &q->lock);
		if (!q->len)
			break;
		n = q->cap - q->head < q->len ? q->cap - q->head : q->len;
		q->writing = n;
		pthread_mutex_unlock(&q->lock);
		w = write(q->fd, q->buf + q->head, n);
		err = errno;
		pthread_mutex_lock(&q->lock);
		if (w < 0 && err == EINTR)
			w = 0;
		if (w < 0) {
			/* the bytes are lost (EPIPE, ENOSPC, EIO): do not spin on them */
			if (!q->write_errors++)
				log_warnx("cannot write events to %s: %s", q->name, strerror(err));
			w = n;
		}
		q->head = (q->head + w) % q->cap;
		q->len -= w;
		q->writing = 0;
		if (!q->len) {
			/* start over at the front: memory in use follows the backlog, not the cap */
			q->head = 0;
			release(q);
			pthread_cond_broadcast(&q->drained);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

struct outq *outq_new(int fd, size_t cap, const char *name)
{
	struct outq *q = calloc(1, sizeof(*q));
	int err;

	if (!q)
		return NULL;
	q->buf = malloc(cap);
	if (!q->buf) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	q->fd = fd;
	q->name = name;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->drained, NULL);
	err = thread_start_unsignalled(&q->thread, writer, q);
	if (err) {
		free(q->buf);
		free(q);
		return NULL;
	}
	return q;
}

int outq_push(struct outq *q, const char *line, size_t len)
{
	size_t tail, first;

	pthread_mutex_lock(&q->lock);
	if (len > q->cap - q->len) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		return -1;
	}
	tail = (q->head + q->len) % q->cap;
	first = q->cap - tail < len ? q->cap - tail : len;
	memcpy(q->buf + tail, line, first);
	memcpy(q->buf, line + first, len - first);
	if (first < len)
		q->touched = q->cap;
	else if (tail + len > q->touched)
		q->touched = tail + len;
	q->len += len;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void outq_stats(struct outq *q, struct outq_stats *st)
{
	pthread_mutex_lock(&q->lock);
	st->dropped = q->dropped;
	st->write_errors = q->write_errors;
	st->queued = q->len;
	pthread_mutex_unlock(&q->lock);
}

void outq_free(struct outq *q, int timeout_ms)
{
	struct timespec until;
	bool stuck;

	if (!q)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&q->lock);
	while (q->len && pthread_cond_timedwait(&q->drained, &q->lock, &until) != ETIMEDOUT)
		;
	stuck = q->len != 0;
	q->stop = true;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
	if (stuck) {
		/* blocked in write(2) on a log that does not drain: leave it (and its
		 * memory: the process is ending) */
		log_warnx("%zu bytes of events could not be written to %s", q->len, q->name);
		pthread_cancel(q->thread);
		pthread_join(q->thread, NULL);
		return;
	}
	pthread_join(q->thread, NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->more);
	pthread_cond_destroy(&q->drained);
	free(q->buf);
	free(q);
}
