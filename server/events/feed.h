/*
 * The feed sink: a process's events on the PUB feed, as sp_topics.h names
 * them: output as LogEntry on log/<id> (TermFrame on term/<id> for a TTY),
 * lifecycle as ProcessEvent on proc/<id>. The feed carries no per-message
 * authorization, so lifecycle records go out without env values.
 */
#ifndef EVENTS_FEED_H
#define EVENTS_FEED_H

#include "events/publisher.h"
#include "output/sink.h"

/* Output of process id goes out as TermFrames when tty, else as LogEntries. */
int feed_sink_new(sink **out, publisher *pub, const char *id, bool tty);

/* Publishes a lifecycle event ("started", "exited", "killed", "failed") for rec. */
/*
 * A sink that publishes only output, as LogEntry messages on topic (a
 * Run's run/<token>); 0 or an errno.
 */
int feed_output_sink_new(sink **out, publisher *pub, const char *topic);

void feed_process(publisher *pub, const char *kind, const sandproc_v1_Process *rec);

#endif
