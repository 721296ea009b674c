/* How the CLI shows records: JSON for scripts, aligned text for people. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void
cli_print_json(const sp_msg_info *info, const void *msg)
{
	sp_json_print(stdout, info, msg);
	fputc('\n', stdout);
}

void
cli_format_time(char *buf, size_t len, int64_t ms)
{
	snprintf(buf, len, "-");
	if (ms > 0) {
		time_t t = (time_t)(ms / 1000);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	}
}

void
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
	char t[64];

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
	cli_format_time(t, sizeof(t), p->started_at_ms);
	printf("%-11s %s\n", "started_at", t);
	cli_format_time(t, sizeof(t), p->exited_at_ms);
	printf("%-11s %s\n", "exited_at", t);
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

void
cli_print_ps_header(void)
{
	printf("%-29s  %-7s  %7s  %-6s  %-19s  %-12s  %s\n", "ID", "STATE", "PID", "EXIT", "STARTED", "NAME",
	    "COMMAND");
}

void
cli_print_ps_row(const sandproc_v1_Process *p)
{
	char started[32], exit[16] = "-", cmd[256] = "";
	size_t off = 0;

	cli_format_time(started, sizeof(started), p->started_at_ms);
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

bool
cli_write_fd(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return (false);
		}
		b += n;
		len -= (size_t)n;
	}
	return (true);
}
