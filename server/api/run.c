/* sandproc.v1.Processes/Run: a one-shot command, carried out on this handler's worker (proc/run.c). */
#include <stdlib.h>

#include "api/records.h"
#include "proc/run.h"
#include "rpc/call.h"
#include "sandbox/sandbox.h"
#include "sandproc/v1/processes.srv.h"
#include "server.h"

static void
api_run_cleanup(void *arg)
{
	run_result_free(arg);
	free(arg);
}

typedef struct api_run_ctx {
	sp_call *call;
	const sandproc_v1_RunRequest *req;
} api_run_ctx;

/* A Run in a sandbox: its child goes in through the holder's exec mode. */
static int
api_run_place(void *arg, spawn_spec *spec, sp_arena *arena, char *err, size_t errlen)
{
	const api_run_ctx *c = arg;

	return (sandboxes_place(c->call->srv->sbx, c->req->sandbox_id, true, c->req->cwd, &c->req->env, spec,
	    arena, err, errlen));
}

int
rpc_processes_run(sp_call *call, const sandproc_v1_RunRequest *req, sandproc_v1_RunReply *rep)
{
	run_result *res;
	char err[600], tenant[64];
	int code;

	if ((code = api_place_check(call, req->sandbox_id, tenant)) != SP_OK) {
		return (code);
	}
	if ((res = calloc(1, sizeof(*res))) == NULL) {
		return (sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory"));
	}
	api_run_ctx ctx = { .call = call, .req = req };
	run_place place = { .fn = api_run_place, .arg = &ctx };
	code = run_command(call->srv->sup, &call->srv->cfg, req, rep, res,
	    sandboxes_is_host(req->sandbox_id) ? NULL : &place, call->arena, err, sizeof(err));
	/* The output buffers must outlive this function: the reply is encoded after. */
	call->cleanup = api_run_cleanup;
	call->cleanup_arg = res;
	if (code != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	return (SP_OK);
}
