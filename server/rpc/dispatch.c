/*
 * One call's life: envelope, method, replay cache, body, handler, reply.
 *
 * A handler either answers or parks (rpc/call.h). A parked call's state
 * moves once from PARKED to WOKEN (a waiter's event) or TIMED_OUT (its
 * timer), whichever comes first; the winner queues the resume on a worker.
 * An event or timeout that arrives while the handler itself still runs is
 * noted in the same state (RUN -> WOKEN/TIMED_OUT), and the call resumes as
 * soon as the handler has parked it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "rpc/internal.h"

enum { ST_RUN, ST_PARKED, ST_WOKEN, ST_TIMED_OUT, ST_DROPPED };

#define RPC_CALLER_CONNECTION (1ull << 63)

int
sp_call_error(sp_call *call, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call->message, sizeof(call->message), fmt, ap);
	va_end(ap);
	return (code);
}

static rpc_inflight *
dispatch_of(sp_call *call)
{
	return ((rpc_inflight *)call);
}

static nng_msg *
dispatch_error_reply(uint64_t request_id, int code, const char *message)
{
	nng_msg *m = NULL;

	if (sp_reply_encode(&m, request_id, code, message, NULL, NULL, NULL) != SP_OK) {
		return (NULL);
	}
	return (m);
}

static void dispatch_detach_all(rpc_inflight *f);

/* Ends the call with reply (consumed; NULL sends nothing) and gives the context back. */
static void
dispatch_end(rpc_inflight *f, nng_msg *reply)
{
	rpc_server *rs = f->rs;
	rpc_ctx *x = f->x;

	/* A waiter the handler linked but did not park on must not wake a later call. */
	dispatch_detach_all(f);
	if (f->replayable) {
		dedup_finish(rs->dedup, &f->key, reply);
		f->replayable = false;
	}
	if (f->call.cleanup != NULL) {
		f->call.cleanup(f->call.cleanup_arg);
		f->call.cleanup = NULL;
	}
	free(f->req);
	free(f->rep);
	f->req = f->rep = NULL;
	if (f->msg != NULL) {
		nng_msg_free(f->msg);
		f->msg = NULL;
	}
	sp_arena_reset(x->arena);
	transport_reply(x, reply);
	/* x may serve another call from here on; only rs is touched. */
	pthread_mutex_lock(&rs->mu);
	atomic_fetch_sub(&rs->inflight, 1);
	pthread_cond_broadcast(&rs->idle);
	pthread_mutex_unlock(&rs->mu);
}

/* Encodes the handler's result and ends the call. */
static void
dispatch_answer(rpc_inflight *f, int code)
{
	const sp_method *m = f->m;
	sp_call *call = &f->call;
	const char *err = "";
	nng_msg *reply = NULL;
	int rc;

	if (code == SP_UNIMPLEMENTED && call->message[0] == '\0') {
		sp_call_error(call, code, "%s is not implemented", m->name);
	}
	rc = sp_reply_encode(&reply, f->env.request_id, code,
	    code == SP_OK ? NULL : (call->message[0] ? call->message : sp_status_message(code)),
	    code == SP_OK ? m->response->fields : NULL, f->rep, &err);
	if (rc != SP_OK) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: cannot encode the reply: %s", m->name, err);
		reply = dispatch_error_reply(f->env.request_id, rc, msg);
	}
	dispatch_end(f, reply);
}

static void dispatch_park_commit(rpc_inflight *f);

/* A handler or resume returned code: answer, or park. */
static void
dispatch_settle(rpc_inflight *f, int code)
{
	if (code == SP_PARKED) {
		dispatch_park_commit(f);
	} else {
		dispatch_answer(f, code);
	}
}

/* Carries out a decoded request on this thread. */
static void
dispatch_run(rpc_inflight *f)
{
	rpc_server *rs = f->rs;
	const sp_method *m = f->m;
	const char *err = "";
	char why[256];
	nng_msg *replay = NULL;

	if (f->replayable) {
		switch (dedup_begin(rs->dedup, &f->key, &replay, why, sizeof(why))) {
		case DEDUP_NEW:
			break;
		case DEDUP_REPLAY:
			f->replayable = false;
			dispatch_end(f, replay);
			return;
		case DEDUP_MISMATCH:
			f->replayable = false;
			dispatch_end(f, dispatch_error_reply(f->env.request_id, SP_INVALID_ARGUMENT, why));
			return;
		case DEDUP_TOO_BIG:
			f->replayable = false;
			dispatch_end(f, dispatch_error_reply(f->env.request_id, SP_FAILED_PRECONDITION, why));
			return;
		}
	}
	if ((f->req = calloc(1, m->request->size)) == NULL ||
	    (f->rep = calloc(1, m->response->size)) == NULL) {
		dispatch_answer(f, sp_call_error(&f->call, SP_RESOURCE_EXHAUSTED, "out of memory"));
		return;
	}
	if (!sp_pb_decode(m->request->fields, f->req, m->request->size, f->env.body.data, f->env.body.len,
	        f->x->arena, &err)) {
		dispatch_answer(f,
		    sp_call_error(&f->call, SP_INVALID_ARGUMENT, "malformed %s request: %s", m->name, err));
		return;
	}
	atomic_store(&f->state, ST_RUN);
	dispatch_settle(f, f->handler(&f->call, f->req, f->rep));
}

static void
dispatch_job(workq_job *job)
{
	dispatch_run(containerof(job, rpc_inflight, job));
}

static bool
dispatch_is_inline(const rpc_server *rs, const sp_method *m)
{
	for (const sp_method *const *p = rs->cfg.inline_methods; p != NULL && *p != NULL; p++) {
		if (*p == m) {
			return (true);
		}
	}
	return (false);
}

/* The method and its handler, or NULL. */
static const sp_method *
dispatch_find(const rpc_server *rs, const char *name, sp_handler *handler)
{
	for (const sp_server_service *const *s = rs->cfg.services; *s != NULL; s++) {
		const sp_method *m = sp_service_method((*s)->service, name);
		if (m != NULL) {
			*handler = (*s)->handlers[m->id];
			return (m);
		}
	}
	return (NULL);
}

void
dispatch_request(rpc_server *rs, rpc_ctx *x, nng_msg *msg)
{
	rpc_inflight *f = &x->call;
	const char *err = "";
	char text[256];

	atomic_fetch_add(&rs->inflight, 1);
	memset(&f->call, 0, sizeof(f->call));
	f->rs = rs;
	f->x = x;
	f->msg = msg;
	f->req = f->rep = NULL;
	f->replayable = false;
	f->resume = NULL;
	f->timeout_ms = 0;
	memset(f->waiters, 0, sizeof(f->waiters));
	if (sp_request_decode(msg, &f->env, x->arena, &err) != SP_OK) {
		snprintf(text, sizeof(text), "malformed request envelope: %s", err);
		/* The id, if it was read, is echoed so the caller can match the refusal. */
		dispatch_end(f, dispatch_error_reply(f->env.request_id, SP_INVALID_ARGUMENT, text));
		return;
	}
	if ((f->m = dispatch_find(rs, f->env.method, &f->handler)) == NULL) {
		snprintf(text, sizeof(text), "unknown method \"%.96s\"", f->env.method);
		dispatch_end(f, dispatch_error_reply(f->env.request_id, SP_UNIMPLEMENTED, text));
		return;
	}
	f->call.srv = rs->cfg.srv;
	f->call.method = f->m;
	f->call.request_id = f->env.request_id;
	f->call.token = f->env.token;
	f->call.arena = x->arena;
	f->call.role = SP_ROLE_ADMIN;
	snprintf(f->call.tenant, sizeof(f->call.tenant), "default");
	if (rs->cfg.authorize != NULL) {
		int code = rs->cfg.authorize(rs->cfg.authorize_arg, &f->call);
		if (code != SP_OK) {
			dispatch_end(f, dispatch_error_reply(f->env.request_id, code, f->call.message));
			return;
		}
	}
	f->replayable = (f->m->flags & SP_METHOD_IDEMPOTENT) == 0 && f->env.request_id != 0;
	if (f->replayable) {
		f->key = (dedup_key){
			.caller = f->call.caller != 0 ? f->call.caller
			                              : RPC_CALLER_CONNECTION | transport_pipe(msg),
			.request_id = f->env.request_id,
			.method = f->m,
			.body_hash = dedup_hash(f->env.body.data, f->env.body.len),
		};
	}
	if (dispatch_is_inline(rs, f->m)) {
		dispatch_run(f);
		return;
	}
	transport_hold(rs);
	f->job.fn = dispatch_job;
	workq_post(rs->cfg.wq, &f->job);
}

/* --- parking ------------------------------------------------------------------- */

static void dispatch_resume_job(workq_job *job);

/* Moves a RUN or PARKED call to `to`; true if this caller won. Queues the resume when it was parked. */
static bool
dispatch_signal(rpc_inflight *f, int to)
{
	for (;;) {
		int s = atomic_load(&f->state);
		if (s == ST_RUN) {
			if (atomic_compare_exchange_weak(&f->state, &s, to)) {
				return (true); /* noted: the call resumes once it has parked */
			}
		} else if (s == ST_PARKED) {
			if (atomic_compare_exchange_weak(&f->state, &s, to)) {
				f->job.fn = dispatch_resume_job;
				workq_post(f->rs->cfg.wq, &f->job);
				return (true);
			}
		} else {
			return (false);
		}
	}
}

static void
dispatch_wake(waiter *w)
{
	rpc_inflight *f = w->arg;
	dispatch_signal(f, ST_WOKEN);
}

static void
dispatch_timeout(timer *t)
{
	dispatch_signal(containerof(t, rpc_inflight, tm), ST_TIMED_OUT);
}

waiter *
sp_call_waiter(sp_call *call, int i)
{
	rpc_inflight *f = dispatch_of(call);
	waiter *w = &f->waiters[i];

	memset(w, 0, sizeof(*w));
	w->wake = dispatch_wake;
	w->arg = f;
	return (w);
}

int
sp_call_park(sp_call *call, uint32_t timeout_ms, sp_resume_fn resume)
{
	rpc_inflight *f = dispatch_of(call);

	f->resume = resume;
	f->timeout_ms = timeout_ms;
	return (SP_PARKED);
}

static void
dispatch_parked_unlink(rpc_inflight *f)
{
	rpc_server *rs = f->rs;

	pthread_mutex_lock(&rs->mu);
	if (f->parked_node.linked) {
		dlist_remove(&rs->parked_list, &f->parked_node);
		atomic_fetch_sub(&rs->parked, 1);
	}
	pthread_mutex_unlock(&rs->mu);
}

/* Unlinks every waiter the owners still hold (each owner takes its own lock). */
static void
dispatch_detach_all(rpc_inflight *f)
{
	for (int i = 0; i < SP_CALL_WAITERS; i++) {
		waiter *w = &f->waiters[i];
		if (w->detach != NULL) {
			w->detach(w);
			w->detach = NULL;
		}
	}
}

static void
dispatch_park_commit(rpc_inflight *f)
{
	rpc_server *rs = f->rs;
	int expected = ST_RUN;

	pthread_mutex_lock(&rs->mu);
	dlist_push(&rs->parked_list, &f->parked_node);
	atomic_fetch_add(&rs->parked, 1);
	pthread_mutex_unlock(&rs->mu);
	if (f->timeout_ms > 0) {
		f->tm.fn = dispatch_timeout;
		timers_arm(rs->cfg.timers, &f->tm, util_mono_ms() + f->timeout_ms);
	}
	if (!atomic_compare_exchange_strong(&f->state, &expected, ST_PARKED)) {
		/* Woken (or timed out) while the handler ran: resume now. */
		f->job.fn = dispatch_resume_job;
		workq_post(rs->cfg.wq, &f->job);
	}
}

static void
dispatch_resume_job(workq_job *job)
{
	rpc_inflight *f = containerof(job, rpc_inflight, job);
	bool timed_out = atomic_load(&f->state) == ST_TIMED_OUT;

	timers_cancel(f->rs->cfg.timers, &f->tm);
	dispatch_parked_unlink(f);
	dispatch_detach_all(f);
	if (atomic_load(&f->rs->closing)) {
		dispatch_end(f, NULL);
		return;
	}
	atomic_store(&f->state, ST_RUN);
	dispatch_settle(f, f->resume(&f->call, f->req, f->rep, timed_out));
}

size_t
rpc_server_parked(rpc_server *rs)
{
	return (atomic_load(&rs->parked));
}

void
dispatch_drop_parked(rpc_server *rs)
{
	for (;;) {
		rpc_inflight *f = NULL;
		pthread_mutex_lock(&rs->mu);
		if (rs->parked_list.head != NULL) {
			f = containerof(rs->parked_list.head, rpc_inflight, parked_node);
		}
		pthread_mutex_unlock(&rs->mu);
		if (f == NULL) {
			return;
		}
		int expected = ST_PARKED;
		if (atomic_compare_exchange_strong(&f->state, &expected, ST_DROPPED)) {
			timers_cancel(rs->cfg.timers, &f->tm);
			dispatch_parked_unlink(f);
			dispatch_detach_all(f);
			dispatch_end(f, NULL);
		} else {
			/* Its resume is queued: it ends the call itself. Wait for it. */
			pthread_mutex_lock(&rs->mu);
			while (f->parked_node.linked) {
				pthread_cond_wait(&rs->idle, &rs->mu);
			}
			pthread_mutex_unlock(&rs->mu);
		}
	}
}
