/* sandproc.v1.Keys: CreateKey, ListKeys, RevokeKey, over auth/keys.c. Admin keys only (the .proto says so).
 */
#include <stdio.h>

#include "auth/keys.h"
#include "rpc/call.h"
#include "sandproc/v1/keys.srv.h"
#include "server.h"

/* With --auth none there are no keys to manage. */
static int
api_no_keys(sp_call *call)
{
	return (sp_call_error(
	    call, SP_FAILED_PRECONDITION, "the server runs with --auth none: there are no keys"));
}

int
rpc_keys_create_key(sp_call *call, const sandproc_v1_CreateKeyRequest *req, sandproc_v1_Key *rep)
{
	char err[300];
	int code;

	if (call->srv->keys == NULL) {
		return (api_no_keys(call));
	}
	code = keys_create(call->srv->keys, req, rep, err, sizeof(err));
	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}

int
rpc_keys_list_keys(sp_call *call, const sandproc_v1_ListKeysRequest *req, sandproc_v1_ListKeysReply *rep)
{
	(void)req;
	if (call->srv->keys == NULL) {
		return (api_no_keys(call));
	}
	return (keys_list(call->srv->keys, rep, call->arena) == SP_OK
	        ? SP_OK
	        : sp_call_error(call, SP_RESOURCE_EXHAUSTED, "out of memory"));
}

int
rpc_keys_revoke_key(sp_call *call, const sandproc_v1_RevokeKeyRequest *req, sandproc_v1_RevokeKeyReply *rep)
{
	char err[300];
	int code;

	(void)rep;
	if (call->srv->keys == NULL) {
		return (api_no_keys(call));
	}
	code = keys_revoke(call->srv->keys, req->id, err, sizeof(err));
	return (code == SP_OK ? SP_OK : sp_call_error(call, code, "%s", err));
}
