/*
 * Process lifecycle: Run, Start, List, Get, Stop, Kill, Signal, Wait,
 * Delete, config; process groups, failed starts, limits, reaping.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static th_server srv;

static void
fresh(void)
{
	th_server_cleanup(&srv);
	memset(&srv, 0, sizeof(srv));
	th_server_start(&srv, false);
}

/* Tests share one server; the first to run (or one run alone) starts it. */
static void
ensure(void)
{
	if (srv.pid <= 0) {
		th_server_start(&srv, false);
	}
}

static int
run(const char *const *argv, sandproc_v1_RunRequest *req, sandproc_v1_RunReply *rep)
{
	sandproc_v1_RunRequest local;

	if (req == NULL) {
		memset(&local, 0, sizeof(local));
		req = &local;
	}
	req->argv = sp_strv_of(argv);
	return (sp_processes_run(srv.c, req, rep, 60000));
}

static void
test_run_exit_code_and_streams(void)
{
	const char *argv[] = { "sh", "-c", "printf out; printf err >&2; exit 3", NULL };
	sandproc_v1_RunReply rep;

	fresh();
	CHECK_OK(srv.c, run(argv, NULL, &rep));
	CHECK_INT(rep.exit_code, 3);
	CHECK_INT(rep.signal, 0);
	CHECK(!rep.timed_out);
	CHECK_INT(rep.stdout.len, 3);
	CHECK(memcmp(rep.stdout.data, "out", 3) == 0);
	CHECK_INT(rep.stderr.len, 3);
	CHECK(memcmp(rep.stderr.data, "err", 3) == 0);
	CHECK_INT(rep.output.len, 6);
	CHECK(rep.pid > 0);
}

static void
test_run_interleaves_output_in_order(void)
{
	const char *argv[] = { "sh", "-c", "echo 1; sleep 0.1; echo 2 >&2; sleep 0.1; echo 3", NULL };
	sandproc_v1_RunReply rep;

	ensure();
	CHECK_OK(srv.c, run(argv, NULL, &rep));
	CHECK_INT(rep.output.len, 6);
	CHECK(memcmp(rep.output.data, "1\n2\n3\n", 6) == 0);
	CHECK_INT(rep.stdout.len, 4);
	CHECK(memcmp(rep.stdout.data, "1\n3\n", 4) == 0);
}

static void
test_run_feeds_stdin_bytes(void)
{
	const char *argv[] = { TESTCHILD_PATH, "echo", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;
	uint8_t in[100000];

	ensure();
	for (size_t i = 0; i < sizeof(in); i++) {
		in[i] = (uint8_t)(i % 251);
	}
	CHECK_OK(srv.c,
	    sp_processes_set_config(srv.c,
	        &(sandproc_v1_SetConfigRequest){
	            .has_max_input_bytes_per_request = true, .max_input_bytes_per_request = 200000 },
	        &(sandproc_v1_Config){ 0 }, 0));
	memset(&req, 0, sizeof(req));
	req.stdin.data = in;
	req.stdin.len = sizeof(in);
	CHECK_OK(srv.c, run(argv, &req, &rep));
	CHECK_INT(rep.exit_code, 0);
	CHECK_INT(rep.stdout.len, sizeof(in));
	CHECK(rep.stdout.len == sizeof(in) && memcmp(rep.stdout.data, in, sizeof(in)) == 0);
	/* Without stdin bytes the command reads EOF at once. */
	const char *cat[] = { "cat", NULL };
	CHECK_OK(srv.c, run(cat, NULL, &rep));
	CHECK_INT(rep.stdout.len, 0);
}

static void
test_run_timeout_kills_whole_group(void)
{
	const char *argv[] = { TESTCHILD_PATH, "fork-sleep", "60", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;

	ensure();
	memset(&req, 0, sizeof(req));
	req.timeout_ms = 500;
	CHECK_OK(srv.c, run(argv, &req, &rep));
	CHECK(rep.timed_out);
	CHECK_INT(rep.exit_code, -1);
	CHECK_INT(rep.signal, SIGKILL);
	CHECK_INT(th_group_settled(rep.pid, false), 0);
	CHECK(memcmp(rep.stdout.data, "forked\n", 7) == 0);
}

static void
test_run_does_not_wait_for_background_grandchild(void)
{
	/* The grandchild holds stdout open for 60 s; Run must end with the shell. */
	const char *argv[] = { "sh", "-c", "sleep 60 & echo done", NULL };
	sandproc_v1_RunReply rep;

	ensure();
	CHECK_OK(srv.c, run(argv, NULL, &rep));
	CHECK_INT(rep.exit_code, 0);
	CHECK(!rep.timed_out);
	CHECK(rep.stdout.len == 5 && memcmp(rep.stdout.data, "done\n", 5) == 0);
	CHECK_INT(th_group_settled(rep.pid, false), 0);
}

static void
test_run_caps_output(void)
{
	const char *argv[] = { TESTCHILD_PATH, "both", "50000", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;

	ensure();
	memset(&req, 0, sizeof(req));
	req.max_output_bytes = 1000;
	CHECK_OK(srv.c, run(argv, &req, &rep));
	CHECK_INT(rep.exit_code, 0);
	CHECK_INT(rep.stdout.len, 1000);
	CHECK_INT(rep.stderr.len, 1000);
	CHECK(rep.stdout_truncated && rep.stderr_truncated && rep.output_truncated);
	/* A cap above the configured maximum is held to it. */
	sandproc_v1_Config cfg;
	CHECK_OK(srv.c,
	    sp_processes_set_config(srv.c,
	        &(sandproc_v1_SetConfigRequest){ .has_max_output_bytes = true, .max_output_bytes = 4096 },
	        &cfg, 0));
	req.max_output_bytes = 1 << 20;
	CHECK_OK(srv.c, run(argv, &req, &rep));
	CHECK_INT(rep.stdout.len, 4096);
	CHECK_OK(srv.c,
	    sp_processes_set_config(srv.c,
	        &(sandproc_v1_SetConfigRequest){ .has_max_output_bytes = true, .max_output_bytes = 1 << 20 },
	        &cfg, 0));
}

static void
test_run_failures_name_the_cause(void)
{
	const char *missing[] = { "definitely-not-a-command", NULL };
	const char *ls[] = { "ls", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;
	char path[300];

	ensure();
	CHECK_INT(run(missing, NULL, &rep), SP_NOT_FOUND);
	CHECK(strstr(sp_client_error(srv.c), "definitely-not-a-command") != NULL);
	memset(&req, 0, sizeof(req));
	req.cwd = "/no/such/dir";
	CHECK_INT(run(ls, &req, &rep), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "No such file or directory") != NULL);
	/* A file that is not executable. */
	snprintf(path, sizeof(path), "%s/noexec", srv.dir);
	FILE *f = fopen(path, "w");
	fputs("#!/bin/sh\necho hi\n", f);
	fclose(f);
	chmod(path, 0644);
	const char *noexec[] = { path, NULL };
	CHECK_INT(run(noexec, NULL, &rep), SP_PERMISSION_DENIED);
	CHECK(strstr(sp_client_error(srv.c), "Permission denied") != NULL);
	const char *empty[] = { NULL };
	CHECK_INT(run(empty, NULL, &rep), SP_INVALID_ARGUMENT);
}

static void
test_run_env_and_cwd(void)
{
	const char *argv[] = { "sh", "-c", "printf '%s|%s|%s' \"$FOO\" \"$(pwd)\" \"$HOME\"", NULL };
	const char *env[] = { "FOO=bar baz", NULL };
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;
	char want[600];

	ensure();
	memset(&req, 0, sizeof(req));
	req.env = sp_strv_of(env);
	req.cwd = srv.dir;
	CHECK_OK(srv.c, run(argv, &req, &rep));
	snprintf(want, sizeof(want), "bar baz|%s|%s", srv.dir, getenv("HOME") ? getenv("HOME") : "");
	CHECK_INT(rep.stdout.len, strlen(want));
	CHECK(rep.stdout.len == strlen(want) && memcmp(rep.stdout.data, want, strlen(want)) == 0);
	const char *bad[] = { "=x", NULL };
	req.env = sp_strv_of(bad);
	CHECK_INT(run(argv, &req, &rep), SP_INVALID_ARGUMENT);
}

static void
test_start_wait_get_exit_code(void)
{
	const char *argv[] = { "sh", "-c", "exit 7", NULL };
	sandproc_v1_Process p, got;

	fresh();
	th_start(&srv, argv, &p);
	CHECK(strncmp(p.id, "proc_", 5) == 0 && strlen(p.id) == 29);
	CHECK_INT(p.state, sandproc_v1_State_STATE_RUNNING);
	CHECK(p.pid > 0);
	CHECK(p.started_at_ms > 0);
	CHECK_INT(p.exited_at_ms, 0);
	CHECK_STR(p.sandbox_id, "default");
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	CHECK_INT(got.exit_code, 7);
	CHECK(got.exited_at_ms >= got.started_at_ms);
	CHECK_OK(srv.c, th_get(&srv, p.id, &got));
	CHECK_INT(got.exit_code, 7);
	CHECK_INT(th_get(&srv, "proc_000000000000000000000000", &got), SP_NOT_FOUND);
	CHECK_INT(th_get(&srv, "nonsense", &got), SP_NOT_FOUND);
}

static void
test_failed_start_is_recorded_with_cause(void)
{
	const char *argv[] = { "no-such-binary-here", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p, got;
	sandproc_v1_ListRequest lreq;
	sandproc_v1_ListReply *list = malloc(sizeof(*list));

	ensure();
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	CHECK_INT(sp_processes_start(srv.c, &req, &p, 0), SP_NOT_FOUND);
	char id[32];
	snprintf(id, sizeof(id), "%.29s", sp_client_error(srv.c));
	CHECK_OK(srv.c, th_get(&srv, id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_FAILED);
	CHECK_INT(got.exit_code, 127);
	CHECK(strstr(got.error, "no-such-binary-here") != NULL);
	CHECK(strstr(got.error, "No such file or directory") != NULL);
	req.argv = sp_strv_of((const char *[]){ "ls", NULL });
	req.cwd = "/nope/nope";
	CHECK_INT(sp_processes_start(srv.c, &req, &p, 0), SP_INVALID_ARGUMENT);
	memset(&lreq, 0, sizeof(lreq));
	lreq.state = sandproc_v1_State_STATE_FAILED;
	CHECK_OK(srv.c, sp_processes_list(srv.c, &lreq, list, 0));
	CHECK(list->processes_count >= 2);
	for (pb_size_t i = 0; i < list->processes_count; i++) {
		CHECK_INT(list->processes[i].state, sandproc_v1_State_STATE_FAILED);
	}
	free(list);
}

/* A shell that starts two more processes in its group and waits. */
static const char *family[] = { "sh", "-c", "sleep 60 & sleep 60 & echo up; wait", NULL };

static void
test_stop_kills_whole_group(void)
{
	sandproc_v1_Process p, got;

	ensure();
	th_start(&srv, family, &p);
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "up"));
	CHECK(th_group_members(p.pid, false) >= 3);
	th_stop(&srv, p.id, 0, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.exit_code, -1);
	CHECK_INT(got.signal, SIGTERM);
	CHECK_INT(th_group_settled(p.pid, false), 0);
	/* Stopping an ended process is fine. */
	th_stop(&srv, p.id, 0, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
}

static void
test_stop_escalates_to_sigkill_after_grace(void)
{
	const char *argv[] = { TESTCHILD_PATH, "trap", NULL };
	sandproc_v1_Process p, got;

	ensure();
	th_start(&srv, argv, &p);
	/* The child ignores TERM before it prints "ready"; stopping sooner would test nothing. */
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "ready"));
	th_stop(&srv, p.id, 300, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGKILL);
	CHECK_INT(th_group_settled(p.pid, false), 0);
}

static void
test_kill_kills_whole_group(void)
{
	sandproc_v1_Process p, got;

	ensure();
	th_start(&srv, family, &p);
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "up"));
	th_kill(&srv, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGKILL);
	CHECK_INT(th_group_settled(p.pid, false), 0);
}

static void
test_signal_by_name_and_number(void)
{
	const char *argv[] = { TESTCHILD_PATH, "usr1", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_SignalRequest req;

	ensure();
	th_start(&srv, argv, &p);
	/* Each signal waits for the child's answer to the one before: two pending USR1s would merge. */
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "ready\n"));
	memset(&req, 0, sizeof(req));
	strcpy(req.id, p.id);
	strcpy(req.signal, "USR1");
	CHECK_OK(srv.c, sp_processes_signal(srv.c, &req, &got, 0));
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "ready\nusr1\n"));
	strcpy(req.signal, "sigusr1");
	CHECK_OK(srv.c, sp_processes_signal(srv.c, &req, &got, 0));
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "ready\nusr1\nusr1\n"));
	strcpy(req.signal, "NOPE");
	CHECK_INT(sp_processes_signal(srv.c, &req, &got, 0), SP_INVALID_ARGUMENT);
	snprintf(req.signal, sizeof(req.signal), "%d", SIGTERM);
	CHECK_OK(srv.c, sp_processes_signal(srv.c, &req, &got, 0));
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	CHECK_INT(got.exit_code, 0);
	size_t len;
	uint8_t *out = th_logs(srv.c, p.id, 0, &len);
	CHECK_STR((char *)out, "ready\nusr1\nusr1\n");
	free(out);
	/* To an ended process: a precondition failure. */
	CHECK_INT(sp_processes_signal(srv.c, &req, &got, 0), SP_FAILED_PRECONDITION);
}

static void
test_timeout_s_is_enforced(void)
{
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p, got;

	ensure();
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.timeout_s = 1;
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, &p, 0));
	th_wait(&srv, p.id, &got);
	CHECK_INT(got.state, sandproc_v1_State_STATE_KILLED);
	CHECK_INT(got.signal, SIGTERM);
	CHECK(strstr(got.error, "timed out") != NULL);
}

static void
test_relative_cwd_is_taken_from_the_workdir(void)
{
	const char *argv[] = { "pwd", NULL };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;
	char sub[600], want[700];
	size_t len;

	ensure();
	snprintf(sub, sizeof(sub), "%s/data/work/sub", srv.dir);
	CHECK(mkdir(sub, 0755) == 0);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.cwd = "sub";
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, &p, 0));
	CHECK_STR(p.cwd, sub);
	uint8_t *out = th_finish(&srv, p.id, 0, &len);
	snprintf(want, sizeof(want), "%s\n", sub);
	CHECK(len == strlen(want) && memcmp(out, want, len) == 0);
	free(out);
	/* No cwd: the workdir itself, and the record says which. */
	req.cwd = NULL;
	CHECK_OK(srv.c, sp_processes_start(srv.c, &req, &p, 0));
	snprintf(want, sizeof(want), "%s/data/work", srv.dir);
	CHECK_STR(p.cwd, want);
	th_wait(&srv, p.id, &p);
}

static void
test_delete_only_ended(void)
{
	const char *argv[] = { "sleep", "60", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_DeleteRequest req;
	sandproc_v1_DeleteReply rep;
	sandproc_v1_KillRequest kreq;
	char log[600];

	ensure();
	th_start(&srv, argv, &p);
	memset(&req, 0, sizeof(req));
	strcpy(req.id, p.id);
	CHECK_INT(sp_processes_delete(srv.c, &req, &rep, 0), SP_FAILED_PRECONDITION);
	memset(&kreq, 0, sizeof(kreq));
	strcpy(kreq.id, p.id);
	kreq.wait_ms = 5000;
	CHECK_OK(srv.c, sp_processes_kill(srv.c, &kreq, &got, 10000));
	snprintf(log, sizeof(log), "%s/data/logs/%s.log", srv.dir, p.id);
	CHECK(access(log, F_OK) == 0);
	CHECK_OK(srv.c, sp_processes_delete(srv.c, &req, &rep, 0));
	CHECK_INT(th_get(&srv, p.id, &got), SP_NOT_FOUND);
	CHECK(access(log, F_OK) != 0);
	CHECK_INT(sp_processes_delete(srv.c, &req, &rep, 0), SP_NOT_FOUND);
}

static void
test_list_newest_first_paged_and_filtered(void)
{
	const char *t[] = { "true", NULL };
	sandproc_v1_Process p[7], got;
	sandproc_v1_ListRequest req;
	sandproc_v1_ListReply *rep = malloc(sizeof(*rep));
	char seen[7][32];
	int n = 0;

	fresh();
	for (int i = 0; i < 7; i++) {
		th_start(&srv, t, &p[i]);
		th_wait(&srv, p[i].id, &got);
	}
	memset(&req, 0, sizeof(req));
	req.limit = 3;
	do {
		CHECK_OK(srv.c, sp_processes_list(srv.c, &req, rep, 0));
		CHECK(rep->processes_count <= 3);
		for (pb_size_t i = 0; i < rep->processes_count && n < 7; i++) {
			strcpy(seen[n++], rep->processes[i].id);
		}
		memcpy(req.page_token, rep->next_page_token, sizeof(req.page_token));
	} while (req.page_token[0] != '\0');
	CHECK_INT(n, 7);
	for (int i = 0; i < n; i++) {
		CHECK_STR(seen[i], p[6 - i].id);
	}
	memset(&req, 0, sizeof(req));
	req.state = sandproc_v1_State_STATE_RUNNING;
	CHECK_OK(srv.c, sp_processes_list(srv.c, &req, rep, 0));
	CHECK_INT(rep->processes_count, 0);
	strcpy(req.page_token, "x1");
	CHECK_INT(sp_processes_list(srv.c, &req, rep, 0), SP_INVALID_ARGUMENT);
	free(rep);
}

static void
test_config_validated_and_persisted(void)
{
	sandproc_v1_SetConfigRequest set;
	sandproc_v1_GetConfigRequest get;
	sandproc_v1_Config cfg;

	ensure();
	memset(&get, 0, sizeof(get));
	CHECK_OK(srv.c, sp_processes_get_config(srv.c, &get, &cfg, 0));
	CHECK_INT(cfg.max_concurrent_processes, 64);
	CHECK_INT(cfg.default_run_timeout_ms, 30000);
	CHECK_INT(cfg.max_run_timeout_ms, 300000);
	CHECK_INT(cfg.max_output_bytes, 1048576);
	CHECK_INT(cfg.max_log_bytes_per_process, 10485760);
	CHECK_INT(cfg.max_input_bytes_per_request, 65536);
	memset(&set, 0, sizeof(set));
	set.has_default_run_timeout_ms = true;
	set.default_run_timeout_ms = 400000; /* above max_run_timeout_ms */
	CHECK_INT(sp_processes_set_config(srv.c, &set, &cfg, 0), SP_INVALID_ARGUMENT);
	memset(&set, 0, sizeof(set));
	set.has_max_concurrent_processes = true;
	set.max_concurrent_processes = 0;
	CHECK_INT(sp_processes_set_config(srv.c, &set, &cfg, 0), SP_INVALID_ARGUMENT);
	set.max_concurrent_processes = 12;
	set.has_default_run_timeout_ms = true;
	set.default_run_timeout_ms = 1234;
	CHECK_OK(srv.c, sp_processes_set_config(srv.c, &set, &cfg, 0));
	CHECK_INT(cfg.max_concurrent_processes, 12);
	CHECK_INT(cfg.max_output_bytes, 1048576); /* untouched */
	th_server_stop(&srv);
	th_server_start(&srv, false);
	CHECK_OK(srv.c, sp_processes_get_config(srv.c, &get, &cfg, 0));
	CHECK_INT(cfg.max_concurrent_processes, 12);
	CHECK_INT(cfg.default_run_timeout_ms, 1234);
}

typedef struct starter {
	atomic_int ok, exhausted, other;
} starter;

static int
start_one(sp_client *c, void *arg)
{
	starter *st = arg;
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p;
	const char *argv[] = { "sleep", "30", NULL };

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	int code = sp_processes_start(c, &req, &p, 30000);
	if (code == SP_OK) {
		atomic_fetch_add(&st->ok, 1);
	} else if (code == SP_RESOURCE_EXHAUSTED) {
		atomic_fetch_add(&st->exhausted, 1);
	} else {
		atomic_fetch_add(&st->other, 1);
	}
	return (code);
}

static void
test_parallel_starts_never_exceed_limit(void)
{
	sandproc_v1_SetConfigRequest set;
	sandproc_v1_Config cfg;
	sandproc_v1_HealthReply h;
	starter st = { 0 };
	th_call *th[32];

	fresh();
	memset(&set, 0, sizeof(set));
	set.has_max_concurrent_processes = true;
	set.max_concurrent_processes = 8;
	CHECK_OK(srv.c, sp_processes_set_config(srv.c, &set, &cfg, 0));
	for (int i = 0; i < 32; i++) {
		th[i] = th_call_start(&srv, start_one, &st);
	}
	for (int i = 0; i < 32; i++) {
		th_call_join(th[i]);
	}
	CHECK_INT(atomic_load(&st.ok), 8);
	CHECK_INT(atomic_load(&st.exhausted), 24);
	CHECK_INT(atomic_load(&st.other), 0);
	CHECK_OK(srv.c, sp_system_health(srv.c, &(sandproc_v1_HealthRequest){ 0 }, &h, 0));
	CHECK_INT(h.running, 8);
	/* And a Run counts against the same limit. */
	sandproc_v1_RunReply rep;
	const char *t[] = { "true", NULL };
	CHECK_INT(run(t, NULL, &rep), SP_RESOURCE_EXHAUSTED);
	CHECK(strstr(sp_client_error(srv.c), "max_concurrent_processes") != NULL);
	fresh(); /* stops the eight */
}

static void
test_no_zombies_after_1000_short_processes(void)
{
	const char *t[] = { "true", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_RunReply rep;
	char ids[500][32];

	fresh();
	for (int i = 0; i < 500; i++) {
		th_start(&srv, t, &p);
		strcpy(ids[i], p.id);
	}
	for (int i = 0; i < 500; i++) {
		CHECK_OK(srv.c, run(t, NULL, &rep));
	}
	for (int i = 0; i < 500; i++) {
		th_wait(&srv, ids[i], &got);
		CHECK_INT(got.state, sandproc_v1_State_STATE_EXITED);
	}
	CHECK_INT(th_zombies_of(srv.pid), 0);
	sandproc_v1_HealthReply h;
	CHECK_OK(srv.c, sp_system_health(srv.c, &(sandproc_v1_HealthRequest){ 0 }, &h, 0));
	CHECK_INT(h.running, 0);
}

typedef struct waiter {
	char id[32];
	uint32_t timeout_ms; /* 0: none */
	sandproc_v1_Process got;
	atomic_bool done;
} waiter;

static int
wait_one(sp_client *c, void *arg)
{
	waiter *w = arg;
	sandproc_v1_WaitRequest req;
	int code;

	memset(&req, 0, sizeof(req));
	strcpy(req.id, w->id);
	req.timeout_ms = w->timeout_ms;
	code = sp_processes_wait(c, &req, &w->got, -1);
	atomic_store(&w->done, true);
	return (code);
}

static void
test_wait_returns_on_exit_while_others_are_served(void)
{
	const char *argv[] = { TESTCHILD_PATH, "usr1", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_SignalRequest sreq;
	waiter w[16];
	th_call *th[16];

	ensure();
	th_start(&srv, argv, &p);
	for (int i = 0; i < 16; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		strcpy(w[i].id, p.id);
		th[i] = th_call_start(&srv, wait_one, &w[i]);
	}
	th_sleep_ms(200);
	/* Sixteen Waits are parked, each holding a worker; other calls go through. */
	for (int i = 0; i < 10; i++) {
		CHECK_OK(srv.c, th_get(&srv, p.id, &got));
		CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
	}
	for (int i = 0; i < 16; i++) {
		CHECK(!atomic_load(&w[i].done));
	}
	/* TERM ends it with 0 only once its handler is in (it says "ready" after). */
	CHECK(th_logs_wait(srv.c, p.id, sandproc_v1_Stream_STREAM_STDOUT, "ready"));
	memset(&sreq, 0, sizeof(sreq));
	strcpy(sreq.id, p.id);
	strcpy(sreq.signal, "TERM");
	CHECK_OK(srv.c, sp_processes_signal(srv.c, &sreq, &got, 0));
	for (int i = 0; i < 16; i++) {
		CHECK_OK(srv.c, th_call_join(th[i]));
		CHECK_INT(w[i].got.state, sandproc_v1_State_STATE_EXITED);
	}
	/* A Wait with a timeout on a running process answers with it still running. */
	const char *sl[] = { "sleep", "30", NULL };
	sandproc_v1_WaitRequest wreq;
	th_start(&srv, sl, &p);
	memset(&wreq, 0, sizeof(wreq));
	strcpy(wreq.id, p.id);
	wreq.timeout_ms = 200;
	CHECK_OK(srv.c, sp_processes_wait(srv.c, &wreq, &got, 10000));
	CHECK_INT(got.state, sandproc_v1_State_STATE_RUNNING);
}

static void
test_child_gets_only_stdio_fds(void)
{
	/* Every fd of the server is close-on-exec: a child sees 0, 1 and 2 only. */
	const char *argv[] = { TESTCHILD_PATH, "fds", NULL };
	sandproc_v1_Process p, got;
	sandproc_v1_RunReply rep;
	size_t len;

	ensure();
	th_start(&srv, argv, &p);
	th_wait(&srv, p.id, &got);
	uint8_t *b = th_logs(srv.c, p.id, 0, &len);
	CHECK_STR((char *)b, "0 1 2 ");
	free(b);
	CHECK_OK(srv.c, run(argv, NULL, &rep));
	CHECK_STR((char *)rep.stdout.data, "0 1 2 ");
}

static void
test_exec_bash_and_python(void)
{
	sandproc_v1_RunReply rep;

	ensure();
	CHECK_OK(srv.c, sp_exec_bash(srv.c, "echo $((6*7)); exit 2", 10000, &rep));
	CHECK_INT(rep.exit_code, 2);
	CHECK(rep.stdout.len == 3 && memcmp(rep.stdout.data, "42\n", 3) == 0);
	CHECK_OK(srv.c, sp_exec_python(srv.c, "import sys; print(sum(range(5))); sys.exit(3)", 10000, &rep));
	CHECK_INT(rep.exit_code, 3);
	CHECK(rep.stdout.len == 3 && memcmp(rep.stdout.data, "10\n", 3) == 0);
}

static uint32_t
parked_calls(th_server *s)
{
	sandproc_v1_HealthRequest req;
	sandproc_v1_HealthReply rep;

	memset(&req, 0, sizeof(req));
	return (sp_system_health(s->c, &req, &rep, 0) == SP_OK ? rep.parked_calls : 0);
}

static void
test_waits_park_without_threads_and_wake_only_for_their_process(void)
{
	/* As many as the server has contexts to spare and more than its old worker limit (1024). */
	enum { N = 1100 };
	const char *sleeper[] = { "sleep", "60", NULL };
	const char *brief[] = { "true", NULL };
	static waiter w[N];
	static th_call *th[N];
	sandproc_v1_Process p, q, got;

	ensure();
	th_start(&srv, sleeper, &p);
	for (int i = 0; i < N; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		snprintf(w[i].id, sizeof(w[i].id), "%s", p.id);
		th[i] = th_call_start(&srv, wait_one, &w[i]);
	}
	for (int i = 0; i < 1000 && parked_calls(&srv) < N; i++) {
		th_sleep_ms(5);
	}
	CHECK_INT(parked_calls(&srv), N);
	/* Other processes come and go; the parked Waits are not theirs and stay parked. */
	for (int i = 0; i < 20; i++) {
		th_start(&srv, brief, &q);
		th_wait(&srv, q.id, &got);
	}
	size_t len;
	free(th_logs(srv.c, q.id, 0, &len));
	CHECK_INT(parked_calls(&srv), N);
	sandproc_v1_KillRequest kreq;
	memset(&kreq, 0, sizeof(kreq));
	snprintf(kreq.id, sizeof(kreq.id), "%s", p.id);
	CHECK_OK(srv.c, sp_processes_kill(srv.c, &kreq, &got, 0));
	int bad = 0;
	for (int i = 0; i < N; i++) {
		int code = th_call_join(th[i]);
		if ((code != SP_OK || w[i].got.state != sandproc_v1_State_STATE_KILLED) && bad++ == 0) {
			th_fail(
			    __FILE__, __LINE__, "wait %d: code %d, state %d", i, code, (int)w[i].got.state);
		}
	}
	CHECK_INT(bad, 0);
	CHECK_INT(parked_calls(&srv), 0);
}

static void
test_start_refuses_oversized_fields_naming_them(void)
{
	sandproc_v1_StartRequest req;
	sandproc_v1_Process rep;
	sandproc_v1_ListRequest lreq;
	sandproc_v1_ListReply *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
	const char *argv[] = { "true", NULL };
	const char *bad_label[] = { "no-equals-sign", NULL };
	char name[131];
	static const char *many[5002];

	ensure();
	memset(&lreq, 0, sizeof(lreq));
	lreq.limit = 1;
	CHECK_OK(srv.c, sp_processes_list(srv.c, &lreq, before, 0));
	memset(name, 'n', 130);
	name[130] = '\0';
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.name = name;
	CHECK_INT(sp_processes_start(srv.c, &req, &rep, 0), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "name is 130 bytes; the limit is 128") != NULL);
	req.name = NULL;
	req.labels = sp_strv_of(bad_label);
	CHECK_INT(sp_processes_start(srv.c, &req, &rep, 0), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "labels entry \"no-equals-sign\" is not KEY=value") != NULL);
	req.labels = sp_strv_of(NULL);
	for (int i = 0; i < 5001; i++) {
		many[i] = "x";
	}
	many[5001] = NULL;
	req.argv = sp_strv_of(many);
	CHECK_INT(sp_processes_start(srv.c, &req, &rep, 0), SP_INVALID_ARGUMENT);
	CHECK(strstr(sp_client_error(srv.c), "argv has 5001 entries; the limit is 4096") != NULL);
	/* Refused before anything was stored. */
	CHECK_OK(srv.c, sp_processes_list(srv.c, &lreq, after, 0));
	CHECK_INT(after->processes_count, before->processes_count);
	if (before->processes_count > 0 && after->processes_count > 0) {
		CHECK_STR(after->processes[0].id, before->processes[0].id);
	}
	free(before);
	free(after);
}

static void
test_spawn_setup_failure_starts_no_child(void)
{
	th_server s = { 0 };
	sandproc_v1_StartRequest req;
	sandproc_v1_Process rep, got;
	char marker[300], cmd[400];
	const char *argv[] = { "sh", "-c", cmd, NULL };
	struct stat st;

	/* Opening the PTY slave (and /dev/null) cannot be arranged: the child must not start at all. */
	s.env[0] = "LD_PRELOAD=" FAILSPAWN_PATH;
	s.env[1] = "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0";
	/* The server's own posix_spawn (a holder sets up its child with plain syscalls). */
	s.args[0] = "--backend";
	s.args[1] = "direct";
	th_server_start(&s, false);
	snprintf(marker, sizeof(marker), "%s/ran", s.dir);
	snprintf(cmd, sizeof(cmd), "echo ran > %s", marker);
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.tty = true;
	CHECK_INT(sp_processes_start(s.c, &req, &rep, 0), SP_RESOURCE_EXHAUSTED);
	CHECK(strstr(sp_client_error(s.c), "spawn setup") != NULL);
	char id[32];
	snprintf(id, sizeof(id), "%.29s", sp_client_error(s.c));
	CHECK_OK(s.c, th_get(&s, id, &got));
	CHECK_INT(got.state, sandproc_v1_State_STATE_FAILED);
	CHECK_INT(got.pid, 0);
	th_sleep_ms(200);
	CHECK(stat(marker, &st) != 0);
	th_server_cleanup(&s);
}

static void
test_list_pages_end_early_rather_than_grow(void)
{
	enum { N = 24 };
	/* Two arguments of 120 KiB: each under the kernel's 128 KiB for one string. */
	static char big[120 * 1024];
	const char *argv[] = { "true", big, big, NULL };
	sandproc_v1_ListRequest req;
	sandproc_v1_ListReply *rep = malloc(sizeof(*rep));
	sandproc_v1_Process p, got;
	size_t seen = 0;

	fresh();
	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < N; i++) {
		th_start(&srv, argv, &p);
		th_wait(&srv, p.id, &got);
	}
	/* 24 records of 240 KiB: a page of up to 100 stops near 4 MiB and says there is more. */
	memset(&req, 0, sizeof(req));
	req.limit = 100;
	CHECK_OK(srv.c, sp_processes_list(srv.c, &req, rep, 0));
	CHECK(rep->processes_count < N);
	CHECK(rep->next_page_token[0] != '\0');
	do {
		seen += rep->processes_count;
		memcpy(req.page_token, rep->next_page_token, sizeof(req.page_token));
		if (req.page_token[0] == '\0') {
			break;
		}
		CHECK_OK(srv.c, sp_processes_list(srv.c, &req, rep, 0));
	} while (seen < 1000);
	CHECK_INT(seen, N);
	free(rep);
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_list_pages_end_early_rather_than_grow", test_list_pages_end_early_rather_than_grow },
		{ "test_run_exit_code_and_streams", test_run_exit_code_and_streams },
		{ "test_run_interleaves_output_in_order", test_run_interleaves_output_in_order },
		{ "test_run_feeds_stdin_bytes", test_run_feeds_stdin_bytes },
		{ "test_run_timeout_kills_whole_group", test_run_timeout_kills_whole_group },
		{ "test_run_does_not_wait_for_background_grandchild",
		    test_run_does_not_wait_for_background_grandchild },
		{ "test_run_caps_output", test_run_caps_output },
		{ "test_run_failures_name_the_cause", test_run_failures_name_the_cause },
		{ "test_run_env_and_cwd", test_run_env_and_cwd },
		{ "test_start_wait_get_exit_code", test_start_wait_get_exit_code },
		{ "test_failed_start_is_recorded_with_cause", test_failed_start_is_recorded_with_cause },
		{ "test_stop_kills_whole_group", test_stop_kills_whole_group },
		{ "test_stop_escalates_to_sigkill_after_grace", test_stop_escalates_to_sigkill_after_grace },
		{ "test_kill_kills_whole_group", test_kill_kills_whole_group },
		{ "test_signal_by_name_and_number", test_signal_by_name_and_number },
		{ "test_timeout_s_is_enforced", test_timeout_s_is_enforced },
		{ "test_delete_only_ended", test_delete_only_ended },
		{ "test_relative_cwd_is_taken_from_the_workdir",
		    test_relative_cwd_is_taken_from_the_workdir },
		{ "test_list_newest_first_paged_and_filtered", test_list_newest_first_paged_and_filtered },
		{ "test_config_validated_and_persisted", test_config_validated_and_persisted },
		{ "test_parallel_starts_never_exceed_limit", test_parallel_starts_never_exceed_limit },
		{ "test_no_zombies_after_1000_short_processes", test_no_zombies_after_1000_short_processes },
		{ "test_wait_returns_on_exit_while_others_are_served",
		    test_wait_returns_on_exit_while_others_are_served },
		{ "test_child_gets_only_stdio_fds", test_child_gets_only_stdio_fds },
		{ "test_exec_bash_and_python", test_exec_bash_and_python },
		{ "test_waits_park_without_threads_and_wake_only_for_their_process",
		    test_waits_park_without_threads_and_wake_only_for_their_process },
		{ "test_start_refuses_oversized_fields_naming_them",
		    test_start_refuses_oversized_fields_naming_them },
		{ "test_spawn_setup_failure_starts_no_child", test_spawn_setup_failure_starts_no_child },
	};
	int rv = th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
	th_server_cleanup(&srv);
	return (rv);
}
