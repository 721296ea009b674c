/*
 * Following a process's output. PUB/SUB drops messages for a subscriber
 * that falls behind, so the feed only says "something new happened";
 * correctness comes from the log: subscribe first, read history, merge the
 * feed by sequence and fill every gap with Logs(after_sequence). Quiet
 * periods are covered by a Logs poll, so a missed end event cannot hang.
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandproc.h"

#define FOLLOW_RECVBUF 256
#define FOLLOW_RECV_MAX (4u * 1024 * 1024)
#define FOLLOW_PAGE_BYTES (4u * 1024 * 1024)
/* Without a feed, how long one Logs read waits for output. */
#define FOLLOW_LONG_POLL_MS 5000

typedef struct follow {
	sp_client *c;
	const char *id;
	sandproc_v1_Stream stream;
	sp_follow_fn fn;
	void *arg;
	uint64_t *gaps_filled;
	uint64_t last; /* highest sequence seen, of any stream */
	sandproc_v1_LogsReply *page;
	bool stopped;
	uint32_t wait_ms; /* without a feed: each drain's first read is a long poll this long */
} follow;

static bool
follow_wanted(const follow *f, sandproc_v1_Stream s)
{
	return (f->stream == sandproc_v1_Stream_STREAM_UNSPECIFIED ||
	    f->stream == sandproc_v1_Stream_STREAM_COMBINED || f->stream == s);
}

/* Delivers e unless it was seen already. */
static void
follow_deliver(follow *f, const sandproc_v1_LogEntry *e)
{
	if (e->sequence <= f->last || f->stopped) {
		return;
	}
	f->last = e->sequence;
	if (follow_wanted(f, e->stream) && f->fn(f->arg, e) != 0) {
		f->stopped = true;
	}
}

/*
 * Reads the log after f->last until it is exhausted. *state gets the
 * process state read before those entries: once it is not running, the
 * log was complete.
 */
static int
follow_drain(follow *f, uint32_t tail_lines, uint32_t tail, sandproc_v1_State *state)
{
	sandproc_v1_LogsRequest req;
	int code;

	do {
		memset(&req, 0, sizeof(req));
		snprintf(req.id, sizeof(req.id), "%s", f->id);
		req.after_sequence = f->last;
		req.tail = tail;
		req.tail_lines = tail_lines;
		/* Catching up is done in big pages: fewer round trips behind a fast writer. */
		req.max_bytes = FOLLOW_PAGE_BYTES;
		req.stream = f->stream;
		req.wait_ms = tail == 0 && tail_lines == 0 ? f->wait_ms : 0;
		if ((code = sp_processes_logs(
		         f->c, &req, f->page, req.wait_ms ? sp_call_timeout(req.wait_ms) : 0)) != SP_OK) {
			return (code);
		}
		for (pb_size_t i = 0; i < f->page->entries_count && !f->stopped; i++) {
			follow_deliver(f, &f->page->entries[i]);
		}
		if (f->stopped) {
			return (SP_CANCELLED);
		}
		/* Entries of other streams were looked at too: skip past them. */
		if (f->page->next_sequence > f->last) {
			f->last = f->page->next_sequence;
		}
		*state = f->page->state;
		tail = tail_lines = 0;
		/* Only the first read waits: the rest catch up at once. */
		f->wait_ms = 0;
	} while (f->page->has_more);
	return (SP_OK);
}

/*
 * SUB sockets are pooled, never closed while the process runs: nng 1.5.2's
 * nng_close on a SUB socket that is still receiving can deadlock its reaper
 * (nanomsg/nng#1543), and PUB sends every topic to every subscriber, so a
 * feed is hardly ever quiet. A follow takes a socket (one per events URL,
 * made on demand), subscribes to its topics, and gives it back with the
 * topics dropped: messages for no topic are discarded as they arrive.
 */
typedef struct follow_sub {
	struct follow_sub *next;
	nng_socket sock;
	char url[256];
} follow_sub;

static pthread_mutex_t follow_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static follow_sub *follow_pool;

static void
follow_topics(follow_sub *fs, const char *id, bool tty, const char *option)
{
	char topic[64];

	/* The NUL after the id is part of the topic, so no other id matches. */
	snprintf(topic, sizeof(topic), "%s/%s", tty ? "term" : "log", id);
	nng_socket_set(fs->sock, option, topic, strlen(topic) + 1);
	snprintf(topic, sizeof(topic), "proc/%s", id);
	nng_socket_set(fs->sock, option, topic, strlen(topic) + 1);
}

int
sp_feed_dial(nng_socket s, const char *url)
{
	nng_tls_config *tls = NULL;
	char err[300];
	int rv;

	if (sp_tls_url(url) && (rv = sp_tls_from_env(&tls, err, sizeof(err))) != 0) {
		return (rv);
	}
	rv = sp_dial(s, url, tls);
	if (tls != NULL) {
		nng_tls_config_free(tls); /* the dialer holds its own reference */
	}
	return (rv);
}

/* A subscribed SUB socket for id on url, or NULL when the feed is unreachable (polling only). */
static follow_sub *
follow_take(const char *url, const char *id, bool tty, int recvbuf)
{
	follow_sub *fs = NULL, **pp;

	pthread_mutex_lock(&follow_pool_mu);
	for (pp = &follow_pool; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->url, url) == 0) {
			fs = *pp;
			*pp = fs->next;
			break;
		}
	}
	pthread_mutex_unlock(&follow_pool_mu);
	if (fs == NULL) {
		if (strlen(url) >= sizeof(fs->url) || (fs = calloc(1, sizeof(*fs))) == NULL) {
			return (NULL);
		}
		snprintf(fs->url, sizeof(fs->url), "%s", url);
		if (nng_sub0_open(&fs->sock) != 0) {
			free(fs);
			return (NULL);
		}
		nng_socket_set_size(fs->sock, NNG_OPT_RECVMAXSZ, FOLLOW_RECV_MAX);
		if (sp_feed_dial(fs->sock, url) != 0) {
			/* Nothing received yet, so closing is safe here. */
			nng_close(fs->sock);
			free(fs);
			return (NULL);
		}
	}
	nng_socket_set_int(fs->sock, NNG_OPT_RECVBUF, recvbuf > 0 ? recvbuf : FOLLOW_RECVBUF);
	follow_topics(fs, id, tty, NNG_OPT_SUB_SUBSCRIBE);
	return (fs);
}

static void
follow_give(follow_sub *fs, const char *id, bool tty)
{
	follow_topics(fs, id, tty, NNG_OPT_SUB_UNSUBSCRIBE);
	pthread_mutex_lock(&follow_pool_mu);
	fs->next = follow_pool;
	follow_pool = fs;
	pthread_mutex_unlock(&follow_pool_mu);
}

/* True when a feed message's topic is one of this follow's (a pooled socket may hold older ones). */
static bool
follow_topic_is(const char *topic, const char *id)
{
	const char *slash = strchr(topic, '/');
	return (slash != NULL && strcmp(slash + 1, id) == 0);
}

/*
 * Handles one feed message: an entry (merged, with gaps filled) or an end
 * event. *ended is set once the process is over and its log drained.
 */
static int
follow_on_message(follow *f, nng_msg *m, sp_arena *a, bool *ended)
{
	const char *body = nng_msg_body(m);
	size_t len = nng_msg_len(m);
	const char *nul = memchr(body, '\0', len);
	const uint8_t *pb;
	size_t pblen;
	sandproc_v1_State state;
	int code = SP_OK;

	if (nul == NULL || !follow_topic_is(body, f->id)) {
		return (SP_OK);
	}
	pb = (const uint8_t *)nul + 1;
	pblen = len - (size_t)(pb - (const uint8_t *)body);
	sp_arena_reset(a);
	if (strncmp(body, "proc/", 5) == 0) {
		sandproc_v1_ProcessEvent ev;
		if (sp_pb_decode(sandproc_v1_ProcessEvent_fields, &ev, sizeof(ev), pb, pblen, a, NULL) &&
		    ev.process.state != sandproc_v1_State_STATE_RUNNING) {
			if ((code = follow_drain(f, 0, 0, &state)) == SP_OK) {
				*ended = state != sandproc_v1_State_STATE_RUNNING;
			}
		}
		return (code);
	}
	sandproc_v1_LogEntry e;
	if (strncmp(body, "term/", 5) == 0) {
		sandproc_v1_TermFrame t;
		if (!sp_pb_decode(sandproc_v1_TermFrame_fields, &t, sizeof(t), pb, pblen, a, NULL)) {
			return (SP_OK);
		}
		memset(&e, 0, sizeof(e));
		e.sequence = t.sequence;
		e.stream = sandproc_v1_Stream_STREAM_PTY;
		e.timestamp_ms = t.timestamp_ms;
		e.data = t.data;
	} else if (!sp_pb_decode(sandproc_v1_LogEntry_fields, &e, sizeof(e), pb, pblen, a, NULL)) {
		return (SP_OK);
	}
	if (e.sequence > f->last + 1) {
		/* Something was dropped (or came before we subscribed): the log has it. */
		if (f->gaps_filled != NULL) {
			(*f->gaps_filled)++;
		}
		if ((code = follow_drain(f, 0, 0, &state)) != SP_OK) {
			return (code);
		}
		if (state != sandproc_v1_State_STATE_RUNNING) {
			*ended = true;
			return (SP_OK);
		}
	}
	follow_deliver(f, &e);
	return (f->stopped ? SP_CANCELLED : SP_OK);
}

int
sp_follow(sp_client *c, const char *id, const sp_follow_opts *opts, sp_follow_fn fn, void *arg,
    sandproc_v1_Process *final)
{
	sp_follow_opts none;
	sandproc_v1_GetRequest get;
	sandproc_v1_Process rec;
	sandproc_v1_State state = sandproc_v1_State_STATE_RUNNING;
	follow_sub *sub;
	bool feed, ended = false;
	sp_arena *a = sp_arena_new();
	follow f;
	int code;

	if (opts == NULL) {
		memset(&none, 0, sizeof(none));
		opts = &none;
	}
	memset(&f, 0, sizeof(f));
	f.c = c;
	f.id = id;
	f.stream = opts->stream;
	f.fn = fn;
	f.arg = arg;
	f.gaps_filled = opts->gaps_filled;
	f.last = opts->after_sequence;
	if (a == NULL || (f.page = malloc(sizeof(*f.page))) == NULL) {
		sp_arena_free(a);
		return (SP_RESOURCE_EXHAUSTED);
	}
	memset(&get, 0, sizeof(get));
	snprintf(get.id, sizeof(get.id), "%s", id);
	if ((code = sp_processes_get(c, &get, &rec, 0)) != SP_OK) {
		goto out;
	}
	/* Subscribe before reading history, so nothing falls between the two. */
	const char *events = sp_resolve_events_url(opts->events_url);
	sub = strcmp(events, "none") == 0 ? NULL : follow_take(events, id, rec.tty, opts->recv_buffer);
	feed = sub != NULL;
	if (feed) {
		nng_socket_set_ms(sub->sock, NNG_OPT_RECVTIMEO, opts->poll_ms > 0 ? opts->poll_ms : 500);
	}
	if (opts->live_only) {
		sandproc_v1_LogsRequest req;
		memset(&req, 0, sizeof(req));
		snprintf(req.id, sizeof(req.id), "%s", id);
		req.tail = 1;
		if ((code = sp_processes_logs(c, &req, f.page, 0)) != SP_OK) {
			goto close;
		}
		f.last = f.page->last_sequence;
		state = f.page->state;
	} else if ((code = follow_drain(&f, opts->after_sequence ? 0 : opts->tail,
	                opts->after_sequence ? 0 : opts->tail_entries, &state)) != SP_OK) {
		goto close;
	}
	ended = state != sandproc_v1_State_STATE_RUNNING;
	nng_time unreachable_since = 0;
	int poll_ms = opts->poll_ms > 0 ? opts->poll_ms : 500;
	while (!ended) {
		nng_msg *m = NULL;
		if (opts->stop != NULL && __atomic_load_n(opts->stop, __ATOMIC_ACQUIRE) != 0) {
			code = SP_CANCELLED;
			goto close;
		}
		int rv = feed ? nng_recvmsg(sub->sock, &m, 0) : NNG_ETIMEDOUT;
		if (rv == 0) {
			code = follow_on_message(&f, m, a, &ended);
			nng_msg_free(m);
		} else if (rv == NNG_ETIMEDOUT) {
			/* No feed: the server holds the read until output comes or the process ends. */
			uint64_t before = f.last;
			nng_time asked = nng_clock();
			f.wait_ms = feed ? 0 : opts->stop != NULL ? poll_ms : FOLLOW_LONG_POLL_MS;
			if ((code = follow_drain(&f, 0, 0, &state)) == SP_OK) {
				ended = state != sandproc_v1_State_STATE_RUNNING;
			}
			/* A server without long polls answers at once: poll then. */
			if (!feed && code == SP_OK && !ended && f.last == before &&
			    nng_clock() - asked < 20) {
				nng_msleep(poll_ms);
			}
		} else {
			code = SP_UNAVAILABLE;
		}
		if ((code == SP_UNAVAILABLE || code == SP_DEADLINE_EXCEEDED) && opts->reconnect_ms > 0) {
			/* The server is away (a restart): the feed and calls reconnect by themselves. */
			unreachable_since = unreachable_since ? unreachable_since : nng_clock();
			if (nng_clock() - unreachable_since < (nng_time)opts->reconnect_ms) {
				nng_msleep(50);
				continue;
			}
		}
		if (code != SP_OK) {
			goto close;
		}
		unreachable_since = 0;
	}
	if (final != NULL) {
		code = sp_processes_get(c, &get, final, 0);
	}
close:
	if (feed) {
		follow_give(sub, id, rec.tty);
	}
out:
	free(f.page);
	sp_arena_free(a);
	return (code);
}
