/*
 * Starting a managed process, with its rollback: a start either ends with
 * the process running, recorded and watched, or with a "failed" record (or,
 * when even that cannot be stored, an error) and nothing left behind.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "base/ids.h"
#include "base/util.h"
#include "events/feed.h"
#include "output/logfile.h"
#include "proc/proc.h"
#include "proc/request.h"

/* Stores p as failed with msg and publishes it; returns code with "<id>: msg" in err. */
static int
sup_fail_start(supervisor *s, proc *p, int code, const char *msg, char *err, size_t errlen)
{
	sandproc_v1_Process *r = &p->rec;

	r->state = sandproc_v1_State_STATE_FAILED;
	/* As a shell would answer: 127 not found, 126 found but not runnable. */
	r->exit_code = code == SP_NOT_FOUND                                  ? 127
	    : code == SP_PERMISSION_DENIED || code == SP_FAILED_PRECONDITION ? 126
	                                                                     : -1;
	r->exited_at_ms = r->started_at_ms;
	r->pid = 0;
	r->stdin_open = false;
	snprintf(r->error, sizeof(r->error), "%.*s", (int)sizeof(r->error) - 1, msg);
	if (store_insert_process(s->cfg.st, r, NULL) != 0) {
		util_log("%s: cannot store its failed record: %s", p->id, store_errmsg());
	}
	feed_process(s->cfg.pub, "failed", r);
	snprintf(err, errlen, "%s: %s", p->id, msg);
	return (code);
}

/* The record a plan describes, before its child exists. */
static int
sup_new_record(proc *p, const start_plan *plan)
{
	const sandproc_v1_StartRequest *req = plan->req;
	sandproc_v1_Process *r = &p->rec, given;

	memset(&given, 0, sizeof(given));
	given.argv = req->argv;
	given.env = req->env;
	given.labels = req->labels;
	given.cwd = plan->spec.cwd; /* resolved: against the workdir, or inside a sandbox */
	given.name = req->name;
	if (sup_copy_record(r, &given, p->arena) != 0) {
		return (ENOMEM);
	}
	ids_new(p->id, IDS_PROC);
	memcpy(r->id, p->id, sizeof(r->id));
	snprintf(
	    r->sandbox_id, sizeof(r->sandbox_id), "%s", req->sandbox_id[0] ? req->sandbox_id : "default");
	snprintf(r->tenant, sizeof(r->tenant), "%s", plan->tenant[0] ? plan->tenant : "default");
	r->tty = p->tty = req->tty;
	r->cols = plan->cols;
	r->rows = plan->rows;
	r->timeout_s = req->timeout_s;
	r->started_at_ms = util_now_ms();
	return (0);
}

/* Two records name the same running process of one sandbox. */
static bool
sup_same_name(const proc *a, const proc *b)
{
	return (a->rec.name != NULL && b->rec.name != NULL && strcmp(a->rec.name, b->rec.name) == 0 &&
	    strcmp(a->rec.sandbox_id, b->rec.sandbox_id) == 0);
}

/*
 * Claims p's name among the running (and starting) processes of its
 * sandbox; false, with the holder's id in other, when one has it.
 */
static bool
sup_claim_name(supervisor *s, proc *p, char *other, size_t len)
{
	bool ok = true;

	pthread_mutex_lock(&s->mu);
	for (size_t b = 0; b < s->buckets && ok; b++) {
		for (const proc *q = s->table[b]; q != NULL && ok; q = q->hnext) {
			if (q->phase == PHASE_RUNNING && sup_same_name(p, q)) {
				snprintf(other, len, "%s", q->id);
				ok = false;
			}
		}
	}
	for (dnode *n = s->claims.head; n != NULL && ok; n = n->next) {
		const proc *q = containerof(n, proc, claim);
		if (sup_same_name(p, q)) {
			snprintf(other, len, "%s (starting)", q->id);
			ok = false;
		}
	}
	if (ok) {
		dlist_push(&s->claims, &p->claim);
	}
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

/* A start that will not be: its name goes back, then p. */
static void
sup_start_free(supervisor *s, proc *p)
{
	pthread_mutex_lock(&s->mu);
	dlist_remove(&s->claims, &p->claim);
	pthread_mutex_unlock(&s->mu);
	proc_free(p);
}

int
supervisor_start(supervisor *s, const start_plan *plan, sandproc_v1_Process *out, sp_arena *arena, char *err,
    size_t errlen)
{
	char msg[512];
	uint32_t active, max;
	uint64_t last_seq = 0;
	int code, rv;
	proc *p;

	const spawn_place *pl = plan->spec.place;
	if ((p = proc_new()) == NULL || sup_new_record(p, plan) != 0) {
		if (p != NULL) {
			proc_free(p);
		}
		if (pl != NULL && pl->ops != NULL) {
			pl->ops->release(pl->ctx);
		}
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	p->s = s;
	/* From here p owns the place's state: released with p. */
	if (pl != NULL) {
		p->place_ops = pl->ops;
		p->place_ctx = pl->ctx;
	}
	/* A name is unique among the running processes of a sandbox. */
	char other[64];
	if (p->rec.name != NULL && p->rec.name[0] != '\0' && !sup_claim_name(s, p, other, sizeof(other))) {
		snprintf(err, errlen, "a running process of sandbox %s is named \"%s\" already: %s",
		    p->rec.sandbox_id, p->rec.name, other);
		proc_free(p);
		return (SP_ALREADY_EXISTS);
	}
	if (!supervisor_reserve(s, &active, &max)) {
		snprintf(msg, sizeof(msg),
		    "limit reached: %u processes running (max_concurrent_processes is %u)", active, max);
		code = sup_fail_start(s, p, SP_RESOURCE_EXHAUSTED, msg, err, errlen);
		sup_start_free(s, p);
		return (code);
	}
	if ((code = s->be->ops->start(s->be, p, &plan->spec, msg, sizeof(msg))) != SP_OK) {
		supervisor_release(s);
		code = sup_fail_start(s, p, code, msg, err, errlen);
		sup_start_free(s, p);
		return (code);
	}
	/* From here the child runs: every failure kills it (abandon) before saying so. */
	bool stores = s->be->ops->stores_output;
	if ((rv = sup_make_sinks(s, p, !stores, &last_seq)) != 0) {
		s->be->ops->abandon(s->be, p);
		logfile_remove(s->cfg.log_dir, p->id);
		supervisor_release(s);
		snprintf(msg, sizeof(msg), "log file: %s", errors_text(rv));
		code = sup_fail_start(s, p, errors_status(rv), msg, err, errlen);
		sup_start_free(s, p);
		return (code);
	}
	/* A backend that stores output itself said where its log stands. */
	p->seq = p->seen_seq = stores ? p->seq : last_seq;
	p->stdin_open = p->in_fd >= 0;
	p->rec.pid = p->pid;
	p->rec.state = sandproc_v1_State_STATE_RUNNING;
	p->rec.stdin_open = p->stdin_open;
	if ((rv = store_insert_process(s->cfg.st, &p->rec, &p->origin)) != 0) {
		snprintf(err, errlen, "%s: cannot store the record, so the process was killed: %s", p->id,
		    store_errmsg());
		s->be->ops->abandon(s->be, p);
		logfile_remove(s->cfg.log_dir, p->id);
		supervisor_release(s);
		sup_start_free(s, p);
		return (errors_status(rv));
	}
	if (sup_copy_record(out, &p->rec, arena) != 0) {
		memset(out, 0, sizeof(*out));
	}

	pthread_mutex_lock(&s->mu);
	/*
	 * The table's reference, and this call's until the backend watches
	 * the child: once its first fd is in the loop the child may end, be
	 * stored and leave the table while watch still reads its state (TSan
	 * saw that free in CI).
	 */
	p->refs = 2;
	dlist_remove(&s->claims, &p->claim);
	sup_table_add(s, p);
	s->live++;
	sup_arm_timeout(s, p);
	sup_activity(s, SUP_STARTED);
	pthread_mutex_unlock(&s->mu);
	/* Started goes out before anything the child does can: the backend watches it only now. */
	pthread_mutex_lock(&p->emit_mu);
	sup_emit_record(s, p, EV_STARTED);
	pthread_mutex_unlock(&p->emit_mu);
	s->be->ops->watch(s->be, p);
	pthread_mutex_lock(&s->mu);
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
	return (SP_OK);
}
