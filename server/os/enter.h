/*
 * The child side of starting a process from a single-threaded parent (a
 * holder, or the holder binary's exec mode): everything is prepared before
 * fork (paths resolved, files and namespaces opened), and the child only
 * makes system calls, in this order: join cgroups, new session or group,
 * the controlling terminal, stdio, namespaces (net, uts, ipc, cgroup, mnt,
 * then user), cwd, group and user ids, signal mask and dispositions, exec.
 * A failure writes {stage, errno} to err_pipe and exits 127; a successful
 * exec closes the pipe, so EOF there means the program runs.
 */
#ifndef OS_ENTER_H
#define OS_ENTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define ENTER_MAX_CGROUPS 6
#define ENTER_NS 6 /* net, uts, ipc, cgroup, mnt, user */

typedef enum enter_stage {
	ENTER_CGROUP = 1,
	ENTER_SESSION,
	ENTER_TTY,
	ENTER_STDIO,
	ENTER_NAMESPACE,
	ENTER_CWD,
	ENTER_IDS,
	ENTER_EXEC,
} enter_stage;

typedef struct enter_plan {
	const char *exe; /* with no slash: looked up on search_path, after the namespaces are entered */
	const char *search_path; /* PATH for exe without a slash (NULL: "/usr/local/bin:/usr/bin:/bin") */
	char *const *argv, *const *env;
	const char *cwd;                   /* NULL: stay */
	bool new_session;                  /* a session (a TTY's), else a process group of its own */
	bool keep_group;                   /* neither: stay in the caller's group (exec mode) */
	int tty_fd;                        /* the PTY slave, made controlling terminal and stdio; -1: none */
	int stdio[3];                      /* fds for 0, 1, 2 (-1: /dev/null) when there is no TTY */
	int cgroup_fds[ENTER_MAX_CGROUPS]; /* cgroup.procs files to write our pid to */
	int ncgroups;
	int ns_fds[ENTER_NS]; /* -1: not entered */
	int uid, gid;         /* -1: keep; set: no supplementary groups and no new privileges either */
	int err_pipe;
} enter_plan;

/* An empty plan (no cgroup, no namespace, ids kept, stdio from /dev/null). */
void enter_plan_init(enter_plan *p);

/*
 * Opens the namespaces of pid (the keeper of a sandbox) into p->ns_fds,
 * leaving out those we are in already (setns into one's own user namespace
 * fails); 0 or an errno.
 */
int enter_open_namespaces(enter_plan *p, pid_t pid);

/* In the child: carries the plan out and execs. Never returns. */
void enter_exec(const enter_plan *p) __attribute__((noreturn));

/* The text of a stage ("exec", "cwd", ...). */
const char *enter_stage_name(int stage);

#endif
