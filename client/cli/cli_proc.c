/* Verbs of their own about processes: run, exec, start, ps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The most stdin `run -i` sends (the server's own limit may be lower). */
#define CLI_RUN_STDIN_MAX (4u * 1024 * 1024)

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

/* Writes a Run's output and returns the exit code a shell would give. */
static int
cli_run_result(cli *cl, const sandproc_v1_RunReply *rep, bool shown)
{
	if (cl->json) {
		cli_print_json(&sandproc_v1_RunReply_info, rep);
	} else {
		fflush(stdout);
		if (!shown) {
			cli_write_fd(1, rep->stdout.data, rep->stdout.len);
			cli_write_fd(2, rep->stderr.data, rep->stderr.len);
		}
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

/*
 * The command: CMD [ARG...], or --shell 'CMD' run by /bin/sh -c. False
 * (usage printed in *rv) when both or neither are given.
 */
static bool
cli_command(const cli_verb *v, const cli_parsed *a, sp_strv_t *out, sp_arena *arena, int *rv)
{
	const char *shell = cli_flag_value(v, a, "--shell");

	memset(out, 0, sizeof(*out));
	if (shell != NULL && a->nrest > 0) {
		*rv = cli_usage("%s: give --shell 'CMD' or -- CMD [ARG...], not both", v->name);
		return (false);
	}
	if (shell != NULL) {
		const char *sh[] = { "/bin/sh", "-c", shell, NULL };
		for (int i = 0; sh[i] != NULL; i++) {
			sp_strv_push(out, sh[i], arena);
		}
		return (true);
	}
	*out = sp_strv_of((const char *const *)a->rest);
	return (true);
}

/* After "not found": a first argument with spaces was meant for a shell. */
static void
cli_hint_shell(const sp_strv_t *argv, int code)
{
	if (code == SP_NOT_FOUND && argv->n == 1 && strchr(argv->v[0], ' ') != NULL) {
		fprintf(stderr,
		    "sandproc: \"%s\" is one argument with spaces: for a command line, use --shell '%s'\n",
		    argv->v[0], argv->v[0]);
	}
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

static int
cli_run_request(cli *cl, sandproc_v1_RunRequest *req)
{
	sandproc_v1_RunReply rep;
	int code;

	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	int timeout = req->timeout_ms ? sp_call_timeout(req->timeout_ms) : -1;
	/* For a person or a pipe, the output as it comes (cli_live.c); --json gives the one record. */
	code = cl->json ? sp_processes_run(cl->c, req, &rep, timeout) : cli_run_live(cl, req, &rep, timeout);
	if (code != SP_OK) {
		int rv = cli_run_failed(cl, code);
		cli_hint_shell(&req->argv, code);
		return (rv);
	}
	return (cli_run_result(cl, &rep, !cl->json));
}

int
cli_run(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_RunRequest req;
	cli_parsed a;
	uint8_t *in = NULL;
	size_t inlen = 0;
	int rv;

	memset(&req, 0, sizeof(req));
	if ((rv = cli_parse(v, argc, argv, &sandproc_v1_RunRequest_info, &req, cl->arena, &a)) != 0) {
		return (rv);
	}
	if (cli_flag_value(v, &a, "--stdin") != NULL && !cli_read_stdin(&in, &inlen, CLI_RUN_STDIN_MAX)) {
		fprintf(
		    stderr, "sandproc: run -i: stdin is over %u bytes or unreadable\n", CLI_RUN_STDIN_MAX);
		return (CLI_EXIT_ERROR);
	}
	if (!cli_command(v, &a, &req.argv, cl->arena, &rv)) {
		free(in);
		return (rv);
	}
	req.stdin.data = in;
	req.stdin.len = inlen;
	rv = cli_run_request(cl, &req);
	free(in);
	return (rv);
}

int
cli_exec(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_RunRequest req;
	cli_parsed a;
	int rv;

	memset(&req, 0, sizeof(req));
	if (argc < 2 || (strcmp(argv[0], "bash") != 0 && strcmp(argv[0], "python") != 0)) {
		return (cli_usage("usage: sandproc %s", v->usage));
	}
	if ((rv = cli_parse(v, argc - 2, argv + 2, &sandproc_v1_RunRequest_info, &req, cl->arena, &a)) != 0) {
		return (rv);
	}
	const char *bash[] = { "bash", "-c", argv[1], NULL }, *py[] = { "python3", "-c", argv[1], NULL };
	req.argv = sp_strv_of(strcmp(argv[0], "bash") == 0 ? bash : py);
	return (cli_run_request(cl, &req));
}

int
cli_start(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_StartRequest req;
	sandproc_v1_Process rep;
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(v, argc, argv, &sandproc_v1_StartRequest_info, &req, cl->arena, &a)) != 0) {
		return (code);
	}
	if (!cli_command(v, &a, &req.argv, cl->arena, &code)) {
		return (code);
	}
	/* --wait-port / --wait-log: started, then waited for (WaitFor) before the record is printed. */
	sandproc_v1_WaitForRequest wf;
	const char *wport = cli_flag_value(v, &a, "--wait-port"), *wlog = cli_flag_value(v, &a, "--wait-log");
	const char *wtime = cli_flag_value(v, &a, "--wait-timeout");
	unsigned long long n;
	memset(&wf, 0, sizeof(wf));
	if (wport != NULL && (!cli_uint(wport, 65535, &n) || n == 0)) {
		return (cli_usage("start: bad value \"%s\" for --wait-port", wport));
	}
	wf.port = wport != NULL ? (uint32_t)n : 0;
	if (wtime != NULL && !cli_uint(wtime, UINT32_MAX, &n)) {
		return (cli_usage("start: bad value \"%s\" for --wait-timeout", wtime));
	}
	wf.timeout_ms = wtime != NULL ? (uint32_t)n : 0;
	wf.log = wlog;
	wf.from_start = true;
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_start(cl->c, &req, &rep, 0)) != SP_OK) {
		int rv = cli_call_failed(cl, code);
		cli_hint_shell(&req.argv, code);
		return (rv);
	}
	if (wport != NULL || wlog != NULL) {
		snprintf(wf.id, sizeof(wf.id), "%s", rep.id);
		return (cli_wait_for(cl, &wf, true));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Process_info, &rep);
	} else {
		printf("%s\n", rep.id);
	}
	return (0);
}

int
cli_ps(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_ListRequest req;
	sandproc_v1_ListReply *rep;
	unsigned long long limit = 0, shown = 0;
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(v, argc, argv, &sandproc_v1_ListRequest_info, &req, cl->arena, &a)) != 0) {
		return (code);
	}
	const char *lim = cli_flag_value(v, &a, "--limit");
	if (lim != NULL && !cli_uint(lim, UINT32_MAX, &limit)) {
		return (cli_usage("ps: bad value \"%s\" for --limit", lim));
	}
	if (!cli_connect(cl) || (rep = malloc(sizeof(*rep))) == NULL) {
		return (CLI_EXIT_ERROR);
	}
	if (!cl->json) {
		cli_print_ps_header();
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
				cli_print_ps_row(&rep->processes[k]);
			}
		}
		memcpy(req.page_token, rep->next_page_token, sizeof(req.page_token));
	} while (req.page_token[0] != '\0' && (limit == 0 || shown < limit));
	free(rep);
	return (code == SP_OK ? 0 : cli_call_failed(cl, code));
}
