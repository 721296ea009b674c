/*
 * The supervisor's table and the calls handlers make on it, from their own
 * threads: look-ups, signals, input, resize, screen, waiting, slots.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/list.h"
#include "base/util.h"
#include "os/procfs.h"
#include "proc/proc.h"
#include "sp_status.h"

#define SUP_INPUT_TIMEOUT_MS 10000
#define SUP_TIMEOUT_GRACE_MS 5000

/* --- records and references ----------------------------------------------------------- */

proc *
proc_new(void)
{
	proc *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		return (NULL);
	}
	if ((p->arena = sp_arena_new()) == NULL) {
		free(p);
		return (NULL);
	}
	pthread_mutex_init(&p->emit_mu, NULL);
	pthread_mutex_init(&p->io_mu, NULL);
	pthread_mutex_init(&p->input_mu, NULL);
	p->in_fd = -1;
	return (p);
}

void
proc_free(proc *p)
{
	if (p->child != NULL) {
		p->s->be->ops->free_child(p->s->be, p);
	}
	if (p->place_ops != NULL) {
		p->place_ops->release(p->place_ctx);
	}
	sinks_free(p->sinks);
	screen_free(p->scr);
	if (p->in_fd >= 0) {
		close(p->in_fd);
	}
	pthread_mutex_destroy(&p->emit_mu);
	pthread_mutex_destroy(&p->io_mu);
	pthread_mutex_destroy(&p->input_mu);
	sp_arena_free(p->arena);
	free(p);
}

void
proc_unref(proc *p)
{
	if (--p->refs == 0) {
		proc_free(p);
	}
}

static size_t
sup_bucket(const supervisor *s, const char *id)
{
	unsigned h = 2166136261u;
	for (; *id != '\0'; id++) {
		h = (h ^ (unsigned char)*id) * 16777619u;
	}
	return (h % s->buckets);
}

proc *
sup_find(supervisor *s, const char *id)
{
	for (proc *p = s->table[sup_bucket(s, id)]; p != NULL; p = p->hnext) {
		if (strcmp(p->id, id) == 0) {
			return (p);
		}
	}
	return (NULL);
}

void
sup_table_add(supervisor *s, proc *p)
{
	size_t b = sup_bucket(s, p->id);
	p->hnext = s->table[b];
	s->table[b] = p;
}

void
sup_table_remove(supervisor *s, proc *p)
{
	proc **pp = &s->table[sup_bucket(s, p->id)];
	while (*pp != NULL && *pp != p) {
		pp = &(*pp)->hnext;
	}
	if (*pp == p) {
		*pp = p->hnext;
	}
	pthread_cond_broadcast(&s->settled);
}

bool
supervisor_await_stored(supervisor *s, const char *id, int64_t timeout_ms)
{
	int64_t deadline = util_mono_ms() + timeout_ms;
	proc *p;

	pthread_mutex_lock(&s->mu);
	while ((p = sup_find(s, id)) != NULL && p->phase == PHASE_ENDED && util_mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->settled, &s->mu, &ts);
	}
	bool done = p == NULL || p->phase != PHASE_ENDED;
	pthread_mutex_unlock(&s->mu);
	return (done);
}

static int
sup_copy_strv(sp_strv_t *dst, const sp_strv_t *src, sp_arena *a)
{
	dst->n = src->n;
	dst->cap = 0;
	if (src->n == 0) {
		dst->v = NULL;
		return (0);
	}
	if ((dst->v = sp_arena_alloc(a, (src->n + 1) * sizeof(char *))) == NULL) {
		return (ENOMEM);
	}
	for (size_t i = 0; i < src->n; i++) {
		if ((dst->v[i] = sp_arena_strdup(a, src->v[i] != NULL ? src->v[i] : "")) == NULL) {
			return (ENOMEM);
		}
	}
	dst->v[src->n] = NULL;
	return (0);
}

int
sup_copy_record(sandproc_v1_Process *dst, const sandproc_v1_Process *src, sp_arena *a)
{
	*dst = *src;
	if (sup_copy_strv(&dst->argv, &src->argv, a) != 0 || sup_copy_strv(&dst->env, &src->env, a) != 0 ||
	    sup_copy_strv(&dst->labels, &src->labels, a) != 0) {
		return (ENOMEM);
	}
	dst->cwd = sp_arena_strdup(a, src->cwd != NULL ? src->cwd : "");
	dst->name = sp_arena_strdup(a, src->name != NULL ? src->name : "");
	return (dst->cwd != NULL && dst->name != NULL ? 0 : ENOMEM);
}

/* Takes a reference on process id while it is in the table, or NULL. */
static proc *
sup_borrow(supervisor *s, const char *id)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) != NULL) {
		p->refs++;
	}
	pthread_mutex_unlock(&s->mu);
	return (p);
}

/* Like sup_borrow, for a process that has not ended. */
static proc *
sup_borrow_live(supervisor *s, const char *id)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) != NULL && p->phase == PHASE_RUNNING) {
		p->refs++;
	} else {
		p = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	return (p);
}

static void
sup_return(supervisor *s, proc *p)
{
	pthread_mutex_lock(&s->mu);
	proc_unref(p);
	pthread_mutex_unlock(&s->mu);
}

bool
supervisor_get(supervisor *s, const char *id, sandproc_v1_Process *out, sp_arena *arena)
{
	bool found = false;
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) != NULL) {
		found = sup_copy_record(out, &p->rec, arena) == 0;
	}
	pthread_mutex_unlock(&s->mu);
	return (found);
}

void
supervisor_overlay(supervisor *s, sandproc_v1_Process *rec)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, rec->id)) != NULL) {
		const sandproc_v1_Process *m = &p->rec;
		rec->pid = m->pid;
		rec->state = m->state;
		rec->exit_code = m->exit_code;
		rec->signal = m->signal;
		rec->exited_at_ms = m->exited_at_ms;
		memcpy(rec->error, m->error, sizeof(rec->error));
		rec->stdin_open = m->stdin_open;
		rec->cols = m->cols;
		rec->rows = m->rows;
	}
	pthread_mutex_unlock(&s->mu);
}

bool
supervisor_seen_seq(supervisor *s, const char *id, uint64_t *seq)
{
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) != NULL) {
		*seq = p->seen_seq;
	}
	pthread_mutex_unlock(&s->mu);
	return (p != NULL);
}

uint32_t
supervisor_running(supervisor *s)
{
	uint32_t n;

	pthread_mutex_lock(&s->mu);
	n = s->live;
	pthread_mutex_unlock(&s->mu);
	return (n);
}

void
supervisor_on_activity(supervisor *s, void (*fn)(void *arg, sup_event what), void *arg)
{
	pthread_mutex_lock(&s->mu);
	s->activity = fn;
	s->activity_arg = arg;
	pthread_mutex_unlock(&s->mu);
}

#define SUP_MAX_MEMBERS 1024
#define SUP_MAX_PROCS 65536

void
supervisor_each_running(supervisor *s, void (*fn)(void *arg, const sup_running *r), void *arg)
{
	proc **list = NULL;
	size_t n = 0, cap = 0;

	/* Borrowed (a reference each) so their place stays while /proc is read unlocked. */
	pthread_mutex_lock(&s->mu);
	for (size_t b = 0; b < s->buckets; b++) {
		for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
			if (p->phase != PHASE_RUNNING || p->pid <= 0) {
				continue;
			}
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				proc **nl = realloc(list, nc * sizeof(*nl));
				if (nl == NULL) {
					break;
				}
				list = nl;
				cap = nc;
			}
			p->refs++;
			list[n++] = p;
		}
	}
	pthread_mutex_unlock(&s->mu);
	pid_t *members = malloc(SUP_MAX_MEMBERS * sizeof(*members));
	procfs_entry *all = NULL; /* one pass over /proc, for the processes without a cgroup */
	size_t nall = 0;
	for (size_t i = 0; i < n && members != NULL; i++) {
		proc *p = list[i];
		size_t k = 0;
		if (p->place_ops != NULL && p->place_ops->members != NULL) {
			k = p->place_ops->members(p->place_ctx, members, SUP_MAX_MEMBERS);
		} else {
			if (all == NULL && (all = malloc(SUP_MAX_PROCS * sizeof(*all))) != NULL) {
				nall = procfs_snapshot(all, SUP_MAX_PROCS);
			}
			for (size_t j = 0; j < nall && k < SUP_MAX_MEMBERS; j++) {
				if ((p->tty ? all[j].sid : all[j].pgrp) == p->pid) {
					members[k++] = all[j].pid;
				}
			}
		}
		sup_running r = {
			.id = p->id,
			.sandbox_id = p->rec.sandbox_id[0] != '\0' ? p->rec.sandbox_id : "default",
			.pid = p->pid,
			.members = members,
			.nmembers = k,
		};
		fn(arg, &r);
	}
	free(members);
	free(all);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		proc_unref(list[i]);
	}
	pthread_mutex_unlock(&s->mu);
	free(list);
}

const char *
supervisor_log_dir(const supervisor *s)
{
	return (s->cfg.log_dir);
}

/* --- slots ----------------------------------------------------------------------- */

bool
supervisor_reserve(supervisor *s, uint32_t *active, uint32_t *max)
{
	sandproc_v1_Config cfg;
	bool ok;

	config_holder_get(s->cfg.cfg, &cfg);
	pthread_mutex_lock(&s->mu);
	ok = !s->stopping && s->active < cfg.max_concurrent_processes;
	if (ok) {
		s->active++;
	}
	*active = s->active;
	*max = cfg.max_concurrent_processes;
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

void
supervisor_release(supervisor *s)
{
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_mutex_unlock(&s->mu);
}

int
supervisor_run_attach(supervisor *s, pid_t pid)
{
	return (runs_add(s->run_table, pid));
}

void
supervisor_run_detach(supervisor *s, int slot)
{
	runs_remove(s->run_table, slot);
}

/* --- signals ----------------------------------------------------------------------- */

static void sup_on_kill_due(timer *t);

int
supervisor_signal(supervisor *s, const char *id, sup_action action, int sig, uint32_t grace_ms)
{
	int64_t now = util_mono_ms();
	proc *p;

	pthread_mutex_lock(&s->mu);
	if ((p = sup_find(s, id)) == NULL || p->phase != PHASE_RUNNING) {
		pthread_mutex_unlock(&s->mu);
		return (SP_NOT_FOUND);
	}
	p->refs++;
	switch (action) {
	case SUP_SIGNAL:
		break;
	case SUP_STOP:
		if (!p->stop_requested) {
			p->stop_requested = true;
			p->stop_signal = SIGTERM;
			snprintf(p->stop_reason, sizeof(p->stop_reason), "stopped");
		}
		sig = SIGTERM;
		if (!p->kill_armed || now + grace_ms < p->kill_timer.at) {
			p->kill_armed = true;
			p->kill_timer.fn = sup_on_kill_due;
			loop_arm(s->lp, &p->kill_timer, now + grace_ms);
		}
		break;
	case SUP_KILL:
		if (!p->stop_requested) {
			p->stop_requested = true;
			snprintf(p->stop_reason, sizeof(p->stop_reason), "killed");
		}
		p->stop_signal = SIGKILL;
		sig = SIGKILL;
		break;
	}
	pthread_mutex_unlock(&s->mu);
	/* The backend keeps an unreaped child's pid ours while it signals. */
	s->be->ops->signal(s->be, p, sig, action != SUP_SIGNAL);
	/* Stop, Kill and timeouts reach every process it started, also those that left its group. */
	if (p->place_ops != NULL && action != SUP_SIGNAL) {
		p->place_ops->signal(p->place_ctx, sig);
	}
	if (sig == SIGKILL) {
		s->be->ops->killed(s->be, p);
	}
	sup_return(s, p);
	return (SP_OK);
}

/*
 * The grace after SIGTERM is over (loop thread): a kill, as Kill would
 * send it, keeping the reason Stop gave. Timers are cancelled on the loop
 * thread when p ends, so p is still here.
 */
static void
sup_on_kill_due(timer *t)
{
	proc *p = containerof(t, proc, kill_timer);
	bool due;

	pthread_mutex_lock(&p->s->mu);
	due = p->kill_armed;
	p->kill_armed = false;
	pthread_mutex_unlock(&p->s->mu);
	if (due) {
		supervisor_signal(p->s, p->id, SUP_KILL, 0, 0);
	}
}

/* timeout_s has passed (loop thread): stopped as Stop would, with a 5 s grace. */
static void
sup_on_timeout(timer *t)
{
	proc *p = containerof(t, proc, timeout_timer);
	bool due;

	pthread_mutex_lock(&p->s->mu);
	due = p->timeout_armed && !p->stop_requested;
	p->timeout_armed = false;
	if (due) {
		/* Stop keeps a reason already given. */
		p->stop_requested = true;
		p->stop_signal = SIGTERM;
		snprintf(p->stop_reason, sizeof(p->stop_reason), "timed out after %u s", p->rec.timeout_s);
	}
	pthread_mutex_unlock(&p->s->mu);
	if (due) {
		supervisor_signal(p->s, p->id, SUP_STOP, 0, SUP_TIMEOUT_GRACE_MS);
	}
}

void
sup_arm_timeout(supervisor *s, proc *p)
{
	if (p->rec.timeout_s > 0) {
		/* From its start: a process taken back after a restart has had some of its time. */
		int64_t left = p->rec.started_at_ms + (int64_t)p->rec.timeout_s * 1000 - util_now_ms();
		p->timeout_armed = true;
		p->timeout_timer.fn = sup_on_timeout;
		loop_arm(s->lp, &p->timeout_timer, util_mono_ms() + (left > 0 ? left : 0));
	}
}

/* --- waiting ----------------------------------------------------------------------- */

enum { SUP_WAIT_END, SUP_WAIT_OUTPUT };

/*
 * A waiter's process is only looked at while it is linked: a woken one may
 * have outlived it. Which of p's lists holds it does not matter to
 * dlist_remove, so one detach serves both.
 */
static void
sup_detach(waiter *w)
{
	supervisor *s = w->owner;

	pthread_mutex_lock(&s->mu);
	if (waiter_linked(w)) {
		proc *p = w->owner_data;
		waitlist_remove(w->owner_tag == SUP_WAIT_END ? &p->end_waiters : &p->output_waiters, w);
		proc_unref(p);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Links w to one of p's lists while p runs (caller holds s->mu); false when p is not running. */
static bool
sup_watch(supervisor *s, proc *p, waiter *w, int tag)
{
	if (p == NULL || p->phase != PHASE_RUNNING) {
		return (false);
	}
	p->refs++;
	w->owner = s;
	w->owner_data = p;
	w->owner_tag = tag;
	w->detach = sup_detach;
	waitlist_add(tag == SUP_WAIT_END ? &p->end_waiters : &p->output_waiters, w);
	return (true);
}

bool
supervisor_watch_end(supervisor *s, const char *id, waiter *w)
{
	bool ok;

	pthread_mutex_lock(&s->mu);
	ok = sup_watch(s, sup_find(s, id), w, SUP_WAIT_END);
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

bool
supervisor_watch_output(supervisor *s, const char *id, uint64_t after_seq, waiter *w)
{
	proc *p;
	bool ok;

	pthread_mutex_lock(&s->mu);
	p = sup_find(s, id);
	if ((ok = sup_watch(s, p, w, SUP_WAIT_OUTPUT)) && p->seen_seq > after_seq) {
		/* Something newer is there already: wake at once. */
		waitlist_remove(&p->output_waiters, w);
		proc_unref(p);
		w->wake(w);
	}
	pthread_mutex_unlock(&s->mu);
	return (ok);
}

/* --- input, resize, screen ----------------------------------------------------------- */

/* Writes all of data to fd (non-blocking), waiting for room up to deadline. */
static int
sup_write_all(int fd, const uint8_t *data, size_t len, int64_t deadline, uint64_t *written)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			int64_t left = deadline - util_mono_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			if (left <= 0) {
				*written = done;
				return (ETIMEDOUT);
			}
			poll(&pfd, 1, (int)left);
			continue;
		}
		*written = done;
		return (n < 0 ? errno : EIO);
	}
	*written = done;
	return (0);
}

int
supervisor_send_input(supervisor *s, const char *id, const uint8_t *data, size_t len, bool eof,
    uint64_t *written, char *err, size_t errlen)
{
	proc *p = sup_borrow_live(s, id);
	int fd = -1, rv = 0, code = SP_OK;

	*written = 0;
	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	pthread_mutex_lock(&p->input_mu);
	/* A dup keeps the fd number ours while writing without io_mu held. */
	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd >= 0) {
		fd = fcntl(p->in_fd, F_DUPFD_CLOEXEC, 0);
	}
	pthread_mutex_unlock(&p->io_mu);
	if (fd < 0) {
		snprintf(err, errlen, "%s: stdin is closed", id);
		code = SP_FAILED_PRECONDITION;
		goto out;
	}
	int64_t deadline = util_mono_ms() + SUP_INPUT_TIMEOUT_MS;
	rv = sup_write_all(fd, data, len, deadline, written);
	if (rv == 0 && eof && p->tty) {
		/* A PTY cannot be half-closed: EOF is the terminal's EOF character. */
		struct termios t;
		uint8_t veof = tcgetattr(fd, &t) == 0 && t.c_cc[VEOF] != 0 ? t.c_cc[VEOF] : 4;
		uint64_t w;
		rv = sup_write_all(fd, &veof, 1, deadline, &w);
	}
	close(fd);
	if (rv == ETIMEDOUT) {
		snprintf(err, errlen, "%s: stdin is full: the process read %llu of %zu bytes within %d ms",
		    id, (unsigned long long)*written, len, SUP_INPUT_TIMEOUT_MS);
		code = SP_DEADLINE_EXCEEDED;
		goto out;
	}
	if (rv != 0) {
		snprintf(err, errlen, "%s: stdin: %s%s", id, strerror(rv),
		    rv == EPIPE || rv == EIO ? " (the process closed it or has ended)" : "");
		code = SP_FAILED_PRECONDITION;
		goto out;
	}
	if (eof && !p->tty) {
		pthread_mutex_lock(&p->io_mu);
		if (p->in_fd >= 0) {
			close(p->in_fd);
			p->in_fd = -1;
		}
		pthread_mutex_unlock(&p->io_mu);
		s->be->ops->close_stdin(s->be, p);
		pthread_mutex_lock(&s->mu);
		p->stdin_open = false;
		p->rec.stdin_open = false;
		pthread_mutex_unlock(&s->mu);
	}
out:
	pthread_mutex_unlock(&p->input_mu);
	sup_return(s, p);
	return (code);
}

int
supervisor_resize(supervisor *s, const char *id, uint16_t cols, uint16_t rows, char *err, size_t errlen)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	proc *p = sup_borrow_live(s, id);
	int code = SP_OK;

	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	if (!p->tty) {
		snprintf(err, errlen, "%s is not a TTY process", id);
		sup_return(s, p);
		return (SP_FAILED_PRECONDITION);
	}
	pthread_mutex_lock(&p->emit_mu);
	pthread_mutex_lock(&p->io_mu);
	if (p->in_fd < 0) {
		snprintf(err, errlen, "%s has ended", id);
		code = SP_FAILED_PRECONDITION;
	} else if (ioctl(p->in_fd, TIOCSWINSZ, &ws) != 0) {
		snprintf(err, errlen, "%s: TIOCSWINSZ: %s", id, strerror(errno));
		code = SP_INTERNAL;
	}
	pthread_mutex_unlock(&p->io_mu);
	if (code == SP_OK) {
		/* The kernel sent SIGWINCH to the terminal's foreground group. */
		pthread_mutex_lock(&s->mu);
		p->rec.cols = cols;
		p->rec.rows = rows;
		pthread_mutex_unlock(&s->mu);
		sup_emit_record(s, p, EV_RESIZED);
	}
	pthread_mutex_unlock(&p->emit_mu);
	sup_return(s, p);
	return (code);
}

int
supervisor_screen(
    supervisor *s, const char *id, sandproc_v1_ScreenReply *out, sp_arena *arena, char *err, size_t errlen)
{
	proc *p = sup_borrow(s, id);
	int code = SP_OK;

	if (p == NULL) {
		return (SP_NOT_FOUND);
	}
	if (!p->tty || p->scr == NULL) {
		snprintf(err, errlen, p->tty ? "%s has no screen" : "%s is not a TTY process", id);
		code = SP_FAILED_PRECONDITION;
	} else if (screen_snapshot(p->scr, out, arena) != 0) {
		snprintf(err, errlen, "out of memory");
		code = SP_RESOURCE_EXHAUSTED;
	}
	sup_return(s, p);
	return (code);
}
