#include "api/records.h"

#include <errno.h>

#include "base/errors.h"
#include "base/ids.h"
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
	if (supervisor_get(call->srv->sup, id, out, call->arena)) {
		return (SP_OK);
	}
	if ((rv = store_get_process(call->srv->store, id, out, call->arena)) != 0) {
		return (api_store_error(call, rv, id));
	}
	/* The supervisor may have taken it up between the two reads. */
	supervisor_overlay(call->srv->sup, out);
	return (SP_OK);
}
