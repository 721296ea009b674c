#include "base/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/util.h"

#define WORKQ_STACK (512 * 1024)

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or stopping */
	pthread_cond_t gone; /* a thread exited */
	fifo jobs;
	size_t threads, idle;
	size_t min, max;
	int idle_ms;
	bool stopping;
};

static void *workq_main(void *arg);

/* Caller holds mu. */
static void
workq_spawn(workq *wq)
{
	pthread_attr_t attr;
	pthread_t th;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKQ_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, workq_main, wq) == 0) {
		wq->threads++;
	} else if (wq->threads == 0) {
		util_log("cannot start a worker thread; work waits");
	}
	pthread_attr_destroy(&attr);
}

int
workq_new(workq **out, size_t min, size_t max, int idle_ms)
{
	workq *wq = calloc(1, sizeof(*wq));

	if (wq == NULL) {
		return (ENOMEM);
	}
	pthread_mutex_init(&wq->mu, NULL);
	util_cond_init(&wq->work);
	pthread_cond_init(&wq->gone, NULL);
	wq->min = min;
	wq->max = max < min ? min : max;
	wq->idle_ms = idle_ms;
	pthread_mutex_lock(&wq->mu);
	for (size_t i = 0; i < min; i++) {
		workq_spawn(wq);
	}
	pthread_mutex_unlock(&wq->mu);
	*out = wq;
	return (0);
}

void
workq_post(workq *wq, workq_job *job)
{
	pthread_mutex_lock(&wq->mu);
	fifo_push(&wq->jobs, &job->node);
	/* Idle threads that were signalled may not have taken their job yet: count jobs, not signals. */
	if (wq->jobs.n > wq->idle && wq->threads < wq->max && !wq->stopping) {
		workq_spawn(wq);
	}
	pthread_cond_signal(&wq->work);
	pthread_mutex_unlock(&wq->mu);
}

size_t
workq_threads(workq *wq)
{
	size_t n;

	pthread_mutex_lock(&wq->mu);
	n = wq->threads;
	pthread_mutex_unlock(&wq->mu);
	return (n);
}

static void *
workq_main(void *arg)
{
	workq *wq = arg;

	pthread_mutex_lock(&wq->mu);
	for (;;) {
		while (wq->jobs.head == NULL && !wq->stopping) {
			wq->idle++;
			int rv = util_cond_wait_ms(&wq->work, &wq->mu, wq->idle_ms);
			wq->idle--;
			if (rv == ETIMEDOUT && wq->jobs.head == NULL && wq->threads > wq->min) {
				goto out; /* the burst is over */
			}
		}
		fnode *n = fifo_pop(&wq->jobs);
		if (n == NULL) {
			break; /* stopping, and nothing left to do */
		}
		workq_job *job = containerof(n, workq_job, node);
		pthread_mutex_unlock(&wq->mu);
		job->fn(job);
		pthread_mutex_lock(&wq->mu);
	}
out:
	wq->threads--;
	pthread_cond_broadcast(&wq->gone);
	pthread_mutex_unlock(&wq->mu);
	return (NULL);
}

void
workq_free(workq *wq)
{
	if (wq == NULL) {
		return;
	}
	pthread_mutex_lock(&wq->mu);
	wq->stopping = true;
	pthread_cond_broadcast(&wq->work);
	while (wq->threads > 0) {
		pthread_cond_wait(&wq->gone, &wq->mu);
	}
	pthread_mutex_unlock(&wq->mu);
	pthread_cond_destroy(&wq->work);
	pthread_cond_destroy(&wq->gone);
	pthread_mutex_destroy(&wq->mu);
	free(wq);
}
