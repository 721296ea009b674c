/*
 * The sandproc command-line client: one verb per RPC and a few more.
 * Each verb lives in a cli_*.c file and is called with the arguments after
 * its name.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "sandproc.h"

typedef struct cli {
	const char *server;
	const char *events;
	const char *token;
	bool json;
	sp_client *c;
} cli;

/* Exit codes besides a child's own. */
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_TIMEOUT 124
#define CLI_EXIT_CANNOT_EXEC 126
#define CLI_EXIT_NOT_FOUND 127

/* Connects (once); prints the error and returns false on failure. */
bool cli_connect(cli *cl);

/* Prints "sandproc: <STATUS>: <message>" for the last call; returns CLI_EXIT_ERROR. */
int cli_call_failed(cli *cl, int code);

/* Prints "sandproc: <message>" and returns CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a whole non-negative decimal number into *out. */
bool cli_uint(const char *s, unsigned long long max, unsigned long long *out);

/* Copies id into a request's fixed-size id field; false when too long. */
bool cli_id(char *dst, size_t size, const char *id);

/* Prints one message as JSON, or the record as "key: value" lines. */
void cli_print_json(const sp_msg_info *info, const void *msg);
void cli_print_process(cli *cl, const sandproc_v1_Process *p);

/* The exit code a shell would give for an ended record (128+signal, ...). */
int cli_exit_code(const sandproc_v1_Process *p);

int cli_health(cli *cl, int argc, char **argv);
int cli_run(cli *cl, int argc, char **argv);
int cli_exec(cli *cl, int argc, char **argv);
int cli_start(cli *cl, int argc, char **argv);
int cli_ps(cli *cl, int argc, char **argv);
int cli_get(cli *cl, int argc, char **argv);
int cli_stop(cli *cl, int argc, char **argv);
int cli_kill(cli *cl, int argc, char **argv);
int cli_signal(cli *cl, int argc, char **argv);
int cli_rm(cli *cl, int argc, char **argv);
int cli_wait(cli *cl, int argc, char **argv);
int cli_logs(cli *cl, int argc, char **argv);
int cli_input(cli *cl, int argc, char **argv);
int cli_resize(cli *cl, int argc, char **argv);
int cli_screen(cli *cl, int argc, char **argv);
int cli_attach(cli *cl, int argc, char **argv);
int cli_config(cli *cl, int argc, char **argv);

#endif
