#include "base/config.h"

#include <inttypes.h>
#include <stdio.h>

void
config_defaults(sandproc_v1_Config *c)
{
	c->max_concurrent_processes = 64;
	c->default_run_timeout_ms = 30000;
	c->max_run_timeout_ms = 300000;
	c->max_output_bytes = 1024 * 1024;
	c->max_log_bytes_per_process = 10 * 1024 * 1024;
	c->max_input_bytes_per_request = 64 * 1024;
}

bool
config_validate(const sandproc_v1_Config *c, char *err, size_t errlen)
{
	if (c->max_concurrent_processes < 1 || c->max_concurrent_processes > CONFIG_MAX_PROCESSES_LIMIT) {
		snprintf(err, errlen, "max_concurrent_processes must be 1..%u", CONFIG_MAX_PROCESSES_LIMIT);
		return (false);
	}
	if (c->max_run_timeout_ms < 1 || c->max_run_timeout_ms > CONFIG_MAX_TIMEOUT_LIMIT_MS) {
		snprintf(err, errlen, "max_run_timeout_ms must be 1..%u", CONFIG_MAX_TIMEOUT_LIMIT_MS);
		return (false);
	}
	if (c->default_run_timeout_ms < 1 || c->default_run_timeout_ms > c->max_run_timeout_ms) {
		snprintf(err, errlen, "default_run_timeout_ms must be 1..max_run_timeout_ms (%u)",
		    c->max_run_timeout_ms);
		return (false);
	}
	if (c->max_output_bytes < 1 || c->max_output_bytes > CONFIG_MAX_OUTPUT_LIMIT) {
		snprintf(err, errlen, "max_output_bytes must be 1..%llu", CONFIG_MAX_OUTPUT_LIMIT);
		return (false);
	}
	if (c->max_log_bytes_per_process < CONFIG_MIN_LOG_BYTES) {
		snprintf(
		    err, errlen, "max_log_bytes_per_process must be at least %llu", CONFIG_MIN_LOG_BYTES);
		return (false);
	}
	if (c->max_input_bytes_per_request < 1 || c->max_input_bytes_per_request > CONFIG_MAX_INPUT_LIMIT) {
		snprintf(err, errlen, "max_input_bytes_per_request must be 1..%llu", CONFIG_MAX_INPUT_LIMIT);
		return (false);
	}
	return (true);
}

void
config_apply(sandproc_v1_Config *c, const sandproc_v1_SetConfigRequest *req)
{
#define CONFIG_APPLY(f)        \
	if (req->has_##f) {    \
		c->f = req->f; \
	}
	CONFIG_FIELDS(CONFIG_APPLY)
#undef CONFIG_APPLY
}

void
config_holder_get(config_holder *h, sandproc_v1_Config *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->c;
	pthread_mutex_unlock(&h->mu);
}

void
config_holder_set(config_holder *h, const sandproc_v1_Config *c)
{
	pthread_mutex_lock(&h->mu);
	h->c = *c;
	pthread_mutex_unlock(&h->mu);
}
