#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandproc.h"

/* Slack for the network and the server's own bookkeeping on top of a server-side wait. */
#define SP_CALL_SLACK_MS 10000

/* given if set, else the environment variable if set, else fallback. */
static const char *
sp_resolve(const char *given, const char *var, const char *fallback)
{
	const char *env = getenv(var);

	if (given != NULL && *given != '\0') {
		return (given);
	}
	return (env != NULL && *env != '\0' ? env : fallback);
}

const char *
sp_resolve_url(const char *url)
{
	return (sp_resolve(url, "SANDPROC_URL", SP_DEFAULT_URL));
}

const char *
sp_resolve_events_url(const char *url)
{
	return (sp_resolve(url, "SANDPROC_EVENTS_URL", SP_DEFAULT_EVENTS_URL));
}

bool
sp_default_token(char *out, size_t len)
{
	const char *env = getenv("SANDPROC_TOKEN");
	char path[4200];
	FILE *f;

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s", env);
		return (true);
	}
	snprintf(path, sizeof(path), "%s/admin.key", sp_resolve(NULL, "SANDPROC_DATA", SP_DEFAULT_DATA));
	if ((f = fopen(path, "re")) == NULL) {
		return (false);
	}
	bool ok = fgets(out, (int)len, f) != NULL;
	fclose(f);
	out[ok ? strcspn(out, "\r\n") : 0] = '\0';
	return (ok && out[0] != '\0');
}

int
sp_tls_from_env(nng_tls_config **out, char *err, size_t errlen)
{
	const char *ca = getenv("SANDPROC_TLS_CA"), *cert = getenv("SANDPROC_TLS_CERT");
	const char *key = getenv("SANDPROC_TLS_KEY");

	return (sp_tls_config_new(out, false, ca != NULL && *ca ? ca : NULL,
	    cert != NULL && *cert ? cert : NULL, key != NULL && *key ? key : NULL, err, errlen));
}

int
sp_connect(sp_client **out, const char *url, const char *token, char *err, size_t errlen)
{
	sp_client *c = sp_client_new();
	char found[256];
	int code;

	*out = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	if ((token == NULL || *token == '\0') && sp_default_token(found, sizeof(found))) {
		token = found;
	}
	if (token != NULL && *token != '\0') {
		sp_client_set_token(c, token);
	}
	explicit_bzero(found, sizeof(found));
	url = sp_resolve_url(url);
	if (sp_tls_url(url)) {
		nng_tls_config *tls;
		if (sp_tls_from_env(&tls, err, errlen) != 0) {
			sp_client_free(c);
			return (SP_INVALID_ARGUMENT);
		}
		sp_client_set_tls(c, tls);
		nng_tls_config_free(tls);
	}
	if ((code = sp_client_connect(c, url)) != SP_OK) {
		snprintf(err, errlen, "%s", sp_client_error(c));
		sp_client_free(c);
		return (code);
	}
	*out = c;
	return (SP_OK);
}

int
sp_wait_healthy(sp_client *c, int timeout_ms)
{
	struct timespec start, now, pause = { 0, 50 * 1000000 };
	sandproc_v1_HealthRequest req;
	sandproc_v1_HealthReply rep;
	int code;

	memset(&req, 0, sizeof(req));
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((code = sp_system_health(c, &req, &rep, 1000)) == SP_OK) {
			return (SP_OK);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= timeout_ms) {
			return (code);
		}
		nanosleep(&pause, NULL);
	}
}

int
sp_sandbox_wait_ready(sp_client *c, const char *id, uint32_t timeout_s, sandproc_v1_ReadinessReply *rep)
{
	sandproc_v1_WaitReadyRequest w;
	sandproc_v1_ReadinessRequest r;
	struct timespec start, now, pause = { 0, 10 * 1000000 };
	uint32_t s = timeout_s ? timeout_s : 30;
	int code;

	memset(&w, 0, sizeof(w));
	snprintf(w.id, sizeof(w.id), "%s", id);
	w.timeout_s = s;
	if ((code = sp_sandboxes_wait_ready(c, &w, rep, sp_call_timeout(s * 1000))) != SP_UNIMPLEMENTED) {
		return (code);
	}
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((code = sp_sandboxes_readiness(c, &r, rep, 5000)) != SP_OK || rep->ready ||
		    rep->state != sandproc_v1_SandboxState_SANDBOX_STATE_CREATING) {
			return (code);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= (long)s * 1000) {
			return (SP_OK);
		}
		nanosleep(&pause, NULL);
	}
}

int
sp_call_timeout(uint32_t server_ms)
{
	return (server_ms == 0 ? -1 : (int)server_ms + SP_CALL_SLACK_MS);
}

static int
sp_exec(sp_client *c, const char *const *argv, uint32_t timeout_ms, sandproc_v1_RunReply *rep)
{
	sandproc_v1_RunRequest req;

	memset(&req, 0, sizeof(req));
	req.argv = sp_strv_of(argv);
	req.timeout_ms = timeout_ms;
	/* The server caps a 0 timeout at its configured default (at most its maximum). */
	return (sp_processes_run(c, &req, rep, timeout_ms ? sp_call_timeout(timeout_ms) : -1));
}

int
sp_exec_bash(sp_client *c, const char *command, uint32_t timeout_ms, sandproc_v1_RunReply *rep)
{
	const char *argv[] = { "bash", "-c", command, NULL };
	return (sp_exec(c, argv, timeout_ms, rep));
}

int
sp_exec_python(sp_client *c, const char *code, uint32_t timeout_ms, sandproc_v1_RunReply *rep)
{
	const char *argv[] = { "python3", "-c", code, NULL };
	return (sp_exec(c, argv, timeout_ms, rep));
}
