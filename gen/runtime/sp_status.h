/*
 * Status codes shared by client and server: gRPC's names and numbers.
 */
#ifndef SP_STATUS_H
#define SP_STATUS_H

/* X(name, number, default message) */
#define SP_STATUS_TABLE(X)                               \
	X(OK, 0, "ok")                                   \
	X(CANCELLED, 1, "the call was cancelled")        \
	X(UNKNOWN, 2, "unknown error")                   \
	X(INVALID_ARGUMENT, 3, "invalid argument")       \
	X(DEADLINE_EXCEEDED, 4, "deadline exceeded")     \
	X(NOT_FOUND, 5, "not found")                     \
	X(ALREADY_EXISTS, 6, "already exists")           \
	X(PERMISSION_DENIED, 7, "permission denied")     \
	X(RESOURCE_EXHAUSTED, 8, "resource exhausted")   \
	X(FAILED_PRECONDITION, 9, "failed precondition") \
	X(ABORTED, 10, "aborted")                        \
	X(OUT_OF_RANGE, 11, "out of range")              \
	X(UNIMPLEMENTED, 12, "not implemented")          \
	X(INTERNAL, 13, "internal error")                \
	X(UNAVAILABLE, 14, "service unavailable")        \
	X(DATA_LOSS, 15, "data loss")                    \
	X(UNAUTHENTICATED, 16, "unauthenticated")

typedef enum sp_status {
#define SP_STATUS_ENUM(name, num, msg) SP_##name = num,
	SP_STATUS_TABLE(SP_STATUS_ENUM)
#undef SP_STATUS_ENUM
} sp_status;

/* "INVALID_ARGUMENT" for 3; "UNKNOWN" for a number outside the table. */
const char *sp_status_name(int code);

/* The default human message for a code. */
const char *sp_status_message(int code);

/* The code for a name ("NOT_FOUND"), or -1. */
int sp_status_from_name(const char *name);

#endif
