/*
 * What a handler (api/) sees of one call, and the two ways it can end: a
 * status with a reply, or parked until an event.
 *
 * A handler that must wait (Wait, Stop with wait_ms, a long-polling Logs)
 * does not block its thread: it links one of the call's waiters with the
 * owner of the event (sp_call_waiter) and returns sp_call_park. When the
 * event wakes the waiter or the timeout passes, the call's resume function
 * runs on a worker and answers (or parks again). No thread is held in
 * between, so a thousand waiting clients cost a thousand small records.
 */
#ifndef RPC_CALL_H
#define RPC_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/waiter.h"
#include "sp_pb.h"
#include "sp_server.h"

typedef struct server server;

/* A handler's return meaning "parked": see sp_call_park. Not a status. */
#define SP_PARKED (-1)

#define SP_CALL_WAITERS 3

/* Runs when a parked call wakes (timed_out: its time ran out first). Returns like a handler. */
typedef int (*sp_resume_fn)(sp_call *call, void *req, void *rep, bool timed_out);

struct sp_call {
	server *srv;
	const sp_method *method;
	uint64_t request_id;
	const char *token;
	sp_arena *arena; /* request strings and reply strings; freed after the reply */
	char message[512];
	void (*cleanup)(void *arg); /* run after the reply is encoded */
	void *cleanup_arg;
	/*
	 * Who calls, from the verified key (auth/keys.h): a number for the
	 * replay cache (0: the connection instead), its role, the tenant whose
	 * records it sees, and the one sandbox it is limited to ("" = any).
	 * With --auth none every call is an admin's of tenant "default".
	 */
	uint64_t caller;
	int role;
	char tenant[64];
	char key_sandbox[32];
	char key_id[32];
};

/* Sets the call's error message and returns code, for `return (sp_call_error(...))`. */
int sp_call_error(sp_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Waiter i (< SP_CALL_WAITERS) of the call, to link with an event's owner before parking. */
waiter *sp_call_waiter(sp_call *call, int i);

/*
 * Parks the call: resume runs once a linked waiter wakes, or after
 * timeout_ms (0 = no limit) with timed_out set, after every waiter still
 * linked has been detached. Returns SP_PARKED, which the handler returns.
 */
int sp_call_park(sp_call *call, uint32_t timeout_ms, sp_resume_fn resume);

#endif
