#include "base/timers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/util.h"

struct timers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	theap heap;
	bool stopping;
};

static void *
timers_main(void *arg)
{
	timers *ts = arg;

	pthread_mutex_lock(&ts->mu);
	while (!ts->stopping) {
		timer *t = theap_first(&ts->heap);
		if (t == NULL) {
			pthread_cond_wait(&ts->cv, &ts->mu);
			continue;
		}
		if (t->at <= util_mono_ms()) {
			theap_cancel(&ts->heap, t);
			t->fn(t);
			continue;
		}
		struct timespec until = { (time_t)(t->at / 1000), (long)(t->at % 1000) * 1000000 };
		pthread_cond_timedwait(&ts->cv, &ts->mu, &until);
	}
	pthread_mutex_unlock(&ts->mu);
	return (NULL);
}

int
timers_new(timers **out)
{
	timers *ts = calloc(1, sizeof(*ts));
	int rv;

	if (ts == NULL) {
		return (ENOMEM);
	}
	pthread_mutex_init(&ts->mu, NULL);
	util_cond_init(&ts->cv);
	if ((rv = pthread_create(&ts->thread, NULL, timers_main, ts)) != 0) {
		pthread_cond_destroy(&ts->cv);
		pthread_mutex_destroy(&ts->mu);
		free(ts);
		return (rv);
	}
	*out = ts;
	return (0);
}

void
timers_free(timers *ts)
{
	if (ts == NULL) {
		return;
	}
	pthread_mutex_lock(&ts->mu);
	ts->stopping = true;
	pthread_cond_signal(&ts->cv);
	pthread_mutex_unlock(&ts->mu);
	pthread_join(ts->thread, NULL);
	theap_free(&ts->heap);
	pthread_cond_destroy(&ts->cv);
	pthread_mutex_destroy(&ts->mu);
	free(ts);
}

int
timers_arm(timers *ts, timer *t, int64_t at_ms)
{
	int rv;

	pthread_mutex_lock(&ts->mu);
	if ((rv = theap_arm(&ts->heap, t, at_ms)) == 0 && theap_first(&ts->heap) == t) {
		pthread_cond_signal(&ts->cv);
	}
	pthread_mutex_unlock(&ts->mu);
	return (rv);
}

bool
timers_cancel(timers *ts, timer *t)
{
	bool armed;

	pthread_mutex_lock(&ts->mu);
	armed = theap_cancel(&ts->heap, t);
	pthread_mutex_unlock(&ts->mu);
	return (armed);
}
