/*
 * Runtime limits (SPEC "GetConfig / SetConfig"): defaults, validation and
 * applying a partial update. The record type is the API's Config message.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "sandproc/v1/processes.pb.h"

/* Bounds on the settings themselves. */
#define CONFIG_MAX_PROCESSES_LIMIT 4096u
#define CONFIG_MAX_TIMEOUT_LIMIT_MS (24u * 3600 * 1000)
#define CONFIG_MAX_OUTPUT_LIMIT (16ull * 1024 * 1024)
#define CONFIG_MIN_LOG_BYTES 4096ull
#define CONFIG_MAX_INPUT_LIMIT (4ull * 1024 * 1024)

/* Every setting, by its proto field name (for code that treats them alike). */
#define CONFIG_FIELDS(X)             \
	X(max_concurrent_processes)  \
	X(default_run_timeout_ms)    \
	X(max_run_timeout_ms)        \
	X(max_output_bytes)          \
	X(max_log_bytes_per_process) \
	X(max_input_bytes_per_request)

/* SPEC's defaults. */
void config_defaults(sandproc_v1_Config *c);

/* Checks every field and their relations; false with the reason in err. */
bool config_validate(const sandproc_v1_Config *c, char *err, size_t errlen);

/* c with the fields set in req replaced. */
void config_apply(sandproc_v1_Config *c, const sandproc_v1_SetConfigRequest *req);

/* The live settings, shared by the threads that read them. */
typedef struct config_holder {
	pthread_mutex_t mu;
	sandproc_v1_Config c;
} config_holder;

/* A consistent copy of the current settings. */
void config_holder_get(config_holder *h, sandproc_v1_Config *out);
void config_holder_set(config_holder *h, const sandproc_v1_Config *c);

#endif
