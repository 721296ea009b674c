#include "rpc.h"

#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dedup.h"
#include "util.h"

/* Workers start few and grow while all are busy (Wait and Run block one each). */
#define RPC_WORKERS_START 4
#define RPC_WORKERS_MAX 1024
#define RPC_WORKER_STACK (512 * 1024)
#define RPC_DEDUP_ENTRIES 4096
#define RPC_DEDUP_BYTES (64u * 1024 * 1024)
#define RPC_DEDUP_TTL_MS (10 * 60 * 1000)

typedef struct rpc_worker {
	struct rpc_server *rs;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thread;
	sp_arena *arena;
} rpc_worker;

struct rpc_server {
	server *srv;
	const sp_service *const *services;
	nng_socket sock;
	dedup *dedup;
	pthread_mutex_t mu; /* guards workers/nworkers */
	rpc_worker *workers[RPC_WORKERS_MAX];
	size_t nworkers;
	atomic_int idle;
	atomic_bool closing;
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
rpc_call(rpc_worker *w, const sandproc_v1_Request *env, const sp_method *m)
{
	rpc_server *rs = w->rs;
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
	call.arena = w->arena;
	if ((req = calloc(1, m->request->size)) == NULL || (rep = calloc(1, m->response->size)) == NULL) {
		code = sp_call_error(&call, SP_RESOURCE_EXHAUSTED, "out of memory");
	} else if (!sp_pb_decode(m->request->fields, req, m->request->size, env->body.data, env->body.len,
	               w->arena, &err)) {
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
	sp_arena_reset(w->arena);
	return (reply);
}

/* Turns one request message (consumed) into its reply (NULL: send nothing). */
static nng_msg *
rpc_handle(rpc_worker *w, nng_msg *msg)
{
	rpc_server *rs = w->rs;
	sandproc_v1_Request env;
	const sp_method *m;
	const char *err = "";
	nng_msg *reply;
	char text[256];

	if (sp_request_decode(msg, &env, &err) != SP_OK) {
		snprintf(text, sizeof(text), "malformed request envelope: %s", err);
		nng_msg_free(msg);
		return (rpc_error_reply(0, SP_INVALID_ARGUMENT, text));
	}
	if ((m = sp_service_find(rs->services, env.method)) == NULL) {
		snprintf(text, sizeof(text), "unknown method \"%s\"", env.method);
		nng_msg_free(msg);
		return (rpc_error_reply(env.request_id, SP_UNIMPLEMENTED, text));
	}
	bool replayable = (m->flags & SP_METHOD_IDEMPOTENT) == 0 && env.request_id != 0;
	if (replayable && (reply = dedup_begin(rs->dedup, env.request_id, m)) != NULL) {
		nng_msg_free(msg);
		return (reply);
	}
	reply = rpc_call(w, &env, m);
	if (replayable) {
		dedup_finish(rs->dedup, env.request_id, m, reply);
	}
	/* env.body pointed into msg until here. */
	nng_msg_free(msg);
	return (reply);
}

static void rpc_worker_add(rpc_server *rs);

static void *
rpc_worker_main(void *arg)
{
	rpc_worker *w = arg;
	rpc_server *rs = w->rs;

	for (;;) {
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		int rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || atomic_load(&rs->closing)) {
			if (rv == 0) {
				nng_msg_free(nng_aio_get_msg(w->aio));
			}
			break;
		}
		if (rv != 0) {
			continue;
		}
		/* The last idle worker takes a request: make another for the next. */
		if (atomic_fetch_sub(&rs->idle, 1) == 1) {
			rpc_worker_add(rs);
		}
		nng_msg *reply = rpc_handle(w, nng_aio_get_msg(w->aio));
		if (reply != NULL) {
			nng_aio_set_msg(w->aio, reply);
			nng_ctx_send(w->ctx, w->aio);
			nng_aio_wait(w->aio);
			if (nng_aio_result(w->aio) != 0) {
				nng_msg_free(reply);
			}
		}
		atomic_fetch_add(&rs->idle, 1);
	}
	return (NULL);
}

static void
rpc_worker_add(rpc_server *rs)
{
	rpc_worker *w;
	pthread_attr_t attr;

	pthread_mutex_lock(&rs->mu);
	if (rs->nworkers == RPC_WORKERS_MAX || atomic_load(&rs->closing) ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		pthread_mutex_unlock(&rs->mu);
		return;
	}
	w->rs = rs;
	if (nng_ctx_open(&w->ctx, rs->sock) != 0 || nng_aio_alloc(&w->aio, NULL, NULL) != 0 ||
	    (w->arena = sp_arena_new()) == NULL) {
		if (w->aio != NULL) {
			nng_aio_free(w->aio);
		}
		free(w);
		pthread_mutex_unlock(&rs->mu);
		util_log("cannot add a worker");
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, RPC_WORKER_STACK);
	atomic_fetch_add(&rs->idle, 1);
	if (pthread_create(&w->thread, &attr, rpc_worker_main, w) != 0) {
		atomic_fetch_sub(&rs->idle, 1);
		nng_ctx_close(w->ctx);
		nng_aio_free(w->aio);
		sp_arena_free(w->arena);
		free(w);
	} else {
		rs->workers[rs->nworkers++] = w;
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&rs->mu);
}

int
rpc_server_start(rpc_server **out, server *srv, const char *url, const sp_service *const *services,
    char *bound, size_t boundlen, char *err, size_t errlen)
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
	pthread_mutex_init(&rs->mu, NULL);
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
	for (int i = 0; i < RPC_WORKERS_START; i++) {
		rpc_worker_add(rs);
	}
	*out = rs;
	return (0);
}

void
rpc_server_close(rpc_server *rs)
{
	atomic_store(&rs->closing, true);
	nng_close(rs->sock);
}

void
rpc_server_free(rpc_server *rs)
{
	pthread_mutex_lock(&rs->mu);
	size_t n = rs->nworkers;
	pthread_mutex_unlock(&rs->mu);
	for (size_t i = 0; i < n; i++) {
		rpc_worker *w = rs->workers[i];
		pthread_join(w->thread, NULL);
		nng_aio_free(w->aio);
		sp_arena_free(w->arena);
		free(w);
	}
	dedup_free(rs->dedup);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}
