/*
 * One-shot Run: start argv, feed it stdin, collect stdout, stderr and both
 * interleaved (each capped) through a capture sink on the same event stream
 * managed processes use, and reply when the command itself ends. Runs on
 * the calling handler's thread, which owns the child from spawn to reap.
 */
#ifndef PROC_RUN_H
#define PROC_RUN_H

#include <stddef.h>

#include "base/config.h"
#include "proc/supervisor.h"
#include "sandproc/v1/processes.pb.h"

/* Output buffers of a finished Run; free with run_result_free. */
typedef struct run_result {
	uint8_t *out, *err, *all;
	size_t out_len, err_len, all_len;
} run_result;

/*
 * Runs req to completion and fills rep (its byte fields point into res;
 * other strings into arena). Returns an sp_status; a command that cannot be
 * started is an error with the cause in err, a timeout is SP_OK with
 * rep->timed_out.
 */
/* Moves a Run's child elsewhere (a sandbox) before it starts: fn rewrites spec. */
typedef struct run_place {
	int (*fn)(void *arg, spawn_spec *spec, sp_arena *arena, char *err, size_t errlen);
	void *arg;
} run_place;

int run_command(supervisor *s, config_holder *cfg, const sandproc_v1_RunRequest *req,
    sandproc_v1_RunReply *rep, run_result *res, const run_place *place, sp_arena *arena, char *err,
    size_t errlen);

void run_result_free(run_result *res);

#endif
