/*
 * The RPC runtime shared by generated code, the server and clients: the
 * method and message tables the plugin emits and the request/reply envelope
 * on nng messages. The calling side is sp_client.h; the serving side's types
 * are sp_server.h.
 */
#ifndef SP_RPC_H
#define SP_RPC_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandproc/v1/envelope.pb.h"
#include "sp_pb.h"
#include "sp_status.h"

/* --- Tables emitted by protoc-gen-sprpc --------------------------------- */

typedef struct sp_enum_value {
	int32_t value;
	const char *name;       /* "STATE_RUNNING" */
	const char *short_name; /* "running": lower case, enum prefix dropped */
} sp_enum_value;

typedef struct sp_enum_info {
	const char *name; /* "sandproc.v1.State" */
	size_t count;
	const sp_enum_value *values;
} sp_enum_info;

typedef struct sp_msg_info sp_msg_info;

typedef struct sp_field_info {
	uint32_t tag;
	const char *name;        /* as in the proto: "exit_code" */
	const sp_msg_info *msg;  /* for message fields */
	const sp_enum_info *enm; /* for enum fields */
} sp_field_info;

struct sp_msg_info {
	const char *name; /* "sandproc.v1.Process" */
	const pb_msgdesc_t *fields;
	size_t size; /* sizeof the C struct */
	size_t count;
	const sp_field_info *field;
};

/* From the method's idempotency_level option. */
#define SP_METHOD_NO_SIDE_EFFECTS 0x1
#define SP_METHOD_IDEMPOTENT 0x2

/* Roles, least to most (sandproc.v1.Role): each may do what the ones before it may. */
#define SP_ROLE_VIEWER 1
#define SP_ROLE_DEVELOPER 2
#define SP_ROLE_ADMIN 3

typedef struct sp_method {
	int id;           /* index in its service's table */
	const char *name; /* "sandproc.v1.Processes/Start" */
	const sp_msg_info *request;
	const sp_msg_info *response;
	unsigned flags;
	int role; /* the least SP_ROLE_* a key needs: (sandproc.v1.role) in the .proto */
} sp_method;

typedef struct sp_service {
	const char *name; /* "sandproc.v1.Processes" */
	const sp_method *methods;
	size_t count;
} sp_service;

/* The method of s named name ("pkg.Service/Method"), or NULL. */
const sp_method *sp_service_method(const sp_service *s, const char *name);

/* The method named name among services (NULL-terminated), or NULL. */
const sp_method *sp_service_find(const sp_service *const *services, const char *name);

/* The field info for tag, or NULL. */
const sp_field_info *sp_msg_info_field(const sp_msg_info *info, uint32_t tag);

/* The short name of an enum value ("running"), or NULL when unknown. */
const char *sp_enum_short_name(const sp_enum_info *info, int32_t value);

/* --- Envelope ----------------------------------------------------------- */

/* Longest method name and token a request may carry. */
#define SP_ENVELOPE_METHOD_MAX 128
#define SP_ENVELOPE_TOKEN_MAX 256

/*
 * Each encode builds a new nng message (the caller owns it) holding the
 * envelope with msg encoded as its body (fields NULL: empty body). Each
 * returns an sp_status; err (when not NULL) gets a static description.
 */
int sp_request_encode(nng_msg **out, const char *method, uint64_t request_id, const char *token,
    const pb_msgdesc_t *fields, const void *msg, const char **err);
int sp_reply_encode(nng_msg **out, uint64_t request_id, int code, const char *message,
    const pb_msgdesc_t *fields, const void *msg, const char **err);

/*
 * Decode an envelope from an nng message; the body slice points into m,
 * valid while m lives, and method and token into arena. SP_INVALID_ARGUMENT
 * when m is not an envelope, a string holds a NUL or is over its limit (the
 * request id, when it was read, is in req->request_id even then).
 */
int sp_request_decode(nng_msg *m, sandproc_v1_Request *req, sp_arena *arena, const char **err);
int sp_reply_decode(nng_msg *m, sandproc_v1_Reply *rep, const char **err);

/* A fresh random 64-bit id (never 0). */
uint64_t sp_random_u64(void);

#endif
