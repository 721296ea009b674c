/*
 * Starting a child the way the service promises: argv, env and paths are
 * prepared before the child exists; the child is made by posix_spawn (glibc
 * clones with CLONE_VFORK and runs no atfork handlers or locks, so the
 * threaded server is safe) in its own process group, or its own session with
 * the PTY as controlling terminal; signal mask and dispositions reset; only
 * fds 0-2 are passed (every other fd is close-on-exec). Exec failures come
 * back from posix_spawn itself, with their errno, before it returns.
 */
#ifndef SPAWN_H
#define SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum spawn_stdin {
	SPAWN_STDIN_NULL, /* /dev/null */
	SPAWN_STDIN_PIPE, /* a pipe; the server keeps its write end */
} spawn_stdin;

typedef struct spawn_opts {
	const char *const *argv; /* argv[0] looked up on the child's PATH */
	size_t argc;
	const char *cwd;        /* NULL or "" = the server's cwd */
	const char *const *env; /* KEY=value over the server's environment */
	size_t envc;
	bool tty;
	uint16_t cols, rows;
	spawn_stdin in;
	bool big_pipes; /* 1 MiB output pipes: fewer wake-ups for chatty long-lived children */
} spawn_opts;

typedef struct spawn_child {
	pid_t pid;
	int pidfd;  /* readable once the child has exited; it stays unreaped until waited */
	int in_fd;  /* stdin write end (pipe), or -1 */
	int out_fd; /* stdout read end, or the PTY master */
	int err_fd; /* stderr read end, or -1 with a PTY */
} spawn_child;

/*
 * Starts the child. Returns SP_OK, or an sp_status with the cause in err:
 * INVALID_ARGUMENT (empty argv, bad env entry, bad cwd), NOT_FOUND (no such
 * executable), PERMISSION_DENIED, FAILED_PRECONDITION (cannot exec it),
 * RESOURCE_EXHAUSTED (out of fds, processes or memory). *errnum gets the
 * errno behind a failure (0 if none). The parent's fds are non-blocking.
 */
int spawn_start(const spawn_opts *o, spawn_child *c, int *errnum, char *err, size_t errlen);

/* Closes whatever fds c still holds (not the pid: see the supervisor). */
void spawn_close_fds(spawn_child *c);

/* Looks up a signal by name ("TERM", "SIGTERM", "term") or number; -1 if none. */
int spawn_signal_number(const char *s);

/* The name of a signal without "SIG" ("TERM"), or NULL. */
const char *spawn_signal_name(int sig);

/* The start time of pid (clock ticks since boot), or 0 when it is gone. */
uint64_t spawn_pid_start_time(pid_t pid);

/* True while pid exists and is not a zombie (one nobody reaped is as good as gone). */
bool spawn_pid_running(pid_t pid);

/* This boot's id (/proc/sys/kernel/random/boot_id) into out (>= 40 bytes). */
void spawn_boot_id(char *out, size_t len);

/*
 * True while any process other than leader (and other than zombies) is in
 * process group pgid, or with session true, in session pgid. Reads /proc.
 */
bool spawn_group_alive(pid_t pgid, pid_t leader, bool session);

/*
 * Sends sig to every process group of session sid other than sid's own
 * group (jobs a shell on a PTY put in groups of their own). Best effort.
 */
void spawn_signal_session_groups(pid_t sid, int sig);

#endif
