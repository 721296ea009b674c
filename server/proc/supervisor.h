/*
 * The supervisor: the table of managed processes and their state machine.
 * Handlers call in from their own threads; children are held by a backend
 * (backend.h), which reports output and ends on the supervisor's loop
 * thread (loop.h). Every change becomes an event on the process's ordered
 * stream (output/sink.h): log, screen, feed and store take it from there.
 *
 * A managed process ends when its child has exited and its output is
 * drained (the backend decides, see direct.c). Only then is its end
 * recorded, published and seen by Wait; the record stays in memory until
 * the store has it, so a read never sees an older state than a waiter did.
 */
#ifndef PROC_SUPERVISOR_H
#define PROC_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/config.h"
#include "base/waiter.h"
#include "base/workq.h"
#include "events/publisher.h"
#include "os/spawn.h"
#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"
#include "store/store.h"
#include "store/store_queue.h"

typedef struct supervisor supervisor;

typedef struct supervisor_config {
	store *st;
	store_queue *sq;
	publisher *pub;
	config_holder *cfg;
	workq *wq;
	const char *data_dir;
	const char *log_dir;
	/* How children are held: "holder" (outlive the server) or "direct". */
	const char *backend;
	const char *holder_path; /* the sandproc-holder program */
	const char *run_dir;     /* holders' sockets and exit files */
} supervisor_config;

/* Creates the supervisor, its loop thread and its (direct) backend. */
int supervisor_new(supervisor **out, const supervisor_config *c, char *err, size_t errlen);

/*
 * Settles records left "running" by an earlier server: takes back a process
 * its backend can still reach, marks the rest ended with what is known.
 */
void supervisor_reconcile(supervisor *s);

/*
 * Stops every Run, and every running process (SIGTERM, SIGKILL after
 * grace_ms) unless keep: kept processes are let go of as they are, still
 * running and recorded so, for the next server to take back. Waits until
 * the ends are recorded. Calls made afterwards find no live process and
 * start none.
 */
void supervisor_stop(supervisor *s, int grace_ms, bool keep);

/* Whether the backend can keep processes across a shutdown (holders can). */
bool supervisor_can_keep(const supervisor *s);

/* Whether a child can join cgroups of its own (a spawn_place's) on this backend. */
bool supervisor_can_join_cgroups(const supervisor *s);

/* The settings changed: what running processes were started with follows. */
void supervisor_config_changed(supervisor *s);

/* Forgets what the backend keeps for ended process id (its record is being deleted). */
void supervisor_forget(supervisor *s, const char *id);

/* Frees a stopped supervisor once no handler can call it any more. */
void supervisor_free(supervisor *s);

/* A validated request to start a managed process (see request.h). */
typedef struct start_plan start_plan;

/*
 * Starts a managed process and fills out with its record (strings in
 * arena). A start that fails is stored as "failed"; the return is then the
 * sp_status with "<id>: <cause>" in err.
 */
int supervisor_start(supervisor *s, const start_plan *plan, sandproc_v1_Process *out, sp_arena *arena,
    char *err, size_t errlen);

/*
 * The record of process id while the supervisor holds it (running, or ended
 * and not yet stored), deep-copied into arena. False when it does not hold
 * it: the store has the record, if any.
 */
bool supervisor_get(supervisor *s, const char *id, sandproc_v1_Process *out, sp_arena *arena);

/*
 * Waits (up to timeout_ms) until an ended process's final record is in the
 * store, so what happens to the store row next (Delete) is not undone by the
 * write still queued. True when it is stored (or the supervisor does not
 * hold it ended); false at the timeout (a full disk).
 */
bool supervisor_await_stored(supervisor *s, const char *id, int64_t timeout_ms);

/*
 * Stops every running process of sandbox_id as Stop does (TERM, KILL after
 * grace_ms) and waits for their ends (a little past the grace). How many.
 */
size_t supervisor_stop_where(supervisor *s, const char *sandbox_id, uint32_t grace_ms);

/* Brings a stored record up to date with what the supervisor holds (state, size, stdin). */
void supervisor_overlay(supervisor *s, sandproc_v1_Process *rec);

typedef enum sup_action {
	SUP_SIGNAL, /* send sig once, to the group */
	SUP_STOP,   /* SIGTERM now, SIGKILL after grace_ms */
	SUP_KILL,   /* SIGKILL now */
} sup_action;

/* Signals a live process. SP_OK, or SP_NOT_FOUND when id is not running. */
int supervisor_signal(supervisor *s, const char *id, sup_action action, int sig, uint32_t grace_ms);

/*
 * Links w to process id's end: it is woken once the end is recorded. False
 * when id is not running (then nothing is linked).
 */
bool supervisor_watch_end(supervisor *s, const char *id, waiter *w);

/*
 * Links w to process id's output: woken at its next output entry after
 * after_seq (at once if one exists) or at its end. False when id is not
 * running.
 */
bool supervisor_watch_output(supervisor *s, const char *id, uint64_t after_seq, waiter *w);

/*
 * Writes data to the process's stdin (pipe or PTY) and then closes it when
 * eof (on a PTY, eof sends the EOF character instead). SP_NOT_FOUND when
 * not live, SP_FAILED_PRECONDITION when stdin is closed or the process has
 * ended, SP_DEADLINE_EXCEEDED when it does not read within 10 s.
 */
int supervisor_send_input(supervisor *s, const char *id, const uint8_t *data, size_t len, bool eof,
    uint64_t *written, char *err, size_t errlen);

/* Resizes a live TTY process (TIOCSWINSZ; the kernel sends SIGWINCH). */
int supervisor_resize(supervisor *s, const char *id, uint16_t cols, uint16_t rows, char *err, size_t errlen);

/* The screen of a TTY process the supervisor holds. SP_NOT_FOUND when it does not hold it. */
int supervisor_screen(
    supervisor *s, const char *id, sandproc_v1_ScreenReply *out, sp_arena *arena, char *err, size_t errlen);

/*
 * Takes one of max_concurrent_processes slots for a child started outside
 * the table (Run). False when none is free; *active gets the count.
 */
bool supervisor_reserve(supervisor *s, uint32_t *active, uint32_t *max);
void supervisor_release(supervisor *s);

/*
 * Runs (run.c) tell the supervisor their child's pid between spawn and
 * reap, so that a shutdown kills it too and a crash cannot leave it behind
 * (runs.h). attach returns a slot, or -1 when the server is shutting down
 * (the caller then kills its child at once); detach must come before the
 * caller reaps.
 */
int supervisor_run_attach(supervisor *s, pid_t pid);
void supervisor_run_detach(supervisor *s, int slot);

/*
 * The newest output entry of process id that went through its stream (so
 * the feed, the screen and waiters have it); false when id is not held.
 */
bool supervisor_seen_seq(supervisor *s, const char *id, uint64_t *seq);

typedef enum sup_event { SUP_STARTED, SUP_OUTPUT, SUP_ENDED } sup_event;

/*
 * Calls fn(arg, what) (or nothing, fn NULL) whenever a managed process
 * starts, writes output or ends: cheap, never blocking, called with the
 * supervisor's lock held (fn must not call back in). Set before processes
 * run (before supervisor_reconcile) and cleared before arg goes.
 */
void supervisor_on_activity(supervisor *s, void (*fn)(void *arg, sup_event what), void *arg);

/* A running managed process as supervisor_each_running sees it. */
typedef struct sup_running {
	const char *id;
	const char *sandbox_id; /* "default" on the host */
	pid_t pid;
	const pid_t *members; /* every live process of it now (its cgroup, else its group or session) */
	size_t nmembers;
} sup_running;

/*
 * Calls fn for each running managed process, with the processes it is made
 * of now (it and all it started that are still in its cgroup; without one,
 * its process group or, for a TTY, its session). Reads /proc and cgroups:
 * not for a thread that must not block. fn must not call the supervisor.
 */
void supervisor_each_running(supervisor *s, void (*fn)(void *arg, const sup_running *r), void *arg);

/* Managed processes not yet ended. */
uint32_t supervisor_running(supervisor *s);

const char *supervisor_log_dir(const supervisor *s);

#endif
