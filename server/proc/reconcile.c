/*
 * At start: records left "running" by an earlier server. The backend takes
 * back a process it can still reach (a holder's, with its stdin, terminal
 * and log; a direct child, by pid alone); the rest are marked ended with
 * what is known of their end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "output/logread.h"
#include "proc/proc.h"

/* A TTY's screen, rebuilt from its log up to p->seq (replies off: the program asked for them long ago). */
static void
sup_replay_screen(supervisor *s, proc *p)
{
	sandproc_v1_LogsReply *page = malloc(sizeof(*page));
	uint64_t after = 0;

	if (page == NULL || p->scr == NULL) {
		free(page);
		return;
	}
	screen_set_replies(p->scr, false);
	while (after < p->seq) {
		sp_arena *a = sp_arena_new();
		logfile_query q = { .after_seq = after, .max_bytes = 4u << 20, .max_entries = 4096 };
		if (a == NULL || logfile_read(s->cfg.log_dir, p->id, &q, page, a) != 0 ||
		    page->entries_count == 0) {
			sp_arena_free(a);
			break;
		}
		for (pb_size_t i = 0; i < page->entries_count && page->entries[i].sequence <= p->seq; i++) {
			const sandproc_v1_LogEntry *e = &page->entries[i];
			screen_feed(p->scr, e->data.data, e->data.len, e->sequence);
			after = e->sequence;
		}
		if (page->entries[page->entries_count - 1].sequence <= after && !page->has_more) {
			sp_arena_free(a);
			break;
		}
		sp_arena_free(a);
	}
	screen_set_replies(p->scr, true);
	free(page);
}

/* p was taken back by the backend: into the table, with its stream, timeout and watch. */
static bool
sup_adopt(supervisor *s, proc *p)
{
	bool stores = s->be->ops->stores_output;
	uint64_t last_seq = 0;

	p->reattached = true;
	if (!stores) {
		/* Only the pid is known: what it writes and reads goes nowhere now. */
		p->rec.stdin_open = false;
		snprintf(p->rec.error, sizeof(p->rec.error),
		    "re-attached after a server restart: output and input since then are not connected");
	}
	if (sup_make_sinks(s, p, !stores, &last_seq) != 0) {
		return (false);
	}
	p->seq = p->seen_seq = stores ? p->seq : last_seq;
	if (p->tty) {
		sup_replay_screen(s, p);
	}
	p->stdin_open = p->rec.stdin_open = p->in_fd >= 0;
	p->rec.pid = p->pid;
	if (store_update_process(s->cfg.st, &p->rec, &p->origin) != 0) {
		util_log("%s: cannot store its record: %s", p->id, store_errmsg());
	}
	pthread_mutex_lock(&s->mu);
	p->refs = 2; /* the table's, and ours while watch runs (see supervisor_start) */
	sup_table_add(s, p);
	s->live++;
	s->active++;
	sup_arm_timeout(s, p);
	pthread_mutex_unlock(&s->mu);
	util_log("%s: re-attached (pid %d)", p->id, (int)p->pid);
	s->be->ops->watch(s->be, p);
	pthread_mutex_lock(&s->mu);
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
	return (true);
}

/* A process that is gone: its record ends with what is known. */
static void
sup_record_gone(supervisor *s, const sandproc_v1_Process *rec, const store_origin *o, const child_exit *gone)
{
	proc *p;

	if (gone->left_running) {
		sandproc_v1_Process r = *rec;
		snprintf(r.error, sizeof(r.error), "%s", gone->why);
		r.stdin_open = false;
		if (store_update_process(s->cfg.st, &r, o) != 0) {
			util_log("%s: cannot store its record: %s", r.id, store_errmsg());
		}
		util_log("%s: %s", r.id, gone->why);
		return;
	}
	p = proc_new();
	if (p == NULL || sup_copy_record(&p->rec, rec, p->arena) != 0) {
		if (p != NULL) {
			proc_free(p);
		}
		util_log("%s: out of memory", rec->id);
		return;
	}
	memcpy(p->id, rec->id, sizeof(p->id));
	if (gone->lost > 0) {
		p->losses.bytes = gone->lost;
		p->losses.err = gone->lost_errno;
	}
	child_exit e = *gone;
	if (!e.known && e.why == NULL) {
		e.why = "exit status unknown: it ended while the server was down";
	}
	if (!e.known && e.at_ms == 0) {
		e.at_ms = util_now_ms();
	}
	sup_final_record(p, &e);
	if (store_update_process(s->cfg.st, &p->rec, o) != 0) {
		util_log("%s: cannot store its record: %s", p->id, store_errmsg());
	} else if (s->be->ops->forget != NULL) {
		s->be->ops->forget(s->be, p->id);
	}
	util_log("%s: ended while the server was down (%s)", p->id,
	    p->rec.error[0] != '\0' ? p->rec.error : "exit status kept by its holder");
	proc_free(p);
}

static void
sup_reconcile_one(void *arg, const sandproc_v1_Process *rec, const store_origin *o)
{
	supervisor *s = arg;
	child_exit gone = { 0 };
	proc *p = proc_new();

	if (p != NULL && sup_copy_record(&p->rec, rec, p->arena) == 0) {
		p->s = s;
		memcpy(p->id, rec->id, sizeof(p->id));
		p->tty = rec->tty;
		if (s->be->ops->reattach(s->be, p, o, &gone)) {
			if (sup_adopt(s, p)) {
				return;
			}
			util_log("%s: out of memory: left running, unmanaged", p->id);
			if (s->be->ops->detach != NULL) {
				s->be->ops->detach(s->be, p);
			} else {
				s->be->ops->release(s->be, p);
			}
			proc_free(p);
			return;
		}
	}
	if (p != NULL) {
		proc_free(p);
	}
	sup_record_gone(s, rec, o, &gone);
}

void
supervisor_reconcile(supervisor *s)
{
	if (store_for_each_running(s->cfg.st, sup_reconcile_one, s) != 0) {
		util_log("reconcile: %s", store_errmsg());
	}
}
