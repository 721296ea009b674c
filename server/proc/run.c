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
#include "os/spawn.h"
#include "sp_status.h"

#define RUN_READ_MAX (64 * 1024)

typedef struct run_buf {
	uint8_t *data;
	size_t len, cap, limit;
	bool truncated;
} run_buf;

/* Keeps what fits under the limit; the rest is counted as truncation. */
static int
run_buf_add(run_buf *b, const uint8_t *data, size_t len)
{
	size_t take = len;

	if (b->len + take > b->limit) {
		take = b->limit - b->len;
		b->truncated = true;
	}
	if (take == 0) {
		return (0);
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
			return (ENOMEM);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, take);
	b->len += take;
	return (0);
}

typedef struct run_state {
	spawn_child c;
	run_buf out, err, all;
	const uint8_t *in;
	size_t in_len, in_off;
	uint8_t chunk[RUN_READ_MAX];
} run_state;

/* Reads what fd has now: true when bytes came; at EOF it also closes fd. */
static bool
run_read(run_state *st, int *fd, run_buf *b)
{
	ssize_t n = read(*fd, st->chunk, sizeof(st->chunk));

	if (n > 0) {
		run_buf_add(b, st->chunk, (size_t)n);
		run_buf_add(&st->all, st->chunk, (size_t)n);
		return (true);
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close(*fd);
		*fd = -1;
	}
	return (false);
}

/* Takes what a pipe holds now, bounded in case something outside the group keeps writing. */
static void
run_drain(run_state *st, int *fd, run_buf *b)
{
	for (int guard = 0; guard < 1024 && *fd >= 0 && run_read(st, fd, b); guard++) {}
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
    run_result *res, char *err, size_t errlen)
{
	sandproc_v1_Config c;
	run_state *st;
	spawn_opts o;
	uint32_t active, max;
	int code, errnum, status = 0;
	bool timed_out = false, exited = false;

	memset(res, 0, sizeof(*res));
	config_holder_get(cfg, &c);
	if (req->argv.n == 0) {
		snprintf(err, errlen, "argv is empty");
		return (SP_INVALID_ARGUMENT);
	}
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
	st->out.limit = st->err.limit = st->all.limit = (size_t)cap;
	st->in = req->stdin.data;
	st->in_len = req->stdin.len;
	o = (spawn_opts){
		.argv = (const char *const *)req->argv.v,
		.argc = req->argv.n,
		.cwd = req->cwd,
		.env = (const char *const *)req->env.v,
		.envc = req->env.n,
		.in = st->in_len > 0 ? SPAWN_STDIN_PIPE : SPAWN_STDIN_NULL,
	};
	int64_t start = util_mono_ms();
	if ((code = spawn_start(&o, &st->c, &errnum, err, errlen)) != SP_OK) {
		supervisor_release(s);
		free(st);
		return (code);
	}
	bool attached = supervisor_run_attach(s, st->c.pid);
	int64_t deadline = attached ? start + timeout_ms : start;
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
				run_read(st, &st->c.out_fd, &st->out);
			} else if (pfd[i].fd == st->c.err_fd) {
				run_read(st, &st->c.err_fd, &st->err);
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
	run_drain(st, &st->c.out_fd, &st->out);
	run_drain(st, &st->c.err_fd, &st->err);
	if (attached) {
		supervisor_run_detach(s, st->c.pid);
	}
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
	res->out = st->out.data;
	res->out_len = st->out.len;
	res->err = st->err.data;
	res->err_len = st->err.len;
	res->all = st->all.data;
	res->all_len = st->all.len;
	rep->stdout.data = res->out;
	rep->stdout.len = res->out_len;
	rep->stderr.data = res->err;
	rep->stderr.len = res->err_len;
	rep->output.data = res->all;
	rep->output.len = res->all_len;
	rep->stdout_truncated = st->out.truncated;
	rep->stderr_truncated = st->err.truncated;
	rep->output_truncated = st->all.truncated;
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
