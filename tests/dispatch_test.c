/*
 * The generated dispatch table served by the real REP worker pool
 * (server/rpc_server.c): a method with a handler answers, a method nobody
 * wrote a handler for answers UNIMPLEMENTED through its generated stub.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "demo/v1/echo.rpc.h"
#include "harness.h"
#include "rpc/rpc.h"

static atomic_int say_calls;

int
rpc_echo_say(sp_call *call, const demo_v1_SayRequest *req, demo_v1_SayReply *rep)
{
	(void)call;
	if (req->text[0] == '\0') {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "nothing to say"));
	}
	snprintf(
	    rep->text, sizeof(rep->text), "%s%s", req->text, req->tone == demo_v1_Tone_TONE_LOUD ? "!" : "");
	rep->count = (uint32_t)atomic_fetch_add(&say_calls, 1) + 1;
	return (SP_OK);
}

int
rpc_echo_get_stats(sp_call *call, const demo_v1_StatsRequest *req, demo_v1_Stats *rep)
{
	(void)call;
	(void)req;
	rep->calls = (uint64_t)atomic_load(&say_calls);
	rep->has_inner = true;
	rep->inner.x = -5;
	return (SP_OK);
}

static const sp_service *const echo_services[] = { &sp_echo_service, NULL };
/* Say is answered on nng's callback thread; the others by workers. */
static const sp_method *const echo_inline[] = { &sp_echo_methods[SP_ECHO_SAY], NULL };

static rpc_server *
echo_serve(const char *url, sp_client **c)
{
	rpc_server *rs = NULL;
	char bound[256], err[256];

	CHECK_INT(rpc_server_start(
	              &rs, NULL, url, echo_services, echo_inline, bound, sizeof(bound), err, sizeof(err)),
	    0);
	*c = sp_client_new();
	CHECK_INT(sp_client_connect(*c, bound), SP_OK);
	return (rs);
}

static void
echo_stop(rpc_server *rs, sp_client *c)
{
	sp_client_free(c);
	rpc_server_close(rs);
	rpc_server_free(rs);
}

static void
test_generated_table_describes_the_service(void)
{
	CHECK_STR(sp_echo_service.name, "demo.v1.Echo");
	CHECK_INT(sp_echo_service.count, SP_ECHO_METHOD_COUNT);
	CHECK_INT(SP_ECHO_METHOD_COUNT, 3);
	CHECK_STR(sp_echo_methods[SP_ECHO_SHOUT].name, "demo.v1.Echo/Shout");
	CHECK(sp_echo_methods[SP_ECHO_SHOUT].request == &demo_v1_SayRequest_info);
	CHECK(sp_echo_methods[SP_ECHO_SHOUT].response == &demo_v1_SayReply_info);
	CHECK_INT(sp_echo_methods[SP_ECHO_SHOUT].flags, SP_METHOD_IDEMPOTENT);
	CHECK_INT(sp_echo_methods[SP_ECHO_SAY].flags, 0);
	CHECK_INT(sp_echo_methods[SP_ECHO_GET_STATS].flags, SP_METHOD_IDEMPOTENT | SP_METHOD_NO_SIDE_EFFECTS);
}

static void
test_handled_method_answers(void)
{
	sp_client *c;
	rpc_server *rs = echo_serve("inproc://echo1", &c);
	demo_v1_SayRequest req;
	demo_v1_SayReply rep;
	demo_v1_StatsRequest sreq;
	demo_v1_Stats stats;

	memset(&req, 0, sizeof(req));
	strcpy(req.text, "hello");
	req.tone = demo_v1_Tone_TONE_LOUD;
	CHECK_OK(c, sp_echo_say(c, &req, &rep, 0));
	CHECK_STR(rep.text, "hello!");
	memset(&sreq, 0, sizeof(sreq));
	CHECK_OK(c, sp_echo_get_stats(c, &sreq, &stats, 0));
	CHECK(stats.calls >= 1);
	CHECK(stats.has_inner && stats.inner.x == -5);
	req.text[0] = '\0';
	CHECK_INT(sp_echo_say(c, &req, &rep, 0), SP_INVALID_ARGUMENT);
	CHECK_STR(sp_client_error(c), "nothing to say");
	echo_stop(rs, c);
}

static void
test_method_without_handler_is_unimplemented(void)
{
	sp_client *c;
	rpc_server *rs = echo_serve("inproc://echo2", &c);
	demo_v1_SayRequest req;
	demo_v1_SayReply rep;

	memset(&req, 0, sizeof(req));
	strcpy(req.text, "hi");
	CHECK_INT(sp_echo_shout(c, &req, &rep, 0), SP_UNIMPLEMENTED);
	CHECK(strstr(sp_client_error(c), "demo.v1.Echo/Shout") != NULL);
	/* The server is still fine afterwards. */
	CHECK_OK(c, sp_echo_say(c, &req, &rep, 0));
	echo_stop(rs, c);
}

static void
test_resent_request_is_answered_not_repeated(void)
{
	sp_client *c;
	rpc_server *rs = echo_serve("inproc://echo3", &c);
	demo_v1_SayRequest req;
	nng_socket raw;
	nng_msg *m, *r1, *r2;
	const char *err;

	memset(&req, 0, sizeof(req));
	strcpy(req.text, "once");
	CHECK_INT(nng_req0_open(&raw), 0);
	CHECK_INT(nng_dial(raw, "inproc://echo3", NULL, 0), 0);
	int before = atomic_load(&say_calls);
	/* The same envelope (same request id) twice, as a REQ resend would. */
	for (int i = 0; i < 2; i++) {
		CHECK_INT(sp_request_encode(
		              &m, "demo.v1.Echo/Say", 777, NULL, demo_v1_SayRequest_fields, &req, &err),
		    SP_OK);
		CHECK_INT(nng_sendmsg(raw, m, 0), 0);
		CHECK_INT(nng_recvmsg(raw, i == 0 ? &r1 : &r2, 0), 0);
	}
	CHECK_INT(atomic_load(&say_calls), before + 1);
	CHECK_INT(nng_msg_len(r1), nng_msg_len(r2));
	CHECK(memcmp(nng_msg_body(r1), nng_msg_body(r2), nng_msg_len(r1)) == 0);
	nng_msg_free(r1);
	nng_msg_free(r2);
	nng_close(raw);
	echo_stop(rs, c);
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_generated_table_describes_the_service", test_generated_table_describes_the_service },
		{ "test_handled_method_answers", test_handled_method_answers },
		{ "test_method_without_handler_is_unimplemented",
		    test_method_without_handler_is_unimplemented },
		{ "test_resent_request_is_answered_not_repeated",
		    test_resent_request_is_answered_not_repeated },
	};
	return (th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])));
}
