/* sandproc key create|ls|rm: the Keys service (admin keys only). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const pos_id[] = { "id", NULL };

static const cli_flag create_flags[] = {
	{ "--role", NULL, CLI_FLAG_VALUE, "role", false },
	{ "--tenant", NULL, CLI_FLAG_VALUE, "tenant", false },
	{ "--name", NULL, CLI_FLAG_VALUE, "name", false },
	{ "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false },
	{ "--expires", NULL, CLI_FLAG_VALUE, "expires_s", false },
	{ 0 },
};

static const cli_verb key_create = { .name = "key create",
	.usage =
	    "key create --role viewer|developer|admin [--tenant T] [--name N] [--sandbox ID] [--expires S]",
	.flags = create_flags };
static const cli_verb key_ls = { .name = "key ls", .usage = "key ls" };
static const cli_verb key_rm = { .name = "key rm", .usage = "key rm ID", .positional = pos_id };

/* A time in ms since the epoch as local "YYYY-MM-DD HH:MM:SS", or "-" for 0. */
static const char *
cli_key_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "-");
	}
	return (buf);
}

static void
cli_print_key(cli *cl, const sandproc_v1_Key *k)
{
	char t[32];

	if (cl->json) {
		cli_print_json(&sandproc_v1_Key_info, k);
		return;
	}
	printf("%-9s %s\n", "id", k->id);
	if (k->name != NULL && k->name[0] != '\0') {
		printf("%-9s %s\n", "name", k->name);
	}
	printf("%-9s %s\n", "role", sp_enum_short_name(&sandproc_v1_Role_info, k->role));
	printf("%-9s %s\n", "tenant", k->tenant);
	if (k->sandbox_id[0] != '\0') {
		printf("%-9s %s\n", "sandbox", k->sandbox_id);
	}
	printf("%-9s %s\n", "expires", cli_key_time(k->expires_at_ms, t, sizeof(t)));
	if (k->secret[0] != '\0') {
		printf("%-9s %s\n", "secret", k->secret);
		fprintf(stderr, "sandproc: the secret is shown this once; the server keeps only its hash\n");
	}
}

int
cli_key(cli *cl, const cli_verb *v, int argc, char **argv)
{
	cli_parsed a;
	int code;

	if (argc < 1) {
		return (cli_usage("usage: sandproc %s", v->usage));
	}
	const char *sub = argv[0];
	argc--, argv++;
	if (strcmp(sub, "create") == 0) {
		sandproc_v1_CreateKeyRequest req;
		sandproc_v1_Key rep;
		memset(&req, 0, sizeof(req));
		if ((code = cli_parse(&key_create, argc, argv, &sandproc_v1_CreateKeyRequest_info, &req,
		         cl->arena, &a)) != 0) {
			return (code);
		}
		if (req.role == 0) {
			return (cli_usage("key create needs --role viewer, developer or admin"));
		}
		if (!cli_connect(cl)) {
			return (CLI_EXIT_ERROR);
		}
		if ((code = sp_keys_create_key(cl->c, &req, &rep, 0)) != SP_OK) {
			return (cli_call_failed(cl, code));
		}
		cli_print_key(cl, &rep);
		return (0);
	}
	if (strcmp(sub, "ls") == 0) {
		sandproc_v1_ListKeysRequest req;
		sandproc_v1_ListKeysReply *rep = calloc(1, sizeof(*rep));
		char c[32], u[32], e[32];
		memset(&req, 0, sizeof(req));
		if (rep == NULL ||
		    (code = cli_parse(
		         &key_ls, argc, argv, &sandproc_v1_ListKeysRequest_info, &req, cl->arena, &a)) != 0 ||
		    !cli_connect(cl)) {
			free(rep);
			return (rep == NULL ? CLI_EXIT_ERROR : code != 0 ? code : CLI_EXIT_ERROR);
		}
		if ((code = sp_keys_list_keys(cl->c, &req, rep, 0)) != SP_OK) {
			free(rep);
			return (cli_call_failed(cl, code));
		}
		if (cl->json) {
			cli_print_json(&sandproc_v1_ListKeysReply_info, rep);
		} else {
			printf("%-29s %-9s %-12s %-29s %-19s %-19s %-19s %s\n", "ID", "ROLE", "TENANT",
			    "SANDBOX", "CREATED", "LAST USED", "EXPIRES", "NAME");
			for (pb_size_t i = 0; i < rep->keys_count; i++) {
				const sandproc_v1_Key *k = &rep->keys[i];
				printf("%-29s %-9s %-12s %-29s %-19s %-19s %-19s %s\n", k->id,
				    sp_enum_short_name(&sandproc_v1_Role_info, k->role), k->tenant,
				    k->sandbox_id[0] ? k->sandbox_id : "-",
				    cli_key_time(k->created_at_ms, c, sizeof(c)),
				    cli_key_time(k->last_used_at_ms, u, sizeof(u)),
				    cli_key_time(k->expires_at_ms, e, sizeof(e)),
				    k->name != NULL ? k->name : "");
			}
		}
		free(rep);
		return (0);
	}
	if (strcmp(sub, "rm") == 0) {
		sandproc_v1_RevokeKeyRequest req;
		sandproc_v1_RevokeKeyReply rep;
		memset(&req, 0, sizeof(req));
		if ((code = cli_parse(&key_rm, argc, argv, &sandproc_v1_RevokeKeyRequest_info, &req,
		         cl->arena, &a)) != 0 ||
		    !cli_connect(cl)) {
			return (code != 0 ? code : CLI_EXIT_ERROR);
		}
		if ((code = sp_keys_revoke_key(cl->c, &req, &rep, 0)) != SP_OK) {
			return (cli_call_failed(cl, code));
		}
		if (cl->json) {
			printf("{\"id\":\"%s\",\"revoked\":true}\n", req.id);
		}
		return (0);
	}
	return (cli_usage("unknown key command \"%s\": create, ls or rm", sub));
}
