/*
 * sandproc [--server URL] [--events URL] [--token T] [--tls-ca PEM] [--tls-cert PEM --tls-key PEM]
 *          [--json] VERB [ARGS]
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void
cli_print_usage(FILE *f)
{
	fprintf(f,
	    "usage: sandproc [--server URL] [--events URL|none] [--token T] [--tls-ca PEM]\n"
	    "                [--tls-cert PEM --tls-key PEM] [--json] VERB [ARGS]\n\nverbs:\n");
	for (size_t i = 0; i < cli_nverbs; i++) {
		fprintf(f, "  %s\n", cli_verbs[i].usage);
		if (cli_verbs[i].help != NULL) {
			fprintf(f, "      %s\n", cli_verbs[i].help);
		}
	}
	fprintf(f,
	    "\nenvironment: SANDPROC_URL, SANDPROC_EVENTS_URL, SANDPROC_TOKEN, SANDPROC_DATA,\n"
	    "             SANDPROC_TLS_CA, SANDPROC_TLS_CERT, SANDPROC_TLS_KEY\n"
	    "key: --token, else SANDPROC_TOKEN, else admin.key in SANDPROC_DATA (default " SP_DEFAULT_DATA
	    ")\n"
	    "--events none: follow output by Logs long polls instead of the event feed\n"
	    "defaults: --server " SP_DEFAULT_URL ", --events " SP_DEFAULT_EVENTS_URL "\n"
	    "limits: argv %d entries (%d KiB), env %d entries (%d KiB), %d labels of %d bytes,\n"
	    "        name %d bytes, cwd %d bytes, terminals up to %dx%d and %d cells\n",
	    SP_MAX_ARGS, SP_MAX_ARGV_BYTES / 1024, SP_MAX_ENV, SP_MAX_ENV_BYTES / 1024, SP_MAX_LABELS,
	    SP_MAX_LABEL_BYTES, SP_MAX_NAME, SP_MAX_CWD, SP_MAX_TTY_SIDE, SP_MAX_TTY_SIDE, SP_MAX_TTY_CELLS);
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

/* Shows a generic verb's reply; returns the exit code. */
static int
cli_show_reply(cli *cl, const cli_verb *v, const void *req, const void *rep)
{
	const sp_msg_info *info = v->method->response;

	switch (v->show) {
	case CLI_SHOW_RECORD:
		cli_print_process(cl, rep);
		return (0);
	case CLI_SHOW_STATE:
		if (cl->json) {
			cli_print_json(info, rep);
		} else {
			const sandproc_v1_Process *p = rep;
			printf("%s %s\n", p->id, sp_enum_short_name(&sandproc_v1_State_info, p->state));
		}
		return (0);
	case CLI_SHOW_WAITED: {
		const sandproc_v1_Process *p = rep;
		if (cl->json) {
			cli_print_json(info, rep);
		}
		if (p->state == sandproc_v1_State_STATE_RUNNING) {
			fprintf(stderr, "sandproc: %s still running after %u ms\n", p->id,
			    ((const sandproc_v1_WaitRequest *)req)->timeout_ms);
		}
		return (cli_exit_code(p));
	}
	case CLI_SHOW_SCREEN: {
		const sandproc_v1_ScreenReply *s = rep;
		if (cl->json) {
			cli_print_json(info, rep);
			return (0);
		}
		for (size_t i = 0; i < s->lines.n; i++) {
			printf("%s\n", s->lines.v[i]);
		}
		return (0);
	}
	case CLI_SHOW_HEALTH: {
		const sandproc_v1_HealthReply *h = rep;
		if (cl->json) {
			cli_print_json(info, rep);
		} else {
			printf("ok: sandprocd %s, pid %d, up %llu s, %u running%s%s\n", h->version, h->pid,
			    (unsigned long long)(h->uptime_ms / 1000), h->running,
			    h->degraded ? "; DEGRADED: " : "", h->degraded ? h->fault : "");
		}
		return (0);
	}
	case CLI_SHOW_DELETED:
		if (cl->json) {
			printf("{\"id\":\"%s\",\"deleted\":true}\n",
			    ((const sandproc_v1_DeleteRequest *)req)->id);
		}
		return (0);
	case CLI_SHOW_NONE:
		if (cl->json) {
			cli_print_json(info, rep);
		}
		return (0);
	}
	return (0);
}

int
cli_resolve_id(cli *cl, char *id, size_t len)
{
	sandproc_v1_ListRequest req;
	sandproc_v1_ListReply *rep;
	int code, running = 0;
	const char *pick = NULL;

	/* An id is used as it is: proc_ and 24 lower-case hex digits. */
	bool is_id = strncmp(id, "proc_", 5) == 0 && strlen(id) == 29;
	for (size_t i = 5; is_id && i < 29; i++) {
		is_id = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
	}
	if (is_id || id[0] == '\0') {
		return (0);
	}
	if (!cli_connect(cl) || (rep = malloc(sizeof(*rep))) == NULL) {
		return (CLI_EXIT_ERROR);
	}
	memset(&req, 0, sizeof(req));
	req.name = id;
	req.limit = 100;
	if ((code = sp_processes_list(cl->c, &req, rep, 0)) != SP_OK) {
		free(rep);
		return (cli_call_failed(cl, code));
	}
	/* The running one (names are unique among running processes of a sandbox), else the newest. */
	for (pb_size_t i = 0; i < rep->processes_count; i++) {
		if (rep->processes[i].state == sandproc_v1_State_STATE_RUNNING) {
			running++;
			pick = running == 1 ? rep->processes[i].id : pick;
		}
	}
	if (running == 0 && rep->processes_count > 0) {
		pick = rep->processes[0].id;
	}
	int rv = 0;
	if (running > 1) {
		fprintf(stderr,
		    "sandproc: FAILED_PRECONDITION: %d running processes are named \"%s\" (in different "
		    "sandboxes): give the id\n",
		    running, id);
		rv = CLI_EXIT_ERROR;
	} else if (pick == NULL) {
		fprintf(stderr, "sandproc: NOT_FOUND: no process \"%s\" (neither an id nor a name)\n", id);
		rv = CLI_EXIT_ERROR;
	} else {
		snprintf(id, len, "%s", pick);
	}
	free(rep);
	return (rv);
}

int
cli_call_verb(cli *cl, const cli_verb *v, void *req, int timeout_ms)
{
	void *rep = calloc(1, v->method->response->size);
	int code, rv;

	if (rep == NULL || !cli_connect(cl)) {
		free(rep);
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_client_call(cl->c, v->method, req, rep, timeout_ms)) != SP_OK) {
		free(rep);
		return (cli_call_failed(cl, code));
	}
	rv = cli_show_reply(cl, v, req, rep);
	free(rep);
	return (rv);
}

/* A verb with a method and no function of its own: parse, call, show. */
static int
cli_generic(cli *cl, const cli_verb *v, int argc, char **argv)
{
	void *req = calloc(1, v->method->request->size);
	cli_parsed parsed;
	int rv;

	if (req == NULL) {
		return (CLI_EXIT_ERROR);
	}
	if ((rv = cli_parse(v, argc, argv, v->method->request, req, cl->arena, &parsed)) == 0 &&
	    (v->positional == NULL || strcmp(v->positional[0], "id") != 0 ||
	        (rv = cli_resolve_id(cl, (char *)req, 32)) == 0)) {
		/* (every request with an id has it first, as char[32]) */
		rv = cli_call_verb(cl, v, req, sp_call_timeout(parsed.wait_ms));
	}
	free(req);
	return (rv);
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
		} else if (v != NULL && strcmp(a, "--tls-ca") == 0) {
			setenv("SANDPROC_TLS_CA", v, 1),
			    i++; /* the library reads them there, for both sockets */
		} else if (v != NULL && strcmp(a, "--tls-cert") == 0) {
			setenv("SANDPROC_TLS_CERT", v, 1), i++;
		} else if (v != NULL && strcmp(a, "--tls-key") == 0) {
			setenv("SANDPROC_TLS_KEY", v, 1), i++;
		} else {
			return (cli_usage("unknown or incomplete global option \"%s\"", a));
		}
	}
	if (i == argc) {
		cli_print_usage(stderr);
		return (CLI_EXIT_USAGE);
	}
	for (size_t k = 0; k < cli_nverbs; k++) {
		const cli_verb *v = &cli_verbs[k];
		if (strcmp(argv[i], v->name) != 0) {
			continue;
		}
		if ((cl.arena = sp_arena_new()) == NULL) {
			return (CLI_EXIT_ERROR);
		}
		rv = v->fn != NULL ? v->fn(&cl, v, argc - i - 1, argv + i + 1)
		                   : cli_generic(&cl, v, argc - i - 1, argv + i + 1);
		fflush(stdout);
		sp_client_free(cl.c);
		sp_arena_free(cl.arena);
		return (rv);
	}
	return (cli_usage("unknown verb \"%s\"", argv[i]));
}
