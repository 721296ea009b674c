/*
 * At start: records left "running" by an earlier server. The backend takes
 * back a process it can still reach; the rest are marked ended with what is
 * known of their end.
 */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "proc/proc.h"

static void
sup_reconcile_one(void *arg, const sandproc_v1_Process *rec, const store_origin *o)
{
	supervisor *s = arg;
	child_exit gone;
	uint64_t last_seq = 0;
	proc *p = proc_new();

	if (p != NULL && sup_copy_record(&p->rec, rec, p->arena) == 0) {
		p->s = s;
		memcpy(p->id, rec->id, sizeof(p->id));
		p->tty = rec->tty;
		if (s->be->ops->reattach(s->be, p, o, &gone)) {
			p->rec.stdin_open = false;
			snprintf(p->rec.error, sizeof(p->rec.error),
			    "re-attached after a server restart: output and input since then are not "
			    "connected");
			if (store_update_process(s->cfg.st, &p->rec, &p->origin) != 0) {
				util_log("%s: cannot store its record: %s", p->id, store_errmsg());
			}
			if (sup_make_sinks(s, p, true, &last_seq) == 0) {
				p->seq = p->seen_seq = last_seq;
				pthread_mutex_lock(&s->mu);
				p->refs = 1;
				sup_table_add(s, p);
				s->live++;
				s->active++;
				pthread_mutex_unlock(&s->mu);
				s->be->ops->watch(s->be, p);
				util_log("%s: re-attached (pid %d still running)", p->id, (int)p->pid);
				return;
			}
			s->be->ops->release(s->be, p);
		}
	}
	if (p != NULL) {
		proc_free(p);
	}
	sandproc_v1_Process e = *rec;
	e.state = sandproc_v1_State_STATE_KILLED;
	e.exit_code = -1;
	e.signal = 0;
	e.exited_at_ms = util_now_ms();
	e.stdin_open = false;
	snprintf(e.error, sizeof(e.error), "exit status unknown: it ended while the server was down");
	if (store_update_process(s->cfg.st, &e, o) != 0) {
		util_log("%s: cannot store its record: %s", e.id, store_errmsg());
	}
	util_log("%s: was running when the server stopped and is gone; marked ended", e.id);
}

void
supervisor_reconcile(supervisor *s)
{
	if (store_for_each_running(s->cfg.st, sup_reconcile_one, s) != 0) {
		util_log("reconcile: %s", store_errmsg());
	}
}
