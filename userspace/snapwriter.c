// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Metrics and status files, written apart from the daemon's loop. Each is a
 * fresh file renamed over the old one (safefile_replace); on a host writing
 * much (1,000 library copies in the bench) one such rename waited 200 ms for
 * the file system's journal, and the loop, which answers the kernel's holds,
 * gave no heartbeat meanwhile. Here the loop only hands over the bytes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "safefile.h"
#include "snapwriter.h"
#include "thread.h"

struct snap {
	const char *path;
	char *buf;		/* waiting to be written, or NULL */
	size_t len;
	mode_t mode;
	bool mkdir_last;
};

struct snapwriter {
	pthread_mutex_t lock;
	pthread_cond_t more;
	pthread_t thread;
	bool stop;
	struct snap slot[SNAP_FILES];
};

static void *writer(void *arg)
{
	struct snapwriter *w = arg;
	uint64_t errors[SNAP_FILES] = { 0 };	/* the writer's own: the first is logged */
	char why[512];
	unsigned i;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		bool any = false;

		for (i = 0; i < SNAP_FILES; i++) {
			struct snap s = w->slot[i];

			if (!s.buf)
				continue;
			any = true;
			w->slot[i].buf = NULL;
			pthread_mutex_unlock(&w->lock);
			if (safefile_replace(s.path, s.buf, s.len, s.mode, s.mkdir_last, why,
					     sizeof(why)) && !errors[i]++)
				log_warnx("cannot write a metrics or status file: %s", why);
			free(s.buf);
			pthread_mutex_lock(&w->lock);
		}
		if (!any) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->more, &w->lock);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct snapwriter *snapwriter_start(void)
{
	struct snapwriter *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	err = thread_start_unsignalled(&w->thread, writer, w);
	if (err) {
		pthread_cond_destroy(&w->more);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void snapwriter_put(struct snapwriter *w, unsigned slot, const char *path, char *buf, size_t len,
		    mode_t mode, bool mkdir_last)
{
	struct snap *s;

	if (slot >= SNAP_FILES) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&w->lock);
	s = &w->slot[slot];
	free(s->buf);	/* not written yet: this one is newer */
	s->path = path;
	s->buf = buf;
	s->len = len;
	s->mode = mode;
	s->mkdir_last = mkdir_last;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
}

void snapwriter_stop(struct snapwriter *w)
{
	unsigned i;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->more);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for (i = 0; i < SNAP_FILES; i++)
		free(w->slot[i].buf);
	pthread_cond_destroy(&w->more);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
