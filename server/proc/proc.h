/*
 * Inside the supervisor: the process record it keeps for every managed
 * process from start until its end is stored, and the functions its files
 * share. Handlers use supervisor.h, backends backend.h.
 *
 * Locks: s->mu guards the table, references, phases, waiter lists, stop
 * bookkeeping and the record's changing fields; p->emit_mu orders p's event
 * stream (taken before s->mu when both are needed); p->io_mu guards p->in_fd.
 */
#ifndef PROC_PROC_H
#define PROC_PROC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/theap.h"
#include "base/waiter.h"
#include "base/workq.h"
#include "events/publisher.h"
#include "output/screen.h"
#include "output/sink.h"
#include "proc/backend.h"
#include "proc/loop.h"
#include "proc/runs.h"
#include "proc/supervisor.h"
#include "store/store_queue.h"

typedef enum proc_phase {
	PHASE_RUNNING, /* started; its end not known yet */
	PHASE_ENDED,   /* final record set and published; kept until it is stored */
} proc_phase;

struct proc {
	struct proc *hnext;
	supervisor *s;
	int refs; /* under s->mu: the table's, each borrower's, each linked waiter's */
	char id[32];
	sandproc_v1_Process rec; /* strings in arena (fixed once started); changing fields under s->mu */
	sp_arena *arena;
	store_origin origin;
	/* Where the child runs (a sandbox's ops for its cgroup), or NULL: see os/spawn.h. */
	const spawn_place_ops *place_ops;
	void *place_ctx;
	pid_t pid; /* group id too (session id for a TTY); only the backend acts on it */
	bool tty, reattached;
	proc_phase phase; /* under s->mu */
	bool stored;      /* under s->mu: the final record is in the store */

	/* The event stream: emitted in order under emit_mu. */
	pthread_mutex_t emit_mu;
	sink *sinks;
	uint64_t seq;      /* last output sequence (emit_mu) */
	uint64_t seen_seq; /* the same, for waiters (s->mu) */
	sink_losses losses;
	screen *scr; /* TTY only */

	/* stdin: a pipe's write end or the PTY master (a dup the backend gave), closed under io_mu */
	pthread_mutex_t io_mu;
	pthread_mutex_t input_mu; /* one SendInput at a time */
	int in_fd;
	bool stdin_open; /* under s->mu */

	/* Stopping, under s->mu. */
	bool stop_requested;
	int stop_signal;
	char stop_reason[64];
	timer kill_timer;    /* SIGKILL after the grace */
	timer timeout_timer; /* timeout_s */
	bool kill_armed, timeout_armed;

	/* Waiting: calls parked on p's end or on new output, under s->mu. */
	waitlist end_waiters, output_waiters;

	void *child; /* the backend's */
	dnode claim; /* on s->claims while it starts with a name (under s->mu) */
};

struct supervisor {
	pthread_mutex_t mu;
	proc **table;
	size_t buckets;
	uint32_t active; /* live processes + Runs in flight */
	uint32_t live;
	bool stopping;
	supervisor_config cfg;
	backend *be;
	loop *lp;
	char boot_id[40];
	timer shutdown_timer;
	pthread_cond_t drained; /* live reached 0 while stopping */
	pthread_cond_t settled; /* an ended record left the table (its end is stored) */
	runs *run_table;        /* children of Runs in flight */
	dlist claims;           /* processes starting with a name, not in the table yet */
	void (*activity)(void *arg, sup_event what); /* supervisor_on_activity's, under mu */
	void *activity_arg;
};

/* Tells the activity hook (caller holds s->mu). */
static inline void
sup_activity(supervisor *s, sup_event what)
{
	if (s->activity != NULL) {
		s->activity(s->activity_arg, what);
	}
}

/* table.c */
proc *proc_new(void);
void proc_free(proc *p);
/* Drops a reference (caller holds s->mu). */
void proc_unref(proc *p);
/* Caller holds s->mu. */
proc *sup_find(supervisor *s, const char *id);
void sup_table_add(supervisor *s, proc *p);
void sup_table_remove(supervisor *s, proc *p);
/* A deep copy of src whose strings live in a; ENOMEM or 0. */
int sup_copy_record(sandproc_v1_Process *dst, const sandproc_v1_Process *src, sp_arena *a);

/* events.c: the stream and the end. */
/* Emits kind with a snapshot of p's record (caller holds p->emit_mu, not s->mu). */
void sup_emit_record(supervisor *s, proc *p, event_kind kind);
/* Arms p's timeout (caller holds s->mu). */
void sup_arm_timeout(supervisor *s, proc *p);
/* Sinks for p: log (when the backend does not store output itself), screen, feed, store. */
int sup_make_sinks(supervisor *s, proc *p, bool log_output, uint64_t *last_seq);
/* The final record of p, from how its child ended and why (caller holds s->mu, or owns p alone). */
void sup_final_record(proc *p, const child_exit *e);
/* Called by the store once p's final record is written. */
void sup_stored(void *arg);

#endif
