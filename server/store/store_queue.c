#include "store/store_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/list.h"
#include "base/util.h"

#define STORE_QUEUE_RETRY_MS 1000

typedef struct sq_job {
	fnode node;
	sandproc_v1_Process rec; /* the changing fields; no callback fields */
	store_origin origin;
	void (*ended)(void *arg);
	void *arg;
} sq_job;

struct store_queue {
	store *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	fifo jobs; /* the head is written (or retried) first */
	bool stopping;
	int64_t deadline; /* when stopping: give up after this */
	size_t given_up;
	bool fault;
	char cause[256];
	pthread_t thread;
};

static void
sq_push(store_queue *q, sq_job *j)
{
	pthread_mutex_lock(&q->mu);
	fifo_push(&q->jobs, &j->node);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void *
sq_main(void *arg)
{
	store_queue *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->jobs.head == NULL && !q->stopping) {
			pthread_cond_wait(&q->cv, &q->mu);
		}
		if (q->jobs.head == NULL) {
			break;
		}
		sq_job *j = containerof(q->jobs.head, sq_job, node);
		pthread_mutex_unlock(&q->mu);
		int rv = store_update_process(q->st, &j->rec, &j->origin);
		pthread_mutex_lock(&q->mu);
		/* Deleted meanwhile: nothing left to write. */
		if (rv == 0 || rv == ENOENT) {
			fifo_pop(&q->jobs);
			if (q->jobs.head == NULL) {
				q->fault = false;
			}
			pthread_mutex_unlock(&q->mu);
			if (j->ended != NULL) {
				j->ended(j->arg);
			}
			free(j);
			pthread_mutex_lock(&q->mu);
			continue;
		}
		if (!q->fault) {
			util_log("store: cannot write %s's record (%s: %s); kept in memory and retried",
			    j->rec.id, errors_text(rv), store_errmsg());
		}
		q->fault = true;
		snprintf(q->cause, sizeof(q->cause), "store: %s: %s", errors_text(rv), store_errmsg());
		if (q->stopping && util_mono_ms() >= q->deadline) {
			/* Shutting down and still failing: give up on what is left. */
			fnode *n;
			while ((n = fifo_pop(&q->jobs)) != NULL) {
				free(containerof(n, sq_job, node));
				q->given_up++;
			}
			break;
		}
		/* Retry in a while, or at once when another write arrives. */
		util_cond_wait_ms(&q->cv, &q->mu, STORE_QUEUE_RETRY_MS);
	}
	pthread_mutex_unlock(&q->mu);
	return (NULL);
}

int
store_queue_new(store_queue **out, store *st)
{
	store_queue *q = calloc(1, sizeof(*q));
	int rv;

	if (q == NULL) {
		return (ENOMEM);
	}
	q->st = st;
	pthread_mutex_init(&q->mu, NULL);
	util_cond_init(&q->cv);
	if ((rv = pthread_create(&q->thread, NULL, sq_main, q)) != 0) {
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		free(q);
		return (rv);
	}
	*out = q;
	return (0);
}

size_t
store_queue_free(store_queue *q, int64_t deadline_ms)
{
	size_t given_up;

	if (q == NULL) {
		return (0);
	}
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	q->deadline = deadline_ms;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	given_up = q->given_up;
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
	return (given_up);
}

bool
store_queue_fault(store_queue *q, char *cause, size_t len)
{
	bool f;

	pthread_mutex_lock(&q->mu);
	f = q->fault;
	if (f && cause != NULL) {
		snprintf(cause, len, "%s", q->cause);
	}
	pthread_mutex_unlock(&q->mu);
	return (f);
}

size_t
store_queue_pending(store_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->jobs.n;
	pthread_mutex_unlock(&q->mu);
	return (n);
}

typedef struct store_sink {
	sink k;
	store_queue *q;
	store_origin origin;
	void (*ended)(void *arg);
	void *arg;
} store_sink;

static void
store_sink_emit(sink *k, const event *ev)
{
	store_sink *ss = (store_sink *)k;
	sq_job *j;

	if (ev->kind != EV_EXITED && ev->kind != EV_RESIZED) {
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		util_log("%s: record update not queued: out of memory", ev->id);
		if (ev->kind == EV_EXITED && ss->ended != NULL) {
			ss->ended(ss->arg);
		}
		return;
	}
	j->rec = *ev->rec;
	memset(&j->rec.argv, 0, sizeof(j->rec.argv));
	memset(&j->rec.env, 0, sizeof(j->rec.env));
	memset(&j->rec.labels, 0, sizeof(j->rec.labels));
	j->rec.cwd = NULL;
	j->origin = ss->origin;
	if (ev->kind == EV_EXITED) {
		j->ended = ss->ended;
		j->arg = ss->arg;
	}
	sq_push(ss->q, j);
}

static void
store_sink_free(sink *k)
{
	free(k);
}

int
store_sink_new(sink **out, store_queue *q, const store_origin *o, void (*ended)(void *arg), void *arg)
{
	store_sink *ss = calloc(1, sizeof(*ss));

	if (ss == NULL) {
		return (ENOMEM);
	}
	ss->k.emit = store_sink_emit;
	ss->k.free = store_sink_free;
	ss->q = q;
	ss->origin = *o;
	ss->ended = ended;
	ss->arg = arg;
	*out = &ss->k;
	return (0);
}
