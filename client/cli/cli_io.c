/* Verbs of their own about output and input: logs, input; and config. */
#include <errno.h>
#include <pb_common.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CLI_INPUT_CHUNK (32 * 1024)

static int
cli_print_entry(void *arg, const sandproc_v1_LogEntry *e)
{
	cli *cl = arg;

	if (cl->json) {
		cli_print_json(&sandproc_v1_LogEntry_info, e);
		fflush(stdout);
		return (0);
	}
	/* A closed stdout (sandproc logs | head) ends the follow. */
	return (cli_write_fd(1, e->data.data, e->data.len) ? 0 : 1);
}

int
cli_logs(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_LogsRequest req;
	sandproc_v1_LogsReply *rep;
	cli_parsed a;
	int code = SP_OK;

	memset(&req, 0, sizeof(req));
	if ((code = cli_parse(v, argc, argv, &sandproc_v1_LogsRequest_info, &req, cl->arena, &a)) != 0 ||
	    (code = cli_resolve_id(cl, req.id, sizeof(req.id))) != 0) {
		return (code);
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if (cli_flag_value(v, &a, "--follow") != NULL) {
		sp_follow_opts o = { .events_url = cl->events,
			.stream = req.stream,
			.tail = req.tail_lines,
			.tail_entries = req.tail,
			.reconnect_ms = CLI_RECONNECT_MS };
		code = sp_follow(cl->c, req.id, &o, cli_print_entry, cl, NULL);
		return (code == SP_OK || code == SP_CANCELLED ? 0 : cli_call_failed(cl, code));
	}
	if ((rep = malloc(sizeof(*rep))) == NULL) {
		return (CLI_EXIT_ERROR);
	}
	do {
		if ((code = sp_processes_logs(cl->c, &req, rep, 0)) != SP_OK) {
			break;
		}
		for (pb_size_t i = 0; i < rep->entries_count; i++) {
			if (cli_print_entry(cl, &rep->entries[i]) != 0) {
				rep->has_more = false;
				break;
			}
		}
		req.after_sequence = rep->next_sequence;
		req.tail = req.tail_lines = 0;
	} while (rep->has_more);
	free(rep);
	return (code == SP_OK ? 0 : cli_call_failed(cl, code));
}

static int
cli_send(
    cli *cl, sandproc_v1_SendInputRequest *req, const uint8_t *data, size_t len, bool eof, uint64_t *written)
{
	sandproc_v1_SendInputReply rep;
	int code;

	req->data.data = data;
	req->data.len = len;
	req->eof = eof;
	if ((code = sp_processes_send_input(cl->c, req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	*written += rep.bytes_written;
	return (0);
}

/* C escapes in s (\n \t \r \\ \e \0 \xHH \a \b), decoded into a (its length in *len); NULL when one is bad.
 */
static char *
cli_unescape(const char *s, size_t *len, sp_arena *a)
{
	char *out = sp_arena_alloc(a, strlen(s) + 1);
	size_t k = 0;

	for (; out != NULL && *s != '\0'; s++) {
		if (*s != '\\') {
			out[k++] = *s;
			continue;
		}
		switch (*++s) {
		case 'n':
			out[k++] = '\n';
			break;
		case 't':
			out[k++] = '\t';
			break;
		case 'r':
			out[k++] = '\r';
			break;
		case 'a':
			out[k++] = '\a';
			break;
		case 'b':
			out[k++] = '\b';
			break;
		case 'e':
			out[k++] = 27;
			break;
		case '0':
			out[k++] = '\0';
			break;
		case '\\':
			out[k++] = '\\';
			break;
		case 'x': {
			char hex[3] = { 0 };
			char *end;
			if (s[1] == '\0' || s[2] == '\0') {
				return (NULL);
			}
			hex[0] = s[1], hex[1] = s[2];
			long v = strtol(hex, &end, 16);
			if (*end != '\0') {
				return (NULL);
			}
			out[k++] = (char)v;
			s += 2;
			break;
		}
		default:
			return (NULL);
		}
	}
	*len = k;
	return (out);
}

int
cli_input(cli *cl, const cli_verb *v, int argc, char **argv)
{
	static const char *const pos[] = { "id", "@data", NULL };
	cli_verb vv = *v;
	sandproc_v1_SendInputRequest req;
	cli_parsed a;
	int rv = 0;

	memset(&req, 0, sizeof(req));
	vv.positional = pos;
	vv.optional_positional = true;
	if ((rv = cli_parse(&vv, argc, argv, &sandproc_v1_SendInputRequest_info, &req, cl->arena, &a)) != 0 ||
	    (rv = cli_resolve_id(cl, req.id, sizeof(req.id))) != 0) {
		return (rv);
	}
	const char *data = a.pos[1], *line = cli_flag_value(v, &a, "--line");
	bool eof = req.eof, escapes = cli_flag_value(v, &a, "--escapes") != NULL;
	uint64_t written = 0;
	size_t len = data != NULL ? strlen(data) : 0;
	if (line != NULL) {
		/* A line typed: the text and a newline. */
		if (data != NULL) {
			return (cli_usage("input: give DATA or --line TEXT, not both"));
		}
		char *l = sp_arena_alloc(cl->arena, strlen(line) + 2);
		if (l == NULL) {
			return (CLI_EXIT_ERROR);
		}
		len = (size_t)sprintf(l, "%s\n", line);
		data = l;
	}
	if (req.id[0] == '\0' || (data == NULL && !eof)) {
		return (
		    cli_usage("input: give ID and DATA, --line TEXT, - (stdin) or --eof (usage: sandproc %s)",
		        v->usage));
	}
	if (escapes && data != NULL && strcmp(data, "-") != 0 &&
	    (data = cli_unescape(data, &len, cl->arena)) == NULL) {
		return (cli_usage("input: a bad escape in DATA (\\n \\t \\r \\\\ \\e \\0 \\xHH \\a \\b)"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if (data == NULL || strcmp(data, "-") != 0 || line != NULL) {
		rv = cli_send(cl, &req, (const uint8_t *)data, data ? len : 0, eof, &written);
		if (rv == 0 && cl->json) {
			printf(
			    "{\"id\":\"%s\",\"bytes_written\":%llu}\n", req.id, (unsigned long long)written);
		}
		return (rv);
	}
	/* Stdin in chunks that stay under the server's per-request limit. */
	uint8_t *buf = malloc(CLI_INPUT_CHUNK);
	for (;;) {
		ssize_t n = buf ? read(0, buf, CLI_INPUT_CHUNK) : -1;
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "sandproc: reading stdin: %s\n", strerror(errno));
			rv = CLI_EXIT_ERROR;
			break;
		}
		if (n == 0) {
			rv = eof ? cli_send(cl, &req, NULL, 0, true, &written) : 0;
			break;
		}
		if ((rv = cli_send(cl, &req, buf, (size_t)n, false, &written)) != 0) {
			break;
		}
	}
	free(buf);
	if (rv == 0 && cl->json) {
		printf("{\"id\":\"%s\",\"bytes_written\":%llu}\n", req.id, (unsigned long long)written);
	}
	return (rv);
}

int
cli_config(cli *cl, const cli_verb *v, int argc, char **argv)
{
	sandproc_v1_Config rep;
	int code;

	if (argc == 0 || (argc == 1 && strcmp(argv[0], "get") == 0)) {
		sandproc_v1_GetConfigRequest req;
		memset(&req, 0, sizeof(req));
		if (!cli_connect(cl)) {
			return (CLI_EXIT_ERROR);
		}
		code = sp_processes_get_config(cl->c, &req, &rep, 0);
	} else if (strcmp(argv[0], "set") == 0 && argc > 1) {
		sandproc_v1_SetConfigRequest req;
		memset(&req, 0, sizeof(req));
		for (int i = 1; i < argc; i++) {
			char key[64];
			const char *eq = strchr(argv[i], '=');
			if (eq == NULL || (size_t)(eq - argv[i]) >= sizeof(key)) {
				return (cli_usage(
				    "config set: bad setting \"%s\" (KEY=NUMBER, keys as in config get)",
				    argv[i]));
			}
			memcpy(key, argv[i], (size_t)(eq - argv[i]));
			key[eq - argv[i]] = '\0';
			if (cli_set_field(&sandproc_v1_SetConfigRequest_info, &req, key, eq + 1, cl->arena) !=
			    CLI_SET_OK) {
				return (cli_usage(
				    "config set: bad setting \"%s\" (KEY=NUMBER, keys as in config get)",
				    argv[i]));
			}
		}
		if (!cli_connect(cl)) {
			return (CLI_EXIT_ERROR);
		}
		code = sp_processes_set_config(cl->c, &req, &rep, 0);
	} else {
		return (cli_usage("usage: sandproc %s", v->usage));
	}
	if (code != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Config_info, &rep);
		return (0);
	}
	/* Every field, by its proto name, as config set takes them. */
	for (size_t i = 0; i < sandproc_v1_Config_info.count; i++) {
		pb_field_iter_t it;
		const sp_field_info *f = &sandproc_v1_Config_info.field[i];
		if (pb_field_iter_begin(&it, sandproc_v1_Config_fields, &rep) &&
		    pb_field_iter_find(&it, f->tag)) {
			unsigned long long val =
			    it.data_size == sizeof(uint32_t) ? *(uint32_t *)it.pData : *(uint64_t *)it.pData;
			printf("%-27s %llu\n", f->name, val);
		}
	}
	return (0);
}
