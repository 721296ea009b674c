/* sandproc.v1.System: Health. */
#include <stdio.h>
#include <unistd.h>

#include "base/util.h"
#include "rpc/call.h"
#include "rpc/rpc.h"
#include "sandproc/v1/system.srv.h"
#include "server.h"

int
rpc_system_health(sp_call *call, const sandproc_v1_HealthRequest *req, sandproc_v1_HealthReply *rep)
{
	server *srv = call->srv;

	(void)req;
	snprintf(rep->version, sizeof(rep->version), "%s", SANDPROC_VERSION);
	rep->uptime_ms = (uint64_t)(util_mono_ms() - srv->started_mono_ms);
	rep->pid = (int32_t)getpid();
	rep->running = supervisor_running(srv->sup);
	rep->started_at_ms = srv->started_at_ms;
	rep->degraded = store_queue_fault(srv->sq, rep->fault, sizeof(rep->fault));
	rep->threads = (uint32_t)workq_threads(srv->wq);
	rep->parked_calls = (uint32_t)(srv->rpc != NULL ? rpc_server_parked(srv->rpc) : 0);
	return (SP_OK);
}
