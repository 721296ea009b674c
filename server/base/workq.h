/*
 * A pool of worker threads taking jobs from one FIFO queue: calls that may
 * block, resumed parked calls, and background work (scans, screen rebuilds).
 * The pool grows while every worker is busy (up to a bound) and shrinks
 * back to a few threads once a burst is over, so threads are not kept for
 * the peak.
 */
#ifndef BASE_WORKQ_H
#define BASE_WORKQ_H

#include <stddef.h>

#include "base/list.h"

typedef struct workq workq;

typedef struct workq_job {
	fnode node;
	void (*fn)(struct workq_job *job);
} workq_job;

/* min threads are kept; at most max run at once; idle ones above min exit after idle_ms. */
int workq_new(workq **out, size_t min, size_t max, int idle_ms);

/* Queues job (owned by the caller until fn runs). Never blocks on other jobs. */
void workq_post(workq *wq, workq_job *job);

/* Threads now (for tests and Health). */
size_t workq_threads(workq *wq);

/* Lets queued jobs finish, then stops and joins every thread and frees wq. */
void workq_free(workq *wq);

#endif
