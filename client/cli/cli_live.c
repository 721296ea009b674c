/*
 * `run` for a person or a pipe: the output as it comes, in order. The Run
 * request carries a stream token; the server publishes the output on the
 * feed topic run/<token> while it captures it, and a thread here prints
 * each entry to stdout or stderr in sequence order. The reply still holds
 * all of it, so whatever the feed did not bring (the subscription was not
 * live yet, or PUB dropped an entry) is printed from the reply at the end:
 * nothing is lost, only later. When stdout and stderr are the same file
 * (a terminal, or 2>&1), the Run merges stderr into stdout's pipe at the
 * source (two pipes cannot keep the order of writes across them).
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "sp_topics.h"

typedef struct live {
	nng_socket sub;
	bool open;
	pthread_t th;
	bool started;
	char topic[SP_TOPIC_MAX];
	atomic_bool stop;
	pthread_mutex_t mu;
	uint64_t next_seq; /* the entry printed next */
	size_t printed[2]; /* stdout, stderr */
	bool gap;          /* an entry was missed: the rest comes from the reply */
} live;

static void *
live_main(void *arg)
{
	live *lv = arg;
	sp_arena *a = sp_arena_new();
	size_t tlen = strlen(lv->topic) + 1;

	while (a != NULL && !atomic_load(&lv->stop)) {
		nng_msg *m;
		if (nng_recvmsg(lv->sub, &m, 0) != 0) {
			continue; /* the receive timeout: look at stop again */
		}
		sandproc_v1_LogEntry e;
		sp_arena_reset(a);
		if (nng_msg_len(m) > tlen && memcmp(nng_msg_body(m), lv->topic, tlen) == 0 &&
		    sp_pb_decode(sandproc_v1_LogEntry_fields, &e, sizeof(e),
		        (const uint8_t *)nng_msg_body(m) + tlen, nng_msg_len(m) - tlen, a, NULL)) {
			pthread_mutex_lock(&lv->mu);
			if (!lv->gap && e.sequence != lv->next_seq) {
				lv->gap = true;
			}
			if (!lv->gap) {
				bool err = e.stream == sandproc_v1_Stream_STREAM_STDERR;
				cli_write_fd(err ? 2 : 1, e.data.data, e.data.len);
				lv->printed[err] += e.data.len;
				lv->next_seq++;
			}
			pthread_mutex_unlock(&lv->mu);
		}
		nng_msg_free(m);
	}
	sp_arena_free(a);
	return (NULL);
}

/* A token no other run of this machine uses now. */
static void
live_token(char *out, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "%d-%lx-%lx", (int)getpid(), (unsigned long)ts.tv_sec, (unsigned long)ts.tv_nsec);
}

/* Subscribes to run/<token> (best effort: without the feed, the reply prints it all). */
static void
live_start(live *lv, cli *cl, char *token, size_t len)
{
	memset(lv, 0, sizeof(*lv));
	pthread_mutex_init(&lv->mu, NULL);
	lv->next_seq = 1;
	live_token(token, len);
	snprintf(lv->topic, sizeof(lv->topic), "%s/%s", SP_TOPIC_RUN, token);
	if (nng_sub0_open(&lv->sub) != 0) {
		return;
	}
	lv->open = true;
	/* The topic and its NUL: exactly this run's messages. */
	if (nng_socket_set(lv->sub, NNG_OPT_SUB_SUBSCRIBE, lv->topic, strlen(lv->topic) + 1) != 0 ||
	    nng_socket_set_int(lv->sub, NNG_OPT_RECVBUF, 8192) != 0 ||
	    nng_socket_set_ms(lv->sub, NNG_OPT_RECVTIMEO, 50) != 0 ||
	    strcmp(sp_resolve_events_url(cl->events), "none") == 0 ||
	    sp_feed_dial(lv->sub, sp_resolve_events_url(cl->events)) != 0) {
		return;
	}
	lv->started = pthread_create(&lv->th, NULL, live_main, lv) == 0;
}

/* Whether fds 1 and 2 are the same file (a terminal, or 2>&1). */
static bool
live_same_output(void)
{
	struct stat a, b;
	return (fstat(1, &a) == 0 && fstat(2, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

/*
 * The reply came: lets the feed catch up with it (briefly), stops, and
 * prints what the feed did not bring.
 */
static void
live_finish(live *lv, const sandproc_v1_RunReply *rep)
{
	size_t want[2] = { rep->stdout.len, rep->stderr.len };

	for (int quiet = 0; lv->started && quiet < 20; quiet++) {
		pthread_mutex_lock(&lv->mu);
		bool done = lv->gap || (lv->printed[0] >= want[0] && lv->printed[1] >= want[1]);
		size_t before = lv->printed[0] + lv->printed[1];
		pthread_mutex_unlock(&lv->mu);
		if (done) {
			break;
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&lv->mu);
		quiet = lv->printed[0] + lv->printed[1] != before ? 0 : quiet;
		pthread_mutex_unlock(&lv->mu);
	}
	atomic_store(&lv->stop, true);
	if (lv->started) {
		pthread_join(lv->th, NULL);
	}
	if (lv->printed[0] < want[0]) {
		cli_write_fd(1, rep->stdout.data + lv->printed[0], want[0] - lv->printed[0]);
	}
	if (lv->printed[1] < want[1]) {
		cli_write_fd(2, rep->stderr.data + lv->printed[1], want[1] - lv->printed[1]);
	}
	/* Not closed: nng 1.5.2 can deadlock closing a SUB socket that receives; the process ends soon. */
	pthread_mutex_destroy(&lv->mu);
}

int
cli_run_live(cli *cl, sandproc_v1_RunRequest *req, sandproc_v1_RunReply *rep, int timeout_ms)
{
	live lv;

	/* One destination for both: merged at the source, so the order is the order written. */
	req->merge_stderr = live_same_output();
	live_start(&lv, cl, req->stream_token, sizeof(req->stream_token));
	int code = sp_processes_run(cl->c, req, rep, timeout_ms);
	if (code != SP_OK) {
		atomic_store(&lv.stop, true);
		if (lv.started) {
			pthread_join(lv.th, NULL);
		}
		pthread_mutex_destroy(&lv.mu);
		return (code);
	}
	fflush(stdout);
	live_finish(&lv, rep);
	return (SP_OK);
}
