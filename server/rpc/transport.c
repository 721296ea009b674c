#include "rpc/rpc.h"

#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/util.h"
#include "rpc/dedup.h"

/*
 * Each nng context runs a small state machine in its aio callback:
 * receive -> (answer inline | hand to a worker) -> send -> receive.
 *
 * Calls that cannot block (Health, Get, List, ...) are answered inside the
 * callback, on nng's own thread: no hand-off to another thread, which on
 * this kind of machine is what a round trip mostly costs. Calls that may
 * block or take long (Run, Wait, Start, Logs, ...) go to a pool of worker
 * threads, which grows while all of them are busy; the context they hold
 * is replaced by a fresh one so receiving never stops.
 */
#define RPC_RECEIVING_MIN 8   /* contexts kept waiting for requests */
#define RPC_CONTEXTS_MAX 4096 /* contexts in all, receiving or held by a call */
#define RPC_WORKERS_MAX 1024
#define RPC_WORKER_STACK (512 * 1024)
#define RPC_DEDUP_ENTRIES 4096
#define RPC_DEDUP_BYTES (64u * 1024 * 1024)
#define RPC_DEDUP_TTL_MS (10 * 60 * 1000)

typedef enum { CTX_RECV, CTX_SEND } rpc_ctx_state;

typedef struct rpc_ctx {
	struct rpc_server *rs;
	nng_ctx ctx;
	nng_aio *aio;
	rpc_ctx_state state;
	sp_arena *arena;
	nng_msg *req;            /* held while a worker carries the call out */
	sandproc_v1_Request env; /* its envelope; the body points into req */
	const sp_method *m;
	struct rpc_ctx *next;
} rpc_ctx;

struct rpc_server {
	server *srv;
	const sp_service *const *services;
	const sp_method *const *inline_methods;
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

	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t work;
	rpc_ctx *contexts[RPC_CONTEXTS_MAX];
	size_t ncontexts;
	rpc_ctx *queue_head, *queue_tail;
	size_t queued;
	pthread_t workers[RPC_WORKERS_MAX];
	size_t nworkers, idle_workers;
};

int
sp_call_error(sp_call *call, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call->message, sizeof(call->message), fmt, ap);
	va_end(ap);
	return (code);
}

static nng_msg *
rpc_error_reply(uint64_t request_id, int code, const char *message)
{
	nng_msg *m = NULL;

	if (sp_reply_encode(&m, request_id, code, message, NULL, NULL, NULL) != SP_OK) {
		return (NULL);
	}
	return (m);
}

/* Carries out one decoded request and returns its reply. */
static nng_msg *
rpc_call(rpc_server *rs, sp_arena *arena, const sandproc_v1_Request *env, const sp_method *m)
{
	sp_call call;
	const char *err = "";
	void *req = NULL, *rep = NULL;
	nng_msg *reply = NULL;
	int code;

	memset(&call, 0, sizeof(call));
	call.srv = rs->srv;
	call.method = m;
	call.request_id = env->request_id;
	call.token = env->token;
	call.arena = arena;
	if ((req = calloc(1, m->request->size)) == NULL || (rep = calloc(1, m->response->size)) == NULL) {
		code = sp_call_error(&call, SP_RESOURCE_EXHAUSTED, "out of memory");
	} else if (!sp_pb_decode(m->request->fields, req, m->request->size, env->body.data, env->body.len,
	               arena, &err)) {
		code = sp_call_error(&call, SP_INVALID_ARGUMENT, "malformed %s request: %s", m->name, err);
	} else {
		code = m->handler(&call, req, rep);
		if (code == SP_UNIMPLEMENTED && call.message[0] == '\0') {
			sp_call_error(&call, code, "%s is not implemented", m->name);
		}
	}
	code = sp_reply_encode(&reply, env->request_id, code,
	    code == SP_OK ? NULL : (call.message[0] ? call.message : sp_status_message(code)),
	    code == SP_OK ? m->response->fields : NULL, rep, &err);
	if (code != SP_OK) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: cannot encode the reply: %s", m->name, err);
		reply = rpc_error_reply(env->request_id, code, msg);
	}
	if (call.cleanup != NULL) {
		call.cleanup(call.cleanup_arg);
	}
	free(req);
	free(rep);
	sp_arena_reset(arena);
	return (reply);
}

/* A request (consumed) that is carried out on this thread; returns its reply. */
static nng_msg *
rpc_handle(rpc_server *rs, sp_arena *arena, nng_msg *msg, const sandproc_v1_Request *env, const sp_method *m)
{
	nng_msg *reply;
	bool replayable = (m->flags & SP_METHOD_IDEMPOTENT) == 0 && env->request_id != 0;

	if (replayable && (reply = dedup_begin(rs->dedup, env->request_id, m)) != NULL) {
		nng_msg_free(msg);
		return (reply);
	}
	reply = rpc_call(rs, arena, env, m);
	if (replayable) {
		dedup_finish(rs->dedup, env->request_id, m, reply);
	}
	/* env->body pointed into msg until here. */
	nng_msg_free(msg);
	return (reply);
}

static bool
rpc_is_inline(const rpc_server *rs, const sp_method *m)
{
	for (const sp_method *const *p = rs->inline_methods; p != NULL && *p != NULL; p++) {
		if (*p == m) {
			return (true);
		}
	}
	return (false);
}

static void
rpc_ctx_listen(rpc_ctx *x)
{
	rpc_server *rs = x->rs;

	pthread_rwlock_rdlock(&rs->gate);
	if (!atomic_load(&rs->closing)) {
		x->state = CTX_RECV;
		atomic_fetch_add(&rs->receiving, 1);
		nng_ctx_recv(x->ctx, x->aio);
	}
	pthread_rwlock_unlock(&rs->gate);
}

static void
rpc_ctx_reply(rpc_ctx *x, nng_msg *reply)
{
	rpc_server *rs = x->rs;

	if (reply == NULL) {
		/* Nothing could be encoded: the client's own timeout will tell it. */
		rpc_ctx_listen(x);
		return;
	}
	pthread_rwlock_rdlock(&rs->gate);
	if (atomic_load(&rs->closing)) {
		nng_msg_free(reply);
	} else {
		x->state = CTX_SEND;
		nng_aio_set_msg(x->aio, reply);
		nng_ctx_send(x->ctx, x->aio);
	}
	pthread_rwlock_unlock(&rs->gate);
}

static void rpc_ctx_cb(void *arg);

/* Adds a context that starts receiving; false at the limit. */
static bool
rpc_ctx_add(rpc_server *rs)
{
	rpc_ctx *x;

	pthread_rwlock_rdlock(&rs->gate);
	pthread_mutex_lock(&rs->mu);
	if (rs->ncontexts == RPC_CONTEXTS_MAX || atomic_load(&rs->closing) ||
	    (x = calloc(1, sizeof(*x))) == NULL) {
		pthread_mutex_unlock(&rs->mu);
		pthread_rwlock_unlock(&rs->gate);
		return (false);
	}
	x->rs = rs;
	if (nng_ctx_open(&x->ctx, rs->sock) != 0 || nng_aio_alloc(&x->aio, rpc_ctx_cb, x) != 0 ||
	    (x->arena = sp_arena_new()) == NULL) {
		if (x->aio != NULL) {
			nng_aio_free(x->aio);
		}
		free(x);
		pthread_mutex_unlock(&rs->mu);
		pthread_rwlock_unlock(&rs->gate);
		return (false);
	}
	rs->contexts[rs->ncontexts++] = x;
	pthread_mutex_unlock(&rs->mu);
	pthread_rwlock_unlock(&rs->gate);
	rpc_ctx_listen(x);
	return (true);
}

static void *rpc_worker_main(void *arg);

/* Queues a call for the workers, adding a worker when none is idle. */
static void
rpc_enqueue(rpc_server *rs, rpc_ctx *x)
{
	pthread_mutex_lock(&rs->mu);
	x->next = NULL;
	if (rs->queue_tail != NULL) {
		rs->queue_tail->next = x;
	} else {
		rs->queue_head = x;
	}
	rs->queue_tail = x;
	rs->queued++;
	/* Idle workers that were signalled may not have taken their call yet: count calls, not signals. */
	if (rs->queued > rs->idle_workers && rs->nworkers < RPC_WORKERS_MAX && !atomic_load(&rs->closing)) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, RPC_WORKER_STACK);
		if (pthread_create(&rs->workers[rs->nworkers], &attr, rpc_worker_main, rs) == 0) {
			rs->nworkers++;
		} else {
			util_log("cannot add a worker thread; calls wait for a free one");
		}
		pthread_attr_destroy(&attr);
	}
	pthread_cond_signal(&rs->work);
	pthread_mutex_unlock(&rs->mu);
}

static void
rpc_ctx_cb(void *arg)
{
	rpc_ctx *x = arg;
	rpc_server *rs = x->rs;
	int rv = nng_aio_result(x->aio);
	sandproc_v1_Request env;
	const sp_method *m;
	const char *err = "";
	char text[256];
	nng_msg *msg;

	if (x->state == CTX_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(x->aio));
		}
		rpc_ctx_listen(x);
		return;
	}
	atomic_fetch_sub(&rs->receiving, 1);
	if (rv != 0) {
		if (rv != NNG_ECLOSED) {
			rpc_ctx_listen(x);
		}
		return;
	}
	msg = nng_aio_get_msg(x->aio);
	if (sp_request_decode(msg, &env, &err) != SP_OK) {
		snprintf(text, sizeof(text), "malformed request envelope: %s", err);
		nng_msg_free(msg);
		rpc_ctx_reply(x, rpc_error_reply(0, SP_INVALID_ARGUMENT, text));
		return;
	}
	if ((m = sp_service_find(rs->services, env.method)) == NULL) {
		snprintf(text, sizeof(text), "unknown method \"%s\"", env.method);
		nng_msg_free(msg);
		rpc_ctx_reply(x, rpc_error_reply(env.request_id, SP_UNIMPLEMENTED, text));
		return;
	}
	if (rpc_is_inline(rs, m)) {
		rpc_ctx_reply(x, rpc_handle(rs, x->arena, msg, &env, m));
		return;
	}
	/* Keep enough contexts receiving while this one is held by the call. */
	x->req = msg;
	x->env = env;
	x->m = m;
	if (atomic_load(&rs->receiving) < RPC_RECEIVING_MIN) {
		rpc_ctx_add(rs);
	}
	rpc_enqueue(rs, x);
}

static void *
rpc_worker_main(void *arg)
{
	rpc_server *rs = arg;

	pthread_mutex_lock(&rs->mu);
	for (;;) {
		while (rs->queue_head == NULL && !atomic_load(&rs->closing)) {
			rs->idle_workers++;
			pthread_cond_wait(&rs->work, &rs->mu);
			rs->idle_workers--;
		}
		if (rs->queue_head == NULL) {
			break;
		}
		rpc_ctx *x = rs->queue_head;
		rs->queue_head = x->next;
		rs->queued--;
		if (rs->queue_head == NULL) {
			rs->queue_tail = NULL;
		}
		pthread_mutex_unlock(&rs->mu);
		nng_msg *req = x->req;
		x->req = NULL;
		rpc_ctx_reply(x, rpc_handle(rs, x->arena, req, &x->env, x->m));
		pthread_mutex_lock(&rs->mu);
	}
	pthread_mutex_unlock(&rs->mu);
	return (NULL);
}

int
rpc_server_start(rpc_server **out, server *srv, const char *url, const sp_service *const *services,
    const sp_method *const *inline_methods, char *bound, size_t boundlen, char *err, size_t errlen)
{
	rpc_server *rs = calloc(1, sizeof(*rs));
	nng_listener l;
	int rv;

	if (rs == NULL ||
	    (rs->dedup = dedup_new(RPC_DEDUP_ENTRIES, RPC_DEDUP_BYTES, RPC_DEDUP_TTL_MS)) == NULL) {
		free(rs);
		snprintf(err, errlen, "out of memory");
		return (NNG_ENOMEM);
	}
	rs->srv = srv;
	rs->services = services;
	rs->inline_methods = inline_methods;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->work, NULL);
	pthread_rwlock_init(&rs->gate, NULL);
	if ((rv = nng_rep0_open(&rs->sock)) != 0) {
		snprintf(err, errlen, "nng_rep0_open: %s", nng_strerror(rv));
		dedup_free(rs->dedup);
		free(rs);
		return (rv);
	}
	/* nng 1.x accepts any size by default: a peer could make us allocate anything. */
	nng_socket_set_size(rs->sock, NNG_OPT_RECVMAXSZ, CONFIG_MAX_REQUEST_BYTES);
	if ((rv = nng_listen(rs->sock, url, &l, 0)) != 0) {
		snprintf(err, errlen, "listen %s: %s", url, nng_strerror(rv));
		nng_close(rs->sock);
		dedup_free(rs->dedup);
		free(rs);
		return (rv);
	}
	util_bound_url(l, url, bound, boundlen);
	for (int i = 0; i < RPC_RECEIVING_MIN; i++) {
		rpc_ctx_add(rs);
	}
	*out = rs;
	return (0);
}

void
rpc_server_close(rpc_server *rs)
{
	/* Released before nng_close, which waits for callbacks that may want the read side. */
	pthread_rwlock_wrlock(&rs->gate);
	atomic_store(&rs->closing, true);
	pthread_rwlock_unlock(&rs->gate);
	nng_close(rs->sock);
	pthread_mutex_lock(&rs->mu);
	pthread_cond_broadcast(&rs->work);
	pthread_mutex_unlock(&rs->mu);
}

void
rpc_server_free(rpc_server *rs)
{
	/* Closing is set: no worker or context is added any more. */
	pthread_mutex_lock(&rs->mu);
	size_t nworkers = rs->nworkers;
	pthread_mutex_unlock(&rs->mu);
	for (size_t i = 0; i < nworkers; i++) {
		pthread_join(rs->workers[i], NULL);
	}
	/* No new contexts once closing; nng_aio_free waits out a running callback. */
	for (size_t i = 0; i < rs->ncontexts; i++) {
		rpc_ctx *x = rs->contexts[i];
		nng_aio_free(x->aio);
		if (x->req != NULL) {
			nng_msg_free(x->req);
		}
		sp_arena_free(x->arena);
		free(x);
	}
	dedup_free(rs->dedup);
	pthread_rwlock_destroy(&rs->gate);
	pthread_cond_destroy(&rs->work);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}
