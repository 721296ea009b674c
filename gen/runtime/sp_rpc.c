#include "sp_rpc.h"

#include <errno.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <pb_encode.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SP_CLIENT_DEFAULT_TIMEOUT_MS 30000
/* Replies carry Run output (3 x max_output_bytes) and Logs pages. */
#define SP_CLIENT_RECV_MAX (64u * 1024 * 1024)

const sp_method *
sp_service_find(const sp_service *const *services, const char *name)
{
	for (; *services != NULL; services++) {
		const sp_service *s = *services;
		size_t plen = strlen(s->name);
		if (strncmp(name, s->name, plen) != 0 || name[plen] != '/') {
			continue;
		}
		for (size_t i = 0; i < s->count; i++) {
			if (strcmp(s->methods[i].name, name) == 0) {
				return (&s->methods[i]);
			}
		}
	}
	return (NULL);
}

const sp_field_info *
sp_msg_info_field(const sp_msg_info *info, uint32_t tag)
{
	for (size_t i = 0; i < info->count; i++) {
		if (info->field[i].tag == tag) {
			return (&info->field[i]);
		}
	}
	return (NULL);
}

const char *
sp_enum_short_name(const sp_enum_info *info, int32_t value)
{
	for (size_t i = 0; i < info->count; i++) {
		if (info->values[i].value == value) {
			return (info->values[i].short_name);
		}
	}
	return (NULL);
}

/* Both envelopes carry the body as field 4 (length-delimited): tag byte 0x22. */
#define SP_BODY_TAG ((4u << 3) | 2u)

/*
 * Encodes an envelope (its body field left empty) followed by body as
 * field 4, into a new nng message of exactly the right size. The body is
 * sized once and encoded once, straight into the message: protobuf allows
 * fields in any order, and a big reply (a List page, Run output) is not
 * walked four times as nested sizing would.
 */
static int
sp_envelope_encode(nng_msg **out, const pb_msgdesc_t *env_fields, const void *env,
    const pb_msgdesc_t *body_fields, const void *body, const char **err)
{
	size_t env_size, body_size = 0, len;
	uint8_t head[16];
	pb_ostream_t hs = pb_ostream_from_buffer(head, sizeof(head));
	nng_msg *m;

	if (!sp_pb_encoded_size(env_fields, env, &env_size) ||
	    (body_fields != NULL && !sp_pb_encoded_size(body_fields, body, &body_size))) {
		*err = "cannot encode the message";
		return (SP_INTERNAL);
	}
	if (body_fields != NULL &&
	    (!pb_encode_varint(&hs, SP_BODY_TAG) || !pb_encode_varint(&hs, body_size))) {
		*err = "body too large";
		return (SP_INTERNAL);
	}
	if (nng_msg_alloc(&m, env_size + hs.bytes_written + body_size) != 0) {
		*err = "out of memory";
		return (SP_RESOURCE_EXHAUSTED);
	}
	uint8_t *p = nng_msg_body(m);
	if (!sp_pb_encode(env_fields, env, p, env_size, &len, err) || len != env_size) {
		nng_msg_free(m);
		return (SP_INTERNAL);
	}
	memcpy(p + env_size, head, hs.bytes_written);
	if (body_fields != NULL &&
	    (!sp_pb_encode(body_fields, body, p + env_size + hs.bytes_written, body_size, &len, err) ||
	        len != body_size)) {
		nng_msg_free(m);
		return (SP_INTERNAL);
	}
	*out = m;
	return (SP_OK);
}

int
sp_request_encode(nng_msg **out, const char *method, uint64_t request_id, const char *token,
    const pb_msgdesc_t *fields, const void *msg, const char **err)
{
	sandproc_v1_Request req;
	memset(&req, 0, sizeof(req));
	const char *dummy;

	if (err == NULL) {
		err = &dummy;
	}
	if (strlen(method) >= sizeof(req.method) || (token != NULL && strlen(token) >= sizeof(req.token))) {
		*err = "method name or token too long";
		return (SP_INVALID_ARGUMENT);
	}
	strcpy(req.method, method);
	if (token != NULL) {
		strcpy(req.token, token);
	}
	req.request_id = request_id;
	return (sp_envelope_encode(out, sandproc_v1_Request_fields, &req, fields, msg, err));
}

int
sp_reply_encode(nng_msg **out, uint64_t request_id, int code, const char *message, const pb_msgdesc_t *fields,
    const void *msg, const char **err)
{
	sandproc_v1_Reply rep;
	memset(&rep, 0, sizeof(rep));
	const char *dummy;

	if (err == NULL) {
		err = &dummy;
	}
	rep.request_id = request_id;
	rep.code = code;
	if (message != NULL) {
		/* Long messages are cut, not refused: the code still gets through. */
		snprintf(rep.message, sizeof(rep.message), "%s", message);
	}
	return (sp_envelope_encode(out, sandproc_v1_Reply_fields, &rep, fields, msg, err));
}

int
sp_request_decode(nng_msg *m, sandproc_v1_Request *req, const char **err)
{
	if (!sp_pb_decode(
	        sandproc_v1_Request_fields, req, sizeof(*req), nng_msg_body(m), nng_msg_len(m), NULL, err)) {
		return (SP_INVALID_ARGUMENT);
	}
	if (req->method[0] == '\0') {
		*err = "no method name";
		return (SP_INVALID_ARGUMENT);
	}
	return (SP_OK);
}

int
sp_reply_decode(nng_msg *m, sandproc_v1_Reply *rep, const char **err)
{
	if (!sp_pb_decode(
	        sandproc_v1_Reply_fields, rep, sizeof(*rep), nng_msg_body(m), nng_msg_len(m), NULL, err)) {
		return (SP_INVALID_ARGUMENT);
	}
	return (SP_OK);
}

uint64_t
sp_random_u64(void)
{
	uint64_t v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
			/* getrandom cannot fail for 8 bytes once the pool is ready. */
			abort();
		}
	}
	return (v);
}

/* --- sp_client ------------------------------------------------------------ */

struct sp_client {
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;      /* receives */
	nng_aio *send_aio; /* sends */
	bool open;
	char *token;
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
	 * No timed resends: REQ still resends at once when the connection
	 * drops (the server answers a repeat from its replay cache), and a
	 * call that legitimately takes long (Wait, Run) is not sent twice.
	 * It also spares every call a timer of its own.
	 */
	nng_ctx_set_ms(c->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dial(c->sock, url, NULL, 0)) != 0) {
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
	 * The receive is posted right behind the send, without waiting for the
	 * send to finish: the caller's thread then sleeps once per call, not
	 * twice (a wake-up is most of what a call costs here).
	 */
	nng_aio_set_msg(c->send_aio, msg);
	nng_ctx_send(c->ctx, c->send_aio);
	nng_aio_set_timeout(c->aio, timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
	nng_ctx_recv(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	rv = nng_aio_result(c->aio);
	if (rv != 0) {
		nng_aio_cancel(c->send_aio);
	}
	nng_aio_wait(c->send_aio);
	if (nng_aio_result(c->send_aio) != 0) {
		nng_msg_free(msg);
		if (rv == 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			rv = nng_aio_result(c->send_aio);
		}
	}
	if (rv != 0) {
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
