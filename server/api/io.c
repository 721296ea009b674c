/*
 * sandproc.v1.Processes, output and terminals: Logs, SendInput, Resize,
 * Screen. Reading files (logs, a screen rebuilt from them) happens here, on
 * a worker: none of these is answered on nng's threads but Resize.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/records.h"
#include "base/errors.h"
#include "output/logread.h"
#include "output/screen.h"
#include "proc/request.h"
#include "rpc/call.h"
#include "sandproc/v1/processes.srv.h"
#include "server.h"

#define API_LOGS_DEFAULT_BYTES (1024 * 1024)
#define API_LOGS_MAX_BYTES (16 * 1024 * 1024)
/* The longest a Logs long poll is held (wait_ms above it is cut to it). */
#define API_LOGS_MAX_WAIT_MS 60000

/*
 * Keeps only the last n lines of rep's entries (cutting the first one kept
 * where its line starts); false when all the entries hold fewer lines (the
 * caller may read further back).
 */
static bool
api_tail_lines(sandproc_v1_LogsReply *rep, uint32_t n)
{
	bool last = true;

	for (pb_size_t i = rep->entries_count; i-- > 0;) {
		sandproc_v1_LogEntry *e = &rep->entries[i];
		for (size_t j = e->data.len; j-- > 0;) {
			/* The newline ending the output is the last line's, not a line of its own. */
			if (last) {
				last = false;
				if (e->data.data[j] == '\n') {
					continue;
				}
			}
			if (e->data.data[j] == '\n' && --n == 0) {
				e->data.data += j + 1;
				e->data.len -= j + 1;
				pb_size_t from = e->data.len > 0 ? i : i + 1;
				memmove(&rep->entries[0], &rep->entries[from],
				    (rep->entries_count - from) * sizeof(*e));
				rep->entries_count -= from;
				return (true);
			}
		}
	}
	return (false);
}

static int api_logs(
    sp_call *call, const sandproc_v1_LogsRequest *req, sandproc_v1_LogsReply *rep, bool may_wait);

/* A parked long poll woke (output, the end) or timed out: read again, and answer whatever is there. */
static int
api_logs_resume(sp_call *call, void *req, void *rep, bool timed_out)
{
	(void)timed_out;
	memset(rep, 0, sizeof(sandproc_v1_LogsReply));
	return (api_logs(call, req, rep, false));
}

int
rpc_processes_logs(sp_call *call, const sandproc_v1_LogsRequest *req, sandproc_v1_LogsReply *rep)
{
	return (api_logs(call, req, rep, req->wait_ms > 0));
}

static int
api_logs(sp_call *call, const sandproc_v1_LogsRequest *req, sandproc_v1_LogsReply *rep, bool may_wait)
{
	sandproc_v1_Process rec;
	logfile_query q;
	int code, rv;

	if (req->stream < sandproc_v1_Stream_STREAM_UNSPECIFIED ||
	    req->stream > sandproc_v1_Stream_STREAM_COMBINED) {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "unknown stream %d", (int)req->stream));
	}
	/* The state is read first: if it has ended, every entry is already stored. */
	if ((code = api_get_record(call, req->id, &rec)) != SP_OK) {
		return (code);
	}
	q = (logfile_query){
		.after_seq = req->after_sequence,
		.tail = req->tail,
		.stream = req->stream,
		.max_bytes = req->max_bytes == 0          ? API_LOGS_DEFAULT_BYTES
		    : req->max_bytes > API_LOGS_MAX_BYTES ? API_LOGS_MAX_BYTES
		                                          : (size_t)req->max_bytes,
		.max_entries = sizeof(rep->entries) / sizeof(rep->entries[0]),
	};
	/*
	 * A running process's entries as far as the server has published them
	 * (to the feed, the screen, waiters): a holder writes the log a moment
	 * before its entries reach us, and a reader must not see further than
	 * Screen or a follower can.
	 */
	if (rec.state == sandproc_v1_State_STATE_RUNNING) {
		q.capped = supervisor_seen_seq(call->srv->sup, req->id, &q.upto_seq);
	}
	/*
	 * By lines: the last entries, more of them while they hold too few lines
	 * (a line may take many entries, an entry many lines).
	 */
	for (q.tail = req->tail_lines > 0 ? req->tail_lines : q.tail;;) {
		if ((rv = logfile_read(call->srv->log_dir, req->id, &q, rep, call->arena)) != 0) {
			return (sp_call_error(
			    call, errors_status(rv), "%s: reading logs: %s", req->id, errors_text(rv)));
		}
		if (req->tail_lines == 0 || api_tail_lines(rep, req->tail_lines) ||
		    rep->entries_count < q.tail || q.tail >= q.max_entries) {
			break;
		}
		q.tail = q.tail * 4 < q.max_entries ? q.tail * 4 : (uint32_t)q.max_entries;
	}
	rep->state = rec.state;
	/*
	 * A long poll with nothing new (of any stream) from a running process:
	 * park until its next output or its end, at most wait_ms. The waiter
	 * wakes at once if output came after the read above.
	 */
	if (may_wait && rec.state == sandproc_v1_State_STATE_RUNNING && rep->entries_count == 0 &&
	    rep->next_sequence <= req->after_sequence && req->tail == 0 && req->tail_lines == 0 &&
	    supervisor_watch_output(call->srv->sup, req->id, q.capped ? q.upto_seq : req->after_sequence,
	        sp_call_waiter(call, 0))) {
		return (sp_call_park(call,
		    req->wait_ms > API_LOGS_MAX_WAIT_MS ? API_LOGS_MAX_WAIT_MS : req->wait_ms,
		    api_logs_resume));
	}
	return (SP_OK);
}

/* For calls that go straight to the supervisor: NOT_FOUND unless the call's key may see process id. */
static int
api_may_touch(sp_call *call, const char *id)
{
	sandproc_v1_Process rec;

	return (call->role == SP_ROLE_ADMIN ? SP_OK : api_get_record(call, id, &rec));
}

/* The status for a live-process call that found no live process. */
static int
api_not_live(sp_call *call, const char *id)
{
	sandproc_v1_Process rec;
	int code = api_get_record(call, id, &rec);

	if (code != SP_OK) {
		return (code);
	}
	return (sp_call_error(call, SP_FAILED_PRECONDITION, "%s has ended (%s)", id,
	    rec.state == sandproc_v1_State_STATE_FAILED ? "it failed to start" : "no longer running"));
}

int
rpc_processes_send_input(
    sp_call *call, const sandproc_v1_SendInputRequest *req, sandproc_v1_SendInputReply *rep)
{
	sandproc_v1_Config cfg;
	char err[512];
	int code;

	config_holder_get(&call->srv->cfg, &cfg);
	if (req->data.len > cfg.max_input_bytes_per_request) {
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED,
		    "input is %zu bytes; max_input_bytes_per_request is %llu", req->data.len,
		    (unsigned long long)cfg.max_input_bytes_per_request));
	}
	if ((code = api_may_touch(call, req->id)) != SP_OK) {
		return (code);
	}
	code = supervisor_send_input(call->srv->sup, req->id, req->data.data, req->data.len, req->eof,
	    &rep->bytes_written, err, sizeof(err));
	if (code == SP_NOT_FOUND) {
		return (api_not_live(call, req->id));
	}
	if (code != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	return (SP_OK);
}

int
rpc_processes_resize(sp_call *call, const sandproc_v1_ResizeRequest *req, sandproc_v1_ResizeReply *rep)
{
	char err[512];
	int code;

	(void)rep;
	if ((code = request_tty_size(req->cols, req->rows, err, sizeof(err))) != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	if ((code = api_may_touch(call, req->id)) != SP_OK) {
		return (code);
	}
	code = supervisor_resize(
	    call->srv->sup, req->id, (uint16_t)req->cols, (uint16_t)req->rows, err, sizeof(err));
	if (code == SP_NOT_FOUND) {
		return (api_not_live(call, req->id));
	}
	if (code != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	return (SP_OK);
}

/* The screen of an ended TTY process, rebuilt from its stored output (on this worker). */
static int
api_screen_replay(sp_call *call, const sandproc_v1_Process *rec, sandproc_v1_ScreenReply *rep)
{
	sandproc_v1_LogsReply *page = calloc(1, sizeof(*page)); /* too big for a stack */
	logfile_query q = { .stream = sandproc_v1_Stream_STREAM_PTY,
		.max_bytes = API_LOGS_MAX_BYTES,
		.max_entries = sizeof(page->entries) / sizeof(page->entries[0]) };
	screen *scr;
	int rv = 0;

	if (page == NULL || screen_new(&scr, (uint16_t)rec->cols, (uint16_t)rec->rows, NULL, NULL) != 0) {
		free(page);
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory"));
	}
	do {
		sp_arena *a = sp_arena_new();
		if (a == NULL || (rv = logfile_read(call->srv->log_dir, rec->id, &q, page, a)) != 0) {
			sp_arena_free(a);
			rv = rv ? rv : ENOMEM;
			break;
		}
		for (pb_size_t i = 0; i < page->entries_count; i++) {
			screen_feed(scr, page->entries[i].data.data, page->entries[i].data.len,
			    page->entries[i].sequence);
		}
		q.after_seq = page->next_sequence;
		sp_arena_free(a);
	} while (page->has_more);
	free(page);
	if (rv == 0) {
		rv = screen_snapshot(scr, rep, call->arena);
	}
	screen_free(scr);
	if (rv != 0) {
		return (sp_call_error(
		    call, errors_status(rv), "%s: rebuilding the screen: %s", rec->id, errors_text(rv)));
	}
	return (SP_OK);
}

int
rpc_processes_screen(sp_call *call, const sandproc_v1_ScreenRequest *req, sandproc_v1_ScreenReply *rep)
{
	sandproc_v1_Process rec;
	char err[512];
	int code = api_may_touch(call, req->id);

	if (code != SP_OK) {
		return (code);
	}
	code = supervisor_screen(call->srv->sup, req->id, rep, call->arena, err, sizeof(err));

	if (code == SP_OK) {
		return (SP_OK);
	}
	if (code != SP_NOT_FOUND) {
		return (sp_call_error(call, code, "%s", err));
	}
	if ((code = api_get_record(call, req->id, &rec)) != SP_OK) {
		return (code);
	}
	if (!rec.tty) {
		return (sp_call_error(call, SP_FAILED_PRECONDITION, "%s is not a TTY process", req->id));
	}
	return (api_screen_replay(call, &rec, rep));
}
