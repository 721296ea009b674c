#include "proc/request.h"

#include <stdio.h>
#include <string.h>

#include "sp_limits.h"
#include "sp_status.h"

extern char **environ;

static int
request_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return (SP_INVALID_ARGUMENT);
}

/* Checks a list of strings against a count and a byte limit; kv: each must be KEY=value. */
static int
request_strv(const sp_strv_t *sv, const char *field, size_t max_n, size_t max_bytes, size_t max_one, bool kv,
    char *err, size_t errlen)
{
	size_t total = 0;

	if (sv->n > max_n) {
		snprintf(err, errlen, "%s has %zu entries; the limit is %zu", field, sv->n, max_n);
		return (SP_INVALID_ARGUMENT);
	}
	for (size_t i = 0; i < sv->n; i++) {
		const char *e = sv->v[i];
		size_t len = strlen(e);
		const char *eq = strchr(e, '=');
		total += len + 1;
		if (len > max_one) {
			snprintf(err, errlen, "%s entry %zu is %zu bytes; the limit is %zu", field, i, len,
			    max_one);
			return (SP_INVALID_ARGUMENT);
		}
		if (kv && (eq == NULL || eq == e)) {
			snprintf(err, errlen, "%s entry \"%.64s\" is not KEY=value", field, e);
			return (SP_INVALID_ARGUMENT);
		}
	}
	if (total > max_bytes) {
		snprintf(err, errlen, "%s is %zu bytes in all; the limit is %zu", field, total, max_bytes);
		return (SP_INVALID_ARGUMENT);
	}
	return (SP_OK);
}

static int
request_common(const sp_strv_t *argv, const sp_strv_t *env, const char *cwd, char *err, size_t errlen)
{
	int code;

	if (argv->n == 0) {
		return (request_fail(err, errlen, "argv is empty"));
	}
	if (argv->v[0][0] == '\0') {
		return (request_fail(err, errlen, "argv[0] is empty"));
	}
	if ((code = request_strv(argv, "argv", SP_MAX_ARGS, SP_MAX_ARGV_BYTES, SP_MAX_ARGV_BYTES, false, err,
	         errlen)) != SP_OK ||
	    (code = request_strv(
	         env, "env", SP_MAX_ENV, SP_MAX_ENV_BYTES, SP_MAX_ENV_BYTES, true, err, errlen)) != SP_OK) {
		return (code);
	}
	if (cwd != NULL && strlen(cwd) > SP_MAX_CWD) {
		snprintf(err, errlen, "cwd is %zu bytes; the limit is %d", strlen(cwd), SP_MAX_CWD);
		return (SP_INVALID_ARGUMENT);
	}
	return (SP_OK);
}

/* Where a host process's relative cwd starts (sandprocd --workdir); set once at start. */
static const char *request_workdir;

void
request_set_workdir(const char *dir)
{
	request_workdir = dir;
}

/* A host cwd made absolute: none is the workdir, a relative one is taken from it. NULL when out of memory. */
static const char *
request_cwd(const char *cwd, sp_arena *a)
{
	if (request_workdir == NULL || (cwd != NULL && cwd[0] == '/')) {
		return (cwd);
	}
	if (cwd == NULL || cwd[0] == '\0') {
		return (request_workdir);
	}
	char *out = sp_arena_alloc(a, strlen(request_workdir) + strlen(cwd) + 2);
	if (out != NULL) {
		sprintf(out, "%s/%s", request_workdir, cwd);
	}
	return (out);
}

int
request_tty_size(uint32_t cols, uint32_t rows, char *err, size_t errlen)
{
	if (cols < 1 || rows < 1 || cols > SP_MAX_TTY_SIDE || rows > SP_MAX_TTY_SIDE) {
		snprintf(err, errlen, "cols and rows must be 1..%d", SP_MAX_TTY_SIDE);
		return (SP_INVALID_ARGUMENT);
	}
	if ((uint64_t)cols * rows > SP_MAX_TTY_CELLS) {
		snprintf(err, errlen, "a terminal of %ux%u is %llu cells; the limit is %d", cols, rows,
		    (unsigned long long)cols * rows, SP_MAX_TTY_CELLS);
		return (SP_INVALID_ARGUMENT);
	}
	return (SP_OK);
}

static size_t
request_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return (eq != NULL ? (size_t)(eq - kv) : strlen(kv));
}

/*
 * The child's environment: base, with add's entries replacing or adding
 * keys. A TTY child gets TERM=xterm-256color unless add chose a TERM: the
 * server's own TERM is not the PTY's. NULL when out of memory.
 */
const char **
request_env(const char *const *base, const sp_strv_t *add, bool tty, sp_arena *a)
{
	size_t n = 0, k = 0;
	const char **env;
	bool add_term = false;

	while (base != NULL && base[n] != NULL) {
		n++;
	}
	if ((env = sp_arena_alloc(a, (n + add->n + 2) * sizeof(*env))) == NULL) {
		return (NULL);
	}
	for (size_t j = 0; j < add->n; j++) {
		add_term |= strncmp(add->v[j], "TERM=", 5) == 0;
	}
	for (size_t i = 0; i < n; i++) {
		size_t kl = request_key_len(base[i]);
		bool replaced = tty && strncmp(base[i], "TERM=", 5) == 0;
		for (size_t j = 0; j < add->n && !replaced; j++) {
			replaced = request_key_len(add->v[j]) == kl && strncmp(add->v[j], base[i], kl) == 0;
		}
		if (!replaced) {
			env[k++] = base[i];
		}
	}
	for (size_t j = 0; j < add->n; j++) {
		env[k++] = add->v[j];
	}
	if (tty && !add_term) {
		env[k++] = "TERM=xterm-256color";
	}
	env[k] = NULL;
	return (env);
}

int
request_start_plan(
    const sandproc_v1_StartRequest *req, struct start_plan *plan, sp_arena *arena, char *err, size_t errlen)
{
	int code;

	memset(plan, 0, sizeof(*plan));
	if ((code = request_common(&req->argv, &req->env, req->cwd, err, errlen)) != SP_OK ||
	    (code = request_strv(&req->labels, "labels", SP_MAX_LABELS, SP_MAX_LABELS * SP_MAX_LABEL_BYTES,
	         SP_MAX_LABEL_BYTES, true, err, errlen)) != SP_OK) {
		return (code);
	}
	if (req->name != NULL && strlen(req->name) > SP_MAX_NAME) {
		snprintf(err, errlen, "name is %zu bytes; the limit is %d", strlen(req->name), SP_MAX_NAME);
		return (SP_INVALID_ARGUMENT);
	}
	plan->cols = req->tty ? (uint16_t)(req->cols ? req->cols : 80) : 0;
	plan->rows = req->tty ? (uint16_t)(req->rows ? req->rows : 24) : 0;
	if (req->tty &&
	    (code = request_tty_size(req->cols ? req->cols : 80, req->rows ? req->rows : 24, err, errlen)) !=
	        SP_OK) {
		return (code);
	}
	plan->req = req;
	plan->spec = (spawn_spec){
		.argv = (const char *const *)req->argv.v,
		.argc = req->argv.n,
		.cwd = request_cwd(req->cwd, arena),
		.env = request_env((const char *const *)environ, &req->env, req->tty, arena),
		.tty = req->tty,
		.cols = plan->cols,
		.rows = plan->rows,
		.in = req->no_stdin ? SPAWN_STDIN_NULL : SPAWN_STDIN_PIPE,
		.big_pipes = true,
	};
	if (plan->spec.env == NULL || (req->cwd != NULL && plan->spec.cwd == NULL)) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	return (SP_OK);
}

int
request_run_spec(
    const sandproc_v1_RunRequest *req, spawn_spec *spec, sp_arena *arena, char *err, size_t errlen)
{
	int code;

	if ((code = request_common(&req->argv, &req->env, req->cwd, err, errlen)) != SP_OK) {
		return (code);
	}
	*spec = (spawn_spec){
		.argv = (const char *const *)req->argv.v,
		.argc = req->argv.n,
		.cwd = request_cwd(req->cwd, arena),
		.env = request_env((const char *const *)environ, &req->env, false, arena),
		.in = req->stdin.len > 0 ? SPAWN_STDIN_PIPE : SPAWN_STDIN_NULL,
		.merge_stderr = req->merge_stderr,
	};
	if (spec->env == NULL || (req->cwd != NULL && spec->cwd == NULL)) {
		snprintf(err, errlen, "out of memory");
		return (SP_RESOURCE_EXHAUSTED);
	}
	return (SP_OK);
}
