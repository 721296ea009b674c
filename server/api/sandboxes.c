/* sandproc.v1.Sandboxes: the calls, over sandbox/sandbox.c. */
#include <stdio.h>
#include <string.h>

#include "api/records.h"
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
	int code;

	if (call->key_sandbox[0] != '\0') {
		return (sp_call_error(call, SP_PERMISSION_DENIED,
		    "key %s is limited to sandbox %s and cannot create others", call->key_id,
		    call->key_sandbox));
	}
	code = sandboxes_create(call->srv->sbx, req, call->tenant, rep, call->arena, err, sizeof(err));
	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_get(sp_call *call, const sandproc_v1_GetSandboxRequest *req, sandproc_v1_Sandbox *rep)
{
	char err[300];
	int code = sandboxes_get(call->srv->sbx, req->id, rep, call->arena, err, sizeof(err));

	if (code == SP_OK && !api_visible(call, rep->tenant, rep->id)) {
		return (sp_call_error(call, SP_NOT_FOUND, "no sandbox \"%s\"", req->id));
	}
	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_list(
    sp_call *call, const sandproc_v1_ListSandboxesRequest *req, sandproc_v1_ListSandboxesReply *rep)
{
	sandproc_v1_ListSandboxesRequest mine = *req;
	char err[300];

	/* Other keys list only their tenant's (their sandbox's, when limited to one). */
	if (call->role != SP_ROLE_ADMIN) {
		snprintf(mine.tenant, sizeof(mine.tenant), "%s", call->tenant);
	}
	int code =
	    sandboxes_list(call->srv->sbx, &mine, call->key_sandbox, rep, call->arena, err, sizeof(err));

	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_sandboxes_delete(
    sp_call *call, const sandproc_v1_DeleteSandboxRequest *req, sandproc_v1_DeleteSandboxReply *rep)
{
	char err[600];
	int code;

	(void)rep;
	if ((code = api_sandbox_check(call, req->id)) != SP_OK) {
		return (code);
	}
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
	int code = api_sandbox_check(call, id);

	if (code != SP_OK) {
		return (code);
	}
	code = sandboxes_readiness(call->srv->sbx, id, rep, err, sizeof(err));

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
	int code = api_sandbox_check(call, req->id);

	if (code != SP_OK) {
		return (code);
	}
	if (sandboxes_watch_ready(call->srv->sbx, req->id, sp_call_waiter(call, 0))) {
		return (sp_call_park(call, s * 1000, api_resume_ready));
	}
	return (api_readiness(call, req->id, rep));
}
