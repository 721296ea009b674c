/*
 * sandproc.v1.Processes/WaitFor: waiting server-side until a process
 * listens on a port, prints a matching line, or ends. The call parks on
 * three waiters at once (its end, its next output, the next port change)
 * and, whenever one wakes it, checks again from where it was: lines are
 * read from the log after the last entry already matched, so each line is
 * looked at once, however often the call wakes.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/records.h"
#include "base/errors.h"
#include "base/util.h"
#include "output/logread.h"
#include "ports/ports.h"
#include "rpc/call.h"
#include "sandproc/v1/processes.srv.h"
#include "server.h"

/* Longest line kept for matching; a longer one is matched on its start. */
#define API_LINE_MAX 8192
#define API_STREAMS 4
#define API_WAITFOR_ENTRIES 256
#define API_REGEX_MAX 1024

typedef struct waitfor {
	regex_t re;
	bool has_re;
	uint64_t after_seq; /* entries up to this one were matched */
	logfile_cursor cursor;
	char line[API_STREAMS][API_LINE_MAX + 1]; /* each stream's line so far */
	size_t len[API_STREAMS];
	int64_t deadline; /* monotonic ms; 0 = none */
} waitfor;

static void
api_waitfor_free(void *arg)
{
	waitfor *w = arg;
	if (w->has_re) {
		regfree(&w->re);
	}
	free(w);
}

/* Whether the line so far of stream s matches; it is consumed either way. */
static bool
api_line_done(waitfor *w, int s, sp_call *call, sandproc_v1_WaitForReply *rep)
{
	size_t n = w->len[s];

	w->len[s] = 0;
	if (n > 0 && w->line[s][n - 1] == '\r') {
		n--;
	}
	w->line[s][n] = '\0';
	if (regexec(&w->re, w->line[s], 0, NULL, 0) != 0) {
		return (false);
	}
	snprintf(rep->condition, sizeof(rep->condition), "log");
	rep->line = sp_arena_strdup(call->arena, w->line[s]);
	return (true);
}

/* Splits an entry into lines and matches each whole one; true at the first match. */
static bool
api_match_entry(waitfor *w, const sandproc_v1_LogEntry *e, sp_call *call, sandproc_v1_WaitForReply *rep)
{
	int s = e->stream >= 0 && e->stream < API_STREAMS ? (int)e->stream : 0;

	for (size_t i = 0; i < e->data.len; i++) {
		char c = (char)e->data.data[i];
		if (c == '\n') {
			if (api_line_done(w, s, call, rep)) {
				return (true);
			}
		} else if (w->len[s] < API_LINE_MAX) {
			w->line[s][w->len[s]++] = c;
		}
	}
	return (false);
}

/*
 * Reads the output after w->after_seq (up to what has been published while
 * it runs) and matches its lines. SP_OK with rep set at a match, else
 * SP_NOT_FOUND; or an error status, message set.
 */
static int
api_match_new(sp_call *call, waitfor *w, const sandproc_v1_WaitForRequest *req,
    const sandproc_v1_Process *rec, sandproc_v1_WaitForReply *rep)
{
	sandproc_v1_LogsReply *page = malloc(sizeof(*page));
	logfile_query q = {
		.stream = req->stream,
		.max_bytes = 4 * 1024 * 1024,
		.max_entries = API_WAITFOR_ENTRIES,
		.cursor = &w->cursor,
	};
	int code = SP_NOT_FOUND;

	if (page == NULL) {
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory"));
	}
	if (rec->state == sandproc_v1_State_STATE_RUNNING) {
		q.capped = supervisor_seen_seq(call->srv->sup, req->id, &q.upto_seq);
	}
	for (;;) {
		sp_arena *a = sp_arena_new();
		int rv;
		memset(page, 0, sizeof(*page));
		q.after_seq = w->after_seq;
		if (a == NULL || (rv = logfile_read(call->srv->log_dir, req->id, &q, page, a)) != 0) {
			code = a == NULL ? sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory")
			                 : sp_call_error(call, errors_status(rv), "%s: reading logs: %s",
			                       req->id, errors_text(rv));
			sp_arena_free(a);
			break;
		}
		bool matched = false;
		for (pb_size_t i = 0; i < page->entries_count && !matched; i++) {
			matched = api_match_entry(w, &page->entries[i], call, rep);
			w->after_seq = page->entries[i].sequence;
		}
		bool more = page->has_more && page->entries_count > 0;
		sp_arena_free(a);
		if (matched) {
			code = SP_OK;
			break;
		}
		if (!more) {
			break;
		}
	}
	/* Once it has ended, a last line without its newline is a line too. */
	if (code == SP_NOT_FOUND && rec->state != sandproc_v1_State_STATE_RUNNING) {
		for (int s = 0; s < API_STREAMS && code == SP_NOT_FOUND; s++) {
			if (w->len[s] > 0 && api_line_done(w, s, call, rep)) {
				code = SP_OK;
			}
		}
	}
	free(page);
	return (code);
}

static int api_waitfor_resume(sp_call *call, void *req, void *rep, bool timed_out);

/* Checks the conditions now; answers, or parks until something may have changed. */
static int
api_waitfor_check(sp_call *call, const sandproc_v1_WaitForRequest *req, sandproc_v1_WaitForReply *rep)
{
	waitfor *w = call->cleanup_arg;
	int code;

	for (;;) {
		memset(rep, 0, sizeof(*rep));
		/* Linked before looking, so a port that opens meanwhile still wakes the call. */
		waiter *pw = NULL;
		if (req->port != 0) {
			ports_watch(call->srv->ports, pw = sp_call_waiter(call, 2));
		}
		/* The state first: once it has ended, every output entry is in the log. */
		if ((code = api_get_record(call, req->id, &rep->process)) != SP_OK) {
			return (code);
		}
		rep->has_process = true;
		if (w->has_re && (code = api_match_new(call, w, req, &rep->process, rep)) != SP_NOT_FOUND) {
			return (code);
		}
		if (req->port != 0 && ports_listening(call->srv->ports, req->id, req->port)) {
			snprintf(rep->condition, sizeof(rep->condition), "port");
			rep->port = req->port;
			return (SP_OK);
		}
		if (rep->process.state != sandproc_v1_State_STATE_RUNNING) {
			snprintf(rep->condition, sizeof(rep->condition), "exit");
			return (SP_OK);
		}
		int64_t left = w->deadline == 0 ? 0 : w->deadline - util_mono_ms();
		if (w->deadline != 0 && left <= 0) {
			return (SP_OK); /* condition "": the time ran out */
		}
		if (!supervisor_watch_end(call->srv->sup, req->id, sp_call_waiter(call, 0))) {
			/* It ended just now: look again, answering with that. The port waiter is made anew.
			 */
			if (pw != NULL) {
				pw->detach(pw);
			}
			continue;
		}
		if (w->has_re) {
			supervisor_watch_output(
			    call->srv->sup, req->id, w->after_seq, sp_call_waiter(call, 1));
		}
		return (sp_call_park(call, w->deadline == 0 ? 0 : (uint32_t)left, api_waitfor_resume));
	}
}

static int
api_waitfor_resume(sp_call *call, void *req, void *rep, bool timed_out)
{
	(void)timed_out; /* the deadline says it */
	return (api_waitfor_check(call, req, rep));
}

int
rpc_processes_wait_for(sp_call *call, const sandproc_v1_WaitForRequest *req, sandproc_v1_WaitForReply *rep)
{
	waitfor *w;

	if (req->stream < sandproc_v1_Stream_STREAM_UNSPECIFIED ||
	    req->stream > sandproc_v1_Stream_STREAM_COMBINED) {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "unknown stream %d", (int)req->stream));
	}
	if (req->port > 65535) {
		return (sp_call_error(
		    call, SP_INVALID_ARGUMENT, "port %u is not a TCP port", (unsigned)req->port));
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory"));
	}
	call->cleanup = api_waitfor_free;
	call->cleanup_arg = w;
	if (req->log != NULL && req->log[0] != '\0') {
		/* Back-references make matching exponential in glibc: a client must not buy a worker with
		 * one. */
		const char *br = req->log;
		while ((br = strchr(br, '\\')) != NULL && !(br[1] >= '1' && br[1] <= '9')) {
			br += br[1] != '\0' ? 2 : 1;
		}
		if (strlen(req->log) > API_REGEX_MAX || br != NULL) {
			return (sp_call_error(call, SP_INVALID_ARGUMENT,
			    "log: a regular expression of at most %d bytes and no back-references (\\1-\\9)",
			    API_REGEX_MAX));
		}
		int rc = regcomp(&w->re, req->log, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char why[200];
			regerror(rc, &w->re, why, sizeof(why));
			return (
			    sp_call_error(call, SP_INVALID_ARGUMENT, "log: bad regular expression: %s", why));
		}
		w->has_re = true;
	}
	if (req->timeout_ms > 0) {
		w->deadline = util_mono_ms() + req->timeout_ms;
	}
	/* Only new lines, unless from_start: those published so far are skipped. */
	if (w->has_re && !req->from_start && !supervisor_seen_seq(call->srv->sup, req->id, &w->after_seq)) {
		w->after_seq =
		    UINT64_MAX; /* ended (or unknown: the check says NOT_FOUND): no new line can come */
	}
	return (api_waitfor_check(call, req, rep));
}
