/*
 * The life of the supervisor: its loop and backend, and a shutdown that
 * stops every child and waits until their ends are recorded.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/list.h"
#include "base/util.h"
#include "os/procfs.h"
#include "proc/proc.h"

#define SUP_BUCKETS 1024
/* Beyond the shutdown grace, processes that will not die are recorded anyway. */
#define SUP_SHUTDOWN_EXTRA_MS 3000

int
supervisor_new(supervisor **out, const supervisor_config *c, char *err, size_t errlen)
{
	supervisor *s = calloc(1, sizeof(*s));
	int rv;

	if (s == NULL || (s->table = calloc(SUP_BUCKETS, sizeof(*s->table))) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return (ENOMEM);
	}
	s->buckets = SUP_BUCKETS;
	s->cfg = *c;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->drained, NULL);
	pthread_cond_init(&s->settled, NULL);
	procfs_boot_id(s->boot_id, sizeof(s->boot_id));
	int killed = 0;
	if ((rv = runs_open(&s->run_table, c->data_dir, CONFIG_MAX_PROCESSES_LIMIT, &killed)) != 0) {
		snprintf(err, errlen, "%s/runs.tbl: %s", c->data_dir, strerror(rv));
		goto fail;
	}
	if (killed > 0) {
		util_log("killed %d processes that Runs of a crashed server had left running", killed);
	}
	if ((rv = loop_new(&s->lp, err, errlen)) != 0) {
		runs_close(s->run_table);
		goto fail;
	}
	if (c->backend != NULL && strcmp(c->backend, "holder") == 0) {
		rv = held_backend_new(
		    &s->be, s, s->lp, c->wq, c->holder_path, c->run_dir, c->log_dir, err, errlen);
	} else if ((rv = direct_backend_new(&s->be, s, s->lp, c->wq)) != 0) {
		snprintf(err, errlen, "backend: %s", strerror(rv));
	}
	if (rv != 0) {
		loop_free(s->lp);
		runs_close(s->run_table);
		goto fail;
	}
	*out = s;
	return (0);
fail:
	pthread_cond_destroy(&s->drained);
	pthread_mutex_destroy(&s->mu);
	free(s->table);
	free(s);
	return (rv);
}

/* The shutdown's grace and extra time are over: end what would not die (loop thread). */
static void
sup_on_shutdown_due(timer *t)
{
	supervisor *s = containerof(t, supervisor, shutdown_timer);
	proc *late[64];
	size_t n;

	do {
		n = 0;
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->buckets && n < sizeof(late) / sizeof(late[0]); b++) {
			for (proc *p = s->table[b]; p != NULL && n < sizeof(late) / sizeof(late[0]);
			     p = p->hnext) {
				if (p->phase == PHASE_RUNNING) {
					p->refs++;
					late[n++] = p;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; i < n; i++) {
			util_log("%s: would not stop in time; recorded as ended", late[i]->id);
			s->be->ops->force_end(s->be, late[i]);
			pthread_mutex_lock(&s->mu);
			proc_unref(late[i]);
			pthread_mutex_unlock(&s->mu);
		}
	} while (n == sizeof(late) / sizeof(late[0]));
}

/* A shutdown that keeps processes: on the loop thread, so no packet of theirs is being read meanwhile. */
typedef struct sup_keep_job {
	loop_job job;
	supervisor *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	size_t kept;
} sup_keep_job;

static void
sup_detach_all(loop_job *job)
{
	sup_keep_job *k = containerof(job, sup_keep_job, job);
	supervisor *s = k->s;

	pthread_mutex_lock(&s->mu);
	for (size_t b = 0; b < s->buckets; b++) {
		for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
			if (p->phase == PHASE_RUNNING) {
				/* Its record stays "running": the next server takes it back from its holder.
				 */
				s->be->ops->detach(s->be, p);
				loop_cancel(s->lp, &p->kill_timer);
				loop_cancel(s->lp, &p->timeout_timer);
				p->kill_armed = p->timeout_armed = false;
				k->kept++;
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&k->mu);
	k->done = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

bool
supervisor_can_join_cgroups(const supervisor *s)
{
	return (s->be->ops->joins_cgroups);
}

bool
supervisor_can_keep(const supervisor *s)
{
	return (s->be->ops->detach != NULL);
}

void
supervisor_stop(supervisor *s, int grace_ms, bool keep)
{
	char(*ids)[32] = NULL;
	size_t n = 0;

	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	if (keep && supervisor_can_keep(s)) {
		sup_keep_job k = { .job.fn = sup_detach_all, .s = s };
		pthread_mutex_init(&k.mu, NULL);
		pthread_cond_init(&k.cv, NULL);
		/* A Run is a call's child: its caller is gone, so it goes too. */
		runs_stop(s->run_table, SIGKILL);
		loop_post(s->lp, &k.job);
		pthread_mutex_lock(&k.mu);
		while (!k.done) {
			pthread_cond_wait(&k.cv, &k.mu);
		}
		pthread_mutex_unlock(&k.mu);
		pthread_cond_destroy(&k.cv);
		pthread_mutex_destroy(&k.mu);
		if (k.kept > 0) {
			util_log("%zu processes left running for the next server", k.kept);
		}
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->live > 0 && (ids = calloc(s->live, sizeof(*ids))) != NULL) {
		for (size_t b = 0; b < s->buckets; b++) {
			for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
				if (p->phase == PHASE_RUNNING && n < s->live) {
					memcpy(ids[n++], p->id, sizeof(ids[0]));
					if (!p->stop_requested) {
						p->stop_requested = true;
						p->stop_signal = SIGTERM;
						snprintf(p->stop_reason, sizeof(p->stop_reason),
						    "stopped: the server shut down");
					}
				}
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	runs_stop(s->run_table, SIGKILL);
	for (size_t i = 0; i < n; i++) {
		supervisor_signal(s, ids[i], SUP_STOP, 0, (uint32_t)grace_ms);
	}
	free(ids);
	s->shutdown_timer.fn = sup_on_shutdown_due;
	loop_arm(s->lp, &s->shutdown_timer, util_mono_ms() + grace_ms + SUP_SHUTDOWN_EXTRA_MS);
	pthread_mutex_lock(&s->mu);
	while (s->live > 0) {
		pthread_cond_wait(&s->drained, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	loop_cancel(s->lp, &s->shutdown_timer);
}

/* The running processes of sandbox_id, by id, into a calloc'ed array; how many. */
static size_t
sup_running_in(supervisor *s, const char *sandbox_id, char (**ids)[32])
{
	size_t n = 0;

	*ids = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->live > 0 && (*ids = calloc(s->live, sizeof(**ids))) != NULL) {
		for (size_t b = 0; b < s->buckets; b++) {
			for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
				if (p->phase == PHASE_RUNNING && n < s->live &&
				    strcmp(p->rec.sandbox_id, sandbox_id) == 0) {
					memcpy((*ids)[n++], p->id, sizeof((*ids)[0]));
				}
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	return (n);
}

size_t
supervisor_stop_where(supervisor *s, const char *sandbox_id, uint32_t grace_ms)
{
	char(*ids)[32];
	size_t n = sup_running_in(s, sandbox_id, &ids), left = n;
	int64_t deadline = util_mono_ms() + grace_ms + SUP_SHUTDOWN_EXTRA_MS;

	for (size_t i = 0; i < n; i++) {
		supervisor_signal(s, ids[i], SUP_STOP, 0, grace_ms);
	}
	free(ids);
	while (left > 0 && util_mono_ms() < deadline) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000000L };
		nanosleep(&ts, NULL);
		left = sup_running_in(s, sandbox_id, &ids);
		free(ids);
	}
	return (n);
}

void
supervisor_config_changed(supervisor *s)
{
	sandproc_v1_Config c;

	if (s->be->ops->log_limit == NULL) {
		return; /* the direct backend reads the settings as it writes */
	}
	config_holder_get(s->cfg.cfg, &c);
	pthread_mutex_lock(&s->mu);
	for (size_t b = 0; b < s->buckets; b++) {
		for (proc *p = s->table[b]; p != NULL; p = p->hnext) {
			if (p->phase == PHASE_RUNNING) {
				s->be->ops->log_limit(s->be, p, c.max_log_bytes_per_process);
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void
supervisor_forget(supervisor *s, const char *id)
{
	if (s->be->ops->forget != NULL) {
		s->be->ops->forget(s->be, id);
	}
}

void
supervisor_free(supervisor *s)
{
	/* The loop goes first: nothing calls into the table after this. */
	loop_free(s->lp);
	for (size_t b = 0; b < s->buckets; b++) {
		proc *p = s->table[b];
		while (p != NULL) {
			proc *next = p->hnext;
			/* Ended records the store never confirmed (a full disk at shutdown). */
			proc_free(p);
			p = next;
		}
	}
	s->be->ops->free(s->be);
	runs_close(s->run_table);
	free(s->table);
	pthread_cond_destroy(&s->drained);
	pthread_cond_destroy(&s->settled);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
