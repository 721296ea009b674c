/*
 * Lifecycle handlers: Start, List, Get, Stop, Kill, Signal, Delete, Wait.
 * They validate, translate and call the supervisor or the store.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "os/spawn.h"
#include "output/logfile.h"
#include "rpc/rpc.h"
#include "sandproc/v1/processes.rpc.h"

#define RPC_DEFAULT_GRACE_MS 5000

/* The store's answer as a call status. */
static int
rpc_store_error(sp_call *call, int rv, const char *id)
{
	if (rv == ENOENT) {
		return (sp_call_error(call, SP_NOT_FOUND, "no process \"%s\"", id));
	}
	if (rv == ENOSPC) {
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED, "store: %s", store_errmsg()));
	}
	return (sp_call_error(call, SP_INTERNAL, "store: %s", store_errmsg()));
}

/* Reads record id into out, with the live details the store lags behind on. */
int
rpc_get_record(sp_call *call, const char *id, sandproc_v1_Process *out)
{
	int rv;

	if (!util_valid_proc_id(id)) {
		return (sp_call_error(
		    call, SP_NOT_FOUND, "no process \"%s\" (ids look like proc_ + 24 hex digits)", id));
	}
	if ((rv = store_get_process(call->srv->store, id, out, call->arena)) != 0) {
		return (rpc_store_error(call, rv, id));
	}
	supervisor_overlay(call->srv->sup, out);
	return (SP_OK);
}

int
rpc_processes_start(sp_call *call, const sandproc_v1_StartRequest *req, sandproc_v1_Process *rep)
{
	char err[600];
	int code = supervisor_start_process(call->srv->sup, req, rep, call->arena, err, sizeof(err));

	if (code != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	return (SP_OK);
}

int
rpc_processes_list(sp_call *call, const sandproc_v1_ListRequest *req, sandproc_v1_ListReply *rep)
{
	store_query q = { .state = req->state, .sandbox_id = req->sandbox_id, .limit = req->limit };
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
	if ((rv = store_list_processes(call->srv->store, &q, rep, &next, call->arena)) != 0) {
		return (rpc_store_error(call, rv, ""));
	}
	for (pb_size_t i = 0; i < rep->processes_count; i++) {
		supervisor_overlay(call->srv->sup, &rep->processes[i]);
	}
	if (next > 0) {
		snprintf(rep->next_page_token, sizeof(rep->next_page_token), "%" PRId64, next);
	}
	return (SP_OK);
}

int
rpc_processes_get(sp_call *call, const sandproc_v1_GetRequest *req, sandproc_v1_Process *rep)
{
	return (rpc_get_record(call, req->id, rep));
}

/*
 * Stop and Kill: act on a live process, wait if asked, answer with the
 * record. An ended process is answered as it is.
 */
static int
rpc_end(sp_call *call, const char *id, sup_action action, uint32_t grace_ms, uint32_t wait_ms,
    sandproc_v1_Process *rep)
{
	int code = rpc_get_record(call, id, rep);

	if (code != SP_OK) {
		return (code);
	}
	if (supervisor_signal(call->srv->sup, id, action, 0, grace_ms) == SP_OK && wait_ms > 0) {
		supervisor_wait(call->srv->sup, id, wait_ms);
	}
	return (rpc_get_record(call, id, rep));
}

int
rpc_processes_stop(sp_call *call, const sandproc_v1_StopRequest *req, sandproc_v1_Process *rep)
{
	return (rpc_end(call, req->id, SUP_STOP, req->grace_ms ? req->grace_ms : RPC_DEFAULT_GRACE_MS,
	    req->wait_ms, rep));
}

int
rpc_processes_kill(sp_call *call, const sandproc_v1_KillRequest *req, sandproc_v1_Process *rep)
{
	return (rpc_end(call, req->id, SUP_KILL, 0, req->wait_ms, rep));
}

int
rpc_processes_signal(sp_call *call, const sandproc_v1_SignalRequest *req, sandproc_v1_Process *rep)
{
	int sig = spawn_signal_number(req->signal);
	int code;

	if (sig < 0) {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "unknown signal \"%s\"", req->signal));
	}
	if ((code = rpc_get_record(call, req->id, rep)) != SP_OK) {
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
	if ((code = rpc_get_record(call, req->id, &rec)) != SP_OK) {
		return (code);
	}
	if (rec.state == sandproc_v1_State_STATE_RUNNING) {
		return (sp_call_error(call, SP_FAILED_PRECONDITION, "%s is running: stop it first", req->id));
	}
	if ((rv = store_delete_process(call->srv->store, req->id)) != 0) {
		return (rpc_store_error(call, rv, req->id));
	}
	if ((rv = logfile_remove(call->srv->log_dir, req->id)) != 0) {
		return (sp_call_error(
		    call, SP_INTERNAL, "%s: record deleted, logs not: %s", req->id, strerror(rv)));
	}
	return (SP_OK);
}

int
rpc_processes_wait(sp_call *call, const sandproc_v1_WaitRequest *req, sandproc_v1_Process *rep)
{
	int code = rpc_get_record(call, req->id, rep);

	if (code != SP_OK || rep->state != sandproc_v1_State_STATE_RUNNING) {
		return (code);
	}
	supervisor_wait(call->srv->sup, req->id, req->timeout_ms);
	return (rpc_get_record(call, req->id, rep));
}
