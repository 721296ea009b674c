/*
 * The verbs, one row each. A row with a method is carried out by
 * cli_call_verb: its positional arguments and flags set the request's
 * fields of those names. A row with fn does more than one call.
 */
#include "cli.h"

static const char *const pos_id[] = { "id", NULL };
static const char *const pos_signal[] = { "id", "signal", NULL };
static const char *const pos_resize[] = { "id", "cols", "rows", NULL };
static const char *const pos_sbx_port[] = { "sandbox_id", "port", NULL };

static const cli_flag stop_flags[] = {
	{ "--grace", NULL, CLI_FLAG_VALUE, "grace_ms", false },
	{ "--wait", NULL, CLI_FLAG_VALUE, "wait_ms", true },
	{ 0 },
};
static const cli_flag kill_flags[] = { { "--wait", NULL, CLI_FLAG_VALUE, "wait_ms", true }, { 0 } };
static const cli_flag wait_flags[] = {
	{ "--timeout", NULL, CLI_FLAG_VALUE, "timeout_ms", true },
	{ "--port", NULL, CLI_FLAG_VALUE, "port", false },
	{ "--log", NULL, CLI_FLAG_VALUE, "log", false },
	{ "--stream", NULL, CLI_FLAG_VALUE, "stream", false },
	{ 0 },
};
static const cli_flag ports_flags[] = { { "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false }, { 0 } };

const cli_flag cli_run_flags[] = {
	{ "--timeout", NULL, CLI_FLAG_VALUE, "timeout_ms", true },
	{ "--max-output", NULL, CLI_FLAG_VALUE, "max_output_bytes", false },
	{ "--cwd", NULL, CLI_FLAG_VALUE, "cwd", false },
	{ "--env", "-e", CLI_FLAG_KV, "env", false },
	{ "--stdin", "-i", CLI_FLAG_BOOL, NULL, false },
	{ "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false },
	{ "--shell", NULL, CLI_FLAG_VALUE, NULL, false },
	{ 0 },
};

const cli_flag cli_start_flags[] = {
	{ "--tty", "-t", CLI_FLAG_BOOL, "tty", false },
	{ "--cols", NULL, CLI_FLAG_VALUE, "cols", false },
	{ "--rows", NULL, CLI_FLAG_VALUE, "rows", false },
	{ "--cwd", NULL, CLI_FLAG_VALUE, "cwd", false },
	{ "--env", "-e", CLI_FLAG_KV, "env", false },
	{ "--name", NULL, CLI_FLAG_VALUE, "name", false },
	{ "--label", NULL, CLI_FLAG_KV, "labels", false },
	{ "--timeout", NULL, CLI_FLAG_VALUE, "timeout_s", false },
	{ "--no-stdin", NULL, CLI_FLAG_BOOL, "no_stdin", false },
	{ "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false },
	{ "--shell", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--wait-port", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--wait-log", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--wait-timeout", NULL, CLI_FLAG_VALUE, NULL, false },
	{ 0 },
};

const cli_flag cli_ps_flags[] = {
	{ "--state", NULL, CLI_FLAG_VALUE, "state", false },
	{ "--limit", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false },
	{ "--name", NULL, CLI_FLAG_VALUE, "name", false },
	{ "--label", NULL, CLI_FLAG_KV, "labels", false },
	{ 0 },
};

const cli_flag cli_logs_flags[] = {
	{ "--tail", NULL, CLI_FLAG_VALUE, "tail_lines", false },
	{ "--tail-entries", NULL, CLI_FLAG_VALUE, "tail", false },
	{ "--stream", NULL, CLI_FLAG_VALUE, "stream", false },
	{ "--follow", "-f", CLI_FLAG_BOOL, NULL, false },
	{ 0 },
};

const cli_flag cli_input_flags[] = {
	{ "--eof", NULL, CLI_FLAG_BOOL, "eof", false },
	{ "--line", NULL, CLI_FLAG_VALUE, NULL, false },
	{ "--escapes", "-e", CLI_FLAG_BOOL, NULL, false },
	{ 0 },
};

const cli_flag cli_exec_flags[] = {
	{ "--timeout", NULL, CLI_FLAG_VALUE, "timeout_ms", true },
	{ "--cwd", NULL, CLI_FLAG_VALUE, "cwd", false },
	{ "--env", "-e", CLI_FLAG_KV, "env", false },
	{ "--sandbox", NULL, CLI_FLAG_VALUE, "sandbox_id", false },
	{ 0 },
};

const cli_verb cli_verbs[] = {
	{ .name = "run",
	    .usage =
	        "run [--timeout MS] [--max-output BYTES] [--cwd DIR] [-e K=V]... [-i] [--sandbox ID] -- CMD "
	        "[ARG...]",
	    .takes_command = true,
	    .flags = cli_run_flags,
	    .fn = cli_run },
	{ .name = "start",
	    .usage =
	        "start [--tty] [--cols N --rows N] [--cwd DIR] [-e K=V]... [--name N] [--label K=V]... "
	        "[--timeout S] [--no-stdin] [--sandbox ID]\n"
	        "         [--wait-port N] [--wait-log RE] [--wait-timeout MS] (-- CMD [ARG...] | --shell "
	        "'CMD')",
	    .takes_command = true,
	    .flags = cli_start_flags,
	    .fn = cli_start,
	    .help = "--wait-port/--wait-log: print the record once the process listens on port N or prints a "
	            "matching line; exit 124 at --wait-timeout, or with the process's code (1 for 0) if it "
	            "ends first" },
	{ .name = "ps",
	    .usage = "ps [--state running|exited|killed|failed] [--limit N] [--sandbox ID] [--name N] "
	             "[--label K=V]...",
	    .flags = cli_ps_flags,
	    .fn = cli_ps },
	{ .name = "get",
	    .usage = "get ID",
	    .method = &sp_processes_methods[SP_PROCESSES_GET],
	    .positional = pos_id,
	    .show = CLI_SHOW_RECORD },
	{ .name = "stop",
	    .usage = "stop ID [--grace MS] [--wait MS]",
	    .method = &sp_processes_methods[SP_PROCESSES_STOP],
	    .positional = pos_id,
	    .flags = stop_flags,
	    .show = CLI_SHOW_STATE },
	{ .name = "kill",
	    .usage = "kill ID [--wait MS]",
	    .method = &sp_processes_methods[SP_PROCESSES_KILL],
	    .positional = pos_id,
	    .flags = kill_flags,
	    .show = CLI_SHOW_STATE },
	{ .name = "signal",
	    .usage = "signal ID SIG",
	    .method = &sp_processes_methods[SP_PROCESSES_SIGNAL],
	    .positional = pos_signal,
	    .show = CLI_SHOW_STATE },
	{ .name = "rm",
	    .usage = "rm ID",
	    .method = &sp_processes_methods[SP_PROCESSES_DELETE],
	    .positional = pos_id,
	    .show = CLI_SHOW_DELETED },
	{ .name = "wait",
	    .usage = "wait ID [--timeout MS] [--port N] [--log RE [--stream S]]",
	    .positional = pos_id,
	    .flags = wait_flags,
	    .fn = cli_wait,
	    .help =
	        "without --port/--log: exits with the process's code once it ends; with them: 0 once it "
	        "listens on port N or a line (one written before too) matches RE (printed), 124 at the "
	        "timeout, the process's code (1 for 0, 128+signal) if it ends first, with its last output "
	        "on stderr" },
	{ .name = "logs",
	    .usage =
	        "logs ID [--tail LINES | --tail-entries N] [--stream stdout|stderr|combined|pty] [--follow]",
	    .positional = pos_id,
	    .flags = cli_logs_flags,
	    .fn = cli_logs,
	    .help = "--follow exits 0 once the process has ended and its output is printed, whatever its "
	            "exit code "
	            "(as docker logs -f does): `sandproc wait ID` gives the code" },
	{ .name = "input",
	    .usage = "input ID [DATA | -] [-e] [--line TEXT] [--eof]",
	    .flags = cli_input_flags,
	    .fn = cli_input },
	{ .name = "attach",
	    .usage = "attach ID   (detach with Ctrl-])",
	    .positional = pos_id,
	    .fn = cli_attach },
	{ .name = "resize",
	    .usage = "resize ID COLS ROWS",
	    .method = &sp_processes_methods[SP_PROCESSES_RESIZE],
	    .positional = pos_resize,
	    .show = CLI_SHOW_NONE },
	{ .name = "screen",
	    .usage = "screen ID",
	    .method = &sp_processes_methods[SP_PROCESSES_SCREEN],
	    .positional = pos_id,
	    .show = CLI_SHOW_SCREEN },
	{ .name = "config", .usage = "config [get | set KEY=VALUE...]", .fn = cli_config },
	{ .name = "exec",
	    .usage = "exec bash 'COMMAND' | exec python 'CODE'  [--timeout MS] [--cwd DIR] [-e K=V]... "
	             "[--sandbox ID]",
	    .flags = cli_exec_flags,
	    .fn = cli_exec },
	{ .name = "sandbox",
	    .usage =
	        "sandbox create [--name N] [--label K=V]... [--memory BYTES] [--pids N] [--cpus N] "
	        "[--network none|host] [--expose auto|manual] [--root] [--setup 'CMD'] [-e K=V]... [--wait]\n"
	        "         sandbox ls [--state S] [--label K=V]... | sandbox get ID | sandbox rm ID "
	        "[--keep-workspace]\n"
	        "         sandbox ready ID | sandbox wait ID [--timeout S]",
	    .fn = cli_sandbox },
	{ .name = "ports", .usage = "ports [--sandbox ID]", .flags = ports_flags, .fn = cli_ports },
	{ .name = "expose", .usage = "expose SANDBOX PORT   (prints the exposed URL)", .fn = cli_expose },
	{ .name = "unexpose",
	    .usage = "unexpose SANDBOX PORT",
	    .method = &sp_ports_methods[SP_PORTS_UNEXPOSE],
	    .positional = pos_sbx_port,
	    .show = CLI_SHOW_NONE },
	{ .name = "key",
	    .usage = "key create --role viewer|developer|admin [--tenant T] [--name N] [--sandbox ID] "
	             "[--expires S]\n"
	             "         key ls | key rm ID",
	    .fn = cli_key },
	{ .name = "health",
	    .usage = "health",
	    .method = &sp_system_methods[SP_SYSTEM_HEALTH],
	    .show = CLI_SHOW_HEALTH },
};

const size_t cli_nverbs = sizeof(cli_verbs) / sizeof(cli_verbs[0]);
