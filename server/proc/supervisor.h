/*
 * The supervisor owns every managed child: it starts them (spawn.c), reads
 * their output into log entries (logfile.c, publisher.c, screen.c), reaps
 * them and writes each state change to the store. One thread runs an epoll
 * loop over every child's pidfd and output fds; handlers call in from their
 * own threads.
 *
 * Children are tracked by pidfd, never by SIGCHLD: a pidfd turns readable
 * when its child exits, and the child stays a zombie (its pid and process
 * group reserved) until the loop reaps it. Every group signal is sent under
 * the supervisor's lock while the leader is unreaped, so no signal can reach
 * a reused pid.
 *
 * A managed process ends when its leader has exited and its output is
 * drained: the pipes reach EOF, or no other process is left in its group
 * (a daemon that left the group may still hold them). Only then is the end
 * stored, published and seen by Wait.
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/config.h"
#include "events/publisher.h"
#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"
#include "store/store.h"

typedef struct supervisor supervisor;

/* Creates the supervisor and starts its loop thread. */
int supervisor_new(supervisor **out, store *st, publisher *pub, config_holder *cfg, const char *log_dir,
    char *err, size_t errlen);

/*
 * Settles records left "running" by an earlier server: re-attaches a
 * process that is still alive and provably the same one (same boot, same
 * pid start time), marks the rest ended with what is known.
 */
void supervisor_reconcile(supervisor *s);

/*
 * Stops every running process and Run (SIGTERM, SIGKILL after grace_ms),
 * waits for their records to be written, and stops the loop. Calls made
 * afterwards find no live process and start none.
 */
void supervisor_stop(supervisor *s, int grace_ms);

/* Frees a stopped supervisor once no handler can call it any more. */
void supervisor_free(supervisor *s);

/*
 * Starts a managed process and fills out with its record (strings in
 * arena). A start that fails is stored as "failed"; the return is then the
 * sp_status with "<id>: <cause>" in err.
 */
int supervisor_start_process(supervisor *s, const sandproc_v1_StartRequest *req, sandproc_v1_Process *out,
    sp_arena *arena, char *err, size_t errlen);

typedef enum sup_action {
	SUP_SIGNAL, /* send sig once */
	SUP_STOP,   /* SIGTERM now, SIGKILL after grace_ms */
	SUP_KILL,   /* SIGKILL now */
} sup_action;

/*
 * Signals a live process's group. Returns SP_OK, or SP_NOT_FOUND when id is
 * not a live process (it may still be an ended record in the store).
 */
int supervisor_signal(supervisor *s, const char *id, sup_action action, int sig, uint32_t grace_ms);

/*
 * Blocks until live process id has ended or timeout_ms (0 = no limit)
 * passed. False when id is not live (ended already, or unknown).
 */
bool supervisor_wait(supervisor *s, const char *id, uint32_t timeout_ms);

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

/* The screen of a live TTY process. SP_NOT_FOUND when not live. */
int supervisor_screen(
    supervisor *s, const char *id, sandproc_v1_ScreenReply *out, sp_arena *arena, char *err, size_t errlen);

/*
 * Takes one of max_concurrent_processes slots for a child started outside
 * the supervisor (Run). False when none is free; *active gets the count.
 */
bool supervisor_reserve(supervisor *s, uint32_t *active, uint32_t *max);
void supervisor_release(supervisor *s);

/* Managed processes not yet ended. */
uint32_t supervisor_running(supervisor *s);

const char *supervisor_log_dir(const supervisor *s);

/*
 * Runs (run.c) tell the supervisor their child's pid between spawn and
 * reap, so a shutdown can kill them too. attach returns false when the
 * server is shutting down (the caller then kills its child at once);
 * detach must come before the caller reaps.
 */
bool supervisor_run_attach(supervisor *s, pid_t pid);
void supervisor_run_detach(supervisor *s, pid_t pid);

/* Live details a stored record lags behind on (stdin_open, TTY size). */
void supervisor_overlay(supervisor *s, sandproc_v1_Process *rec);

#endif
