/*
 * sandproc [--server URL] [--events URL] [--token T] [--json] VERB [ARGS]
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(cli *cl, int argc, char **argv);
	const char *usage;
} cli_verbs[] = {
	{ "run", cli_run,
	    "run [--timeout MS] [--max-output BYTES] [--cwd DIR] [-e K=V]... [-i] -- CMD [ARG...]" },
	{ "start", cli_start,
	    "start [--tty] [--cols N --rows N] [--cwd DIR] [-e K=V]... [--name N] [--label K=V]... "
	    "[--timeout S] [--no-stdin] -- CMD [ARG...]" },
	{ "ps", cli_ps, "ps [--state running|exited|killed|failed] [--limit N]" },
	{ "get", cli_get, "get ID" },
	{ "stop", cli_stop, "stop ID [--grace MS] [--wait MS]" },
	{ "kill", cli_kill, "kill ID [--wait MS]" },
	{ "signal", cli_signal, "signal ID SIG" },
	{ "rm", cli_rm, "rm ID" },
	{ "wait", cli_wait, "wait ID [--timeout MS]" },
	{ "logs", cli_logs, "logs ID [--tail N] [--stream stdout|stderr|combined|pty] [--follow]" },
	{ "input", cli_input, "input ID [DATA | -] [--eof]" },
	{ "attach", cli_attach, "attach ID   (detach with Ctrl-])" },
	{ "resize", cli_resize, "resize ID COLS ROWS" },
	{ "screen", cli_screen, "screen ID" },
	{ "config", cli_config, "config [get | set KEY=VALUE...]" },
	{ "exec", cli_exec, "exec bash 'COMMAND' | exec python 'CODE'  [--timeout MS]" },
	{ "health", cli_health, "health" },
};

#define CLI_NVERBS (sizeof(cli_verbs) / sizeof(cli_verbs[0]))

static void
cli_print_usage(FILE *f)
{
	fprintf(
	    f, "usage: sandproc [--server URL] [--events URL] [--token T] [--json] VERB [ARGS]\n\nverbs:\n");
	for (size_t i = 0; i < CLI_NVERBS; i++) {
		fprintf(f, "  %s\n", cli_verbs[i].usage);
	}
	fprintf(f,
	    "\nenvironment: SANDPROC_URL, SANDPROC_EVENTS_URL, SANDPROC_TOKEN\n"
	    "defaults: --server " SP_DEFAULT_URL ", --events " SP_DEFAULT_EVENTS_URL "\n");
}

bool
cli_connect(cli *cl)
{
	char err[600];
	int code;

	if (cl->c != NULL) {
		return (true);
	}
	if ((code = sp_connect(&cl->c, cl->server, cl->token, err, sizeof(err))) != SP_OK) {
		fprintf(stderr, "sandproc: %s: %s\n", sp_status_name(code), err);
		return (false);
	}
	return (true);
}

int
cli_call_failed(cli *cl, int code)
{
	fprintf(stderr, "sandproc: %s: %s\n", sp_status_name(code), sp_client_error(cl->c));
	return (CLI_EXIT_ERROR);
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("sandproc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see sandproc --help)\n", stderr);
	return (CLI_EXIT_USAGE);
}

bool
cli_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9') {
		return (false);
	}
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > max) {
		return (false);
	}
	*out = v;
	return (true);
}

bool
cli_id(char *dst, size_t size, const char *id)
{
	if (id == NULL || strlen(id) >= size) {
		return (false);
	}
	strcpy(dst, id);
	return (true);
}

void
cli_print_json(const sp_msg_info *info, const void *msg)
{
	sp_json_print(stdout, info, msg);
	fputc('\n', stdout);
}

static void
cli_print_time(const char *key, int64_t ms)
{
	char buf[64] = "-";
	if (ms > 0) {
		time_t t = (time_t)(ms / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	}
	printf("%-11s %s\n", key, buf);
}

static void
cli_print_strv(const char *key, const sp_strv_t *sv)
{
	printf("%-11s", key);
	for (size_t i = 0; i < sv->n; i++) {
		printf(" %s", sv->v[i]);
	}
	printf("\n");
}

void
cli_print_process(cli *cl, const sandproc_v1_Process *p)
{
	if (cl->json) {
		cli_print_json(&sandproc_v1_Process_info, p);
		return;
	}
	printf("%-11s %s\n", "id", p->id);
	printf("%-11s %s\n", "state", sp_enum_short_name(&sandproc_v1_State_info, p->state));
	cli_print_strv("argv", &p->argv);
	printf("%-11s %d\n", "pid", p->pid);
	if (p->state != sandproc_v1_State_STATE_RUNNING) {
		printf("%-11s %d\n", "exit_code", p->exit_code);
		if (p->signal != 0) {
			printf("%-11s %d\n", "signal", p->signal);
		}
	}
	cli_print_time("started_at", p->started_at_ms);
	cli_print_time("exited_at", p->exited_at_ms);
	if (p->cwd != NULL && p->cwd[0] != '\0') {
		printf("%-11s %s\n", "cwd", p->cwd);
	}
	if (p->name != NULL && p->name[0] != '\0') {
		printf("%-11s %s\n", "name", p->name);
	}
	if (p->labels.n > 0) {
		cli_print_strv("labels", &p->labels);
	}
	if (p->tty) {
		printf("%-11s %ux%u\n", "tty", p->cols, p->rows);
	}
	if (p->timeout_s > 0) {
		printf("%-11s %u s\n", "timeout", p->timeout_s);
	}
	if (p->error[0] != '\0') {
		printf("%-11s %s\n", "error", p->error);
	}
}

int
cli_exit_code(const sandproc_v1_Process *p)
{
	switch (p->state) {
	case sandproc_v1_State_STATE_EXITED:
		return (p->exit_code & 0xff);
	case sandproc_v1_State_STATE_KILLED:
		return (p->signal > 0 ? 128 + p->signal : 128 + 9);
	case sandproc_v1_State_STATE_FAILED:
		return (p->exit_code > 0 ? p->exit_code : CLI_EXIT_ERROR);
	default:
		return (CLI_EXIT_TIMEOUT);
	}
}

int
main(int argc, char **argv)
{
	cli cl;
	int i, rv;

	memset(&cl, 0, sizeof(cl));
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cli_print_usage(stdout);
			return (0);
		} else if (strcmp(a, "--json") == 0) {
			cl.json = true;
		} else if (v != NULL && strcmp(a, "--server") == 0) {
			cl.server = v, i++;
		} else if (v != NULL && strcmp(a, "--events") == 0) {
			cl.events = v, i++;
		} else if (v != NULL && strcmp(a, "--token") == 0) {
			cl.token = v, i++;
		} else {
			return (cli_usage("unknown or incomplete global option \"%s\"", a));
		}
	}
	if (i == argc) {
		cli_print_usage(stderr);
		return (CLI_EXIT_USAGE);
	}
	for (size_t k = 0; k < CLI_NVERBS; k++) {
		if (strcmp(argv[i], cli_verbs[k].name) == 0) {
			rv = cli_verbs[k].fn(&cl, argc - i - 1, argv + i + 1);
			fflush(stdout);
			sp_client_free(cl.c);
			return (rv);
		}
	}
	return (cli_usage("unknown verb \"%s\"", argv[i]));
}
