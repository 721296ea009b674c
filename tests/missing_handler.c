/*
 * A server for the echo service that defines two of its three handlers:
 * it must fail to link (tests/CMakeLists.txt: gen_missing_handler_fails_to_link),
 * so a forgotten or misspelled handler never ships as UNIMPLEMENTED.
 */
#include "demo/v1/echo.srv.h"

int
rpc_echo_say(sp_call *call, const demo_v1_SayRequest *req, demo_v1_SayReply *rep)
{
	(void)call;
	(void)req;
	(void)rep;
	return (SP_OK);
}

int
rpc_echo_get_stats(sp_call *call, const demo_v1_StatsRequest *req, demo_v1_Stats *rep)
{
	(void)call;
	(void)req;
	(void)rep;
	return (SP_OK);
}

int
main(void)
{
	return (sp_echo_server.service->count == 3 ? 0 : 1);
}
