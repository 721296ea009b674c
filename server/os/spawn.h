/*
 * Starting a child the way the service promises: argv, env and paths are
 * prepared before the child exists; the child is made by posix_spawn (glibc
 * clones with CLONE_VFORK and runs no atfork handlers or locks, so the
 * threaded server is safe) in its own process group, or its own session with
 * the PTY as controlling terminal; signal mask and dispositions reset; only
 * fds 0-2 are passed (every other fd is close-on-exec). Exec failures come
 * back from posix_spawn itself, with their errno, before it returns.
 */
#ifndef OS_SPAWN_H
#define OS_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum spawn_stdin {
	SPAWN_STDIN_NULL, /* /dev/null */
	SPAWN_STDIN_PIPE, /* a pipe; the server keeps its write end */
} spawn_stdin;

/*
 * Where a child runs when not on the host as the server does (a sandbox):
 * the namespaces of ns_pid (pid namespace too), the cgroups whose
 * cgroup.procs files are listed, a user, and a cwd and PATH inside. exe is
 * looked up inside, after the namespaces are entered. ctrl reaches every
 * process the child starts (its own cgroup), and says why it ended.
 */
#define SPAWN_PLACE_CGROUPS 6
typedef struct spawn_place_ops {
	/* Signals every process of the child's cgroup. */
	void (*signal)(void *ctx, int sig);
	/* The child ended with wstatus: why, when the place knows more (an OOM kill); "" if not. */
	void (*ended)(void *ctx, int wstatus, char *why, size_t len);
	/* Up to max processes of the child's cgroup (host pids) into out; how many. */
	size_t (*members)(void *ctx, pid_t *out, size_t max);
	/* Nothing will be asked of ctx again: frees it (and the child's cgroup). */
	void (*release)(void *ctx);
} spawn_place_ops;

typedef struct spawn_place {
	int32_t ns_pid; /* 0: on the host (only a cgroup of its own) */
	uint64_t ns_pid_start;
	int uid, gid;
	const char *cgroup_procs[SPAWN_PLACE_CGROUPS + 1]; /* NULL-terminated */
	const spawn_place_ops *ops;                        /* NULL: none */
	void *ctx;
} spawn_place;

typedef struct spawn_spec {
	const char *const *argv; /* argv[0] looked up on the child's PATH */
	size_t argc;
	const char *cwd;        /* NULL or "" = the server's cwd */
	const char *const *env; /* the child's whole environment, NULL-terminated; PATH is looked up in it */
	bool tty;
	uint16_t cols, rows;
	spawn_stdin in;
	bool big_pipes;           /* 1 MiB output pipes: fewer wake-ups for chatty long-lived children */
	bool merge_stderr;        /* stderr into stdout's pipe (no err_fd) */
	const spawn_place *place; /* NULL: on the host (a backend that cannot place a child refuses) */
	int fd3;                  /* spawn_start: passed to the child as fd 3 (-1 or 0: none) */
} spawn_spec;

typedef struct spawn_child {
	pid_t pid;
	int pidfd;  /* readable once the child has exited; it stays unreaped until waited */
	int in_fd;  /* stdin write end (pipe), or -1 */
	int out_fd; /* stdout read end, or the PTY master */
	int err_fd; /* stderr read end, or -1 with a PTY */
} spawn_child;

/*
 * Starts the child. Returns SP_OK, or an sp_status with the cause in err:
 * INVALID_ARGUMENT (empty argv, bad cwd), NOT_FOUND (no such
 * executable), PERMISSION_DENIED, FAILED_PRECONDITION (cannot exec it),
 * RESOURCE_EXHAUSTED (out of fds, processes or memory). *errnum gets the
 * errno behind a failure (0 if none). The parent's fds are non-blocking.
 */
int spawn_start(const spawn_spec *o, spawn_child *c, int *errnum, char *err, size_t errlen);

/*
 * Resolves name like execvp would, on path (NULL: a default PATH), with a
 * relative entry or a name with a slash taken from cwd: the executable's
 * path into out. SP_OK, or SP_NOT_FOUND / SP_PERMISSION_DENIED /
 * SP_INVALID_ARGUMENT with the cause in err (*errnum its errno).
 */
int spawn_resolve(const char *name, const char *path, const char *cwd, char *out, size_t outlen, int *errnum,
    char *err, size_t errlen);

/* Checks cwd is a directory we may enter; SP_OK or a status with the cause in err. */
int spawn_check_cwd(const char *cwd, int *errnum, char *err, size_t errlen);

/* PATH's value in a NULL-terminated environment, or NULL. */
const char *spawn_env_path(const char *const *env);

/* Closes whatever fds c still holds (not the pid: see the supervisor). */
void spawn_close_fds(spawn_child *c);

#endif
