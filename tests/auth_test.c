/*
 * Keys, roles and tenants against a real sandprocd: every method without a
 * key or with a bad one, roles from the generated table, tenants and
 * sandbox-limited keys (NOT_FOUND, never a leak), revocation and expiry,
 * secrets nowhere on disk, the replay cache per key, following output by
 * long polls alone, --auth none only on local URLs, and TLS (a throwaway CA
 * made with openssl here).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "harness.h"
#include "sandproc.h"

static th_server srv;

static void
ensure(void)
{
	if (srv.pid <= 0) {
		th_server_start(&srv, false);
	}
}

static sp_client *
as(const char *token)
{
	sp_client *c;
	char err[600];

	if (sp_connect(&c, srv.url, token, err, sizeof(err)) != SP_OK) {
		th_fail(__FILE__, __LINE__, "connect: %s", err);
		return (NULL);
	}
	return (c);
}

/* A new key made by the admin; its secret in k->secret. */
static void
key_make(
    sandproc_v1_Role role, const char *tenant, const char *sandbox_id, uint64_t expires_s, sandproc_v1_Key *k)
{
	sandproc_v1_CreateKeyRequest req;

	memset(&req, 0, sizeof(req));
	req.role = role;
	snprintf(req.tenant, sizeof(req.tenant), "%s", tenant != NULL ? tenant : "");
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", sandbox_id != NULL ? sandbox_id : "");
	req.expires_s = expires_s;
	req.name = "test";
	CHECK_OK(srv.c, sp_keys_create_key(srv.c, &req, k, 0));
	CHECK(strncmp(k->secret, "spk_", 4) == 0 && strlen(k->secret) == 68);
}

/* Calls m with an empty request; the status. */
static int
call_empty(sp_client *c, const sp_method *m)
{
	void *req = calloc(1, m->request->size), *rep = calloc(1, m->response->size);
	int code = sp_client_call(c, m, req, rep, 10000);

	free(req);
	free(rep);
	return (code);
}

static const sp_service *const services[] = { &sp_system_service, &sp_processes_service,
	&sp_sandboxes_service, &sp_keys_service, NULL };

static void
test_every_method_needs_a_valid_key(void)
{
	char zeros[69] = "spk_";
	sp_client *none, *bad, *junk;

	ensure();
	memset(zeros + 4, '0', 64);
	zeros[68] = '\0';
	/* "" would fall back to SANDPROC_TOKEN and admin.key: a client with no token at all. */
	none = sp_client_new();
	CHECK_OK(none, sp_client_connect(none, srv.url));
	bad = as(zeros);
	junk = as("letmein");
	for (const sp_service *const *s = services; *s != NULL; s++) {
		for (size_t i = 0; i < (*s)->count; i++) {
			const sp_method *m = &(*s)->methods[i];
			CHECK_INT(call_empty(none, m), SP_UNAUTHENTICATED);
			CHECK(strstr(sp_client_error(none), m->name) != NULL);
			CHECK(strstr(sp_client_error(none), "needs a key") != NULL);
			CHECK_INT(call_empty(bad, m), SP_UNAUTHENTICATED);
			CHECK(strstr(sp_client_error(bad), "unknown or revoked") != NULL);
			CHECK(strstr(sp_client_error(bad), zeros) == NULL);
			CHECK_INT(call_empty(junk, m), SP_UNAUTHENTICATED);
			CHECK(strstr(sp_client_error(junk), "letmein") == NULL);
		}
	}
	sp_client_free(none);
	sp_client_free(bad);
	sp_client_free(junk);
}

/* Every method a role may not call is refused before its handler runs, naming the role needed. */
static void
test_roles_follow_the_generated_table(void)
{
	sandproc_v1_Role roles[] = { sandproc_v1_Role_ROLE_VIEWER, sandproc_v1_Role_ROLE_DEVELOPER };

	ensure();
	for (size_t r = 0; r < 2; r++) {
		sandproc_v1_Key k;
		key_make(roles[r], "acme", NULL, 0, &k);
		sp_client *c = as(k.secret);
		size_t denied = 0;
		for (const sp_service *const *s = services; *s != NULL; s++) {
			for (size_t i = 0; i < (*s)->count; i++) {
				const sp_method *m = &(*s)->methods[i];
				if (m->role <= (int)roles[r]) {
					continue;
				}
				CHECK_INT(call_empty(c, m), SP_PERMISSION_DENIED);
				CHECK(strstr(sp_client_error(c), m->name) != NULL);
				CHECK(strstr(sp_client_error(c), k.id) != NULL);
				denied++;
			}
		}
		CHECK(denied >= (r == 0 ? 14u : 4u));
		/* What the role may do goes through. */
		sandproc_v1_HealthRequest hreq = { 0 };
		sandproc_v1_HealthReply hrep;
		CHECK_OK(c, sp_system_health(c, &hreq, &hrep, 0));
		sp_client_free(c);
	}
	CHECK_INT(sp_processes_methods[SP_PROCESSES_START].role, SP_ROLE_DEVELOPER);
	CHECK_INT(sp_processes_methods[SP_PROCESSES_SET_CONFIG].role, SP_ROLE_ADMIN);
	CHECK_INT(sp_processes_methods[SP_PROCESSES_LOGS].role, SP_ROLE_VIEWER);
}

static void
test_revoked_and_expired_keys_fail(void)
{
	sandproc_v1_Key k, e;
	sandproc_v1_RevokeKeyRequest rv;
	sandproc_v1_RevokeKeyReply rr;
	sandproc_v1_HealthRequest hreq = { 0 };
	sandproc_v1_HealthReply hrep;

	ensure();
	key_make(sandproc_v1_Role_ROLE_VIEWER, NULL, NULL, 0, &k);
	CHECK_STR(k.tenant, "default");
	sp_client *c = as(k.secret);
	CHECK_OK(c, sp_system_health(c, &hreq, &hrep, 0));
	memset(&rv, 0, sizeof(rv));
	snprintf(rv.id, sizeof(rv.id), "%s", k.id);
	CHECK_OK(srv.c, sp_keys_revoke_key(srv.c, &rv, &rr, 0));
	CHECK_INT(sp_system_health(c, &hreq, &hrep, 0), SP_UNAUTHENTICATED);
	CHECK_INT(sp_keys_revoke_key(srv.c, &rv, &rr, 0), SP_NOT_FOUND);
	sp_client_free(c);

	key_make(sandproc_v1_Role_ROLE_VIEWER, NULL, NULL, 1, &e);
	c = as(e.secret);
	CHECK_OK(c, sp_system_health(c, &hreq, &hrep, 0));
	th_sleep_ms(1100);
	CHECK_INT(sp_system_health(c, &hreq, &hrep, 0), SP_UNAUTHENTICATED);
	CHECK(strstr(sp_client_error(c), "expired") != NULL);
	sp_client_free(c);

	/* Bad requests: named, and nothing made. */
	sandproc_v1_CreateKeyRequest req;
	sandproc_v1_Key out;
	memset(&req, 0, sizeof(req));
	CHECK_INT(sp_keys_create_key(srv.c, &req, &out, 0), SP_INVALID_ARGUMENT);
	req.role = sandproc_v1_Role_ROLE_ADMIN;
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "sbx_000000000000000000000000");
	CHECK_INT(sp_keys_create_key(srv.c, &req, &out, 0), SP_INVALID_ARGUMENT);
	req.role = sandproc_v1_Role_ROLE_VIEWER;
	snprintf(req.tenant, sizeof(req.tenant), "a b");
	CHECK_INT(sp_keys_create_key(srv.c, &req, &out, 0), SP_INVALID_ARGUMENT);
}

static void
sbx_make(sp_client *c, sandproc_v1_Sandbox *out)
{
	sandproc_v1_CreateSandboxRequest req;
	sandproc_v1_ReadinessReply r;

	memset(&req, 0, sizeof(req));
	CHECK_OK(c, sp_sandboxes_create(c, &req, out, 30000));
	CHECK_OK(c, sp_sandbox_wait_ready(c, out->id, 30, &r));
	CHECK(r.ready);
}

static void
sbx_start(sp_client *c, const char *sandbox_id, sandproc_v1_Process *out)
{
	const char *argv[] = { "sleep", "300", NULL };
	sandproc_v1_StartRequest req;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	snprintf(req.sandbox_id, sizeof(req.sandbox_id), "%s", sandbox_id);
	CHECK_OK(c, sp_processes_start(c, &req, out, 0));
}

/* Every call a key of another tenant makes on p and its sandbox: NOT_FOUND, as for an unknown id. */
static void
cannot_touch(sp_client *c, const sandproc_v1_Process *p)
{
	sandproc_v1_GetRequest g = { 0 };
	sandproc_v1_Process got;
	sandproc_v1_LogsRequest lreq;
	sandproc_v1_LogsReply *lrep = malloc(sizeof(*lrep));
	sandproc_v1_SignalRequest sig;
	sandproc_v1_StopRequest stop;
	sandproc_v1_SendInputRequest in;
	sandproc_v1_SendInputReply inr;
	sandproc_v1_GetSandboxRequest sg;
	sandproc_v1_Sandbox sb;
	sandproc_v1_DeleteSandboxRequest sd;
	sandproc_v1_DeleteSandboxReply sdr;
	sandproc_v1_ListRequest list;
	sandproc_v1_ListReply *lr = malloc(sizeof(*lr));
	sandproc_v1_ListSandboxesRequest sl;
	sandproc_v1_ListSandboxesReply *slr = malloc(sizeof(*slr));

	snprintf(g.id, sizeof(g.id), "%s", p->id);
	CHECK_INT(sp_processes_get(c, &g, &got, 0), SP_NOT_FOUND);
	memset(&lreq, 0, sizeof(lreq));
	snprintf(lreq.id, sizeof(lreq.id), "%s", p->id);
	CHECK_INT(sp_processes_logs(c, &lreq, lrep, 0), SP_NOT_FOUND);
	memset(&sig, 0, sizeof(sig));
	snprintf(sig.id, sizeof(sig.id), "%s", p->id);
	snprintf(sig.signal, sizeof(sig.signal), "KILL");
	CHECK_INT(sp_processes_signal(c, &sig, &got, 0), SP_NOT_FOUND);
	memset(&stop, 0, sizeof(stop));
	snprintf(stop.id, sizeof(stop.id), "%s", p->id);
	CHECK_INT(sp_processes_stop(c, &stop, &got, 0), SP_NOT_FOUND);
	memset(&in, 0, sizeof(in));
	snprintf(in.id, sizeof(in.id), "%s", p->id);
	CHECK_INT(sp_processes_send_input(c, &in, &inr, 0), SP_NOT_FOUND);
	memset(&sg, 0, sizeof(sg));
	snprintf(sg.id, sizeof(sg.id), "%.31s", p->sandbox_id);
	CHECK_INT(sp_sandboxes_get(c, &sg, &sb, 0), SP_NOT_FOUND);
	memset(&sd, 0, sizeof(sd));
	snprintf(sd.id, sizeof(sd.id), "%.31s", p->sandbox_id);
	CHECK_INT(sp_sandboxes_delete(c, &sd, &sdr, 0), SP_NOT_FOUND);
	memset(&list, 0, sizeof(list));
	CHECK_OK(c, sp_processes_list(c, &list, lr, 0));
	for (pb_size_t i = 0; i < lr->processes_count; i++) {
		CHECK(strcmp(lr->processes[i].id, p->id) != 0);
	}
	memset(&sl, 0, sizeof(sl));
	CHECK_OK(c, sp_sandboxes_list(c, &sl, slr, 0));
	for (pb_size_t i = 0; i < slr->sandboxes_count; i++) {
		CHECK(strcmp(slr->sandboxes[i].id, p->sandbox_id) != 0);
	}
	/* Nor can it start anything there. */
	const char *argv[] = { "true", NULL };
	sandproc_v1_StartRequest st;
	memset(&st, 0, sizeof(st));
	st.argv = sp_strv_of(argv);
	snprintf(st.sandbox_id, sizeof(st.sandbox_id), "%s", p->sandbox_id);
	CHECK_INT(sp_processes_start(c, &st, &got, 0), SP_NOT_FOUND);
	free(lrep);
	free(lr);
	free(slr);
}

static void
test_tenants_and_sandbox_keys_see_only_their_own(void)
{
	sandproc_v1_Key acme, beta, acme_one;
	sandproc_v1_Sandbox sa, sa2, sb;
	sandproc_v1_Process pa, pa2, pb, host, got;

	if (geteuid() != 0 || access("/usr/bin/bwrap", X_OK) != 0) {
		printf("skip: sandboxes need root and bubblewrap\n");
		return;
	}
	ensure();
	key_make(sandproc_v1_Role_ROLE_DEVELOPER, "acme", NULL, 0, &acme);
	key_make(sandproc_v1_Role_ROLE_DEVELOPER, "beta", NULL, 0, &beta);
	sp_client *a = as(acme.secret), *b = as(beta.secret);
	sbx_make(a, &sa);
	sbx_make(a, &sa2);
	sbx_make(b, &sb);
	CHECK_STR(sa.tenant, "acme");
	CHECK_STR(sb.tenant, "beta");
	sbx_start(a, sa.id, &pa);
	sbx_start(b, sb.id, &pb);
	CHECK_STR(pa.tenant, "acme");
	/* Another tenant's ids are unknown to it; its own are not. */
	cannot_touch(b, &pa);
	cannot_touch(a, &pb);
	/* The host is the admin's: a developer may not run there, or see what runs there. */
	const char *argv[] = { "sleep", "300", NULL };
	sandproc_v1_StartRequest st;
	memset(&st, 0, sizeof(st));
	st.argv = sp_strv_of(argv);
	CHECK_INT(sp_processes_start(a, &st, &got, 0), SP_PERMISSION_DENIED);
	CHECK(strstr(sp_client_error(a), "admin") != NULL);
	CHECK_OK(srv.c, sp_processes_start(srv.c, &st, &host, 0));
	sandproc_v1_GetRequest g = { 0 };
	snprintf(g.id, sizeof(g.id), "%s", host.id);
	CHECK_INT(sp_processes_get(a, &g, &got, 0), SP_NOT_FOUND);
	/* A key limited to sa2 sees only sa2. */
	key_make(sandproc_v1_Role_ROLE_DEVELOPER, "acme", sa2.id, 0, &acme_one);
	sp_client *one = as(acme_one.secret);
	sbx_start(one, sa2.id, &pa2);
	cannot_touch(one, &pa);
	sandproc_v1_Sandbox nope;
	sandproc_v1_CreateSandboxRequest cr;
	memset(&cr, 0, sizeof(cr));
	CHECK_INT(sp_sandboxes_create(one, &cr, &nope, 0), SP_PERMISSION_DENIED);
	/* The admin sees every tenant, and can list one. */
	sandproc_v1_ListRequest lq;
	sandproc_v1_ListReply *lr = malloc(sizeof(*lr));
	memset(&lq, 0, sizeof(lq));
	snprintf(lq.tenant, sizeof(lq.tenant), "acme");
	CHECK_OK(srv.c, sp_processes_list(srv.c, &lq, lr, 0));
	int seen = 0;
	for (pb_size_t i = 0; i < lr->processes_count; i++) {
		CHECK_STR(lr->processes[i].tenant, "acme");
		seen += strcmp(lr->processes[i].id, pa.id) == 0 || strcmp(lr->processes[i].id, pa2.id) == 0;
	}
	CHECK_INT(seen, 2);
	free(lr);
	snprintf(g.id, sizeof(g.id), "%s", pb.id);
	CHECK_OK(srv.c, sp_processes_get(srv.c, &g, &got, 0));
	/* Cleaning up: each by its owner (and the host's by the admin). */
	sandproc_v1_DeleteSandboxRequest d;
	sandproc_v1_DeleteSandboxReply dr;
	memset(&d, 0, sizeof(d));
	d.grace_ms = 100;
	snprintf(d.id, sizeof(d.id), "%s", sa.id);
	CHECK_OK(a, sp_sandboxes_delete(a, &d, &dr, 30000));
	snprintf(d.id, sizeof(d.id), "%s", sa2.id);
	CHECK_OK(one, sp_sandboxes_delete(one, &d, &dr, 30000));
	snprintf(d.id, sizeof(d.id), "%s", sb.id);
	CHECK_OK(b, sp_sandboxes_delete(b, &d, &dr, 30000));
	th_kill(&srv, host.id, &got);
	sp_client_free(a);
	sp_client_free(b);
	sp_client_free(one);
}

/* Whether needle occurs in any file under dir other than skip. */
static bool
found_under(const char *dir, const char *needle, const char *skip)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	if (d == NULL) {
		return (false);
	}
	while (!found && (e = readdir(d)) != NULL) {
		char path[1024];
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) != 0) {
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			found = found_under(path, needle, skip);
		} else if (S_ISREG(st.st_mode) && strcmp(path, skip) != 0) {
			FILE *f = fopen(path, "re");
			char *buf = f != NULL ? malloc((size_t)st.st_size + 1) : NULL;
			size_t n = buf != NULL ? fread(buf, 1, (size_t)st.st_size, f) : 0;
			size_t len = strlen(needle);
			for (size_t i = 0; buf != NULL && i + len <= n && !found; i++) {
				found = memcmp(buf + i, needle, len) == 0;
			}
			free(buf);
			if (f != NULL) {
				fclose(f);
			}
		}
	}
	closedir(d);
	return (found);
}

static void
test_secrets_are_never_stored_listed_or_logged(void)
{
	char data[400], skip[450], log[450], err[600];
	th_server s = { 0 };
	sandproc_v1_Key k;
	sandproc_v1_CreateKeyRequest req;
	sandproc_v1_ListKeysRequest lreq;
	sandproc_v1_ListKeysReply *lrep = malloc(sizeof(*lrep));

	/* A server of its own, its log in a file, so both can be searched. */
	snprintf(s.dir, sizeof(s.dir), "/tmp/sandproc-test-XXXXXX");
	CHECK(mkdtemp(s.dir) != NULL);
	snprintf(log, sizeof(log), "SANDPROC_TEST_STDERR=%s/server.log", s.dir);
	s.env[0] = log;
	th_server_start(&s, false);
	memset(&req, 0, sizeof(req));
	req.role = sandproc_v1_Role_ROLE_DEVELOPER;
	req.name = "ci";
	CHECK_OK(s.c, sp_keys_create_key(s.c, &req, &k, 0));
	sp_client *c;
	CHECK_INT(sp_connect(&c, s.url, k.secret, err, sizeof(err)), SP_OK);
	/* Used well and badly. */
	sandproc_v1_HealthRequest h = { 0 };
	sandproc_v1_HealthReply hr;
	CHECK_OK(c, sp_system_health(c, &h, &hr, 0));
	CHECK_INT(sp_keys_list_keys(c, &lreq, lrep, 0), SP_PERMISSION_DENIED);
	CHECK(strstr(sp_client_error(c), k.secret) == NULL);
	memset(&lreq, 0, sizeof(lreq));
	CHECK_OK(s.c, sp_keys_list_keys(s.c, &lreq, lrep, 0));
	CHECK(lrep->keys_count >= 2);
	for (pb_size_t i = 0; i < lrep->keys_count; i++) {
		CHECK_STR(lrep->keys[i].secret, "");
	}
	sp_client_free(c);
	th_server_stop(&s);
	snprintf(data, sizeof(data), "%s/data", s.dir);
	snprintf(skip, sizeof(skip), "%s/admin.key", data);
	CHECK(!found_under(s.dir, k.secret, skip));
	CHECK(!found_under(s.dir, s.token, skip));
	CHECK(!found_under(s.dir, k.secret + 4, skip)); /* nor its hex alone */
	struct stat st;
	CHECK_INT(stat(skip, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(stat(data, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0700);
	/* The key outlives a restart (its hash does), and the admin key is not made again. */
	th_server_start(&s, false);
	CHECK_INT(sp_connect(&c, s.url, k.secret, err, sizeof(err)), SP_OK);
	CHECK_OK(c, sp_system_health(c, &h, &hr, 0));
	sp_client_free(c);
	th_server_cleanup(&s);
	free(lrep);
}

/* One key's request id never answers another key's request. */
static void
test_replay_cache_is_per_key(void)
{
	const char *argv[] = { "true", NULL };
	sandproc_v1_Key other;
	sandproc_v1_StartRequest req;
	sandproc_v1_Process p[3];
	const char *tokens[3];
	nng_socket sock;
	sp_arena *a = sp_arena_new();

	ensure();
	key_make(sandproc_v1_Role_ROLE_ADMIN, NULL, NULL, 0, &other);
	tokens[0] = srv.token, tokens[1] = srv.token, tokens[2] = other.secret;
	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	CHECK_INT(nng_req0_open(&sock), 0);
	CHECK_INT(nng_dial(sock, srv.url, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		nng_msg *m, *r;
		sandproc_v1_Reply env;
		const char *err;
		sp_request_encode(&m, "sandproc.v1.Processes/Start", 0xfeed, tokens[i],
		    sandproc_v1_StartRequest_fields, &req, &err);
		CHECK_INT(nng_sendmsg(sock, m, 0), 0);
		CHECK_INT(nng_recvmsg(sock, &r, 0), 0);
		CHECK_INT(sp_reply_decode(r, &env, &err), SP_OK);
		CHECK_INT(env.code, SP_OK);
		CHECK(sp_pb_decode(
		    sandproc_v1_Process_fields, &p[i], sizeof(p[i]), env.body.data, env.body.len, a, NULL));
		nng_msg_free(r);
	}
	/* The same key resending: the same process. Another key, same id and body: a new one. */
	CHECK_STR(p[0].id, p[1].id);
	CHECK(strcmp(p[0].id, p[2].id) != 0);
	nng_close(sock);
	sp_arena_free(a);
}

typedef struct collected {
	char text[8192];
	size_t len;
	uint64_t last_seq;
	int out_of_order;
} collected;

static int
collect(void *arg, const sandproc_v1_LogEntry *e)
{
	collected *c = arg;
	size_t n = e->data.len;

	if (e->sequence <= c->last_seq) {
		c->out_of_order++;
	}
	c->last_seq = e->sequence;
	if (c->len + n < sizeof(c->text)) {
		memcpy(c->text + c->len, e->data.data, n);
		c->len += n;
	}
	return (0);
}

static void
test_follow_by_long_poll_alone(void)
{
	const char *argv[] = { "sh", "-c",
		"sleep 0.3; for i in $(seq 1 60); do echo line$i; sleep 0.01; done", NULL };
	sandproc_v1_Process p, fin;
	sandproc_v1_LogsRequest lreq;
	sandproc_v1_LogsReply *lrep = malloc(sizeof(*lrep));
	collected *got = calloc(1, sizeof(*got));
	char want[8192] = "";

	ensure();
	th_start(&srv, argv, &p);
	/* The first line comes after 300 ms: a long poll waits for it rather than answer empty. */
	memset(&lreq, 0, sizeof(lreq));
	snprintf(lreq.id, sizeof(lreq.id), "%s", p.id);
	lreq.wait_ms = 20000;
	CHECK_OK(srv.c, sp_processes_logs(srv.c, &lreq, lrep, sp_call_timeout(lreq.wait_ms)));
	CHECK(lrep->entries_count > 0);
	sp_follow_opts o = { .events_url = "none" };
	CHECK_OK(srv.c, sp_follow(srv.c, p.id, &o, collect, got, &fin));
	for (int i = 1; i <= 60; i++) {
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "line%d\n", i);
	}
	got->text[got->len] = '\0';
	CHECK_STR(got->text, want);
	CHECK_INT(got->out_of_order, 0);
	CHECK_INT(fin.exit_code, 0);
	free(got);
	free(lrep);
}

/* Runs sandprocd with args until it exits (or 10 s); its exit code, stderr in err. */
static int
server_run(const char *const *args, char *err, size_t len)
{
	char dir[] = "/tmp/sandproc-test-XXXXXX", data[64];
	const char *av[24] = { "sandprocd", "--data", data };
	size_t n = 3;
	int p[2], st = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(data, sizeof(data), "%s/data", dir);
	for (; *args != NULL && n < 22; args++) {
		av[n++] = *args;
	}
	av[n] = NULL;
	CHECK_INT(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		dup2(p[1], 1);
		execv(SANDPROCD_PATH, (char *const *)av);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < len && (r = read(p[0], err + got, len - got - 1)) > 0) {
		got += (size_t)r;
		if (strstr(err, "ready") != NULL) {
			break;
		}
	}
	err[got] = '\0';
	close(p[0]);
	if (strstr(err, "ready") != NULL) {
		kill(pid, SIGTERM);
	}
	waitpid(pid, &st, 0);
	th_rmrf(dir);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void
test_auth_none_and_the_feed_stay_local(void)
{
	char err[4096];
	const char *open_req[] = { "--auth", "none", "--listen", "tcp://0.0.0.0:0", "--events",
		"ipc:///tmp/x.sock", NULL };
	const char *open_feed[] = { "--listen", "tcp://127.0.0.1:0", "--events", "tcp://0.0.0.0:0", NULL };
	const char *local[] = { "--auth", "none", "--listen", "tcp://127.0.0.1:0", "--events",
		"tcp://localhost:0", "--on-exit", "stop", NULL };
	const char *open_ws[] = { "--listen", "tcp://127.0.0.1:0", "--events", "ws://0.0.0.0:0/events",
		NULL };
	const char *open_ws_no_keys[] = { "--auth", "none", "--listen", "ws://0.0.0.0:0/rpc", "--events",
		"ipc:///tmp/x.sock", NULL };

	CHECK_INT(server_run(open_req, err, sizeof(err)), 2);
	CHECK(strstr(err, "--auth none") != NULL && strstr(err, "0.0.0.0") != NULL);
	CHECK_INT(server_run(open_feed, err, sizeof(err)), 2);
	CHECK(strstr(err, "no per-message auth") != NULL);
	CHECK_INT(server_run(local, err, sizeof(err)), 0);
	CHECK(strstr(err, "not authenticated") != NULL);
	/* WebSockets follow the same rules (browser pages are held off by their Origin: ts_client_test). */
	CHECK_INT(server_run(open_ws, err, sizeof(err)), 2);
	CHECK(strstr(err, "no per-message auth") != NULL);
	CHECK_INT(server_run(open_ws_no_keys, err, sizeof(err)), 2);
	CHECK(strstr(err, "--auth none") != NULL && strstr(err, "ws://0.0.0.0") != NULL);
}

/* Runs a shell command; true on success. */
static bool
sh(const char *cmd)
{
	int st = system(cmd);
	return (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Health over dir's TLS server with the given client files (NULL: none); the status. */
static int
tls_health(th_server *s, const char *ca, const char *cert, const char *key)
{
	const char *url = strstr(s->listen_all, "tls+tcp://");
	char u[256], err[600];
	sp_client *c;
	int code;

	snprintf(u, sizeof(u), "%s", url != NULL ? url : "none");
	u[strcspn(u, ",")] = '\0';
	ca != NULL ? setenv("SANDPROC_TLS_CA", ca, 1) : unsetenv("SANDPROC_TLS_CA");
	cert != NULL ? setenv("SANDPROC_TLS_CERT", cert, 1) : unsetenv("SANDPROC_TLS_CERT");
	key != NULL ? setenv("SANDPROC_TLS_KEY", key, 1) : unsetenv("SANDPROC_TLS_KEY");
	if ((code = sp_connect(&c, u, s->token, err, sizeof(err))) != SP_OK) {
		return (code);
	}
	sandproc_v1_HealthRequest h = { 0 };
	sandproc_v1_HealthReply hr;
	code = sp_system_health(c, &h, &hr, 3000);
	sp_client_free(c);
	return (code);
}

static void
test_tls_server_and_client_certificates(void)
{
	char dir[] = "/tmp/sandproc-test-XXXXXX", cmd[4096], ca[128], cert[128], key[128], ccert[128],
	     ckey[128];
	th_server s = { 0 };

	CHECK(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd),
	    "cd %s && exec >openssl.log 2>&1 && "
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
	    "&& "
	    "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost && "
	    "printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
	    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days "
	    "2 "
	    "-extfile san.ext && "
	    "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client && "
	    "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days "
	    "2",
	    dir);
	if (!sh(cmd)) {
		th_fail(__FILE__, __LINE__,
		    "openssl could not make the test certificates (see %s/openssl.log)", dir);
		return;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(ccert, sizeof(ccert), "%s/client.pem", dir);
	snprintf(ckey, sizeof(ckey), "%s/client.key", dir);
	/* Server certificate only: a client needs the CA to trust it. */
	s.args[0] = "--listen", s.args[1] = "tls+tcp://localhost:0";
	s.args[2] = "--tls-cert", s.args[3] = cert, s.args[4] = "--tls-key", s.args[5] = key;
	th_server_start(&s, false);
	CHECK(strstr(s.listen_all, "tls+tcp://localhost:") != NULL);
	CHECK(tls_health(&s, NULL, NULL, NULL) != SP_OK);
	CHECK_INT(tls_health(&s, ca, NULL, NULL), SP_OK);
	th_server_stop(&s);
	/* With a CA on the server, client certificates are required. */
	s.args[6] = "--tls-ca", s.args[7] = ca;
	th_server_start(&s, false);
	CHECK(tls_health(&s, ca, NULL, NULL) != SP_OK);
	CHECK_INT(tls_health(&s, ca, ccert, ckey), SP_OK);
	unsetenv("SANDPROC_TLS_CA");
	unsetenv("SANDPROC_TLS_CERT");
	unsetenv("SANDPROC_TLS_KEY");
	th_server_cleanup(&s);
	th_rmrf(dir);
}

/* Random tokens and envelopes: never a crash, never authenticated. */
static void
test_random_tokens_never_authenticate(void)
{
	unsigned seed = 12345;
	nng_socket sock;
	int ok = 0, answered = 0;

	ensure();
	CHECK_INT(nng_req0_open(&sock), 0);
	CHECK_INT(nng_dial(sock, srv.url, NULL, 0), 0);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000);
	for (int i = 0; i < 2000; i++) {
		char token[80];
		size_t len = (size_t)(rand_r(&seed) % 75);
		/* Half look like keys: spk_ and hex. */
		bool keyish = i % 2 == 0;
		for (size_t j = 0; j < len; j++) {
			token[j] =
			    keyish ? "0123456789abcdef"[rand_r(&seed) % 16] : (char)(1 + rand_r(&seed) % 255);
		}
		token[len] = '\0';
		if (keyish) {
			len = 68;
			memcpy(token, "spk_", 4);
			for (size_t j = 4; j < 68; j++) {
				token[j] = "0123456789abcdef"[rand_r(&seed) % 16];
			}
			token[68] = '\0';
		}
		const sp_method *m = &sp_processes_methods[(size_t)rand_r(&seed) % SP_PROCESSES_METHOD_COUNT];
		nng_msg *msg, *r;
		sandproc_v1_Reply env;
		const char *err;
		uint8_t body[32];
		for (size_t j = 0; j < sizeof(body); j++) {
			body[j] = (uint8_t)rand_r(&seed);
		}
		sandproc_v1_Request req;
		memset(&req, 0, sizeof(req));
		req.method = m->name;
		req.request_id = (uint64_t)i + 1;
		req.token = token;
		req.body.data = body;
		req.body.len = (size_t)(rand_r(&seed) % (int)sizeof(body));
		size_t size, wrote;
		sp_pb_encoded_size(sandproc_v1_Request_fields, &req, &size);
		nng_msg_alloc(&msg, size);
		sp_pb_encode(sandproc_v1_Request_fields, &req, nng_msg_body(msg), size, &wrote, &err);
		if (nng_sendmsg(sock, msg, 0) != 0) {
			nng_msg_free(msg);
			continue;
		}
		if (nng_recvmsg(sock, &r, 0) == 0) {
			answered++;
			if (sp_reply_decode(r, &env, &err) == SP_OK && env.code != SP_UNAUTHENTICATED) {
				ok++;
			}
			nng_msg_free(r);
		}
	}
	CHECK_INT(answered, 2000);
	CHECK_INT(ok, 0);
	nng_close(sock);
	sandproc_v1_HealthRequest h = { 0 };
	sandproc_v1_HealthReply hr;
	CHECK_OK(srv.c, sp_system_health(srv.c, &h, &hr, 0));
}

int
main(int argc, char **argv)
{
	static const th_test tests[] = {
		{ "test_every_method_needs_a_valid_key", test_every_method_needs_a_valid_key },
		{ "test_roles_follow_the_generated_table", test_roles_follow_the_generated_table },
		{ "test_revoked_and_expired_keys_fail", test_revoked_and_expired_keys_fail },
		{ "test_tenants_and_sandbox_keys_see_only_their_own",
		    test_tenants_and_sandbox_keys_see_only_their_own },
		{ "test_secrets_are_never_stored_listed_or_logged",
		    test_secrets_are_never_stored_listed_or_logged },
		{ "test_replay_cache_is_per_key", test_replay_cache_is_per_key },
		{ "test_follow_by_long_poll_alone", test_follow_by_long_poll_alone },
		{ "test_auth_none_and_the_feed_stay_local", test_auth_none_and_the_feed_stay_local },
		{ "test_tls_server_and_client_certificates", test_tls_server_and_client_certificates },
		{ "test_random_tokens_never_authenticate", test_random_tokens_never_authenticate },
	};
	int rv = th_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));

	th_server_cleanup(&srv);
	return (rv);
}
