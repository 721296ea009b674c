/*
 * A process's event stream and its end. Backends call supervisor_output
 * and supervisor_ended on the loop thread; the start path and Resize emit
 * their events from the caller's thread. p->emit_mu puts them all in one
 * order, and every sink sees the same order.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/util.h"
#include "events/feed.h"
#include "proc/proc.h"

void supervisor_output(
    supervisor *s, proc *p, sandproc_v1_Stream stream, const uint8_t *data, size_t len, uint64_t stored_seq);
void supervisor_ended(supervisor *s, proc *p, const child_exit *e);

void
sup_emit_record(supervisor *s, proc *p, event_kind kind)
{
	sandproc_v1_Process snap;
	event ev = { .kind = kind, .id = p->id, .rec = &snap };

	/* A snapshot: handlers may change stdin_open or the size meanwhile. */
	pthread_mutex_lock(&s->mu);
	snap = p->rec;
	pthread_mutex_unlock(&s->mu);
	sinks_emit(p->sinks, &ev);
}

/* Wakes and unlinks every waiter of l, dropping the reference each held (caller holds s->mu). */
static void
sup_wake_list(proc *p, waitlist *l)
{
	waiter *w;

	while ((w = waitlist_first(l)) != NULL) {
		waitlist_remove(l, w);
		w->wake(w);
		proc_unref(p);
	}
}

void
supervisor_output(
    supervisor *s, proc *p, sandproc_v1_Stream stream, const uint8_t *data, size_t len, uint64_t stored_seq)
{
	event ev = {
		.kind = EV_OUTPUT,
		.id = p->id,
		.stream = stream,
		.ts_ms = util_now_ms(),
		.data = data,
		.len = len,
		.stored = stored_seq != 0,
	};

	pthread_mutex_lock(&p->emit_mu);
	ev.seq = stored_seq != 0 ? stored_seq : p->seq + 1;
	p->seq = ev.seq;
	sinks_emit(p->sinks, &ev);
	pthread_mutex_unlock(&p->emit_mu);
	pthread_mutex_lock(&s->mu);
	p->seen_seq = ev.seq;
	sup_wake_list(p, &p->output_waiters);
	sup_activity(s, SUP_OUTPUT);
	pthread_mutex_unlock(&s->mu);
}

void
supervisor_skip_to(supervisor *s, proc *p, uint64_t seq)
{
	pthread_mutex_lock(&p->emit_mu);
	if (seq > p->seq) {
		p->seq = seq;
	}
	pthread_mutex_unlock(&p->emit_mu);
	pthread_mutex_lock(&s->mu);
	p->seen_seq = seq > p->seen_seq ? seq : p->seen_seq;
	pthread_mutex_unlock(&s->mu);
}

void
sup_final_record(proc *p, const child_exit *e)
{
	sandproc_v1_Process *r = &p->rec;
	int st = e->wstatus;
	size_t n;

	r->exited_at_ms = e->at_ms != 0 ? e->at_ms : util_now_ms();
	r->stdin_open = false;
	r->error[0] = '\0';
	if (!e->known) {
		/* Not our child (or never seen to exit): its status cannot be read. */
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = p->stop_requested ? p->stop_signal : 0;
		snprintf(r->error, sizeof(r->error), "%s",
		    p->stop_requested    ? p->stop_reason
		        : e->why != NULL ? e->why
		                         : "exit status unknown: re-attached after a server restart");
	} else if (WIFSIGNALED(st)) {
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = WTERMSIG(st);
		if (p->stop_requested) {
			snprintf(r->error, sizeof(r->error), "%s", p->stop_reason);
		}
	} else if (p->stop_requested) {
		/* It handled the signal and exited: still ended by Stop/Kill/timeout. */
		r->state = sandproc_v1_State_STATE_KILLED;
		r->exit_code = -1;
		r->signal = p->stop_signal;
		snprintf(
		    r->error, sizeof(r->error), "%s (exited with code %d)", p->stop_reason, WEXITSTATUS(st));
	} else {
		r->state = sandproc_v1_State_STATE_EXITED;
		r->exit_code = WEXITSTATUS(st);
		r->signal = 0;
	}
	if (p->place_ops != NULL && e->known) {
		char why[sizeof(r->error)];
		p->place_ops->ended(p->place_ctx, st, why, sizeof(why));
		if (why[0] != '\0') {
			snprintf(r->error, sizeof(r->error), "%s", why);
		}
	}
	if (p->losses.bytes > 0) {
		n = strlen(r->error);
		snprintf(r->error + n, sizeof(r->error) - n, "%s%llu output bytes not stored: %s",
		    n > 0 ? "; " : "", (unsigned long long)p->losses.bytes, errors_text(p->losses.err));
	}
}

void
supervisor_ended(supervisor *s, proc *p, const child_exit *e)
{
	pthread_mutex_lock(&s->mu);
	p->refs++; /* the table's may go as soon as the store has the record */
	if (e->lost > 0) {
		/* What a backend that stores output itself could not store. */
		p->losses.err = p->losses.bytes == 0 ? e->lost_errno : p->losses.err;
		p->losses.bytes += e->lost;
	}
	sup_final_record(p, e);
	p->stdin_open = false;
	pthread_mutex_unlock(&s->mu);

	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		close(p->in_fd);
		p->in_fd = -1;
	}
	pthread_mutex_unlock(&p->io_mu);

	pthread_mutex_lock(&p->emit_mu);
	sup_emit_record(s, p, EV_EXITED);
	pthread_mutex_unlock(&p->emit_mu);

	s->be->ops->release(s->be, p);
	pthread_mutex_lock(&s->mu);
	p->phase = PHASE_ENDED;
	loop_cancel(s->lp, &p->kill_timer);
	loop_cancel(s->lp, &p->timeout_timer);
	p->kill_armed = p->timeout_armed = false;
	s->live--;
	s->active--;
	sup_wake_list(p, &p->end_waiters);
	sup_wake_list(p, &p->output_waiters);
	sup_activity(s, SUP_ENDED);
	if (p->stored) {
		sup_table_remove(s, p);
		proc_unref(p);
	}
	if (s->stopping && s->live == 0) {
		pthread_cond_broadcast(&s->drained);
	}
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
}

void
sup_stored(void *arg)
{
	proc *p = arg;
	supervisor *s = p->s;

	/* A backend that keeps the status (a holder) may let go of it now. */
	if (s->be->ops->stored != NULL) {
		s->be->ops->stored(s->be, p);
	}
	pthread_mutex_lock(&s->mu);
	p->stored = true;
	if (p->phase == PHASE_ENDED) {
		sup_table_remove(s, p);
		proc_unref(p);
	}
	pthread_mutex_unlock(&s->mu);
}

/* The terminal's replies (cursor reports ...) go back to the PTY. */
static void
sup_screen_reply(void *arg, const char *data, size_t len)
{
	proc *p = arg;

	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		ssize_t n = write(p->in_fd, data, len);
		(void)n; /* a reply the PTY cannot take now is dropped */
	}
	pthread_mutex_unlock(&p->io_mu);
}

int
sup_make_sinks(supervisor *s, proc *p, bool log_output, uint64_t *last_seq)
{
	sink *k[4];
	int n = 0, rv;

	*last_seq = 0;
	/* The log first: a follower that sees an entry on the feed finds it in the log. */
	if (log_output &&
	    (rv = log_sink_new(&k[n++], s->cfg.log_dir, p->id, s->cfg.cfg, &p->losses, last_seq)) != 0) {
		return (rv);
	}
	if (p->tty) {
		if (screen_new(&p->scr, (uint16_t)p->rec.cols, (uint16_t)p->rec.rows, sup_screen_reply, p) !=
		    0) {
			p->scr = NULL;
			util_log("%s: no screen (libtsm failed); Screen will be unavailable", p->id);
		} else if ((rv = screen_sink_new(&k[n++], p->scr)) != 0) {
			n--;
			goto fail;
		}
	}
	if ((rv = feed_sink_new(&k[n++], s->cfg.pub, p->id, p->tty)) != 0 ||
	    (rv = store_sink_new(&k[n++], s->cfg.sq, &p->origin, sup_stored, p)) != 0) {
		n--;
		goto fail;
	}
	for (int i = n - 1; i >= 0; i--) {
		k[i]->next = p->sinks;
		p->sinks = k[i];
	}
	return (0);
fail:
	while (n > 0) {
		n--;
		k[n]->free(k[n]);
	}
	return (rv);
}
