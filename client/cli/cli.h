/*
 * The sandproc command-line client: one verb per RPC and a few more.
 *
 * A verb is a row of the table in verbs.c. Most rows name a generated
 * method and map their positional arguments and --flags to the request's
 * fields by proto name (args.c), so the CLI mirrors the API; verbs that do
 * more (run, logs --follow, attach ...) have a function of their own and
 * parse with the same table.
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
	sp_arena *arena; /* request strings the verb builds */
} cli;

/* Exit codes besides a child's own. */
/* logs --follow and attach ride out a server restart this long. */
#define CLI_RECONNECT_MS 60000

#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_TIMEOUT 124
#define CLI_EXIT_CANNOT_EXEC 126
#define CLI_EXIT_NOT_FOUND 127

typedef enum cli_flag_kind {
	CLI_FLAG_VALUE, /* --flag VALUE */
	CLI_FLAG_BOOL,  /* --flag */
	CLI_FLAG_KV,    /* --flag KEY=value, repeatable */
} cli_flag_kind;

typedef struct cli_flag {
	const char *name;  /* "--grace" */
	const char *alias; /* "-e", or NULL */
	cli_flag_kind kind;
	const char *field; /* the request field it sets; NULL: the verb reads it (cli_parsed.flags) */
	bool waits;        /* its value is a server-side wait in ms (the call's timeout grows with it) */
} cli_flag;

#define CLI_MAX_FLAGS 24
#define CLI_MAX_POS 4

typedef struct cli_parsed {
	const char *flags[CLI_MAX_FLAGS]; /* values of flags with no field, by index */
	uint32_t wait_ms;                 /* the value of a "waits" flag */
	const char *pos[CLI_MAX_POS];     /* positional arguments named "@..." */
	char **rest;                      /* after "--" or the command */
	int nrest;
} cli_parsed;

typedef enum cli_show {
	CLI_SHOW_NONE,    /* nothing (--json: the reply) */
	CLI_SHOW_RECORD,  /* a process record, as key: value lines */
	CLI_SHOW_STATE,   /* "<id> <state>" */
	CLI_SHOW_WAITED,  /* nothing; exits with the record's code (wait) */
	CLI_SHOW_SCREEN,  /* the screen's rows */
	CLI_SHOW_HEALTH,  /* one line */
	CLI_SHOW_DELETED, /* nothing (--json: {"id", "deleted"}) */
} cli_show;

typedef struct cli_verb cli_verb;

struct cli_verb {
	const char *name;
	const char *usage;
	/* A generic verb: the method, its positional fields ("@x": kept for the verb), its flags, how to
	 * show. */
	const sp_method *method;
	const char *const *positional;
	bool optional_positional;
	bool takes_command; /* CMD [ARG...] follows the options */
	const cli_flag *flags;
	cli_show show;
	/* A verb of its own (parses with cli_parse when it wants to). */
	int (*fn)(cli *cl, const cli_verb *v, int argc, char **argv);
	const char *help; /* a line more for --help, or NULL */
};

/* The verb table (verbs.c). */
extern const cli_verb cli_verbs[];
extern const size_t cli_nverbs;

/* args.c: sets field name of msg from value; CLI_SET_*. */
enum { CLI_SET_OK, CLI_SET_UNKNOWN, CLI_SET_BAD, CLI_SET_TOO_LONG };
int cli_set_field(const sp_msg_info *info, void *msg, const char *name, const char *value, sp_arena *arena);
/* Parses argv for v into msg (of info); 0, or a usage error's exit code (printed). */
int cli_parse(const cli_verb *v, int argc, char **argv, const sp_msg_info *info, void *msg, sp_arena *arena,
    cli_parsed *out);
/* The value given for verb-read flag name ("true" for a bool), or NULL when not given. */
const char *cli_flag_value(const cli_verb *v, const cli_parsed *a, const char *name);
int cli_field_error(const cli_verb *v, const char *what, const char *value, int rv);
/* Parses a whole non-negative decimal number into *out. */
bool cli_uint(const char *s, unsigned long long max, unsigned long long *out);
/* True for KEY=value with a non-empty key. */
bool cli_kv(const char *v);

/* main.c */
/* Connects (once); prints the error and returns false on failure. */
bool cli_connect(cli *cl);
/* Prints "sandproc: <STATUS>: <message>" for the last call; returns CLI_EXIT_ERROR. */
int cli_call_failed(cli *cl, int code);
/* Prints "sandproc: <message>" and returns CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A name where an id is expected: the id of the running process of that name (else the newest); 0 or an exit
 * code. */
int cli_resolve_id(cli *cl, char *id, size_t len);
/* Calls a generic verb's method with req (built by cli_parse) and shows the reply. */
int cli_call_verb(cli *cl, const cli_verb *v, void *req, int timeout_ms);

/* output.c */
void cli_print_json(const sp_msg_info *info, const void *msg);
void cli_print_process(cli *cl, const sandproc_v1_Process *p);
void cli_format_time(char *buf, size_t len, int64_t ms);
void cli_print_strv(const char *key, const sp_strv_t *sv);
void cli_print_ps_header(void);
void cli_print_ps_row(const sandproc_v1_Process *p);
/* The exit code a shell would give for an ended record (128+signal, ...). */
int cli_exit_code(const sandproc_v1_Process *p);
/* Writes all of p to fd; false when fd is closed. */
bool cli_write_fd(int fd, const void *p, size_t len);

/* Verbs of their own. */
int cli_run(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_exec(cli *cl, const cli_verb *v, int argc, char **argv);
/* cli_live.c: a Run with its output shown as it comes; the reply in rep (its output already printed). */
int cli_run_live(cli *cl, sandproc_v1_RunRequest *req, sandproc_v1_RunReply *rep, int timeout_ms);
/* cli_ports.c */
int cli_ports(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_expose(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_wait(cli *cl, const cli_verb *v, int argc, char **argv);
/* Waits server-side as req says (WaitFor); 0 held, 124 timed out, else the process's end (1 for 0). */
int cli_wait_for(cli *cl, sandproc_v1_WaitForRequest *req, bool show_record);

/* cli_key.c */
int cli_key(cli *cl, const cli_verb *v, int argc, char **argv);

/* cli_sandbox.c */
int cli_sandbox(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_start(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_ps(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_logs(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_input(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_config(cli *cl, const cli_verb *v, int argc, char **argv);
int cli_attach(cli *cl, const cli_verb *v, int argc, char **argv);

#endif
