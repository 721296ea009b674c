/*
 * sandproc ports | expose (the Ports service; unexpose is a plain verb), and waiting for
 * conditions: wait ID --port N | --log RE, start --wait-port N.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const pos_sbx_port[] = { "sandbox_id", "port", NULL };

static const cli_verb ports_expose_verb = {
	.name = "expose", .usage = "expose SANDBOX PORT", .positional = pos_sbx_port
};

int
cli_ports(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_ListPortsRequest req;
	sandproc_v1_ListPortsReply *rep;
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(v, argc, argv, &sandproc_v1_ListPortsRequest_info, &req, cl->arena, &a)) != 0) {
		return (code);
	}
	if (!cli_connect(cl) || (rep = calloc(1, sizeof(*rep))) == NULL) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_ports_list(cl->c, &req, rep, 0)) != SP_OK) {
		free(rep);
		return (cli_call_failed(cl, code));
	}
	if (!cl->json) {
		printf("%-28s %5s  %-15s %7s  %-29s %s\n", "SANDBOX", "PORT", "ADDRESS", "PID", "PROCESS",
		    "EXPOSED");
	}
	for (pb_size_t i = 0; i < rep->ports_count; i++) {
		const sandproc_v1_Port *p = &rep->ports[i];
		if (cl->json) {
			cli_print_json(&sandproc_v1_Port_info, p);
		} else {
			printf("%-28s %5u  %-15s %7d  %-29s %s\n", p->sandbox_id, (unsigned)p->port,
			    p->address, (int)p->pid, p->process_id, p->exposed_url[0] ? p->exposed_url : "-");
		}
	}
	free(rep);
	return (0);
}

int
cli_expose(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_ExposeRequest req;
	sandproc_v1_Port rep;
	cli_parsed a;
	int code;

	(void)v;
	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(&ports_expose_verb, argc, argv, &sandproc_v1_ExposeRequest_info, &req,
	         cl->arena, &a)) != 0) {
		return (code);
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_ports_expose(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Port_info, &rep);
	} else {
		printf("%s\n", rep.exposed_url);
	}
	return (0);
}

/* The last lines of id's output on stderr (why it ended, often). */
static void
cli_tail_to_stderr(cli *cl, const char *id, uint32_t lines)
{
	sandproc_v1_LogsRequest req = { .tail_lines = lines };
	sandproc_v1_LogsReply *rep = calloc(1, sizeof(*rep));

	snprintf(req.id, sizeof(req.id), "%s", id);
	if (rep != NULL && sp_processes_logs(cl->c, &req, rep, 0) == SP_OK) {
		for (pb_size_t i = 0; i < rep->entries_count; i++) {
			cli_write_fd(2, rep->entries[i].data.data, rep->entries[i].data.len);
		}
		if (rep->entries_count > 0) {
			const sp_bytes_t *d = &rep->entries[rep->entries_count - 1].data;
			if (d->len > 0 && d->data[d->len - 1] != '\n') {
				cli_write_fd(2, "\n", 1);
			}
		}
	}
	free(rep);
}

/* What a wait ended with, as the waiting verbs say it: 0 held, 124 timed out, else the process's end. */
static int
cli_waited_for(
    cli *cl, const sandproc_v1_WaitForRequest *req, const sandproc_v1_WaitForReply *rep, bool show_record)
{
	const sandproc_v1_Process *p = &rep->process;
	char what[600];

	if (req->port != 0 && req->log != NULL && req->log[0] != '\0') {
		snprintf(
		    what, sizeof(what), "port %u or a line matching '%s'", (unsigned)req->port, req->log);
	} else if (req->port != 0) {
		snprintf(what, sizeof(what), "port %u", (unsigned)req->port);
	} else {
		snprintf(what, sizeof(what), "a line matching '%s'", req->log);
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_WaitForReply_info, rep);
	}
	if (strcmp(rep->condition, "port") == 0 || strcmp(rep->condition, "log") == 0) {
		if (!cl->json && show_record) {
			cli_print_process(cl, p);
		} else if (!cl->json && rep->line != NULL) {
			printf("%s\n", rep->line);
		}
		return (0);
	}
	if (rep->condition[0] == '\0') {
		fprintf(stderr, "sandproc: %s: no %s after %u ms (still running)\n", p->id, what,
		    (unsigned)req->timeout_ms);
		return (CLI_EXIT_TIMEOUT);
	}
	int code = cli_exit_code(p);
	fprintf(
	    stderr, "sandproc: %s ended (%s", p->id, sp_enum_short_name(&sandproc_v1_State_info, p->state));
	if (p->state == sandproc_v1_State_STATE_EXITED) {
		fprintf(stderr, ", code %d", (int)p->exit_code);
	} else if (p->signal > 0) {
		fprintf(stderr, ", signal %d", (int)p->signal);
	}
	fprintf(stderr, "%s%s) before %s; its last output:\n", p->error[0] ? ": " : "", p->error, what);
	cli_tail_to_stderr(cl, p->id, 10);
	return (code == 0 ? CLI_EXIT_ERROR : code);
}

/* Waits (server-side) as req says; the waiting verbs' exit code. */
int
cli_wait_for(cli *cl, sandproc_v1_WaitForRequest *req, bool show_record)
{
	sandproc_v1_WaitForReply rep;
	int code;

	if ((code = sp_processes_wait_for(cl->c, req, &rep, sp_call_timeout(req->timeout_ms))) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (cli_waited_for(cl, req, &rep, show_record));
}

int
cli_wait(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_WaitForRequest req;
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(v, argc, argv, &sandproc_v1_WaitForRequest_info, &req, cl->arena, &a)) != 0) {
		return (code);
	}
	if (!cli_connect(cl) || (code = cli_resolve_id(cl, req.id, sizeof(req.id))) != 0) {
		return (code != 0 ? code : CLI_EXIT_ERROR);
	}
	if (req.port == 0 && (req.log == NULL || req.log[0] == '\0')) {
		/* Only the end: Wait, shown as before (the process's code). */
		static const cli_verb wait_end = { .name = "wait",
			.method = &sp_processes_methods[SP_PROCESSES_WAIT],
			.show = CLI_SHOW_WAITED };
		sandproc_v1_WaitRequest w = { .timeout_ms = req.timeout_ms };
		snprintf(w.id, sizeof(w.id), "%s", req.id);
		return (cli_call_verb(cl, &wait_end, &w, sp_call_timeout(w.timeout_ms)));
	}
	/* Lines already written count too: a server that said "ready" before the wait began is ready. */
	req.from_start = true;
	return (cli_wait_for(cl, &req, false));
}
