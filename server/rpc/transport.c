/*
 * The REP socket and its contexts. Each nng context runs a small state
 * machine in its aio callback: receive -> hand the request to dispatch.c
 * (which answers inline, or holds the context while a worker or a parked
 * call finishes it) -> send -> receive. Contexts are added while all but a
 * few are held, so receiving never stops; one REP socket can listen on
 * several URLs (tcp, ipc, ws ...).
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "rpc/internal.h"

#define RPC_RECEIVING_MIN 8    /* contexts kept waiting for requests */
#define RPC_CONTEXTS_MAX 16384 /* contexts in all, receiving or held by a call */
#define RPC_DEDUP_ENTRIES 4096
#define RPC_DEDUP_BYTES (32u * 1024 * 1024)
#define RPC_DEDUP_REPLY_MAX (4u * 1024 * 1024)
#define RPC_DEDUP_TTL_MS (10 * 60 * 1000)

uint32_t
transport_pipe(const nng_msg *m)
{
	nng_pipe p = nng_msg_get_pipe(m);
	int id = nng_pipe_id(p);
	return (id > 0 ? (uint32_t)id : 0);
}

static void
transport_listen_ctx(rpc_ctx *x)
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

void
transport_reply(rpc_ctx *x, nng_msg *reply)
{
	rpc_server *rs = x->rs;

	if (reply == NULL) {
		/* Nothing to send (dropped, or nothing could be encoded): the client's own timeout tells it.
		 */
		transport_listen_ctx(x);
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

static void transport_cb(void *arg);

/* Adds a context that starts receiving; false at the limit. */
static bool
transport_add_ctx(rpc_server *rs)
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
	if (nng_ctx_open(&x->ctx, rs->sock) != 0) {
		free(x);
		pthread_mutex_unlock(&rs->mu);
		pthread_rwlock_unlock(&rs->gate);
		return (false);
	}
	if (nng_aio_alloc(&x->aio, transport_cb, x) != 0 || (x->arena = sp_arena_new()) == NULL) {
		if (x->aio != NULL) {
			nng_aio_free(x->aio);
		}
		nng_ctx_close(x->ctx);
		free(x);
		pthread_mutex_unlock(&rs->mu);
		pthread_rwlock_unlock(&rs->gate);
		return (false);
	}
	rs->contexts[rs->ncontexts++] = x;
	pthread_mutex_unlock(&rs->mu);
	pthread_rwlock_unlock(&rs->gate);
	transport_listen_ctx(x);
	return (true);
}

void
transport_hold(rpc_server *rs)
{
	if (atomic_load(&rs->receiving) < RPC_RECEIVING_MIN) {
		transport_add_ctx(rs);
	}
}

static void
transport_cb(void *arg)
{
	rpc_ctx *x = arg;
	rpc_server *rs = x->rs;
	int rv = nng_aio_result(x->aio);

	if (x->state == CTX_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(x->aio));
		}
		transport_listen_ctx(x);
		return;
	}
	atomic_fetch_sub(&rs->receiving, 1);
	if (rv != 0) {
		if (rv != NNG_ECLOSED) {
			transport_listen_ctx(x);
		}
		return;
	}
	x->state = CTX_HELD;
	dispatch_request(rs, x, nng_aio_get_msg(x->aio));
}

int
rpc_server_new(rpc_server **out, const rpc_config *cfg, char *err, size_t errlen)
{
	rpc_server *rs = calloc(1, sizeof(*rs));
	int rv;

	if (rs == NULL || (rs->contexts = calloc(RPC_CONTEXTS_MAX, sizeof(*rs->contexts))) == NULL ||
	    (rs->dedup = dedup_new(
	         RPC_DEDUP_ENTRIES, RPC_DEDUP_BYTES, RPC_DEDUP_REPLY_MAX, RPC_DEDUP_TTL_MS)) == NULL) {
		if (rs != NULL) {
			free(rs->contexts);
		}
		free(rs);
		snprintf(err, errlen, "out of memory");
		return (NNG_ENOMEM);
	}
	rs->cfg = *cfg;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->idle, NULL);
	pthread_rwlock_init(&rs->gate, NULL);
	if ((rv = nng_rep0_open(&rs->sock)) != 0) {
		snprintf(err, errlen, "nng_rep0_open: %s", nng_strerror(rv));
		dedup_free(rs->dedup);
		free(rs->contexts);
		free(rs);
		return (rv);
	}
	/* nng 1.x accepts any size by default: a peer could make us allocate anything. */
	nng_socket_set_size(rs->sock, NNG_OPT_RECVMAXSZ, cfg->max_request_bytes);
	for (int i = 0; i < RPC_RECEIVING_MIN; i++) {
		transport_add_ctx(rs);
	}
	*out = rs;
	return (0);
}

int
rpc_server_listen(rpc_server *rs, const char *url, char *bound, size_t boundlen, char *err, size_t errlen)
{
	int rv;

	if ((rv = util_listen(rs->sock, url, rs->cfg.tls, 0, bound, boundlen)) != 0) {
		snprintf(err, errlen, "listen %s: %s", url, nng_strerror(rv));
		return (rv);
	}
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
	dispatch_drop_parked(rs);
}

void
rpc_server_free(rpc_server *rs)
{
	/* Calls on workers finish (their replies are dropped) before their contexts go. */
	pthread_mutex_lock(&rs->mu);
	while (atomic_load(&rs->inflight) > 0) {
		pthread_cond_wait(&rs->idle, &rs->mu);
	}
	pthread_mutex_unlock(&rs->mu);
	for (size_t i = 0; i < rs->ncontexts; i++) {
		rpc_ctx *x = rs->contexts[i];
		nng_aio_free(x->aio);
		sp_arena_free(x->arena);
		free(x);
	}
	free(rs->contexts);
	dedup_free(rs->dedup);
	pthread_rwlock_destroy(&rs->gate);
	pthread_cond_destroy(&rs->idle);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}
