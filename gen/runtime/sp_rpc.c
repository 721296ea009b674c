/* Method tables and the request/reply envelope. */
#include "sp_rpc.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const sp_method *
sp_service_method(const sp_service *s, const char *name)
{
	size_t plen = strlen(s->name);

	if (strncmp(name, s->name, plen) != 0 || name[plen] != '/') {
		return (NULL);
	}
	for (size_t i = 0; i < s->count; i++) {
		if (strcmp(s->methods[i].name, name) == 0) {
			return (&s->methods[i]);
		}
	}
	return (NULL);
}

const sp_method *
sp_service_find(const sp_service *const *services, const char *name)
{
	const sp_method *m = NULL;

	for (; *services != NULL && m == NULL; services++) {
		m = sp_service_method(*services, name);
	}
	return (m);
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
	if (strlen(method) > SP_ENVELOPE_METHOD_MAX) {
		*err = "method name is over 128 bytes";
		return (SP_INVALID_ARGUMENT);
	}
	if (token != NULL && strlen(token) > SP_ENVELOPE_TOKEN_MAX) {
		*err = "token is over 256 bytes";
		return (SP_INVALID_ARGUMENT);
	}
	req.method = method;
	req.token = token;
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

/* The request id of an envelope that did not decode, read field by field; 0 when unreadable. */
static uint64_t
sp_request_peek_id(const void *buf, size_t len)
{
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	pb_wire_type_t wt;
	uint32_t tag;
	bool eof;
	uint64_t id;

	while (pb_decode_tag(&is, &wt, &tag, &eof)) {
		if (tag == 2 && wt == PB_WT_VARINT) {
			return (pb_decode_varint(&is, &id) ? id : 0);
		}
		if (!pb_skip_field(&is, wt)) {
			break;
		}
	}
	return (0);
}

int
sp_request_decode(nng_msg *m, sandproc_v1_Request *req, sp_arena *arena, const char **err)
{
	if (!sp_pb_decode(
	        sandproc_v1_Request_fields, req, sizeof(*req), nng_msg_body(m), nng_msg_len(m), arena, err)) {
		req->request_id = sp_request_peek_id(nng_msg_body(m), nng_msg_len(m));
		return (SP_INVALID_ARGUMENT);
	}
	if (req->method == NULL || req->method[0] == '\0') {
		*err = "no method name";
		return (SP_INVALID_ARGUMENT);
	}
	if (strlen(req->method) > SP_ENVELOPE_METHOD_MAX) {
		*err = "method name is over its limit of 128 bytes";
		return (SP_INVALID_ARGUMENT);
	}
	if (req->token != NULL && strlen(req->token) > SP_ENVELOPE_TOKEN_MAX) {
		*err = "token is over its limit of 256 bytes";
		return (SP_INVALID_ARGUMENT);
	}
	if (req->token == NULL) {
		req->token = "";
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
