/*
 * The RPC runtime shared by generated code, the server and the client: the
 * method and message tables the plugin emits, the request/reply envelope on
 * nng messages, and sp_client, the calling side of a channel.
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

/* Server side of one call; defined by the server. */
typedef struct sp_call sp_call;

typedef int (*sp_handler)(sp_call *call, const void *req, void *rep);

/* From the method's idempotency_level option. */
#define SP_METHOD_NO_SIDE_EFFECTS 0x1
#define SP_METHOD_IDEMPOTENT 0x2

typedef struct sp_method {
	int id;           /* index in its service's table */
	const char *name; /* "sandproc.v1.Processes/Start" */
	const sp_msg_info *request;
	const sp_msg_info *response;
	sp_handler handler;
	unsigned flags;
} sp_method;

typedef struct sp_service {
	const char *name; /* "sandproc.v1.Processes" */
	const sp_method *methods;
	size_t count;
} sp_service;

/* The method named name among services (NULL-terminated), or NULL. */
const sp_method *sp_service_find(const sp_service *const *services, const char *name);

/* The field info for tag, or NULL. */
const sp_field_info *sp_msg_info_field(const sp_msg_info *info, uint32_t tag);

/* The short name of an enum value ("running"), or NULL when unknown. */
const char *sp_enum_short_name(const sp_enum_info *info, int32_t value);

/* --- Envelope ----------------------------------------------------------- */

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
 * valid while m lives. SP_INVALID_ARGUMENT when m is not an envelope.
 */
int sp_request_decode(nng_msg *m, sandproc_v1_Request *req, const char **err);
int sp_reply_decode(nng_msg *m, sandproc_v1_Reply *rep, const char **err);

/* A fresh random 64-bit id (never 0). */
uint64_t sp_random_u64(void);

/* --- Calling side --------------------------------------------------------- */

typedef struct sp_client sp_client;

/* A client that is not connected yet; NULL when out of memory. */
sp_client *sp_client_new(void);
/* Closes the socket and frees the client and everything its replies hold. */
void sp_client_free(sp_client *c);

/*
 * Dials url (any nng URL). Returns SP_OK, or SP_UNAVAILABLE when nothing
 * answers there (message in sp_client_error). Once connected, nng redials by
 * itself if the server goes away and comes back.
 */
int sp_client_connect(sp_client *c, const char *url);

/* Token sent with every call (copied; NULL for none). */
void sp_client_set_token(sp_client *c, const char *token);

/* Default per-call timeout in ms for calls passing timeout_ms 0 (30000). */
void sp_client_set_timeout(sp_client *c, int timeout_ms);

/*
 * Calls m with req and decodes the reply into rep (zeroed first).
 * timeout_ms: 0 = the client's default, < 0 = none. Returns the status code;
 * on failure the message is in sp_client_error. Callback fields of rep (and
 * strings) live in the client's arena until its next call.
 * One thread at a time per client.
 */
int sp_client_call(sp_client *c, const sp_method *m, const void *req, void *rep, int timeout_ms);

/* The message of the last failed call ("" after a success). */
const char *sp_client_error(const sp_client *c);

/* The arena of the last reply; callers may allocate request data there too. */
sp_arena *sp_client_arena(sp_client *c);

#endif
