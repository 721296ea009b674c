/* sandproc.v1.Ports: the calls, over ports/ports.c. */
#include <stdio.h>
#include <string.h>

#include "api/records.h"
#include "ports/ports.h"
#include "rpc/call.h"
#include "sandbox/sandbox.h"
#include "sandproc/v1/ports.srv.h"
#include "server.h"

static bool
api_port_visible(void *arg, const char *tenant, const char *sandbox_id)
{
	return (api_visible(arg, tenant, sandbox_id));
}

/* NOT_FOUND, as for an unknown sandbox, unless the call's key may see sandbox id's ports. */
static int
api_ports_where(sp_call *call, const char *id)
{
	if (sandboxes_is_host(id)) {
		return (api_visible(call, "default", "default")
		        ? SP_OK
		        : sp_call_error(
		              call, SP_NOT_FOUND, "no sandbox \"default\" for key %s", call->key_id));
	}
	return (api_sandbox_check(call, id));
}

int
rpc_ports_list(sp_call *call, const sandproc_v1_ListPortsRequest *req, sandproc_v1_ListPortsReply *rep)
{
	int code;

	if (req->sandbox_id[0] != '\0' && (code = api_ports_where(call, req->sandbox_id)) != SP_OK) {
		return (code);
	}
	ports_list(call->srv->ports, req->sandbox_id, api_port_visible, call, rep);
	return (SP_OK);
}

int
rpc_ports_expose(sp_call *call, const sandproc_v1_ExposeRequest *req, sandproc_v1_Port *rep)
{
	char err[300];
	int code = api_ports_where(call, req->sandbox_id);

	if (code == SP_OK) {
		code = ports_expose(call->srv->ports, req->sandbox_id, req->port, rep, err, sizeof(err));
		if (code != SP_OK) {
			code = sp_call_error(call, code, "%s", err);
		}
	}
	return (code);
}

int
rpc_ports_unexpose(sp_call *call, const sandproc_v1_UnexposeRequest *req, sandproc_v1_Port *rep)
{
	char err[300];
	int code = api_ports_where(call, req->sandbox_id);

	if (code == SP_OK) {
		code = ports_unexpose(call->srv->ports, req->sandbox_id, req->port, rep, err, sizeof(err));
		if (code != SP_OK) {
			code = sp_call_error(call, code, "%s", err);
		}
	}
	return (code);
}
