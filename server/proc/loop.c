#include "proc/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"

struct loop {
	pthread_mutex_t mu; /* timers, jobs, stopping */
	theap timers;
	fifo jobs;
	bool stopping;
	int ep, wakefd;
	loop_src s_wake;
	pthread_t thread;
};

static void
loop_wake(loop *lp)
{
	uint64_t one = 1;
	ssize_t n = write(lp->wakefd, &one, sizeof(one));
	(void)n; /* a full counter already means "wake up" */
}

static void
loop_on_wake(loop_src *src, uint32_t events)
{
	loop *lp = containerof(src, loop, s_wake);
	uint64_t v;
	ssize_t n = read(lp->wakefd, &v, sizeof(v));

	(void)events;
	(void)n;
}

/* Runs due timers and queued jobs; returns the epoll timeout until the next deadline. */
static int
loop_due(loop *lp, bool *stop)
{
	for (;;) {
		pthread_mutex_lock(&lp->mu);
		if (lp->stopping) {
			*stop = true;
			pthread_mutex_unlock(&lp->mu);
			return (0);
		}
		fnode *n = fifo_pop(&lp->jobs);
		if (n != NULL) {
			loop_job *job = containerof(n, loop_job, node);
			pthread_mutex_unlock(&lp->mu);
			job->fn(job);
			continue;
		}
		timer *t = theap_first(&lp->timers);
		int64_t now = util_mono_ms();
		if (t != NULL && t->at <= now) {
			theap_cancel(&lp->timers, t);
			pthread_mutex_unlock(&lp->mu);
			t->fn(t);
			continue;
		}
		int timeout = t == NULL ? -1 : t->at - now > 60000 ? 60000 : (int)(t->at - now);
		pthread_mutex_unlock(&lp->mu);
		return (timeout);
	}
}

static void *
loop_main(void *arg)
{
	loop *lp = arg;
	struct epoll_event evs[64];
	bool stop = false;

	for (;;) {
		int timeout = loop_due(lp, &stop);
		if (stop) {
			break;
		}
		int n = epoll_wait(lp->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
		for (int i = 0; i < n; i++) {
			loop_src *src = evs[i].data.ptr;
			src->fn(src, evs[i].events);
		}
	}
	return (NULL);
}

int
loop_new(loop **out, char *err, size_t errlen)
{
	loop *lp = calloc(1, sizeof(*lp));
	int rv;

	if (lp == NULL) {
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	pthread_mutex_init(&lp->mu, NULL);
	lp->ep = epoll_create1(EPOLL_CLOEXEC);
	lp->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	lp->s_wake.fn = loop_on_wake;
	if (lp->ep < 0 || lp->wakefd < 0 || loop_add(lp, lp->wakefd, &lp->s_wake) != 0) {
		rv = errno;
		snprintf(err, errlen, "epoll/eventfd: %s", strerror(rv));
		goto fail;
	}
	if ((rv = pthread_create(&lp->thread, NULL, loop_main, lp)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rv));
		goto fail;
	}
	*out = lp;
	return (0);
fail:
	if (lp->ep >= 0) {
		close(lp->ep);
	}
	if (lp->wakefd >= 0) {
		close(lp->wakefd);
	}
	pthread_mutex_destroy(&lp->mu);
	free(lp);
	return (rv);
}

void
loop_free(loop *lp)
{
	if (lp == NULL) {
		return;
	}
	pthread_mutex_lock(&lp->mu);
	lp->stopping = true;
	pthread_mutex_unlock(&lp->mu);
	loop_wake(lp);
	if (!pthread_equal(pthread_self(), lp->thread)) {
		pthread_join(lp->thread, NULL);
	}
	close(lp->ep);
	close(lp->wakefd);
	theap_free(&lp->timers);
	pthread_mutex_destroy(&lp->mu);
	free(lp);
}

int
loop_add(loop *lp, int fd, loop_src *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		return (errno);
	}
	return (0);
}

void
loop_del(loop *lp, int fd)
{
	if (fd >= 0) {
		epoll_ctl(lp->ep, EPOLL_CTL_DEL, fd, NULL);
	}
}

void
loop_arm(loop *lp, timer *t, int64_t at_ms)
{
	bool first;

	pthread_mutex_lock(&lp->mu);
	if (theap_arm(&lp->timers, t, at_ms) != 0) {
		util_log("loop: cannot arm a timer: out of memory");
	}
	first = theap_first(&lp->timers) == t;
	pthread_mutex_unlock(&lp->mu);
	if (first && !loop_on_thread(lp)) {
		loop_wake(lp);
	}
}

void
loop_cancel(loop *lp, timer *t)
{
	pthread_mutex_lock(&lp->mu);
	theap_cancel(&lp->timers, t);
	pthread_mutex_unlock(&lp->mu);
}

void
loop_post(loop *lp, loop_job *job)
{
	pthread_mutex_lock(&lp->mu);
	fifo_push(&lp->jobs, &job->node);
	pthread_mutex_unlock(&lp->mu);
	loop_wake(lp);
}

bool
loop_on_thread(loop *lp)
{
	return (pthread_equal(pthread_self(), lp->thread) != 0);
}
