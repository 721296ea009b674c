/* sp_client: one REQ socket and context, one call at a time. */
#include "sp_client.h"
#include "sp_tls.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP_CLIENT_DEFAULT_TIMEOUT_MS 30000
/* Replies carry Run output (3 x max_output_bytes) and Logs pages. */
#define SP_CLIENT_RECV_MAX (64u * 1024 * 1024)

struct sp_client {
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;      /* receives */
	nng_aio *send_aio; /* sends */
	bool open;
	char *token;
	nng_tls_config *tls; /* held; for tls+tcp:// and wss:// */
	int timeout_ms;
	uint64_t next_id;
	sp_arena *arena;
	char error[600];
};

sp_client *
sp_client_new(void)
{
	sp_client *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		return (NULL);
	}
	if ((c->arena = sp_arena_new()) == NULL) {
		free(c);
		return (NULL);
	}
	c->timeout_ms = SP_CLIENT_DEFAULT_TIMEOUT_MS;
	/* Random start so ids from different clients do not meet. */
	c->next_id = sp_random_u64() >> 1;
	return (c);
}

void
sp_client_free(sp_client *c)
{
	if (c == NULL) {
		return;
	}
	if (c->open) {
		nng_ctx_close(c->ctx);
		nng_close(c->sock);
	}
	if (c->aio != NULL) {
		nng_aio_free(c->aio);
	}
	if (c->send_aio != NULL) {
		nng_aio_free(c->send_aio);
	}
	sp_arena_free(c->arena);
	if (c->tls != NULL) {
		nng_tls_config_free(c->tls);
	}
	free(c->token);
	free(c);
}

static int sp_client_fail(sp_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
sp_client_fail(sp_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return (code);
}

void
sp_client_set_tls(sp_client *c, nng_tls_config *tls)
{
	if (tls != NULL) {
		nng_tls_config_hold(tls);
	}
	if (c->tls != NULL) {
		nng_tls_config_free(c->tls);
	}
	c->tls = tls;
}

int
sp_client_connect(sp_client *c, const char *url)
{
	int rv;

	if (c->open) {
		return (sp_client_fail(c, SP_FAILED_PRECONDITION, "already connected"));
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		return (sp_client_fail(c, SP_INTERNAL, "nng_req0_open: %s", nng_strerror(rv)));
	}
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, SP_CLIENT_RECV_MAX)) != 0 ||
	    (rv = nng_ctx_open(&c->ctx, c->sock)) != 0 ||
	    (c->aio == NULL && (rv = nng_aio_alloc(&c->aio, NULL, NULL)) != 0) ||
	    (c->send_aio == NULL && (rv = nng_aio_alloc(&c->send_aio, NULL, NULL)) != 0)) {
		nng_close(c->sock);
		return (sp_client_fail(c, SP_INTERNAL, "nng setup: %s", nng_strerror(rv)));
	}
	/*
	 * No timed resends: a call that legitimately takes long (Wait, Run)
	 * is not sent twice, and no call needs a timer of its own. With them
	 * off, nng 1.5.2's REQ fails a call whose connection drops
	 * (NNG_ECONNRESET, reported as UNAVAILABLE) instead of resending it:
	 * callers that ride out a server restart try again (sp_follow's
	 * reconnect_ms; the Python and TypeScript clients resend by request id).
	 */
	nng_ctx_set_ms(c->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	/* A listener whose backlog is full (a burst of clients) answers EAGAIN: try again for a while. */
	for (int i = 0; (rv = sp_dial(c->sock, url, c->tls)) == NNG_EAGAIN && i < 100; i++) {
		nng_msleep(10 + i);
	}
	if (rv != 0) {
		nng_close(c->sock);
		return (sp_client_fail(c, SP_UNAVAILABLE, "cannot reach %s: %s", url, nng_strerror(rv)));
	}
	c->open = true;
	c->error[0] = '\0';
	return (SP_OK);
}

void
sp_client_set_token(sp_client *c, const char *token)
{
	free(c->token);
	c->token = token != NULL ? strdup(token) : NULL;
}

void
sp_client_set_timeout(sp_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : SP_CLIENT_DEFAULT_TIMEOUT_MS;
}

const char *
sp_client_error(const sp_client *c)
{
	return (c->error);
}

sp_arena *
sp_client_arena(sp_client *c)
{
	return (c->arena);
}

static int
sp_client_transport_error(sp_client *c, const sp_method *m, int rv, int timeout_ms)
{
	if (rv == NNG_ETIMEDOUT) {
		return (sp_client_fail(
		    c, SP_DEADLINE_EXCEEDED, "%s: no reply within %d ms", m->name, timeout_ms));
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return (sp_client_fail(c, SP_CANCELLED, "%s: %s", m->name, nng_strerror(rv)));
	}
	return (sp_client_fail(c, SP_UNAVAILABLE, "%s: %s", m->name, nng_strerror(rv)));
}

int
sp_client_call(sp_client *c, const sp_method *m, const void *req, void *rep, int timeout_ms)
{
	sandproc_v1_Reply env;
	nng_msg *msg;
	const char *err = "";
	int rv, code;

	if (!c->open) {
		return (sp_client_fail(c, SP_FAILED_PRECONDITION, "not connected"));
	}
	if (timeout_ms == 0) {
		timeout_ms = c->timeout_ms;
	}
	uint64_t id = ++c->next_id;
	code = sp_request_encode(&msg, m->name, id, c->token, m->request->fields, req, &err);
	if (code != SP_OK) {
		return (sp_client_fail(c, code, "%s: request: %s", m->name, err));
	}
	/*
	 * The receive is posted only once the send is done. With a connection
	 * up, the send completes inside nng_ctx_send (no wake-up); with none
	 * (the server is restarting) it waits for one, within the timeout.
	 * Posting the receive earlier is what nng 1.5 cannot take: a receive
	 * that fails while the send still waits frees the request under it,
	 * and the send's cancel then crashes (nanomsg/nng#1702).
	 */
	nng_time start = nng_clock();
	nng_aio_set_msg(c->send_aio, msg);
	nng_aio_set_timeout(c->send_aio, timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
	nng_ctx_send(c->ctx, c->send_aio);
	nng_aio_wait(c->send_aio);
	if ((rv = nng_aio_result(c->send_aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(c->send_aio));
		nng_aio_set_msg(c->send_aio, NULL);
		return (sp_client_transport_error(c, m, rv, timeout_ms));
	}
	int left = timeout_ms;
	if (timeout_ms >= 0) {
		nng_time spent = nng_clock() - start;
		left = spent >= (nng_time)timeout_ms ? 1 : timeout_ms - (int)spent;
	}
	nng_aio_set_timeout(c->aio, left < 0 ? NNG_DURATION_INFINITE : left);
	nng_ctx_recv(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	if ((rv = nng_aio_result(c->aio)) != 0) {
		return (sp_client_transport_error(c, m, rv, timeout_ms));
	}
	msg = nng_aio_get_msg(c->aio);
	sp_arena_reset(c->arena);
	if (sp_reply_decode(msg, &env, &err) != SP_OK) {
		nng_msg_free(msg);
		return (sp_client_fail(c, SP_INTERNAL, "%s: malformed reply: %s", m->name, err));
	}
	if (env.code != SP_OK) {
		nng_msg_free(msg);
		return (sp_client_fail(
		    c, env.code, "%s", env.message[0] != '\0' ? env.message : sp_status_message(env.code)));
	}
	if (!sp_pb_decode(
	        m->response->fields, rep, m->response->size, env.body.data, env.body.len, c->arena, &err)) {
		nng_msg_free(msg);
		return (sp_client_fail(c, SP_INTERNAL, "%s: malformed reply body: %s", m->name, err));
	}
	nng_msg_free(msg);
	c->error[0] = '\0';
	return (SP_OK);
}
