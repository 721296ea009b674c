/*
 * The REP side that serves the generated tables.
 *
 * The path of one call: an nng context's callback receives a request
 * (transport.c) and hands it to dispatch.c, which decodes the envelope and
 * finds the method. A call that cannot block is carried out right there,
 * on nng's callback thread; any other on the shared worker pool. Carrying
 * out: a resent non-idempotent request is answered from the replay cache
 * (dedup.c), else the body is decoded and the handler called; its code and
 * reply go back on the same context, at once or when a parked call resumes.
 */
#ifndef RPC_RPC_H
#define RPC_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "base/timers.h"
#include "base/workq.h"
#include "rpc/call.h"

typedef struct rpc_server rpc_server;

typedef struct rpc_config {
	server *srv;                              /* handed to handlers as call->srv */
	const sp_server_service *const *services; /* NULL-terminated */
	const sp_method *const *inline_methods;   /* NULL-terminated; they must never block */
	workq *wq;                                /* runs the other calls */
	timers *timers;                           /* parked calls' timeouts */
	size_t max_request_bytes;                 /* NNG_OPT_RECVMAXSZ */
	/*
	 * Checks the call's token before anything else reads its body: fills
	 * the call's caller, role, tenant and key_sandbox and returns SP_OK,
	 * or a status with call->message set. NULL: no keys, every call an admin's.
	 */
	int (*authorize)(void *arg, sp_call *call);
	void *authorize_arg;
	/* TLS for tls+tcp:// and wss:// listeners (NULL: those URLs fail to listen). */
	struct nng_tls_config *tls;
} rpc_config;

/* Opens the REP socket; it serves once it listens somewhere. */
int rpc_server_new(rpc_server **out, const rpc_config *cfg, char *err, size_t errlen);

/*
 * Listens on url (any nng URL; may be called for several). *bound gets the
 * URL with the real port when a tcp URL asked for port 0.
 */
int rpc_server_listen(
    rpc_server *rs, const char *url, char *bound, size_t boundlen, char *err, size_t errlen);

/* Stops taking requests; calls in progress finish, their replies and parked calls are dropped. */
void rpc_server_close(rpc_server *rs);

/* Waits for calls in progress and frees rs (after rpc_server_close, and once the workq is idle). */
void rpc_server_free(rpc_server *rs);

/* Calls parked now (for tests and Health). */
size_t rpc_server_parked(rpc_server *rs);

#endif
