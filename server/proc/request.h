/*
 * From a request to what can be started: every check on argv, env, labels,
 * name, cwd and terminal size (the limits in sp_limits.h) lives here, for
 * Start and Run alike, and the child's whole environment is built here
 * before any child exists. A refusal is INVALID_ARGUMENT naming the field
 * and its limit.
 */
#ifndef PROC_REQUEST_H
#define PROC_REQUEST_H

#include <stddef.h>

#include "os/spawn.h"
#include "sandproc/v1/processes.pb.h"
#include "sp_pb.h"

struct start_plan {
	const sandproc_v1_StartRequest *req;
	spawn_spec spec;
	uint16_t cols, rows; /* TTY size, defaults applied */
	char tenant[64];     /* whose the process is ("" = "default") */
};

/* Checks req and builds its plan (strings in arena). SP_OK or a status with the reason in err. */
int request_start_plan(
    const sandproc_v1_StartRequest *req, struct start_plan *plan, sp_arena *arena, char *err, size_t errlen);

/* The same checks for a Run, building spec (strings in arena). */
int request_run_spec(
    const sandproc_v1_RunRequest *req, spawn_spec *spec, sp_arena *arena, char *err, size_t errlen);

/*
 * The child's environment: base, with add's entries replacing or adding
 * keys; a TTY's TERM=xterm-256color unless add sets TERM. NULL when out of memory.
 */
const char **request_env(const char *const *base, const sp_strv_t *add, bool tty, sp_arena *a);

/*
 * The base of host processes' relative cwds, and their cwd when they give
 * none (sandprocd --workdir; the data dir's work/ by default). The record
 * keeps the absolute path. Not set: the server's own cwd, as before.
 */
void request_set_workdir(const char *dir);

/* Checks a terminal size: cols and rows 1..SP_MAX_TTY_SIDE, at most SP_MAX_TTY_CELLS cells. */
int request_tty_size(uint32_t cols, uint32_t rows, char *err, size_t errlen);

#endif
