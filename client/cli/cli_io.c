/* Verbs about output, input and terminals: logs, input, resize, screen; and config. */
#include <errno.h>
#include <pb_common.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CLI_INPUT_CHUNK (32 * 1024)

static bool
cli_write_fd(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return (false);
		}
		p += n;
		len -= (size_t)n;
	}
	return (true);
}

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

static bool
cli_stream(const char *s, sandproc_v1_Stream *out)
{
	for (size_t k = 1; k < sandproc_v1_Stream_info.count; k++) {
		if (strcmp(s, sandproc_v1_Stream_info.values[k].short_name) == 0) {
			*out = (sandproc_v1_Stream)sandproc_v1_Stream_info.values[k].value;
			return (true);
		}
	}
	return (false);
}

int
cli_logs(cli *cl, int argc, char **argv)
{
	sandproc_v1_LogsRequest req;
	sandproc_v1_LogsReply *rep;
	unsigned long long v;
	bool follow = false;
	int code = SP_OK;

	memset(&req, 0, sizeof(req));
	if (argc < 1 || !cli_id(req.id, sizeof(req.id), argv[0])) {
		return (cli_usage("usage: logs ID [--tail N] [--stream S] [--follow]"));
	}
	for (int i = 1; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--tail") == 0 && cli_uint(val, UINT32_MAX, &v)) {
			req.tail = (uint32_t)v, i++;
		} else if (strcmp(argv[i], "--stream") == 0 && val != NULL && cli_stream(val, &req.stream)) {
			i++;
		} else if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			follow = true;
		} else {
			return (cli_usage("logs: bad option \"%s\"", argv[i]));
		}
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if (follow) {
		sp_follow_opts o = { .events_url = cl->events, .stream = req.stream, .tail = req.tail };
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
		req.tail = 0;
	} while (rep->has_more);
	free(rep);
	return (code == SP_OK ? 0 : cli_call_failed(cl, code));
}

static int
cli_send(cli *cl, const char *id, const uint8_t *data, size_t len, bool eof)
{
	sandproc_v1_SendInputRequest req;
	sandproc_v1_SendInputReply rep;
	int code;

	memset(&req, 0, sizeof(req));
	strcpy(req.id, id);
	req.data.data = data;
	req.data.len = len;
	req.eof = eof;
	if ((code = sp_processes_send_input(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (0);
}

int
cli_input(cli *cl, int argc, char **argv)
{
	char id[32];
	const char *data = NULL;
	bool eof = false;
	int rv = 0;

	if (argc < 1 || !cli_id(id, sizeof(id), argv[0])) {
		return (cli_usage("usage: input ID [DATA | -] [--eof]"));
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--eof") == 0) {
			eof = true;
		} else if (data == NULL) {
			data = argv[i];
		} else {
			return (cli_usage("input: unexpected \"%s\"", argv[i]));
		}
	}
	if (data == NULL && !eof) {
		return (cli_usage("input: give DATA, - (stdin) or --eof"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if (data == NULL || strcmp(data, "-") != 0) {
		return (cli_send(cl, id, (const uint8_t *)data, data ? strlen(data) : 0, eof));
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
			rv = eof ? cli_send(cl, id, NULL, 0, true) : 0;
			break;
		}
		if ((rv = cli_send(cl, id, buf, (size_t)n, false)) != 0) {
			break;
		}
	}
	free(buf);
	return (rv);
}

int
cli_resize(cli *cl, int argc, char **argv)
{
	sandproc_v1_ResizeRequest req;
	sandproc_v1_ResizeReply rep;
	unsigned long long cols, rows;
	int code;

	memset(&req, 0, sizeof(req));
	if (argc != 3 || !cli_id(req.id, sizeof(req.id), argv[0]) || !cli_uint(argv[1], 1000, &cols) ||
	    !cli_uint(argv[2], 1000, &rows)) {
		return (cli_usage("usage: resize ID COLS ROWS"));
	}
	req.cols = (uint32_t)cols;
	req.rows = (uint32_t)rows;
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_resize(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	return (0);
}

int
cli_screen(cli *cl, int argc, char **argv)
{
	sandproc_v1_ScreenRequest req;
	sandproc_v1_ScreenReply rep;
	int code;

	memset(&req, 0, sizeof(req));
	if (argc != 1 || !cli_id(req.id, sizeof(req.id), argv[0])) {
		return (cli_usage("usage: screen ID"));
	}
	if (!cli_connect(cl)) {
		return (CLI_EXIT_ERROR);
	}
	if ((code = sp_processes_screen(cl->c, &req, &rep, 0)) != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_ScreenReply_info, &rep);
		return (0);
	}
	for (size_t i = 0; i < rep.lines.n; i++) {
		printf("%s\n", rep.lines.v[i]);
	}
	return (0);
}

/* Sets one field of a SetConfigRequest by its proto name, through nanopb's field iterator. */
static bool
cli_config_field(sandproc_v1_SetConfigRequest *req, const char *kv)
{
	const char *eq = strchr(kv, '=');
	unsigned long long v;
	pb_field_iter_t it;

	if (eq == NULL || !cli_uint(eq + 1, UINT64_MAX, &v)) {
		return (false);
	}
	for (size_t i = 0; i < sandproc_v1_SetConfigRequest_info.count; i++) {
		const sp_field_info *f = &sandproc_v1_SetConfigRequest_info.field[i];
		if (strlen(f->name) != (size_t)(eq - kv) || strncmp(f->name, kv, (size_t)(eq - kv)) != 0) {
			continue;
		}
		if (!pb_field_iter_begin(&it, sandproc_v1_SetConfigRequest_fields, req) ||
		    !pb_field_iter_find(&it, f->tag)) {
			return (false);
		}
		if (it.data_size == sizeof(uint32_t)) {
			if (v > UINT32_MAX) {
				return (false);
			}
			*(uint32_t *)it.pData = (uint32_t)v;
		} else {
			*(uint64_t *)it.pData = v;
		}
		*(bool *)it.pSize = true;
		return (true);
	}
	return (false);
}

int
cli_config(cli *cl, int argc, char **argv)
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
			if (!cli_config_field(&req, argv[i])) {
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
		return (cli_usage("usage: config [get | set KEY=VALUE...]"));
	}
	if (code != SP_OK) {
		return (cli_call_failed(cl, code));
	}
	if (cl->json) {
		cli_print_json(&sandproc_v1_Config_info, &rep);
		return (0);
	}
	printf("max_concurrent_processes    %u\n", rep.max_concurrent_processes);
	printf("default_run_timeout_ms      %u\n", rep.default_run_timeout_ms);
	printf("max_run_timeout_ms          %u\n", rep.max_run_timeout_ms);
	printf("max_output_bytes            %llu\n", (unsigned long long)rep.max_output_bytes);
	printf("max_log_bytes_per_process   %llu\n", (unsigned long long)rep.max_log_bytes_per_process);
	printf("max_input_bytes_per_request %llu\n", (unsigned long long)rep.max_input_bytes_per_request);
	return (0);
}
