/* sandproc sandbox create|ls|get|rm|ready|wait: the Sandboxes service. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const pos_id[] = { "id", NULL };

static const cli_flag create_flags[] = {
	{ "--name", NULL, CLI_FLAG_VALUE, "name", false },
	{ "--label", NULL, CLI_FLAG_KV, "labels", false },
	{ "--env", "-e", CLI_FLAG_KV, "env", false },
	{ "--network", NULL, CLI_FLAG_VALUE, "network", false },
	{ "--expose", NULL, CLI_FLAG_VALUE, "expose", false },
	{ "--root", NULL, CLI_FLAG_BOOL, "run_as_root", false },
	{ "--setup", NULL, CLI_FLAG_VALUE, "setup", false },
	{ "--template", NULL, CLI_FLAG_VALUE, "template", false },
	{ "--memory", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--pids", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--cpus", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--wait", NULL, CLI_FLAG_BOOL, NULL, false },
	{ 0 },
};
static const cli_flag ls_flags[] = {
	{ "--state", NULL, CLI_FLAG_VALUE, "state", false },
	{ "--label", NULL, CLI_FLAG_KV, "labels", false },
	{ 0 },
};
static const cli_flag rm_flags[] = {
	{ "--keep-workspace", NULL, CLI_FLAG_BOOL, "keep_workspace", false },
	{ "--grace", NULL, CLI_FLAG_VALUE, "grace_ms", false },
	{ 0 },
};
static const cli_flag wait_flags[] = { { "--timeout", NULL, CLI_FLAG_VALUE, "timeout_s", false }, { 0 } };

static const cli_verb sbx_create = {
	.name = "sandbox create", .usage = "sandbox create [--name N] ...", .flags = create_flags
};
static const cli_verb sbx_ls = {
	.name = "sandbox ls", .usage = "sandbox ls [--state S] [--label K=V]...", .flags = ls_flags
};
static const cli_verb sbx_get = { .name = "sandbox get", .usage = "sandbox get ID", .positional = pos_id };
static const cli_verb sbx_rm = { .name = "sandbox rm",
	.usage = "sandbox rm ID [--keep-workspace] [--grace MS]",
	.positional = pos_id,
	.flags = rm_flags };
static const cli_verb sbx_ready = {
	.name = "sandbox ready", .usage = "sandbox ready ID", .positional = pos_id
};
static const cli_verb sbx_wait = { .name = "sandbox wait",
	.usage = "sandbox wait ID [--timeout S]",
	.positional = pos_id,
	.flags = wait_flags };

static void
cli_print_sandbox(cli *cl, const sandproc_v1_Sandbox *s)
{
	char t[64];

	if (cl->json) {
		cli_print_json(&sandproc_v1_Sandbox_info, s);
		return;
	}
	printf("%-11s %s\n", "id", s->id);
	printf("%-11s %s\n", "state", sp_enum_short_name(&sandproc_v1_SandboxState_info, s->state));
	if (s->name != NULL && s->name[0] != '\0') {
		printf("%-11s %s\n", "name", s->name);
	}
	printf("%-11s %s\n", "network", s->network);
	printf("%-11s %s\n", "user", s->run_as_root ? "root" : "unprivileged");
	printf("%-11s %d\n", "pid", s->pid);
	printf("%-11s %s\n", "workspace", s->workspace != NULL ? s->workspace : "");
	if (s->labels.n > 0) {
		cli_print_strv("labels", &s->labels);
	}
	if (s->limits.memory_bytes || s->limits.pids || s->limits.cpus > 0) {
		printf("%-11s memory %llu, pids %u, cpus %g\n", "limits",
		    (unsigned long long)s->limits.memory_bytes, s->limits.pids, s->limits.cpus);
	}
	if (s->limits_note != NULL && s->limits_note[0] != '\0') {
		printf("%-11s %s\n", "note", s->limits_note);
	}
	cli_format_time(t, sizeof(t), s->created_at_ms);
	printf("%-11s %s\n", "created_at", t);
	cli_format_time(t, sizeof(t), s->ready_at_ms);
	printf("%-11s %s\n", "ready_at", t);
	if (s->error != NULL && s->error[0] != '\0') {
		printf("%-11s %s\n", "error", s->error);
	}
}

/* Prints readiness; exit 0 when ready, 1 when not. */
static int
cli_print_ready(cli *cl, const char *id, const sandproc_v1_ReadinessReply *r)
{
	if (cl->json) {
		cli_print_json(&sandproc_v1_ReadinessReply_info, r);
	} else {
		printf("%s %s%s%s\n", id, r->ready ? "ready" : "not ready", r->message[0] ? ": " : "",
		    r->message);
	}
	return (r->ready ? 0 : CLI_EXIT_ERROR);
}

static int
cli_sbx_create(cli *cl, int argc, char **argv)
{
	sandproc_v1_CreateSandboxRequest req;
	sandproc_v1_Sandbox rep;
	sandproc_v1_ReadinessReply r;
	unsigned long long u;
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(&sbx_create, argc, argv, &sandproc_v1_CreateSandboxRequest_info, &req,
	         cl->arena, &a)) != 0) {
		return (code);
	}
	const char *mem = cli_flag_value(&sbx_create, &a, "--memory");
	const char *pids = cli_flag_value(&sbx_create, &a, "--pids");
	const char *cpus = cli_flag_value(&sbx_create, &a, "--cpus");
	req.has_limits = true;
	if (mem != NULL) {
		if (!cli_uint(mem, UINT64_MAX, &u)) {
			return (cli_usage("sandbox create: bad value \"%s\" for --memory (bytes)", mem));
		}
		req.limits.memory_bytes = u;
	}
	if (pids != NULL) {
		if (!cli_uint(pids, UINT32_MAX, &u)) {
			return (cli_usage("sandbox create: bad value \"%s\" for --pids", pids));
		}
		req.limits.pids = (uint32_t)u;
	}
	if (cpus != NULL) {
		char *end;
		req.limits.cpus = strtod(cpus, &end);
		if (*end != '\0' || end == cpus || req.limits.cpus < 0) {
			return (cli_usage("sandbox create: bad value \"%s\" for --cpus", cpus));
		}
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_sandboxes_create(cl->c, &req, &rep, 60000)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cli_flag_value(&sbx_create, &a, "--wait") != NULL) {
		if ((code = sp_sandbox_wait_ready(cl->c, rep.id, 0, &r)) != SP_OK) {
			return (cli_call_failed(cl, code));
		}
		sandproc_v1_GetSandboxRequest g;
		memset(&g, 0, sizeof(g));
		snprintf(g.id, sizeof(g.id), "%s", rep.id);
		if ((code = sp_sandboxes_get(cl->c, &g, &rep, 0)) != SP_OK) {
			return (cli_call_failed(cl, code));
		}
	}
	if (cl->json) {
		cli_print_sandbox(cl, &rep);
	} else {
		printf("%s\n", rep.id);
	}
	if (rep.state == sandproc_v1_SandboxState_SANDBOX_STATE_FAILED) {
		fprintf(
		    stderr, "sandproc: sandbox %s failed: %s\n", rep.id, rep.error != NULL ? rep.error : "");
		return (CLI_EXIT_ERROR);
	}
	return (0);
}

static int
cli_sbx_ls(cli *cl, int argc, char **argv)
{
	sandproc_v1_ListSandboxesRequest req;
	sandproc_v1_ListSandboxesReply *rep = calloc(1, sizeof(*rep));
	cli_parsed a;
	int code;

	memset(&req, 0, sizeof(req));
	if (rep == NULL) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = cli_parse(
	         &sbx_ls, argc, argv, &sandproc_v1_ListSandboxesRequest_info, &req, cl->arena, &a)) != 0 ||
	    !cli_connect(cl)) {
		free(rep);
		return (code != 0 ? code : CLI_EXIT_ERROR);
	}
	if (!cl->json) {
		printf("%-28s %-9s %-7s %-8s %s\n", "ID", "STATE", "NETWORK", "PID", "NAME");
	}
	do {
		if ((code = sp_sandboxes_list(cl->c, &req, rep, 0)) != SP_OK) {
			free(rep);
			return (cli_call_failed(cl, code));
		}
		for (pb_size_t i = 0; i < rep->sandboxes_count; i++) {
			const sandproc_v1_Sandbox *s = &rep->sandboxes[i];
			if (cl->json) {
				cli_print_json(&sandproc_v1_Sandbox_info, s);
			} else {
				printf("%-28s %-9s %-7s %-8d %s\n", s->id,
				    sp_enum_short_name(&sandproc_v1_SandboxState_info, s->state), s->network,
				    s->pid, s->name != NULL ? s->name : "");
			}
		}
		snprintf(req.page_token, sizeof(req.page_token), "%s", rep->next_page_token);
	} while (req.page_token[0] != '\0');
	free(rep);
	return (0);
}

int
cli_sandbox(cli *cl, const cli_verb *v, int argc, char **argv)
{
	cli_parsed a;
	int code;

	if (argc < 1) {
		return (cli_usage("usage: sandproc %s", v->usage));
	}
	const char *sub = argv[0];
	argc--, argv++;
	if (strcmp(sub, "create") == 0) {
		return (cli_sbx_create(cl, argc, argv));
	}
	if (strcmp(sub, "ls") == 0) {
		return (cli_sbx_ls(cl, argc, argv));
	}
	if (strcmp(sub, "get") == 0) {
		sandproc_v1_GetSandboxRequest req;
		sandproc_v1_Sandbox rep;
		memset(&req, 0, sizeof(req));
		if ((code = cli_parse(&sbx_get, argc, argv, &sandproc_v1_GetSandboxRequest_info, &req,
		         cl->arena, &a)) != 0 ||
		    !cli_connect(cl)) {
			return (code != 0 ? code : CLI_EXIT_ERROR);
		}
		if ((code = sp_sandboxes_get(cl->c, &req, &rep, 0)) != SP_OK) {
			return (cli_call_failed(cl, code));
		}
		cli_print_sandbox(cl, &rep);
		return (0);
	}
	if (strcmp(sub, "rm") == 0) {
		sandproc_v1_DeleteSandboxRequest req;
		sandproc_v1_DeleteSandboxReply rep;
		memset(&req, 0, sizeof(req));
		if ((code = cli_parse(&sbx_rm, argc, argv, &sandproc_v1_DeleteSandboxRequest_info, &req,
		         cl->arena, &a)) != 0 ||
		    !cli_connect(cl)) {
			return (code != 0 ? code : CLI_EXIT_ERROR);
		}
		uint32_t grace = req.grace_ms ? req.grace_ms : 5000;
		if ((code = sp_sandboxes_delete(cl->c, &req, &rep, sp_call_timeout(grace + 10000))) !=
		    SP_OK) {
			return (cli_call_failed(cl, code));
		}
		if (cl->json) {
			printf("{\"id\":\"%s\",\"deleted\":true}\n", req.id);
		}
		return (0);
	}
	if (strcmp(sub, "ready") == 0 || strcmp(sub, "wait") == 0) {
		bool wait = strcmp(sub, "wait") == 0;
		sandproc_v1_WaitReadyRequest req; /* id first, as ReadinessRequest */
		sandproc_v1_ReadinessReply r;
		memset(&req, 0, sizeof(req));
		if ((code = cli_parse(wait ? &sbx_wait : &sbx_ready, argc, argv,
		         &sandproc_v1_WaitReadyRequest_info, &req, cl->arena, &a)) != 0 ||
		    !cli_connect(cl)) {
			return (code != 0 ? code : CLI_EXIT_ERROR);
		}
		if (wait) {
			code = sp_sandbox_wait_ready(cl->c, req.id, req.timeout_s, &r);
		} else {
			sandproc_v1_ReadinessRequest rr;
			memset(&rr, 0, sizeof(rr));
			snprintf(rr.id, sizeof(rr.id), "%s", req.id);
			code = sp_sandboxes_readiness(cl->c, &rr, &r, 0);
		}
		if (code != SP_OK) {
			return (cli_call_failed(cl, code));
		}
		return (cli_print_ready(cl, req.id, &r));
	}
	return (cli_usage("unknown sandbox verb \"%s\"; usage: sandproc %s", sub, v->usage));
}
