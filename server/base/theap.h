/*
 * A binary min-heap of timers by deadline, for the two places that keep
 * deadlines: the timer thread (timers.c) and the supervisor's loop. The
 * owner provides the locking.
 */
#ifndef BASE_THEAP_H
#define BASE_THEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct timer {
	int64_t at; /* monotonic ms */
	void (*fn)(struct timer *t);
	size_t slot; /* heap index + 1 while armed, 0 otherwise */
} timer;

typedef struct theap {
	timer **v;
	size_t n, cap;
} theap;

/* Arms t at at_ms (moving it if armed); ENOMEM when the heap cannot grow. */
int theap_arm(theap *h, timer *t, int64_t at_ms);
/* Disarms t; true if it was armed. */
bool theap_cancel(theap *h, timer *t);
/* The earliest timer, or NULL. */
static inline timer *
theap_first(const theap *h)
{
	return (h->n > 0 ? h->v[0] : NULL);
}
void theap_free(theap *h);

#endif
