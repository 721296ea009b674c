/*
 * One thread that runs deadlines: parked calls' timeouts and other
 * "later" work. A timer's fn runs on the timer thread with the timers' lock
 * held, so it must be short and must not block (it queues work); in
 * exchange, once timers_cancel returns the fn is not running and will not
 * run.
 */
#ifndef BASE_TIMERS_H
#define BASE_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/theap.h"

typedef struct timers timers;

int timers_new(timers **out);
/* Stops the thread; armed timers never fire. */
void timers_free(timers *ts);

/* Arms t to run fn at monotonic time at_ms (re-arms it if armed). */
int timers_arm(timers *ts, timer *t, int64_t at_ms);

/* Disarms t; true if it was armed (and so will not run). */
bool timers_cancel(timers *ts, timer *t);

#endif
