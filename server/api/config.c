/* sandproc.v1.Processes/GetConfig and SetConfig: validated as a whole, persisted before they apply. */
#include <errno.h>
#include <string.h>

#include "api/records.h"
#include "base/errors.h"
#include "rpc/call.h"
#include "sandproc/v1/processes.srv.h"
#include "server.h"

int
rpc_processes_get_config(sp_call *call, const sandproc_v1_GetConfigRequest *req, sandproc_v1_Config *rep)
{
	(void)req;
	config_holder_get(&call->srv->cfg, rep);
	return (SP_OK);
}

int
rpc_processes_set_config(sp_call *call, const sandproc_v1_SetConfigRequest *req, sandproc_v1_Config *rep)
{
	server *srv = call->srv;
	char why[256];
	int rv, code = SP_OK;

	pthread_mutex_lock(&srv->set_config_mu);
	config_holder_get(&srv->cfg, rep);
	config_apply(rep, req);
	if (!config_validate(rep, why, sizeof(why))) {
		code = sp_call_error(call, SP_INVALID_ARGUMENT, "%s", why);
	} else if ((rv = store_save_config(srv->store, rep)) != 0) {
		code = sp_call_error(call, errors_status(rv), "cannot store the config: %s: %s",
		    errors_text(rv), store_errmsg());
	} else {
		config_holder_set(&srv->cfg, rep);
		supervisor_config_changed(srv->sup);
	}
	pthread_mutex_unlock(&srv->set_config_mu);
	return (code);
}
