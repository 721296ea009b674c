#include "events/feed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandproc/v1/events.pb.h"
#include "sp_topics.h"

typedef struct feed_sink {
	sink k;
	publisher *pub;
	char topic[SP_TOPIC_MAX]; /* output: log/<id> or term/<id> */
} feed_sink;

void
feed_process(publisher *pub, const char *kind, const sandproc_v1_Process *rec)
{
	sandproc_v1_ProcessEvent ev;
	char topic[SP_TOPIC_MAX];

	if (sp_topic(topic, sizeof(topic), SP_TOPIC_PROC, rec->id) < 0) {
		return;
	}
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
	ev.has_process = true;
	ev.process = *rec;
	/* Subscribers are not authorized per message: values such as API keys stay out. */
	ev.process.env.n = 0;
	ev.process.env.v = NULL;
	publisher_send(pub, topic, sandproc_v1_ProcessEvent_fields, &ev);
}

static void
feed_sink_emit(sink *k, const event *ev)
{
	feed_sink *fs = (feed_sink *)k;

	switch (ev->kind) {
	case EV_STARTED:
		feed_process(fs->pub, "started", ev->rec);
		break;
	case EV_EXITED:
		feed_process(fs->pub,
		    ev->rec->state == sandproc_v1_State_STATE_EXITED       ? "exited"
		        : ev->rec->state == sandproc_v1_State_STATE_FAILED ? "failed"
		                                                           : "killed",
		    ev->rec);
		break;
	case EV_OUTPUT:
		if (ev->stream == sandproc_v1_Stream_STREAM_PTY) {
			sandproc_v1_TermFrame f;
			memset(&f, 0, sizeof(f));
			snprintf(f.process_id, sizeof(f.process_id), "%s", ev->id);
			f.sequence = ev->seq;
			f.timestamp_ms = ev->ts_ms;
			f.data.data = ev->data;
			f.data.len = ev->len;
			publisher_send(fs->pub, fs->topic, sandproc_v1_TermFrame_fields, &f);
		} else {
			sandproc_v1_LogEntry e;
			memset(&e, 0, sizeof(e));
			e.sequence = ev->seq;
			e.stream = ev->stream;
			e.timestamp_ms = ev->ts_ms;
			e.data.data = ev->data;
			e.data.len = ev->len;
			publisher_send(fs->pub, fs->topic, sandproc_v1_LogEntry_fields, &e);
		}
		break;
	case EV_RESIZED:
		break;
	}
}

static void
feed_sink_free(sink *k)
{
	free(k);
}

int
feed_sink_new(sink **out, publisher *pub, const char *id, bool tty)
{
	feed_sink *fs = calloc(1, sizeof(*fs));

	if (fs == NULL) {
		return (ENOMEM);
	}
	if (sp_topic(fs->topic, sizeof(fs->topic), tty ? SP_TOPIC_TERM : SP_TOPIC_LOG, id) < 0) {
		free(fs);
		return (EINVAL);
	}
	fs->k.emit = feed_sink_emit;
	fs->k.free = feed_sink_free;
	fs->pub = pub;
	*out = &fs->k;
	return (0);
}

static void
feed_output_emit(sink *k, const event *ev)
{
	if (ev->kind == EV_OUTPUT) {
		feed_sink_emit(k, ev);
	}
}

int
feed_output_sink_new(sink **out, publisher *pub, const char *topic)
{
	feed_sink *fs = calloc(1, sizeof(*fs));

	if (fs == NULL) {
		return (ENOMEM);
	}
	fs->k.emit = feed_output_emit;
	fs->k.free = feed_sink_free;
	fs->pub = pub;
	snprintf(fs->topic, sizeof(fs->topic), "%s", topic);
	*out = &fs->k;
	return (0);
}
