#include "api/records.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "base/ids.h"
#include "sandbox/sandbox.h"
#include "server.h"

int
api_store_error(sp_call *call, int rv, const char *id)
{
	if (rv == ENOENT) {
		return (sp_call_error(call, SP_NOT_FOUND, "no process \"%s\"", id));
	}
	return (sp_call_error(call, errors_status(rv), "store: %s: %s", errors_text(rv), store_errmsg()));
}

int
api_get_record(sp_call *call, const char *id, sandproc_v1_Process *out)
{
	int rv;

	if (!ids_valid(id, IDS_PROC)) {
		return (sp_call_error(
		    call, SP_NOT_FOUND, "no process \"%s\" (ids look like proc_ + 24 hex digits)", id));
	}
	if (!supervisor_get(call->srv->sup, id, out, call->arena)) {
		if ((rv = store_get_process(call->srv->store, id, out, call->arena)) != 0) {
			return (api_store_error(call, rv, id));
		}
		/* The supervisor may have taken it up between the two reads. */
		supervisor_overlay(call->srv->sup, out);
	}
	if (!api_visible(call, out->tenant, out->sandbox_id)) {
		return (sp_call_error(call, SP_NOT_FOUND, "no process \"%s\"", id));
	}
	return (SP_OK);
}

bool
api_visible(const sp_call *call, const char *tenant, const char *sandbox_id)
{
	if (call->role == SP_ROLE_ADMIN) {
		return (true);
	}
	if (sandboxes_is_host(sandbox_id) ||
	    strcmp(tenant[0] != '\0' ? tenant : "default", call->tenant) != 0) {
		return (false);
	}
	return (call->key_sandbox[0] == '\0' || strcmp(call->key_sandbox, sandbox_id) == 0);
}

int
api_place_check(sp_call *call, const char *sandbox_id, char *tenant)
{
	sandproc_v1_Sandbox sb;
	char err[300];
	int code;

	if (sandboxes_is_host(sandbox_id)) {
		if (call->role != SP_ROLE_ADMIN) {
			return (sp_call_error(call, SP_PERMISSION_DENIED,
			    "processes on the host (sandbox \"default\") run as the server and need an admin "
			    "key; "
			    "key %s may start processes in its tenant's sandboxes (sandbox_id)",
			    call->key_id));
		}
		snprintf(tenant, 64, "%s", call->tenant);
		return (SP_OK);
	}
	if ((code = sandboxes_get(call->srv->sbx, sandbox_id, &sb, call->arena, err, sizeof(err))) != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	if (!api_visible(call, sb.tenant, sb.id)) {
		return (sp_call_error(call, SP_NOT_FOUND, "no sandbox \"%s\"", sandbox_id));
	}
	snprintf(tenant, 64, "%s", sb.tenant);
	return (SP_OK);
}

int
api_sandbox_check(sp_call *call, const char *id)
{
	sandproc_v1_Sandbox sb;
	char err[300];
	int code;

	if ((code = sandboxes_get(call->srv->sbx, id, &sb, call->arena, err, sizeof(err))) != SP_OK) {
		return (sp_call_error(call, code, "%s", err));
	}
	if (!api_visible(call, sb.tenant, sb.id)) {
		return (sp_call_error(call, SP_NOT_FOUND, "no sandbox \"%s\"", id));
	}
	return (SP_OK);
}
