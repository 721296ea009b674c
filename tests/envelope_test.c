/* The runtime: envelopes, callback fields, arena, status names, JSON. */
#include <stdlib.h>

#include "harness.h"

static void
test_request_round_trip(void)
{
	sandproc_v1_StartRequest in, out;
	sandproc_v1_Request env;
	const char *argv[] = { "sh", "-c", "echo hi", NULL };
	const char *env_kv[] = { "A=1", "B=two words", NULL };
	sp_arena *a = sp_arena_new();
	const char *err = "";
	nng_msg *m;

	memset(&in, 0, sizeof(in));
	in.argv = sp_strv_of(argv);
	in.env = sp_strv_of(env_kv);
	in.cwd = "/tmp";
	in.tty = true;
	in.cols = 120;
	in.name = "web";
	CHECK_INT(sp_request_encode(&m, "sandproc.v1.Processes/Start", 42, "tok",
	              sandproc_v1_StartRequest_fields, &in, &err),
	    SP_OK);
	CHECK_INT(sp_request_decode(m, &env, a, &err), SP_OK);
	CHECK_STR(env.method, "sandproc.v1.Processes/Start");
	CHECK_INT(env.request_id, 42);
	CHECK_STR(env.token, "tok");
	CHECK(sp_pb_decode(
	    sandproc_v1_StartRequest_fields, &out, sizeof(out), env.body.data, env.body.len, a, &err));
	CHECK_INT(out.argv.n, 3);
	CHECK_STR(out.argv.v[2], "echo hi");
	CHECK(out.argv.v[3] == NULL);
	CHECK_INT(out.env.n, 2);
	CHECK_STR(out.env.v[1], "B=two words");
	CHECK_STR(out.cwd, "/tmp");
	CHECK(out.tty);
	CHECK_INT(out.cols, 120);
	CHECK_STR(out.name, "web");
	nng_msg_free(m);
	sp_arena_free(a);
}

static void
test_reply_round_trip_binary(void)
{
	sandproc_v1_RunReply in, out;
	sandproc_v1_Reply env;
	uint8_t bin[300];
	sp_arena *a = sp_arena_new();
	const char *err = "";
	nng_msg *m;

	for (size_t i = 0; i < sizeof(bin); i++) {
		bin[i] = (uint8_t)(i * 31);
	}
	memset(&in, 0, sizeof(in));
	in.exit_code = -1;
	in.signal = 9;
	in.stdout.data = bin;
	in.stdout.len = sizeof(bin);
	in.stdout_truncated = true;
	CHECK_INT(sp_reply_encode(&m, 7, SP_OK, NULL, sandproc_v1_RunReply_fields, &in, &err), SP_OK);
	CHECK_INT(sp_reply_decode(m, &env, &err), SP_OK);
	CHECK_INT(env.request_id, 7);
	CHECK_INT(env.code, SP_OK);
	CHECK(sp_pb_decode(
	    sandproc_v1_RunReply_fields, &out, sizeof(out), env.body.data, env.body.len, a, &err));
	CHECK_INT(out.exit_code, -1);
	CHECK_INT(out.signal, 9);
	CHECK_INT(out.stdout.len, sizeof(bin));
	CHECK(memcmp(out.stdout.data, bin, sizeof(bin)) == 0);
	CHECK_INT(out.stderr.len, 0);
	CHECK(out.stdout_truncated);
	nng_msg_free(m);
	sp_arena_free(a);
}

static void
test_error_reply_carries_message(void)
{
	sandproc_v1_Reply env;
	const char *err = "";
	nng_msg *m;

	CHECK_INT(sp_reply_encode(&m, 9, SP_NOT_FOUND, "no process \"x\"", NULL, NULL, &err), SP_OK);
	CHECK_INT(sp_reply_decode(m, &env, &err), SP_OK);
	CHECK_INT(env.code, SP_NOT_FOUND);
	CHECK_STR(env.message, "no process \"x\"");
	CHECK_INT(env.body.len, 0);
	nng_msg_free(m);
}

static void
test_truncated_and_garbage_envelopes_are_rejected(void)
{
	sandproc_v1_Request env;
	sp_arena *a = sp_arena_new();
	const char *err = "";
	nng_msg *m, *cut;
	size_t len;

	CHECK_INT(sp_request_encode(&m, "sandproc.v1.System/Health", 1, NULL, NULL, NULL, &err), SP_OK);
	len = nng_msg_len(m);
	nng_msg_alloc(&cut, len - 3);
	memcpy(nng_msg_body(cut), nng_msg_body(m), len - 3);
	CHECK_INT(sp_request_decode(cut, &env, a, &err), SP_INVALID_ARGUMENT);
	nng_msg_free(cut);
	nng_msg_free(m);

	nng_msg_alloc(&m, 64);
	memset(nng_msg_body(m), 0xff, 64);
	CHECK_INT(sp_request_decode(m, &env, a, &err), SP_INVALID_ARGUMENT);
	nng_msg_free(m);

	/* A well-formed message with no method is not a request either. */
	nng_msg_alloc(&m, 0);
	CHECK_INT(sp_request_decode(m, &env, a, &err), SP_INVALID_ARGUMENT);
	nng_msg_free(m);
	sp_arena_free(a);
}

static void
test_strings_with_nul_are_rejected(void)
{
	/* field 2 (cwd), length 3, "a\0b" */
	const uint8_t bad[] = { 0x12, 0x03, 'a', 0x00, 'b' };
	sandproc_v1_StartRequest out;
	sp_arena *a = sp_arena_new();
	const char *err = "";

	CHECK(!sp_pb_decode(sandproc_v1_StartRequest_fields, &out, sizeof(out), bad, sizeof(bad), a, &err));
	CHECK(strstr(err, "NUL") != NULL);
	sp_arena_free(a);
}

static void
test_arena_holds_big_and_small_blocks(void)
{
	sp_arena *a = sp_arena_new();
	char *small = sp_arena_alloc(a, 10), *big = sp_arena_alloc(a, 1 << 20),
	     *small2 = sp_arena_alloc(a, 100);

	CHECK(small != NULL && big != NULL && small2 != NULL);
	memset(big, 'x', 1 << 20);
	memset(small2, 'y', 100);
	CHECK(((uintptr_t)small2 % 16) == 0);
	CHECK(sp_arena_used(a) >= (1 << 20));
	sp_arena_reset(a);
	CHECK(sp_arena_used(a) < (1 << 20));
	CHECK(sp_arena_alloc(a, 32) != NULL);
	sp_arena_free(a);
}

static void
test_status_names(void)
{
	CHECK_STR(sp_status_name(SP_OK), "OK");
	CHECK_STR(sp_status_name(3), "INVALID_ARGUMENT");
	CHECK_STR(sp_status_name(16), "UNAUTHENTICATED");
	CHECK_STR(sp_status_name(99), "UNKNOWN");
	CHECK_INT(sp_status_from_name("FAILED_PRECONDITION"), 9);
	CHECK_INT(sp_status_from_name("NOPE"), -1);
	CHECK(strlen(sp_status_message(SP_UNIMPLEMENTED)) > 0);
}

static void
test_json_of_a_record(void)
{
	sandproc_v1_Process p;
	const char *argv[] = { "echo", "a\"b", NULL };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	memset(&p, 0, sizeof(p));
	strcpy(p.id, "proc_000000000000000000000001");
	p.argv = sp_strv_of(argv);
	p.state = sandproc_v1_State_STATE_KILLED;
	p.exit_code = -1;
	p.signal = 9;
	sp_json_print(f, &sandproc_v1_Process_info, &p);
	fclose(f);
	CHECK(strstr(text, "\"id\":\"proc_000000000000000000000001\"") != NULL);
	CHECK(strstr(text, "\"argv\":[\"echo\",\"a\\\"b\"]") != NULL);
	CHECK(strstr(text, "\"state\":\"killed\"") != NULL);
	CHECK(strstr(text, "\"exit_code\":-1") != NULL);
	CHECK(strstr(text, "\"cwd\":\"\"") != NULL);
	free(text);
}

static void
test_json_bytes_text_or_base64(void)
{
	sandproc_v1_LogEntry e;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	memset(&e, 0, sizeof(e));
	e.sequence = 3;
	e.stream = sandproc_v1_Stream_STREAM_STDERR;
	e.data = sp_bytes_of_str("héllo\n");
	sp_json_print(f, &sandproc_v1_LogEntry_info, &e);
	fputc('|', f);
	e.data.data = (const uint8_t *)"\xff\x00\x01";
	e.data.len = 3;
	sp_json_print(f, &sandproc_v1_LogEntry_info, &e);
	fclose(f);
	CHECK(strstr(text, "\"stream\":\"stderr\"") != NULL);
	CHECK(strstr(text, "\"data\":\"héllo\\n\"") != NULL);
	CHECK(strstr(text, "\"data_base64\":\"/wAB\"") != NULL);
	free(text);
}

static void
test_utf8_validation(void)
{
	CHECK(sp_utf8_valid("abc", 3));
	CHECK(sp_utf8_valid("\xe2\x82\xac", 3));
	CHECK(!sp_utf8_valid("\xe2\x82", 2));
	CHECK(!sp_utf8_valid("\xc0\xaf", 2));     /* overlong */
	CHECK(!sp_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
}

static void
test_method_lookup(void)
{
	const sp_service *services[] = { &sp_system_service, &sp_processes_service, NULL };
	const sp_method *m = sp_service_find(services, "sandproc.v1.Processes/SendInput");

	CHECK(m != NULL && m->id == SP_PROCESSES_SEND_INPUT);
	CHECK(m != NULL && (m->flags & SP_METHOD_IDEMPOTENT) == 0);
	m = sp_service_find(services, "sandproc.v1.Processes/Get");
	CHECK(m != NULL && (m->flags & SP_METHOD_NO_SIDE_EFFECTS) != 0);
	CHECK(sp_service_find(services, "sandproc.v1.Processes/Nope") == NULL);
	CHECK(sp_service_find(services, "sandproc.v1.Process/Get") == NULL);
	CHECK(sp_service_find(services, "") == NULL);
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_request_round_trip", test_request_round_trip },
		{ "test_reply_round_trip_binary", test_reply_round_trip_binary },
		{ "test_error_reply_carries_message", test_error_reply_carries_message },
		{ "test_truncated_and_garbage_envelopes_are_rejected",
		    test_truncated_and_garbage_envelopes_are_rejected },
		{ "test_strings_with_nul_are_rejected", test_strings_with_nul_are_rejected },
		{ "test_arena_holds_big_and_small_blocks", test_arena_holds_big_and_small_blocks },
		{ "test_status_names", test_status_names },
		{ "test_json_of_a_record", test_json_of_a_record },
		{ "test_json_bytes_text_or_base64", test_json_bytes_text_or_base64 },
		{ "test_utf8_validation", test_utf8_validation },
		{ "test_method_lookup", test_method_lookup },
	};
	return (th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])));
}
