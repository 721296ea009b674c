/*
 * The generated tables served by the real RPC layer (server/rpc/): handlers
 * answer, park until an event or a timeout, and resent requests are
 * answered from the replay cache only when they are the same request from
 * the same caller.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/timers.h"
#include "base/workq.h"
#include "demo/v1/echo.srv.h"
#include "harness.h"
#include "rpc/rpc.h"

static atomic_int say_calls;

/* An event the tests fire: Shout parks on it. */
static pthread_mutex_t event_mu = PTHREAD_MUTEX_INITIALIZER;
static waitlist event_waiters;

static void
event_detach(waiter *w)
{
	pthread_mutex_lock(&event_mu);
	waitlist_remove(&event_waiters, w);
	pthread_mutex_unlock(&event_mu);
}

static void
event_fire(void)
{
	pthread_mutex_lock(&event_mu);
	waitlist_wake_all(&event_waiters);
	pthread_mutex_unlock(&event_mu);
}

int
rpc_echo_say(sp_call *call, const demo_v1_SayRequest *req, demo_v1_SayReply *rep)
{
	if (req->text[0] == '\0') {
		return (sp_call_error(call, SP_INVALID_ARGUMENT, "nothing to say"));
	}
	snprintf(
	    rep->text, sizeof(rep->text), "%s%s", req->text, req->tone == demo_v1_Tone_TONE_LOUD ? "!" : "");
	rep->count = (uint32_t)atomic_fetch_add(&say_calls, 1) + 1;
	return (SP_OK);
}

static int
shout_resume(sp_call *call, void *req, void *rep, bool timed_out)
{
	demo_v1_SayReply *r = rep;

	(void)call;
	snprintf(r->text, sizeof(r->text), "%s", timed_out ? "timed out" : ((demo_v1_SayRequest *)req)->text);
	return (SP_OK);
}

/* "park:MS" waits for the event (at most MS ms); anything else is not implemented. */
int
rpc_echo_shout(sp_call *call, const demo_v1_SayRequest *req, demo_v1_SayReply *rep)
{
	(void)rep;
	if (strncmp(req->text, "park:", 5) != 0) {
		return (sp_call_error(call, SP_UNIMPLEMENTED, "demo.v1.Echo/Shout only parks"));
	}
	waiter *w = sp_call_waiter(call, 0);
	pthread_mutex_lock(&event_mu);
	w->detach = event_detach;
	waitlist_add(&event_waiters, w);
	pthread_mutex_unlock(&event_mu);
	return (sp_call_park(call, (uint32_t)atoi(req->text + 5), shout_resume));
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

static const sp_server_service *const echo_services[] = { &sp_echo_server, NULL };
/* Say is answered on nng's callback thread; the others by workers. */
static const sp_method *const echo_inline[] = { &sp_echo_methods[SP_ECHO_SAY], NULL };

typedef struct echo_server {
	rpc_server *rs;
	workq *wq;
	timers *ts;
} echo_server;

static echo_server
echo_serve(const char *url, sp_client **c)
{
	echo_server e = { 0 };
	char bound[256], err[256];

	CHECK_INT(workq_new(&e.wq, 2, 1100, 300), 0);
	CHECK_INT(timers_new(&e.ts), 0);
	rpc_config cfg = { .services = echo_services,
		.inline_methods = echo_inline,
		.wq = e.wq,
		.timers = e.ts,
		.max_request_bytes = 1 << 20 };
	CHECK_INT(rpc_server_new(&e.rs, &cfg, err, sizeof(err)), 0);
	CHECK_INT(rpc_server_listen(e.rs, url, bound, sizeof(bound), err, sizeof(err)), 0);
	*c = sp_client_new();
	CHECK_INT(sp_client_connect(*c, bound), SP_OK);
	return (e);
}

static void
echo_stop(echo_server e, sp_client *c)
{
	sp_client_free(c);
	rpc_server_close(e.rs);
	rpc_server_free(e.rs);
	workq_free(e.wq);
	timers_free(e.ts);
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
	echo_server rs = echo_serve("inproc://echo1", &c);
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
test_handler_may_answer_unimplemented(void)
{
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo2", &c);
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

typedef struct shout_arg {
	const char *url;
	const char *text;
	int code;
	char reply[128];
} shout_arg;

static void *
shout_thread(void *arg)
{
	shout_arg *a = arg;
	sp_client *c = sp_client_new();
	demo_v1_SayRequest req;
	demo_v1_SayReply rep;

	memset(&req, 0, sizeof(req));
	snprintf(req.text, sizeof(req.text), "%s", a->text);
	if (sp_client_connect(c, a->url) == SP_OK) {
		a->code = sp_echo_shout(c, &req, &rep, 60000);
		snprintf(a->reply, sizeof(a->reply), "%s", a->code == SP_OK ? rep.text : "");
	}
	sp_client_free(c);
	return (NULL);
}

static void
test_parked_call_answers_when_woken_or_timed_out(void)
{
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo4", &c);
	demo_v1_SayRequest req;
	demo_v1_SayReply rep;
	pthread_t th;
	shout_arg a = { "inproc://echo4", "park:0", -1, "" };

	/* No timeout: it waits for the event, holding no thread meanwhile. */
	pthread_create(&th, NULL, shout_thread, &a);
	for (int i = 0; i < 500 && rpc_server_parked(rs.rs) == 0; i++) {
		th_sleep_ms(2);
	}
	CHECK_INT(rpc_server_parked(rs.rs), 1);
	event_fire();
	pthread_join(th, NULL);
	CHECK_INT(a.code, SP_OK);
	CHECK_STR(a.reply, "park:0");
	/* A timeout answers through the same resume, and the waiter is taken back. */
	memset(&req, 0, sizeof(req));
	strcpy(req.text, "park:50");
	int64_t t0 = th_now_ms();
	CHECK_OK(c, sp_echo_shout(c, &req, &rep, 5000));
	CHECK_STR(rep.text, "timed out");
	CHECK(th_now_ms() - t0 >= 50);
	CHECK(event_waiters.head == NULL);
	CHECK_INT(rpc_server_parked(rs.rs), 0);
	echo_stop(rs, c);
}

static void
test_a_thousand_parked_calls_hold_no_threads(void)
{
	enum { N = 1000 };
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo5", &c);
	demo_v1_SayRequest req;
	demo_v1_SayReply rep;
	static shout_arg args[N];
	static pthread_t th[N];
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < N; i++) {
		args[i] = (shout_arg){ "inproc://echo5", "park:0", -1, "" };
		pthread_create(&th[i], &attr, shout_thread, &args[i]);
	}
	for (int i = 0; i < 3000 && rpc_server_parked(rs.rs) < N; i++) {
		th_sleep_ms(5);
	}
	CHECK_INT(rpc_server_parked(rs.rs), N);
	/* Every parked call has given its worker back: the pool shrinks to its minimum (300 ms idle). */
	for (int i = 0; i < 500 && workq_threads(rs.wq) > 2; i++) {
		th_sleep_ms(10);
	}
	CHECK_INT(workq_threads(rs.wq), 2);
	CHECK_INT(rpc_server_parked(rs.rs), N);
	memset(&req, 0, sizeof(req));
	strcpy(req.text, "still here");
	CHECK_OK(c, sp_echo_say(c, &req, &rep, 2000));
	event_fire();
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (args[i].code != SP_OK) {
			CHECK_INT(args[i].code, SP_OK);
			break;
		}
	}
	CHECK_INT(rpc_server_parked(rs.rs), 0);
	pthread_attr_destroy(&attr);
	echo_stop(rs, c);
}

/* Sends one envelope on raw and returns the reply's code and message. */
static int
raw_call(
    nng_socket raw, const char *method, uint64_t id, const demo_v1_SayRequest *req, char *msg, size_t len)
{
	sandproc_v1_Reply env;
	const char *err;
	nng_msg *m;
	int code;

	if (sp_request_encode(&m, method, id, NULL, demo_v1_SayRequest_fields, req, &err) != SP_OK ||
	    nng_sendmsg(raw, m, 0) != 0 || nng_recvmsg(raw, &m, 0) != 0) {
		return (-1);
	}
	code = sp_reply_decode(m, &env, &err) == SP_OK ? env.code : -1;
	snprintf(msg, len, "%s", env.message);
	nng_msg_free(m);
	return (code);
}

static void
test_reused_request_id_is_refused_not_replayed(void)
{
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo6", &c);
	demo_v1_SayRequest req;
	nng_socket raw, other;
	char msg[512];

	memset(&req, 0, sizeof(req));
	CHECK_INT(nng_req0_open(&raw), 0);
	CHECK_INT(nng_dial(raw, "inproc://echo6", NULL, 0), 0);
	CHECK_INT(nng_req0_open(&other), 0);
	CHECK_INT(nng_dial(other, "inproc://echo6", NULL, 0), 0);
	strcpy(req.text, "first");
	CHECK_INT(raw_call(raw, "demo.v1.Echo/Say", 555, &req, msg, sizeof(msg)), SP_OK);
	/* The same id with another body: refused, saying why, never the first call's reply. */
	strcpy(req.text, "second");
	CHECK_INT(raw_call(raw, "demo.v1.Echo/Say", 555, &req, msg, sizeof(msg)), SP_INVALID_ARGUMENT);
	CHECK(strstr(msg, "request id 555") != NULL);
	/* Another caller's id is its own: carried out, not answered with the first caller's reply. */
	int before = atomic_load(&say_calls);
	strcpy(req.text, "first");
	CHECK_INT(raw_call(other, "demo.v1.Echo/Say", 555, &req, msg, sizeof(msg)), SP_OK);
	CHECK_INT(atomic_load(&say_calls), before + 1);
	nng_close(raw);
	nng_close(other);
	echo_stop(rs, c);
}

static void
test_method_name_with_nul_is_refused(void)
{
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo7", &c);
	/* field 1 "demo.v1.Echo/Say\0junk", field 2 request id 99 */
	const char name[] = "demo.v1.Echo/Say\0junk";
	uint8_t buf[64];
	size_t n = 0;
	sandproc_v1_Reply env;
	const char *err;
	nng_socket raw;
	nng_msg *m;

	buf[n++] = 0x0a;
	buf[n++] = (uint8_t)(sizeof(name) - 1);
	memcpy(buf + n, name, sizeof(name) - 1);
	n += sizeof(name) - 1;
	buf[n++] = 0x10;
	buf[n++] = 99;
	CHECK_INT(nng_req0_open(&raw), 0);
	CHECK_INT(nng_dial(raw, "inproc://echo7", NULL, 0), 0);
	nng_msg_alloc(&m, n);
	memcpy(nng_msg_body(m), buf, n);
	CHECK_INT(nng_sendmsg(raw, m, 0), 0);
	CHECK_INT(nng_recvmsg(raw, &m, 0), 0);
	CHECK_INT(sp_reply_decode(m, &env, &err), SP_OK);
	CHECK_INT(env.code, SP_INVALID_ARGUMENT);
	CHECK_INT(env.request_id, 99);
	CHECK(strstr(env.message, "NUL") != NULL);
	nng_msg_free(m);
	nng_close(raw);
	echo_stop(rs, c);
}

static void
test_resent_request_is_answered_not_repeated(void)
{
	sp_client *c;
	echo_server rs = echo_serve("inproc://echo3", &c);
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
		{ "test_handler_may_answer_unimplemented", test_handler_may_answer_unimplemented },
		{ "test_parked_call_answers_when_woken_or_timed_out",
		    test_parked_call_answers_when_woken_or_timed_out },
		{ "test_a_thousand_parked_calls_hold_no_threads",
		    test_a_thousand_parked_calls_hold_no_threads },
		{ "test_reused_request_id_is_refused_not_replayed",
		    test_reused_request_id_is_refused_not_replayed },
		{ "test_method_name_with_nul_is_refused", test_method_name_with_nul_is_refused },
		{ "test_resent_request_is_answered_not_repeated",
		    test_resent_request_is_answered_not_repeated },
	};
	return (th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])));
}
