/* sandproc.v1.Sandboxes: the calls, over sandbox/sandbox.c. */
#include <stdio.h>
#include <string.h>

#include "rpc/call.h"
#include "sandbox/sandbox.h"
#include "sandproc/v1/sandboxes.srv.h"
#include "server.h"

#define API_WAIT_READY_DEFAULT_S 30
#define API_WAIT_READY_MAX_S 3600

static int api_readiness(sp_call *call, const char *id, sandproc_v1_ReadinessReply *rep);

int
rpc_sandboxes_create(sp_call *call, const sandproc_v1_CreateSandboxRequest *req, sandproc_v1_Sandbox *rep)
{
	char err[600];
	int code = sandboxes_create(call->srv->sbx, req, rep, call->arena, err, sizeof(err));

	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_get(sp_call *call, const sandproc_v1_GetSandboxRequest *req, sandproc_v1_Sandbox *rep)
{
	char err[300];
	int code = sandboxes_get(call->srv->sbx, req->id, rep, call->arena, err, sizeof(err));

	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_list(
    sp_call *call, const sandproc_v1_ListSandboxesRequest *req, sandproc_v1_ListSandboxesReply *rep)
{
	char err[300];
	int code = sandboxes_list(call->srv->sbx, req, rep, call->arena, err, sizeof(err));

	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_delete(
    sp_call *call, const sandproc_v1_DeleteSandboxRequest *req, sandproc_v1_DeleteSandboxReply *rep)
{
	char err[600];
	int code;

	(void)rep;
	code =
	    sandboxes_delete(call->srv->sbx, req->id, req->keep_workspace, req->grace_ms, err, sizeof(err));
	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_readiness(
    sp_call *call, const sandproc_v1_ReadinessRequest *req, sandproc_v1_ReadinessReply *rep)
{
	return (api_readiness(call, req->id, rep));
}

/* The readiness of id, as the reply. */
static int
api_readiness(sp_call *call, const char *id, sandproc_v1_ReadinessReply *rep)
{
	char err[300];
	int code = sandboxes_readiness(call->srv->sbx, id, rep, err, sizeof(err));

	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

/* A parked WaitReady woke (the sandbox settled, or went) or timed out: the readiness now. */
static int
api_resume_ready(sp_call *call, void *req, void *rep, bool timed_out)
{
	const sandproc_v1_WaitReadyRequest *r = req;

	(void)timed_out;
	return (api_readiness(call, r->id, rep));
}

int
rpc_sandboxes_wait_ready(
    sp_call *call, const sandproc_v1_WaitReadyRequest *req, sandproc_v1_ReadinessReply *rep)
{
	uint32_t s = req->timeout_s == 0 ? API_WAIT_READY_DEFAULT_S : req->timeout_s;

	if (s > API_WAIT_READY_MAX_S) {
		s = API_WAIT_READY_MAX_S;
	}
	if (sandboxes_watch_ready(call->srv->sbx, req->id, sp_call_waiter(call, 0))) {
		return (sp_call_park(call, s * 1000, api_resume_ready));
	}
	return (api_readiness(call, req->id, rep));
}
