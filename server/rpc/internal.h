/*
 * Between the two halves of the RPC layer: transport.c (nng contexts) and
 * dispatch.c (one call's life). Not for handlers.
 */
#ifndef RPC_INTERNAL_H
#define RPC_INTERNAL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/list.h"
#include "base/timers.h"
#include "base/workq.h"
#include "rpc/dedup.h"
#include "rpc/rpc.h"
#include "sandproc/v1/envelope.pb.h"

typedef struct rpc_ctx rpc_ctx;

struct rpc_server {
	rpc_config cfg;
	nng_socket sock;
	dedup *dedup;
	/*
	 * Every send or receive on a context happens under the read side;
	 * closing takes the write side to flip `closing`, so no context call
	 * can race nng_close (nng 1.5.2 panics on a ctx call into a socket
	 * being torn down).
	 */
	pthread_rwlock_t gate;
	atomic_bool closing;
	atomic_int receiving;
	atomic_size_t parked;
	atomic_size_t inflight; /* calls taken from a context and not yet finished */

	pthread_mutex_t mu;  /* guards what follows */
	pthread_cond_t idle; /* inflight reached 0 */
	rpc_ctx **contexts;
	size_t ncontexts;
	dlist parked_list; /* parked calls (rpc_inflight.parked_node), for shutdown */
};

/* transport.c: sends reply (consumed; NULL: none) on x and makes x receive again. */
void transport_reply(rpc_ctx *x, nng_msg *reply);
/* transport.c: x is held by a call; keeps enough other contexts receiving. */
void transport_hold(rpc_server *rs);
/* transport.c: the pipe (connection) a context's request came on. */
uint32_t transport_pipe(const nng_msg *m);

/* dispatch.c: a request arrived on x; msg is consumed. */
void dispatch_request(rpc_server *rs, rpc_ctx *x, nng_msg *msg);
/* dispatch.c: drops every parked call (at close). */
void dispatch_drop_parked(rpc_server *rs);

#endif

/* One call's state while it is carried out or parked; one per context. */
typedef struct rpc_inflight {
	sp_call call; /* handlers get &call */
	rpc_server *rs;
	rpc_ctx *x;
	nng_msg *msg; /* the request; env's strings and body point into it or the arena */
	sandproc_v1_Request env;
	const sp_method *m;
	sp_handler handler;
	void *req, *rep;
	bool replayable;
	dedup_key key;
	workq_job job;
	/* parking: see dispatch.c */
	atomic_int state;
	sp_resume_fn resume;
	uint32_t timeout_ms;
	waiter waiters[SP_CALL_WAITERS];
	timer tm;
	dnode parked_node; /* on rs->parked_list, under rs->mu */
} rpc_inflight;

typedef enum { CTX_RECV, CTX_HELD, CTX_SEND } rpc_ctx_state;

struct rpc_ctx {
	rpc_server *rs;
	nng_ctx ctx;
	nng_aio *aio;
	rpc_ctx_state state;
	sp_arena *arena;
	rpc_inflight call;
};
