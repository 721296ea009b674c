/* Verbs about processes: health, run, exec, start, ps, get, stop, kill, signal, rm, wait. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The most stdin `run -i` sends (the server's own limit may be lower). */
#define CLI_RUN_STDIN_MAX (4u * 1024 * 1024)

typedef struct cli_cmd {
	const char **env;
	size_t nenv;
	const char **labels;
	size_t nlabels;
	char **argv;
	int argc;
} cli_cmd;

/* Collects -e K=V / --label K=V pairs into NULL-terminated arrays. */
static bool
cli_push(const char ***arr, size_t *n, const char *v)
{
	const char **a = realloc(*arr, (*n + 2) * sizeof(*a));
	if (a == NULL) {
		return (false);
	}
	a[(*n)++] = v;
	a[*n] = NULL;
	*arr = a;
	return (true);
}

static bool
cli_kv(const char *v)
{
	const char *eq = strchr(v, '=');
	return (eq != NULL && eq != v);
}

static void
cli_cmd_free(cli_cmd *cmd)
{
	free(cmd->env);
	free(cmd->labels);
}

int
cli_health(cli *cl, int argc, char **argv)
{
	sandproc_v1_HealthRequest req;
	sandproc_v1_HealthReply rep;
	int code;

	(void)argv;
	if (argc != 0) {
		return (cli_usage("health takes no arguments"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	memset(&req, 0, sizeof(req));
	if ((code = sp_system_health(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_HealthReply_info, &rep);
	} else {
		printf("ok: sandprocd %s, pid %d, up %llu s, %u running\n", rep.version, rep.pid,
		    (unsigned long long)(rep.uptime_ms / 1000), rep.running);
	}
	return (0);
}

/* Reads all of stdin, up to max bytes. */
static bool
cli_read_stdin(uint8_t **out, size_t *len, size_t max)
{
	size_t cap = 64 * 1024, n = 0;
	uint8_t *buf = malloc(cap);

	while (buf != NULL) {
		if (n == cap) {
			if (cap >= max + 1) {
				break;
			}
			uint8_t *b = realloc(buf, cap * 2);
			if (b == NULL) {
				break;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(0, buf + n, cap - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			*out = buf;
			*len = n;
			return (r == 0 && n <= max);
		}
		n += (size_t)r;
		if (n > max) {
			break;
		}
	}
	free(buf);
	return (false);
}

static void
cli_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Writes a Run's output and returns the exit code a shell would give. */
static int
cli_run_result(cli *cl, const sandproc_v1_RunReply *rep)
{
	if (cl->json) {
		cli_print_json(&sandproc_v1_RunReply_info, rep);
	} else {
		fflush(stdout);
		cli_write_all(1, rep->stdout.data, rep->stdout.len);
		cli_write_all(2, rep->stderr.data, rep->stderr.len);
		if (rep->stdout_truncated || rep->stderr_truncated) {
			fprintf(stderr, "sandproc: output truncated (%s%s%s)\n",
			    rep->stdout_truncated ? "stdout" : "",
			    rep->stdout_truncated && rep->stderr_truncated ? ", " : "",
			    rep->stderr_truncated ? "stderr" : "");
		}
	}
	if (rep->timed_out) {
		fprintf(stderr, "sandproc: timed out after %llu ms; its process group was killed\n",
		    (unsigned long long)rep->duration_ms);
		return (CLI_EXIT_TIMEOUT);
	}
	if (rep->signal > 0) {
		return (128 + rep->signal);
	}
	return (rep->exit_code & 0xff);
}

/* A Run that could not start exits as a shell would: 127 not found, 126 not runnable. */
static int
cli_run_failed(cli *cl, int code)
{
	cli_call_failed(cl, code);
	if (code == SP_NOT_FOUND) {
		return (CLI_EXIT_NOT_FOUND);
	}
	if (code == SP_PERMISSION_DENIED || code == SP_FAILED_PRECONDITION) {
		return (CLI_EXIT_CANNOT_EXEC);
	}
	return (CLI_EXIT_ERROR);
}

int
cli_run(cli *cl, int argc, char **argv)
{
	sandproc_v1_RunRequest req;
	sandproc_v1_RunReply rep;
	unsigned long long v;
	cli_cmd cmd = { 0 };
	uint8_t *in = NULL;
	size_t inlen = 0;
	bool read_stdin = false;
	int i, code, rv;

	memset(&req, 0, sizeof(req));
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "--stdin") == 0) {
			read_stdin = true;
		} else if (strcmp(a, "--timeout") == 0 && cli_uint(val, UINT32_MAX, &v)) {
			req.timeout_ms = (uint32_t)v, i++;
		} else if (strcmp(a, "--max-output") == 0 && cli_uint(val, UINT64_MAX, &v)) {
			req.max_output_bytes = v, i++;
		} else if (strcmp(a, "--cwd") == 0 && val != NULL) {
			req.cwd = val, i++;
		} else if (strcmp(a, "-e") == 0 && val != NULL && cli_kv(val)) {
			cli_push(&cmd.env, &cmd.nenv, val), i++;
		} else {
			cli_cmd_free(&cmd);
			return (cli_usage("run: bad option \"%s\"", a));
		}
	}
	if (i == argc) {
		cli_cmd_free(&cmd);
		return (cli_usage("run: no command given"));
	}
	if (read_stdin && !cli_read_stdin(&in, &inlen, CLI_RUN_STDIN_MAX)) {
		cli_cmd_free(&cmd);
		fprintf(
		    stderr, "sandproc: run -i: stdin is over %u bytes or unreadable\n", CLI_RUN_STDIN_MAX);
		return (CLI_EXIT_ERROR);
	}
	if (!cli_connect(cl)) {
		cli_cmd_free(&cmd);
		free(in);
		return (CLI_EXIT_ERROR);
	}
	req.argv = sp_strv_of((const char *const *)argv + i);
	req.env = sp_strv_of(cmd.env);
	req.stdin.data = in;
	req.stdin.len = inlen;
	code = sp_processes_run(cl->c, &req, &rep, req.timeout_ms ? sp_call_timeout(req.timeout_ms) : -1);
	rv = code == SP_OK ? cli_run_result(cl, &rep) : cli_run_failed(cl, code);
	cli_cmd_free(&cmd);
	free(in);
	return (rv);
}

int
cli_exec(cli *cl, int argc, char **argv)
{
	sandproc_v1_RunReply rep;
	unsigned long long timeout = 0;
	int code;

	if (argc == 4 && strcmp(argv[2], "--timeout") == 0 && cli_uint(argv[3], UINT32_MAX, &timeout)) {
		argc = 2;
	}
	if (argc != 2 || (strcmp(argv[0], "bash") != 0 && strcmp(argv[0], "python") != 0)) {
		return (cli_usage("usage: exec bash 'COMMAND' | exec python 'CODE' [--timeout MS]"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	code = strcmp(argv[0], "bash") == 0 ? sp_exec_bash(cl->c, argv[1], (uint32_t)timeout, &rep)
	                                    : sp_exec_python(cl->c, argv[1], (uint32_t)timeout, &rep);
	return (code == SP_OK ? cli_run_result(cl, &rep) : cli_run_failed(cl, code));
}

int
cli_start(cli *cl, int argc, char **argv)
{
	sandproc_v1_StartRequest req;
	sandproc_v1_Process rep;
	unsigned long long v;
	cli_cmd cmd = { 0 };
	int i, code;

	memset(&req, 0, sizeof(req));
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--tty") == 0 || strcmp(a, "-t") == 0) {
			req.tty = true;
		} else if (strcmp(a, "--no-stdin") == 0) {
			req.no_stdin = true;
		} else if (strcmp(a, "--cols") == 0 && cli_uint(val, 1000, &v)) {
			req.cols = (uint32_t)v, i++;
		} else if (strcmp(a, "--rows") == 0 && cli_uint(val, 1000, &v)) {
			req.rows = (uint32_t)v, i++;
		} else if (strcmp(a, "--timeout") == 0 && cli_uint(val, UINT32_MAX, &v)) {
			req.timeout_s = (uint32_t)v, i++;
		} else if (strcmp(a, "--cwd") == 0 && val != NULL) {
			req.cwd = val, i++;
		} else if (strcmp(a, "--name") == 0 && val != NULL) {
			req.name = val, i++;
		} else if (strcmp(a, "-e") == 0 && val != NULL && cli_kv(val)) {
			cli_push(&cmd.env, &cmd.nenv, val), i++;
		} else if (strcmp(a, "--label") == 0 && val != NULL && cli_kv(val)) {
			cli_push(&cmd.labels, &cmd.nlabels, val), i++;
		} else {
			cli_cmd_free(&cmd);
			return (cli_usage("start: bad option \"%s\"", a));
		}
	}
	if (i == argc) {
		cli_cmd_free(&cmd);
		return (cli_usage("start: no command given"));
	}
	if (!cli_connect(cl)) {
		cli_cmd_free(&cmd);
		return (CLI_EXIT_ERROR);
	}
	req.argv = sp_strv_of((const char *const *)argv + i);
	req.env = sp_strv_of(cmd.env);
	req.labels = sp_strv_of(cmd.labels);
	code = sp_processes_start(cl->c, &req, &rep, 0);
	cli_cmd_free(&cmd);
	if (code != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Process_info, &rep);
	} else {
		printf("%s\n", rep.id);
	}
	return (0);
}

static void
cli_ps_row(const sandproc_v1_Process *p)
{
	char started[32] = "-", exit[16] = "-", cmd[256] = "";
	size_t off = 0;

	if (p->started_at_ms > 0) {
		time_t t = (time_t)(p->started_at_ms / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S", &tm);
	}
	if (p->state == sandproc_v1_State_STATE_KILLED && p->signal > 0) {
		snprintf(exit, sizeof(exit), "sig %d", p->signal);
	} else if (p->state != sandproc_v1_State_STATE_RUNNING) {
		snprintf(exit, sizeof(exit), "%d", p->exit_code);
	}
	for (size_t i = 0; i < p->argv.n && off < sizeof(cmd) - 1; i++) {
		int n = snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "", p->argv.v[i]);
		off += n > 0 ? (size_t)n : 0;
	}
	printf("%-29s  %-7s  %7d  %-6s  %-19s  %-12s  %s\n", p->id,
	    sp_enum_short_name(&sandproc_v1_State_info, p->state), p->pid, exit, started,
	    p->name != NULL && p->name[0] ? p->name : "-", cmd);
}

int
cli_ps(cli *cl, int argc, char **argv)
{
	sandproc_v1_ListRequest req;
	sandproc_v1_ListReply *rep;
	unsigned long long limit = 0, shown = 0;
	int code = SP_OK;

	memset(&req, 0, sizeof(req));
	for (int i = 0; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--state") == 0 && val != NULL) {
			bool ok = false;
			for (size_t k = 1; k < sandproc_v1_State_info.count; k++) {
				if (strcmp(val, sandproc_v1_State_info.values[k].short_name) == 0) {
					req.state = (sandproc_v1_State)sandproc_v1_State_info.values[k].value;
					ok = true;
				}
			}
			if (!ok) {
				return (cli_usage("ps: unknown state \"%s\"", val));
			}
			i++;
		} else if (strcmp(argv[i], "--limit") == 0 && cli_uint(val, UINT32_MAX, &limit)) {
			i++;
		} else {
			return (cli_usage("ps: bad option \"%s\"", argv[i]));
		}
	}
	if (!cli_connect(cl) || (rep = malloc(sizeof(*rep))) == NULL) {
		return (CLI_EXIT_ERROR);
	}
	if (!cl->json) {
		printf("%-29s  %-7s  %7s  %-6s  %-19s  %-12s  %s\n", "ID", "STATE", "PID", "EXIT", "STARTED",
		    "NAME", "COMMAND");
	}
	do {
		if ((code = sp_processes_list(cl->c, &req, rep, 0)) != SP_OK) {
			break;
		}
		for (pb_size_t k = 0; k < rep->processes_count && (limit == 0 || shown < limit);
		     k++, shown++) {
			if (cl->json) {
				cli_print_json(&sandproc_v1_Process_info, &rep->processes[k]);
			} else {
				cli_ps_row(&rep->processes[k]);
			}
		}
		memcpy(req.page_token, rep->next_page_token, sizeof(req.page_token));
	} while (req.page_token[0] != '\0' && (limit == 0 || shown < limit));
	free(rep);
	return (code == SP_OK ? 0 : cli_call_failed(cl, code));
}

int
cli_get(cli *cl, int argc, char **argv)
{
	sandproc_v1_GetRequest req;
	sandproc_v1_Process rep;
	int code;

	memset(&req, 0, sizeof(req));
	if (argc != 1 || !cli_id(req.id, sizeof(req.id), argv[0])) {
		return (cli_usage("usage: get ID"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_get(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	cli_print_process(cl, &rep);
	return (0);
}

/* After stop/kill: the record when waited for, otherwise a short line. */
static int
cli_report(cli *cl, const sandproc_v1_Process *p)
{
	if (cl->json) {
		cli_print_json(&sandproc_v1_Process_info, p);
	} else {
		printf("%s %s\n", p->id, sp_enum_short_name(&sandproc_v1_State_info, p->state));
	}
	return (0);
}

/* A "--name MS" option of a verb that takes "ID [options]". */
typedef struct cli_ms_opt {
	const char *name;
	uint32_t *dst;
} cli_ms_opt;

/*
 * Parses "ID [--opt MS]..." into id and the options' destinations; on a bad
 * argument prints usage and returns false.
 */
static bool
cli_id_and_ms(
    int argc, char **argv, char *id, size_t idlen, const cli_ms_opt *opts, size_t nopts, const char *usage)
{
	unsigned long long v;

	if (argc < 1 || !cli_id(id, idlen, argv[0])) {
		cli_usage("usage: %s", usage);
		return (false);
	}
	for (int i = 1; i < argc; i++) {
		size_t k = 0;
		while (k < nopts && strcmp(argv[i], opts[k].name) != 0) {
			k++;
		}
		if (k == nopts || i + 1 >= argc || !cli_uint(argv[i + 1], UINT32_MAX, &v)) {
			cli_usage("bad option \"%s\" (usage: %s)", argv[i], usage);
			return (false);
		}
		*opts[k].dst = (uint32_t)v;
		i++;
	}
	return (true);
}

int
cli_stop(cli *cl, int argc, char **argv)
{
	sandproc_v1_StopRequest req;
	sandproc_v1_Process rep;
	int code;

	memset(&req, 0, sizeof(req));
	const cli_ms_opt opts[] = { { "--grace", &req.grace_ms }, { "--wait", &req.wait_ms } };
	if (!cli_id_and_ms(argc, argv, req.id, sizeof(req.id), opts, 2, "stop ID [--grace MS] [--wait MS]")) {
		return (CLI_EXIT_USAGE);
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_stop(cl->c, &req, &rep, sp_call_timeout(req.wait_ms))) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (cli_report(cl, &rep));
}

int
cli_kill(cli *cl, int argc, char **argv)
{
	sandproc_v1_KillRequest req;
	sandproc_v1_Process rep;
	int code;

	memset(&req, 0, sizeof(req));
	const cli_ms_opt opts[] = { { "--wait", &req.wait_ms } };
	if (!cli_id_and_ms(argc, argv, req.id, sizeof(req.id), opts, 1, "kill ID [--wait MS]")) {
		return (CLI_EXIT_USAGE);
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_kill(cl->c, &req, &rep, sp_call_timeout(req.wait_ms))) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (cli_report(cl, &rep));
}

int
cli_signal(cli *cl, int argc, char **argv)
{
	sandproc_v1_SignalRequest req;
	sandproc_v1_Process rep;
	int code;

	memset(&req, 0, sizeof(req));
	if (argc != 2 || !cli_id(req.id, sizeof(req.id), argv[0]) || strlen(argv[1]) >= sizeof(req.signal)) {
		return (cli_usage("usage: signal ID SIG"));
	}
	strcpy(req.signal, argv[1]);
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_signal(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (cli_report(cl, &rep));
}

int
cli_rm(cli *cl, int argc, char **argv)
{
	sandproc_v1_DeleteRequest req;
	sandproc_v1_DeleteReply rep;
	int code;

	memset(&req, 0, sizeof(req));
	if (argc != 1 || !cli_id(req.id, sizeof(req.id), argv[0])) {
		return (cli_usage("usage: rm ID"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_delete(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		printf("{\"id\":\"%s\",\"deleted\":true}\n", req.id);
	}
	return (0);
}

int
cli_wait(cli *cl, int argc, char **argv)
{
	sandproc_v1_WaitRequest req;
	sandproc_v1_Process rep;
	int code;

	memset(&req, 0, sizeof(req));
	const cli_ms_opt opts[] = { { "--timeout", &req.timeout_ms } };
	if (!cli_id_and_ms(argc, argv, req.id, sizeof(req.id), opts, 1, "wait ID [--timeout MS]")) {
		return (CLI_EXIT_USAGE);
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_wait(cl->c, &req, &rep, sp_call_timeout(req.timeout_ms))) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Process_info, &rep);
	}
	if (rep.state == sandproc_v1_State_STATE_RUNNING) {
		fprintf(stderr, "sandproc: %s still running after %u ms\n", rep.id, req.timeout_ms);
	}
	return (cli_exit_code(&rep));
}
