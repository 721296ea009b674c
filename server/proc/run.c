#include "proc/run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "events/feed.h"
#include "os/fdio.h"
#include "os/spawn.h"
#include "output/sink.h"
#include "proc/proc.h"
#include "proc/request.h"
#include "sp_status.h"
#include "sp_topics.h"

#define RUN_READ_MAX (64 * 1024)

typedef struct run_buf {
	uint8_t *data;
	size_t len, cap, limit;
	bool truncated;
} run_buf;

/* Keeps what fits under the limit; the rest (or what memory refuses) is counted as truncation. */
static void
run_buf_add(run_buf *b, const uint8_t *data, size_t len)
{
	size_t take = len;

	if (b->len + take > b->limit) {
		take = b->limit - b->len;
		b->truncated = true;
	}
	if (take == 0) {
		return;
	}
	if (b->len + take > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + take) {
			cap *= 2;
		}
		if (cap > b->limit) {
			cap = b->limit;
		}
		uint8_t *d = realloc(b->data, cap);
		if (d == NULL) {
			b->truncated = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, take);
	b->len += take;
}

/* The capture sink: a Run's output into its three buffers. */
typedef struct capture_sink {
	sink k;
	run_buf out, err, all;
} capture_sink;

static void
capture_emit(sink *k, const event *ev)
{
	capture_sink *c = (capture_sink *)k;

	if (ev->kind != EV_OUTPUT) {
		return;
	}
	run_buf_add(ev->stream == sandproc_v1_Stream_STREAM_STDERR ? &c->err : &c->out, ev->data, ev->len);
	run_buf_add(&c->all, ev->data, ev->len);
}

typedef struct run_state {
	spawn_child c;
	capture_sink cap;
	sink *sinks;
	uint64_t seq;
	const uint8_t *in;
	size_t in_len, in_off;
	uint8_t chunk[RUN_READ_MAX];
} run_state;

/* Reads what fd has now into the stream: true when bytes came; at EOF it also closes fd. */
static bool
run_read(run_state *st, int *fd, sandproc_v1_Stream stream)
{
	ssize_t n = fdio_read(*fd, st->chunk, sizeof(st->chunk));

	if (n > 0) {
		event ev = { .kind = EV_OUTPUT,
			.seq = ++st->seq,
			.ts_ms = util_now_ms(),
			.stream = stream,
			.data = st->chunk,
			.len = (size_t)n };
		sinks_emit(st->sinks, &ev);
		return (true);
	}
	if (n < 0) {
		close(*fd);
		*fd = -1;
	}
	return (false);
}

/* Takes what a pipe holds now, bounded in case something outside the group keeps writing. */
static void
run_drain(run_state *st, int *fd, sandproc_v1_Stream stream)
{
	for (int guard = 0; guard < 1024 && *fd >= 0 && run_read(st, fd, stream); guard++) {}
}

static void
run_write_stdin(run_state *st)
{
	ssize_t n = write(st->c.in_fd, st->in + st->in_off, st->in_len - st->in_off);

	if (n > 0) {
		st->in_off += (size_t)n;
	}
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || st->in_off == st->in_len) {
		/* Done, or the command closed its stdin: it gets EOF either way. */
		close(st->c.in_fd);
		st->c.in_fd = -1;
	}
}

int
run_command(supervisor *s, config_holder *cfg, const sandproc_v1_RunRequest *req, sandproc_v1_RunReply *rep,
    run_result *res, const run_place *place, sp_arena *arena, char *err, size_t errlen)
{
	sandproc_v1_Config c;
	spawn_spec spec;
	run_state *st;
	uint32_t active, max;
	int code, errnum, status = 0;
	bool timed_out = false, exited = false;

	memset(res, 0, sizeof(*res));
	config_holder_get(cfg, &c);
	if ((code = request_run_spec(req, &spec, arena, err, errlen)) != SP_OK) {
		return (code);
	}
	spec.fd3 = -1;
	if (req->stdin.len > c.max_input_bytes_per_request) {
		snprintf(err, errlen, "stdin is %zu bytes; max_input_bytes_per_request is %llu",
		    req->stdin.len, (unsigned long long)c.max_input_bytes_per_request);
		return (SP_RESOURCE_EXHAUSTED);
	}
	uint32_t timeout_ms = req->timeout_ms ? req->timeout_ms : c.default_run_timeout_ms;
	if (timeout_ms > c.max_run_timeout_ms) {
		timeout_ms = c.max_run_timeout_ms;
	}
	uint64_t cap = req->max_output_bytes ? req->max_output_bytes : c.max_output_bytes;
	if (cap > c.max_output_bytes) {
		cap = c.max_output_bytes;
	}
	if (!supervisor_reserve(s, &active, &max)) {
		snprintf(err, errlen, "limit reached: %u processes running (max_concurrent_processes is %u)",
		    active, max);
		return (SP_RESOURCE_EXHAUSTED);
	}
	/* Not calloc: the 64 KiB read buffer needs no zeroing. */
	if ((st = malloc(sizeof(*st))) == NULL) {
		supervisor_release(s);
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	memset(st, 0, offsetof(run_state, chunk));
	st->cap.k.emit = capture_emit;
	st->cap.out.limit = st->cap.err.limit = st->cap.all.limit = (size_t)cap;
	st->sinks = &st->cap.k;
	/* Asked for: the output on the feed as well, as it comes (run/<token>). */
	if (req->stream_token[0] != '\0') {
		char topic[SP_TOPIC_MAX];
		bool ok = strspn(req->stream_token,
		              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
		    strlen(req->stream_token);
		if (!ok || sp_topic(topic, sizeof(topic), SP_TOPIC_RUN, req->stream_token) < 0 ||
		    feed_output_sink_new(&st->cap.k.next, s->cfg.pub, topic) != 0) {
			supervisor_release(s);
			free(st);
			snprintf(err, errlen, "stream_token \"%s\": letters, digits, '-' and '_' only",
			    req->stream_token);
			return (SP_INVALID_ARGUMENT);
		}
	}
	st->in = req->stdin.data;
	st->in_len = req->stdin.len;
	int64_t start = util_mono_ms();
	if (place != NULL && (code = place->fn(place->arg, &spec, arena, err, errlen)) != SP_OK) {
		supervisor_release(s);
		sinks_free(st->cap.k.next);
		free(st);
		return (code);
	}
	code = spawn_start(&spec, &st->c, &errnum, err, errlen);
	if (spec.fd3 > 0) {
		close(spec.fd3);
	}
	if (code != SP_OK) {
		supervisor_release(s);
		sinks_free(st->cap.k.next);
		free(st);
		return (code);
	}
	int slot = supervisor_run_attach(s, st->c.pid);
	int64_t deadline = slot >= 0 ? start + timeout_ms : start;
	while (!exited) {
		struct pollfd pfd[4];
		int n = 0, wait_ms;
		pfd[n++] = (struct pollfd){ .fd = st->c.pidfd, .events = POLLIN };
		if (st->c.out_fd >= 0) {
			pfd[n++] = (struct pollfd){ .fd = st->c.out_fd, .events = POLLIN };
		}
		if (st->c.err_fd >= 0) {
			pfd[n++] = (struct pollfd){ .fd = st->c.err_fd, .events = POLLIN };
		}
		if (st->c.in_fd >= 0) {
			pfd[n++] = (struct pollfd){ .fd = st->c.in_fd, .events = POLLOUT };
		}
		int64_t left = deadline - util_mono_ms();
		wait_ms = timed_out ? -1 : left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
		if (poll(pfd, (nfds_t)n, wait_ms) < 0 && errno != EINTR) {
			break;
		}
		for (int i = 1; i < n; i++) {
			if (pfd[i].revents == 0) {
				continue;
			}
			if (pfd[i].fd == st->c.out_fd) {
				run_read(st, &st->c.out_fd, sandproc_v1_Stream_STREAM_STDOUT);
			} else if (pfd[i].fd == st->c.err_fd) {
				run_read(st, &st->c.err_fd, sandproc_v1_Stream_STREAM_STDERR);
			} else if (pfd[i].fd == st->c.in_fd) {
				run_write_stdin(st);
			}
		}
		if (pfd[0].revents != 0) {
			exited = true;
		} else if (!timed_out && util_mono_ms() >= deadline) {
			/* The leader is unreaped until below, so the group id is still ours. */
			timed_out = true;
			kill(-st->c.pid, SIGKILL);
		}
	}
	/*
	 * The command has ended. Its group goes first (the zombie leader keeps
	 * the id ours), then what its output pipes hold is taken, without
	 * waiting for an EOF that a process outside the group might withhold.
	 */
	kill(-st->c.pid, SIGKILL);
	run_drain(st, &st->c.out_fd, sandproc_v1_Stream_STREAM_STDOUT);
	run_drain(st, &st->c.err_fd, sandproc_v1_Stream_STREAM_STDERR);
	supervisor_run_detach(s, slot);
	while (waitpid(st->c.pid, &status, 0) < 0 && errno == EINTR) {}
	spawn_close_fds(&st->c);
	supervisor_release(s);

	rep->duration_ms = (uint64_t)(util_mono_ms() - start);
	rep->pid = st->c.pid;
	rep->timed_out = timed_out;
	if (WIFSIGNALED(status)) {
		rep->exit_code = -1;
		rep->signal = WTERMSIG(status);
	} else {
		rep->exit_code = WEXITSTATUS(status);
	}
	res->out = st->cap.out.data;
	res->out_len = st->cap.out.len;
	res->err = st->cap.err.data;
	res->err_len = st->cap.err.len;
	res->all = st->cap.all.data;
	res->all_len = st->cap.all.len;
	rep->stdout.data = res->out;
	rep->stdout.len = res->out_len;
	rep->stderr.data = res->err;
	rep->stderr.len = res->err_len;
	rep->output.data = res->all;
	rep->output.len = res->all_len;
	rep->stdout_truncated = st->cap.out.truncated;
	rep->stderr_truncated = st->cap.err.truncated;
	rep->output_truncated = st->cap.all.truncated;
	sinks_free(st->cap.k.next);
	free(st);
	return (SP_OK);
}

void
run_result_free(run_result *res)
{
	free(res->out);
	free(res->err);
	free(res->all);
	memset(res, 0, sizeof(*res));
}
