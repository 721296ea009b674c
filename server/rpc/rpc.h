/*
 * What handlers (rpc_*.c) see of a call, and the REP side that serves them.
 *
 * The path of one call: an nng context's callback receives a request
 * (rpc_server.c), decodes the envelope and finds the method in the
 * generated tables; a call that cannot block is carried out right there,
 * any other by a worker thread. Carrying out: a resent non-idempotent
 * request is answered from the replay cache (dedup.c), else the body is
 * decoded and the handler called; its code and reply go back on the same
 * context.
 */
#ifndef RPC_H
#define RPC_H

#include <stddef.h>
#include <stdint.h>

#include "sandproc/v1/processes.pb.h"
#include "server.h"
#include "sp_rpc.h"

struct sp_call {
	server *srv;
	const sp_method *method;
	uint64_t request_id;
	const char *token;
	sp_arena *arena; /* freed after the reply is sent */
	char message[512];
	void (*cleanup)(void *arg); /* run after the reply is encoded */
	void *cleanup_arg;
};

/* Sets the call's error message and returns code, for `return (sp_call_error(...))`. */
int sp_call_error(sp_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Reads record id (strings in the call's arena) with the live details the
 * store lags behind on; NOT_FOUND for unknown or malformed ids.
 */
int rpc_get_record(sp_call *call, const char *id, sandproc_v1_Process *out);

typedef struct rpc_server rpc_server;

/*
 * Listens on url and serves services (NULL-terminated). Methods listed in
 * inline_methods (NULL-terminated; they must never block) are answered on
 * nng's callback thread; the rest by a pool of worker threads that grows
 * while every worker is busy. *bound gets the URL with the real port when
 * url asked for port 0.
 */
int rpc_server_start(rpc_server **out, server *srv, const char *url, const sp_service *const *services,
    const sp_method *const *inline_methods, char *bound, size_t boundlen, char *err, size_t errlen);

/* Stops taking requests; calls in progress finish (their replies are dropped). */
void rpc_server_close(rpc_server *rs);

/* Waits for every worker to finish and frees rs. */
void rpc_server_free(rpc_server *rs);

#endif
