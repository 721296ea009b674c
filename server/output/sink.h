/*
 * One ordered event stream per process. The supervisor turns everything
 * that happens to a child into events, in one order (started, output...,
 * resized..., exited), and hands each to the process's sinks: the log file
 * (log_sink.c), the store (store/store_queue.c), the PUB feed
 * (events/feed.c), the TTY screen (screen.c) and a Run's capture buffers
 * (proc/run.c). A sink owns its format and its failures; it never blocks
 * the stream on I/O it does not own.
 */
#ifndef OUTPUT_SINK_H
#define OUTPUT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandproc/v1/processes.pb.h"

typedef enum event_kind {
	EV_STARTED, /* rec: the new record */
	EV_OUTPUT,  /* seq, stream, ts_ms, data, len */
	EV_RESIZED, /* rec: with the new cols and rows */
	EV_EXITED,  /* rec: the final record */
} event_kind;

typedef struct event {
	event_kind kind;
	const char *id;
	const sandproc_v1_Process *rec;
	uint64_t seq;
	sandproc_v1_Stream stream;
	int64_t ts_ms;
	const uint8_t *data;
	size_t len;
	bool stored; /* output already in the log (a holder wrote it) */
} event;

typedef struct sink sink;

struct sink {
	void (*emit)(sink *k, const event *ev);
	void (*free)(sink *k);
	sink *next;
};

/* Hands ev to every sink of the list, in order. */
static inline void
sinks_emit(sink *list, const event *ev)
{
	for (sink *k = list; k != NULL; k = k->next) {
		k->emit(k, ev);
	}
}

/* Frees every sink of the list. */
static inline void
sinks_free(sink *list)
{
	while (list != NULL) {
		sink *next = list->next;
		list->free(list);
		list = next;
	}
}

/* What the log sink could not store, for the final record. */
typedef struct sink_losses {
	uint64_t bytes; /* output bytes not stored */
	int err;        /* why (the first errno) */
} sink_losses;

struct config_holder;

/*
 * A sink that appends output to process id's log under dir, rolling at the
 * configured max_log_bytes_per_process; losses (owned by the caller, read
 * once the stream has ended) counts what it could not store. *last_seq gets
 * the newest sequence already in the log. Output marked stored is skipped.
 */
int log_sink_new(sink **out, const char *dir, const char *id, struct config_holder *cfg, sink_losses *losses,
    uint64_t *last_seq);

#endif
