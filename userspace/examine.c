// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The examination workers (examine.h). Jobs go from `queue` to a worker, and
 * from the worker to `done`; the loop reads `done`. A worker past its bound is
 * marked abandoned by the loop: its job then belongs to it alone, and when the
 * kernel lets it go (the mount answers, or never) it frees the job and ends,
 * touching nothing of the daemon's but the pool's counters, under the lock.
 * The pool lives as long as the process: an abandoned worker may come back at
 * any time.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "elfsym.h"
#include "examine.h"
#include "log.h"

struct job {
	struct job *next;
	char path[128];
	struct examine_result r;
	uint64_t copied;	/* bytes in memory so far (read by the loop when it gives up) */
	uint64_t progress_ns;	/* when the file last answered (opened, a chunk read) */
	int opened;		/* 1 once open(2) returned */
};

#define CHUNK		(4u << 20)	/* read between two marks of progress */
#define TOTAL_BOUNDS	8		/* a file that answers, slowly: at most 8 bounds in all */

struct worker {
	struct examine_pool *p;
	struct job *job;		/* the file it reads now, or NULL */
	uint64_t started_ns;
	bool abandoned;
	struct worker *next;
};

struct examine_pool {
	examine_plan_fn plan;		/* run by the worker on each file read, or NULL */
	void (*plan_free)(void *plan);
	void *plan_ctx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t gone;		/* a worker ended (examine_pool_stop waits for them) */
	struct job *queue, **queue_tail, *done;
	struct worker *workers;		/* live and abandoned */
	uint64_t bound_ns;
	int efd;
	bool stopping;
	struct examine_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The file's bytes into memory; larger than a file may be: only its size (a hole). */
static int copy_into_memory(int fd, const struct file_id *id, struct job *j, char *err,
			    size_t errlen)
{
	char buf[65536];
	uint64_t off = 0;
	ssize_t head;
	int mfd;

	mfd = memfd_create("pinwarden-examine", MFD_CLOEXEC);
	if (mfd < 0) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -1;
	}
	/* no ELF file (a loader's flags on a data file: glibc maps its locale archive
	 * as it maps a library): its first bytes only, which say so */
	head = pread(fd, buf, SELFMAG, 0);
	if (head != SELFMAG || memcmp(buf, ELFMAG, SELFMAG)) {
		if (head > 0 && write(mfd, buf, head) != head) {
			snprintf(err, errlen, "memfd: %s", strerror(errno));
			close(mfd);
			return -1;
		}
		return mfd;
	}
	if (id->size > ELF_FILE_MAX) {
		if (ftruncate(mfd, id->size) == 0)
			return mfd;
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		close(mfd);
		return -1;
	}
	while (off < id->size) {
		off_t in = off;
		ssize_t n = sendfile(mfd, fd, &in, id->size - off < CHUNK ? id->size - off : CHUNK);

		if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			/* a file system without splice: by hand */
			n = pread(fd, buf, sizeof(buf), off);
			if (n > 0 && write(mfd, buf, n) != n)
				n = -1;
		}
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			close(mfd);
			return -1;
		}
		if (n == 0)
			break;	/* shorter than it said: what there is */
		off += n;
		__atomic_store_n(&j->copied, off, __ATOMIC_RELAXED);
		__atomic_store_n(&j->progress_ns, now_ns(), __ATOMIC_RELAXED);
	}
	return mfd;
}

static void examine_one(struct examine_pool *p, struct job *j)
{
	struct examine_result *r = &j->r;
	uint64_t t0 = now_ns();
	char why[256];
	int fd;

	fd = fileid_open(j->path, r->kdev, r->ino, &r->id, r->err, sizeof(r->err));
	if (fd < 0) {
		r->status = fd == FILEID_OTHER || fd == FILEID_DENIED ? fd : -1;
	} else {
		__atomic_store_n(&j->opened, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&j->progress_ns, now_ns(), __ATOMIC_RELAXED);
		r->copy_fd = copy_into_memory(fd, &r->id, j, why, sizeof(why));
		if (r->copy_fd < 0) {
			snprintf(r->err, sizeof(r->err), "%.128s: %.256s", j->path, why);
			close(fd);
			r->status = -1;
		} else {
			r->fd = fd;
			r->status = 0;
			/* parsed here too: the loop only attaches what was planned */
			__atomic_store_n(&j->progress_ns, now_ns(), __ATOMIC_RELAXED);
			if (p->plan)
				r->plan = p->plan(p->plan_ctx, fd, r->copy_fd, j->path);
		}
	}
	r->wall_ns = now_ns() - t0;
}

static void job_free(struct examine_pool *p, struct job *j)
{
	if (j->r.plan && p->plan_free)
		p->plan_free(j->r.plan);
	if (j->r.fd >= 0)
		close(j->r.fd);
	if (j->r.copy_fd >= 0)
		close(j->r.copy_fd);
	free(j);
}

static void wake(struct examine_pool *p)
{
	uint64_t one = 1;

	if (write(p->efd, &one, sizeof(one)) < 0) {
		/* the counter is full: the loop is awake anyway */
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct examine_pool *p = w->p;
	struct job *j;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queue && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		j = p->queue;
		p->queue = j->next;
		if (!p->queue)
			p->queue_tail = &p->queue;
		w->job = j;
		w->started_ns = now_ns();
		j->progress_ns = w->started_ns;
		pthread_mutex_unlock(&p->mu);

		examine_one(p, j);

		pthread_mutex_lock(&p->mu);
		if (w->abandoned) {
			/* the loop gave up on this file and on us: it has its report already */
			p->st.stuck--;
			p->st.stuck_returned++;
			job_free(p, j);
			break;
		}
		w->job = NULL;
		j->next = p->done;
		p->done = j;
		wake(p);
	}
	/* leave the list: the loop never frees a worker */
	{
		struct worker **pw;

		for (pw = &p->workers; *pw; pw = &(*pw)->next)
			if (*pw == w) {
				*pw = w->next;
				break;
			}
	}
	if (!w->abandoned)
		p->st.workers--;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->mu);
	free(w);
	return NULL;
}

/* Under the lock. */
static int worker_spawn(struct examine_pool *p)
{
	pthread_attr_t attr;
	struct worker *w = calloc(1, sizeof(*w));
	pthread_t t;
	int err;

	if (!w)
		return -1;
	w->p = p;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	err = pthread_create(&t, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (err) {
		log_warnx("examination: cannot start a worker: %s", strerror(err));
		free(w);
		return -1;
	}
	w->next = p->workers;
	p->workers = w;
	p->st.workers++;
	return 0;
}

struct examine_pool *examine_pool_new(uint64_t bound_ns, examine_plan_fn plan,
				      void (*plan_free)(void *plan), void *plan_ctx)
{
	struct examine_pool *p = calloc(1, sizeof(*p));
	int i;

	if (!p)
		return NULL;
	p->plan = plan;
	p->plan_free = plan_free;
	p->plan_ctx = plan_ctx;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->gone, NULL);
	p->queue_tail = &p->queue;
	p->bound_ns = bound_ns;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		free(p);
		return NULL;
	}
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < EXAMINE_WORKERS; i++)
		worker_spawn(p);
	pthread_mutex_unlock(&p->mu);
	if (!p->st.workers) {
		close(p->efd);
		free(p);
		return NULL;
	}
	return p;
}

int examine_pool_fd(const struct examine_pool *p)
{
	return p->efd;
}

/* Under the lock: a worker abandoned in a file of this device, still blocked? */
static struct worker *stuck_on_device(struct examine_pool *p, uint64_t kdev)
{
	struct worker *w;

	for (w = p->workers; w; w = w->next)
		if (w->abandoned && w->job && w->job->r.kdev == kdev)
			return w;
	return NULL;
}

int examine_submit(struct examine_pool *p, const char *path, uint64_t kdev, uint64_t ino,
		   uint64_t tag)
{
	struct job *j = calloc(1, sizeof(*j));
	struct worker *w;

	if (!j)
		return -1;
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->r.tag = tag;
	j->r.kdev = kdev;
	j->r.ino = ino;
	j->r.fd = j->r.copy_fd = -1;
	pthread_mutex_lock(&p->mu);
	p->st.submitted++;
	w = stuck_on_device(p, kdev);
	if (w || !p->st.workers) {
		/* the next read there would block as well: not tried, said at once */
		if (w)
			snprintf(j->r.err, sizeof(j->r.err), "%s: not opened: a read of another file "
				 "on this device (%llu:%llu) has not returned for %llu ms", path,
				 (unsigned long long)kdev >> 20,
				 (unsigned long long)kdev & 0xfffff,
				 (unsigned long long)(now_ns() - w->started_ns) / 1000000);
		else
			snprintf(j->r.err, sizeof(j->r.err), "%s: not opened: all %d examination "
				 "workers are blocked in files that do not answer", path,
				 EXAMINE_STUCK_MAX);
		j->r.status = EXAMINE_TIMEOUT;
		p->st.refused++;
		j->next = p->done;
		p->done = j;
		wake(p);
	} else {
		*p->queue_tail = j;
		p->queue_tail = &j->next;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return 0;
}

bool examine_busy_with(struct examine_pool *p, uint64_t kdev, uint64_t ino)
{
	struct worker *w;
	struct job *j;
	bool busy = false;

	pthread_mutex_lock(&p->mu);
	for (w = p->workers; w && !busy; w = w->next)
		busy = w->job && w->job->r.kdev == kdev && w->job->r.ino == ino;
	for (j = p->queue; j && !busy; j = j->next)
		busy = j->r.kdev == kdev && j->r.ino == ino;
	for (j = p->done; j && !busy; j = j->next)
		busy = j->r.kdev == kdev && j->r.ino == ino;
	pthread_mutex_unlock(&p->mu);
	return busy;
}

int examine_collect(struct examine_pool *p, void (*fn)(void *ctx, struct examine_result *r),
		    void *ctx)
{
	struct job *done, *j, *late = NULL;
	struct worker *w;
	uint64_t drain, now;
	int n = 0;

	if (read(p->efd, &drain, sizeof(drain)) < 0) {
		/* nothing signalled: the bounds are checked all the same */
	}
	pthread_mutex_lock(&p->mu);
	/* read under the lock: no worker can have started after it */
	now = now_ns();
	done = p->done;
	p->done = NULL;
	for (w = p->workers; w; w = w->next) {
		uint64_t progress;

		if (w->abandoned || !w->job)
			continue;
		/* a file that does not answer for a bound, or that dribbles on for long */
		progress = __atomic_load_n(&w->job->progress_ns, __ATOMIC_RELAXED);
		/* marked after `now` was read (the worker stores without the lock): fresh. Else
		 * now - progress wrapped to 2^64 and a busy, healthy worker was abandoned as
		 * hung (seen: "no answer for 18446744073709 ms", and every file on its device
		 * then refused while it was thought stuck) */
		if (progress > now)
			progress = now;
		if (now - progress <= p->bound_ns && now - w->started_ns <= TOTAL_BOUNDS * p->bound_ns)
			continue;
		/* the worker stays with the file; the loop reports a copy */
		j = calloc(1, sizeof(*j));
		if (!j)
			continue;
		/* only what never changes: the worker writes the rest as it goes */
		j->r.tag = w->job->r.tag;
		j->r.kdev = w->job->r.kdev;
		j->r.ino = w->job->r.ino;
		j->r.wall_ns = now - w->started_ns;
		j->r.status = EXAMINE_TIMEOUT;
		j->r.fd = j->r.copy_fd = -1;
		snprintf(j->r.err, sizeof(j->r.err), "%.128s: no answer for %llu ms (a file "
			 "system that does not answer?), or not read within %d times that: given up "
			 "%s (%llu bytes read), its worker abandoned", w->job->path,
			 (unsigned long long)(now - progress) / 1000000, TOTAL_BOUNDS,
			 __atomic_load_n(&w->job->opened, __ATOMIC_RELAXED) ? "while reading" :
			 "while opening",
			 (unsigned long long)__atomic_load_n(&w->job->copied, __ATOMIC_RELAXED));
		j->next = late;
		late = j;
		w->abandoned = true;
		p->st.workers--;
		p->st.stuck++;
		p->st.timeouts++;
		if (p->st.stuck > p->st.stuck_max)
			p->st.stuck_max = p->st.stuck;
		if (p->st.stuck < EXAMINE_STUCK_MAX)
			worker_spawn(p);
	}
	if (!p->st.workers) {
		/* every worker is blocked: what waits is refused rather than held forever */
		while ((j = p->queue)) {
			p->queue = j->next;
			snprintf(j->r.err, sizeof(j->r.err), "%s: not opened: all examination "
				 "workers are blocked in files that do not answer", j->path);
			j->r.status = EXAMINE_TIMEOUT;
			p->st.refused++;
			j->next = late;
			late = j;
		}
		p->queue_tail = &p->queue;
	}
	pthread_mutex_unlock(&p->mu);
	/* oldest first, roughly: the lists were pushed at their heads */
	for (j = late; j; j = late) {
		late = j->next;
		fn(ctx, &j->r);
		job_free(p, j);
		n++;
	}
	for (j = done; j; j = done) {
		done = j->next;
		fn(ctx, &j->r);
		job_free(p, j);
		n++;
	}
	pthread_mutex_lock(&p->mu);
	p->st.done += n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

unsigned examine_pending(struct examine_pool *p)
{
	struct worker *w;
	struct job *j;
	unsigned n = 0;

	pthread_mutex_lock(&p->mu);
	for (w = p->workers; w; w = w->next)
		n += w->job && !w->abandoned;
	for (j = p->queue; j; j = j->next)
		n++;
	for (j = p->done; j; j = j->next)
		n++;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void examine_stats(struct examine_pool *p, struct examine_stats *s)
{
	pthread_mutex_lock(&p->mu);
	*s = p->st;
	pthread_mutex_unlock(&p->mu);
}

void examine_pool_stop(struct examine_pool *p)
{
	struct timespec until;
	struct job *j;
	bool idle;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	while ((j = p->queue)) {
		p->queue = j->next;
		job_free(p, j);
	}
	p->queue_tail = &p->queue;
	while ((j = p->done)) {
		p->done = j->next;
		job_free(p, j);
	}
	/* live workers end once their file is read: a second at most, then they are left;
	 * abandoned ones are not waited for */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec++;
	while (p->st.workers && pthread_cond_timedwait(&p->gone, &p->mu, &until) == 0)
		;
	idle = !p->workers;
	while ((j = p->done)) {
		p->done = j->next;
		job_free(p, j);
	}
	pthread_mutex_unlock(&p->mu);
	/* nothing can come back to it: freed; else the process's exit takes it */
	if (idle) {
		close(p->efd);
		pthread_cond_destroy(&p->gone);
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
	}
}
