/*
 * sandproc.v1.Processes, the lifecycle: Start, List, Get, Stop, Kill,
 * Signal, Delete, Wait. Handlers check and translate requests and call the
 * supervisor or the store; calls that wait (Wait, Stop and Kill with
 * wait_ms) park until the process ends instead of holding a thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/records.h"
#include "base/errors.h"
#include "os/signals.h"
#include "output/logfile.h"
#include "proc/request.h"
#include "rpc/call.h"
#include "sandbox/sandbox.h"
#include "sandproc/v1/processes.srv.h"
#include "server.h"

#define API_DEFAULT_GRACE_MS 5000

int
rpc_processes_start(sp_call *call, const sandproc_v1_StartRequest *req, sandproc_v1_Process *rep)
{
	start_plan plan;
	char err[600];
	int code;

	if ((code = request_start_plan(req, &plan, call->arena, err, sizeof(err))) != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	if ((code = api_place_check(call, req->sandbox_id, plan.tenant)) != SP_OK) {
		return (code);
	}
	/* Where it runs: a sandbox, or the host with a cgroup of its own when the backend can join one. */
	if (!sandboxes_is_host(req->sandbox_id)) {
		code = sandboxes_place(call->srv->sbx, req->sandbox_id, false, req->cwd, &req->env,
		    &plan.spec, call->arena, err, sizeof(err));
	} else if (supervisor_can_join_cgroups(call->srv->sup)) {
		code = sandboxes_place_host(call->srv->sbx, &plan.spec, call->arena);
	}
	if (code != SP_OK ||
	    (code = supervisor_start(call->srv->sup, &plan, rep, call->arena, err, sizeof(err))) != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	return (SP_OK);
}

/* Whether p has every KEY=value of want. */
static bool
api_has_labels(const sandproc_v1_Process *p, const sp_strv_t *want)
{
	for (size_t i = 0; i < want->n; i++) {
		bool found = false;
		for (size_t k = 0; k < p->labels.n && !found; k++) {
			found = strcmp(p->labels.v[k], want->v[i]) == 0;
		}
		if (!found) {
			return (false);
		}
	}
	return (true);
}

int
rpc_processes_list(sp_call *call, const sandproc_v1_ListRequest *req, sandproc_v1_ListReply *rep)
{
	store_query q = { .state = req->state,
		.sandbox_id = req->sandbox_id[0] == '\0' ? NULL : req->sandbox_id,
		.name = req->name,
		.tenant = req->tenant,
		.limit = req->limit };
	int64_t next = 0;
	int rv;

	if (req->page_token[0] != '\0') {
		char *end;
		long long v = strtoll(req->page_token, &end, 10);
		if (*end != '\0' || v <= 0) {
			return (sp_call_error(
			    call, SP_INVALID_ARGUMENT, "bad page_token \"%s\"", req->page_token));
		}
		q.before_seq = v;
	}
	if (req->state < sandproc_v1_State_STATE_UNSPECIFIED || req->state > sandproc_v1_State_STATE_FAILED) {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "unknown state %d", (int)req->state));
	}
	/* Other keys list only their tenant's, in their sandbox when limited to one (never the host's). */
	if (call->role != SP_ROLE_ADMIN) {
		q.tenant = call->tenant;
		if (call->key_sandbox[0] != '\0') {
			if (q.sandbox_id != NULL && strcmp(q.sandbox_id, call->key_sandbox) != 0) {
				return (SP_OK);
			}
			q.sandbox_id = call->key_sandbox;
		}
	}
	if ((rv = store_list_processes(call->srv->store, &q, rep, &next, call->arena)) != 0) {
		return (api_store_error(call, rv, ""));
	}
	/* Labels are filtered here, in the page (a page may come out short; the token still goes on). */
	pb_size_t kept = 0;
	for (pb_size_t i = 0; i < rep->processes_count; i++) {
		if (api_has_labels(&rep->processes[i], &req->labels) &&
		    api_visible(call, rep->processes[i].tenant, rep->processes[i].sandbox_id)) {
			rep->processes[kept] = rep->processes[i];
			supervisor_overlay(call->srv->sup, &rep->processes[kept]);
			/* A row the store still has as running may have ended: filtered as it is now. */
			kept += req->state == sandproc_v1_State_STATE_UNSPECIFIED ||
			    rep->processes[kept].state == req->state;
		}
	}
	rep->processes_count = kept;
	if (next > 0) {
		snprintf(rep->next_page_token, sizeof(rep->next_page_token), "%" PRId64, next);
	}
	return (SP_OK);
}

int
rpc_processes_get(sp_call *call, const sandproc_v1_GetRequest *req, sandproc_v1_Process *rep)
{
	return (api_get_record(call, req->id, rep));
}

/* Resumed calls read the id from their request: it is the first field of each. */
_Static_assert(offsetof(sandproc_v1_StopRequest, id) == 0, "id first");
_Static_assert(offsetof(sandproc_v1_KillRequest, id) == 0, "id first");
_Static_assert(offsetof(sandproc_v1_WaitRequest, id) == 0, "id first");

/* A parked Stop, Kill or Wait: the process ended or the time ran out; answer with the record. */
static int
api_resume_record(sp_call *call, void *req, void *rep, bool timed_out)
{
	/* Every one of these requests has the id first. */
	const char *id = *(const char(*)[32])req;

	(void)timed_out;
	return (api_get_record(call, id, rep));
}

/* Parks the call until process id ends (at most wait_ms), or answers with its record now. */
static int
api_wait_end(sp_call *call, const char *id, uint32_t wait_ms, sandproc_v1_Process *rep)
{
	if (supervisor_watch_end(call->srv->sup, id, sp_call_waiter(call, 0))) {
		return (sp_call_park(call, wait_ms, api_resume_record));
	}
	return (api_get_record(call, id, rep));
}

/*
 * Stop and Kill: act on a live process, wait if asked, answer with the
 * record. An ended process is answered as it is.
 */
static int
api_end(sp_call *call, const char *id, sup_action action, uint32_t grace_ms, uint32_t wait_ms,
    sandproc_v1_Process *rep)
{
	int code = api_get_record(call, id, rep);

	if (code != SP_OK) {
		return (code);
	}
	if (supervisor_signal(call->srv->sup, id, action, 0, grace_ms) == SP_OK && wait_ms > 0) {
		return (api_wait_end(call, id, wait_ms, rep));
	}
	return (api_get_record(call, id, rep));
}

int
rpc_processes_stop(sp_call *call, const sandproc_v1_StopRequest *req, sandproc_v1_Process *rep)
{
	return (api_end(call, req->id, SUP_STOP, req->grace_ms ? req->grace_ms : API_DEFAULT_GRACE_MS,
	    req->wait_ms, rep));
}

int
rpc_processes_kill(sp_call *call, const sandproc_v1_KillRequest *req, sandproc_v1_Process *rep)
{
	return (api_end(call, req->id, SUP_KILL, 0, req->wait_ms, rep));
}

int
rpc_processes_signal(sp_call *call, const sandproc_v1_SignalRequest *req, sandproc_v1_Process *rep)
{
	int sig = signals_number(req->signal);
	int code;

	if (sig < 0) {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "unknown signal \"%s\"", req->signal));
	}
	if ((code = api_get_record(call, req->id, rep)) != SP_OK) {
		return (code);
	}
	if (supervisor_signal(call->srv->sup, req->id, SUP_SIGNAL, sig, 0) != SP_OK) {
		return (sp_call_error(call, SP_FAILED_PRECONDITION, "%s has ended", req->id));
	}
	return (SP_OK);
}

int
rpc_processes_delete(sp_call *call, const sandproc_v1_DeleteRequest *req, sandproc_v1_DeleteReply *rep)
{
	sandproc_v1_Process rec;
	int code, rv;

	(void)rep;
	if ((code = api_get_record(call, req->id, &rec)) != SP_OK) {
		return (code);
	}
	if (rec.state == sandproc_v1_State_STATE_RUNNING) {
		return (sp_call_error(call, SP_FAILED_PRECONDITION, "%s is running: stop it first", req->id));
	}
	/* Its end may still be on its way to the store: deleted first, the write would bring it back. */
	if (!supervisor_await_stored(call->srv->sup, req->id, 10000)) {
		return (sp_call_error(call, SP_UNAVAILABLE,
		    "%s: its end is not stored yet (is the disk full?); try again", req->id));
	}
	if ((rv = store_delete_process(call->srv->store, req->id)) != 0) {
		return (api_store_error(call, rv, req->id));
	}
	supervisor_forget(call->srv->sup, req->id);
	if ((rv = logfile_remove(call->srv->log_dir, req->id)) != 0) {
		return (sp_call_error(
		    call, SP_INTERNAL, "%s: record deleted, logs not: %s", req->id, errors_text(rv)));
	}
	return (SP_OK);
}

int
rpc_processes_wait(sp_call *call, const sandproc_v1_WaitRequest *req, sandproc_v1_Process *rep)
{
	int code = api_get_record(call, req->id, rep);

	if (code != SP_OK || rep->state != sandproc_v1_State_STATE_RUNNING) {
		return (code);
	}
	return (api_wait_end(call, req->id, req->timeout_ms, rep));
}
