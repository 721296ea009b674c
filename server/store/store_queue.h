/*
 * The store sink: record updates the supervisor makes while processes run
 * (an exit, a resize) are written by this queue's own thread, in order, so
 * a slow or full disk never stalls output capture or the loop. A write that
 * fails for lack of space is kept and retried (every second, and whenever a
 * new write comes), and the fault is reported until it clears. The
 * supervisor keeps each ended record in memory until its write is done.
 */
#ifndef STORE_STORE_QUEUE_H
#define STORE_STORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output/sink.h"
#include "store/store.h"

typedef struct store_queue store_queue;

int store_queue_new(store_queue **out, store *st);

/*
 * Writes what is queued, retrying failures until deadline_ms (monotonic),
 * then stops the thread and frees q. Returns how many writes were given up.
 */
size_t store_queue_free(store_queue *q, int64_t deadline_ms);

/* True while writes fail; cause gets why ("disk full: ..."). */
bool store_queue_fault(store_queue *q, char *cause, size_t len);

/* Writes waiting (for tests and Health). */
size_t store_queue_pending(store_queue *q);

/*
 * A sink that queues the record's changing fields on EV_RESIZED and
 * EV_EXITED. Once the EV_EXITED record is stored, ended(arg) is called on
 * the queue's thread.
 */
int store_sink_new(sink **out, store_queue *q, const store_origin *o, void (*ended)(void *arg), void *arg);

#endif
